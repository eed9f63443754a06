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

/// An entry waiting here, as admin_db keeps it (the same columns).
impl From<Model> for super::admin::audit_entry::Model {
    fn from(r: Model) -> Self {
        Self {
            id: r.id,
            actor_id: r.actor_id,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            outcome: r.outcome,
            ip: r.ip,
            at: r.at,
            details: r.details,
        }
    }
}

/// An entry of admin_db, to wait here.
impl From<&super::admin::audit_entry::Model> for Model {
    fn from(e: &super::admin::audit_entry::Model) -> Self {
        Self {
            id: e.id,
            actor_id: e.actor_id,
            action: e.action.clone(),
            target_type: e.target_type.clone(),
            target_id: e.target_id.clone(),
            outcome: e.outcome.clone(),
            ip: e.ip.clone(),
            at: e.at,
            details: e.details.clone(),
        }
    }
}
