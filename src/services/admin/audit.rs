//! The audit trail: one row in admin_db per state-changing mutation (actor, action,
//! target, outcome, client address). Writing it must never fail the mutation it records:
//! a failed write is logged at ERROR instead.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::{
    db::admin::audit_entry,
    error::Result,
    services::{page::Page, text},
};

/// Longest `action` filter: the column's width.
const ACTION_MAX: usize = 64;

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

/// What `auditTrail` is asked for.
#[derive(Clone, Debug, Default)]
pub(crate) struct TrailFilter {
    pub(crate) actor_id: Option<Uuid>,
    /// A mutation's field name, matched exactly.
    pub(crate) action: Option<String>,
}

/// One page of the trail, newest first, and how many entries match in all.
pub(crate) async fn trail(
    admin_db: &DatabaseConnection,
    filter: TrailFilter,
    page: &Page,
) -> Result<(Vec<audit_entry::Model>, i64)> {
    let mut query = audit_entry::Entity::find();
    if let Some(actor) = filter.actor_id {
        query = query.filter(audit_entry::Column::ActorId.eq(actor));
    }
    if let Some(action) = filter.action {
        let action = text::bounded("action", &action, 1, ACTION_MAX)?;
        query = query.filter(audit_entry::Column::Action.eq(action));
    }
    let total = query.clone().count(admin_db).await? as i64;
    let rows = query
        .filter(page.after_desc(audit_entry::Column::At, audit_entry::Column::Id))
        .order_by_desc(audit_entry::Column::At)
        .order_by_desc(audit_entry::Column::Id)
        .limit(page.limit())
        .all(admin_db)
        .await?;
    Ok((rows, total))
}
