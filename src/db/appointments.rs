//! appointment_db entities: weekly availability rules, time off, appointments and the
//! booking event log.

pub mod availability_rule {
    use sea_orm::entity::prelude::*;

    /// One weekly window of a coach, in the coach's timezone: minutes since local
    /// midnight, `end_minute` after `start_minute` (at most 1440).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "availability_rules")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub coach_id: Uuid,
        /// 1 = Monday … 7 = Sunday.
        pub weekday: i16,
        pub start_minute: i32,
        pub end_minute: i32,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod time_off {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "time_off")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub coach_id: Uuid,
        pub starts_at: DateTimeUtc,
        pub ends_at: DateTimeUtc,
        pub reason: Option<String>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod appointment {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "appointments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// `None` once that account is erased.
        pub coach_id: Option<Uuid>,
        /// `None` once that account is erased.
        pub client_id: Option<Uuid>,
        pub starts_at: DateTimeUtc,
        pub ends_at: DateTimeUtc,
        /// PENDING, CONFIRMED, CANCELLED or COMPLETED as stored; a PENDING row whose start
        /// has passed reads CANCELLED (see `services::appointments::booking::effective`).
        pub status: String,
        pub notes: Option<String>,
        pub cancel_reason: Option<String>,
        pub cancelled_by: Option<Uuid>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod booking_event {
    use sea_orm::entity::prelude::*;

    /// One change of an appointment, numbered, so that subscribers on every replica get
    /// it (and a replica that lost its LISTEN connection can replay what it missed).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "booking_events")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub appointment_id: Uuid,
        /// BOOKED, CONFIRMED, CANCELLED or COMPLETED.
        pub kind: String,
        pub coach_id: Option<Uuid>,
        pub client_id: Option<Uuid>,
        pub at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
