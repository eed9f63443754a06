//! The audit trail: one row in admin_db per state-changing mutation (actor, action,
//! target, outcome, client address). Writing it must never fail the mutation it records:
//! a failed write is logged at ERROR instead.

use sea_orm::{ActiveModelTrait, DatabaseConnection, Set};
use uuid::Uuid;

use crate::db::admin::audit_entry;

/// What one audit row says.
#[derive(Clone, Debug, Default)]
pub(crate) struct Entry {
    pub(crate) actor_id: Option<Uuid>,
    pub(crate) action: String,
    pub(crate) target_type: String,
    pub(crate) target_id: Option<String>,
    /// `success` or the error code.
    pub(crate) outcome: String,
    pub(crate) ip: Option<String>,
    pub(crate) details: Option<String>,
}

pub(crate) async fn record(admin_db: &DatabaseConnection, entry: Entry) {
    let row = audit_entry::ActiveModel {
        id: Set(Uuid::now_v7()),
        actor_id: Set(entry.actor_id),
        action: Set(entry.action.clone()),
        target_type: Set(entry.target_type),
        target_id: Set(entry.target_id),
        outcome: Set(entry.outcome),
        ip: Set(entry.ip),
        at: Set(crate::services::now()),
        details: Set(entry.details),
    };
    if let Err(err) = row.insert(admin_db).await {
        tracing::error!(action = entry.action, error = %err, "could not write the audit trail");
    }
}
