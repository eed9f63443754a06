//! admin_db entities: the audit trail and the WARN/ERROR log.

pub mod audit_entry {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_trail")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub actor_id: Option<Uuid>,
        pub action: String,
        pub target_type: String,
        pub target_id: Option<String>,
        pub outcome: String,
        pub ip: Option<String>,
        pub at: DateTimeUtc,
        pub details: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod log_entry {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "admin_logs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// `WARN` or `ERROR`.
        pub level: String,
        pub message: String,
        pub target: Option<String>,
        pub at: DateTimeUtc,
        /// The event's other fields, a JSON object.
        pub fields: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
