//! `audit_outbox`: the one table that auth_db, user_db, post_db and appointment_db each
//! hold alike (the columns of admin_db's `audit_trail`). A change writes its audit entry
//! here in its own transaction; the entry is then moved to admin_db. It belongs to no
//! domain: only `services::audit_outbox` names it, whichever database it is in.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_outbox")]
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
