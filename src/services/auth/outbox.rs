//! The audit outbox in auth_db: where an audit entry waits when admin_db cannot take it,
//! so an outage of admin_db loses no entry. Entries keep the id they were made with, so
//! moving one twice (two replicas draining at once) still leaves one row in the trail.

use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::{
    db::{admin::audit_entry, auth::audit_outbox},
    error::Result,
};

/// Keeps `entry` until it can be moved to admin_db.
pub(crate) async fn stash(auth_db: &DatabaseConnection, entry: &audit_entry::Model) -> Result<()> {
    let row = audit_outbox::Model {
        id: entry.id,
        actor_id: entry.actor_id,
        action: entry.action.clone(),
        target_type: entry.target_type.clone(),
        target_id: entry.target_id.clone(),
        outcome: entry.outcome.clone(),
        ip: entry.ip.clone(),
        at: entry.at,
        details: entry.details.clone(),
    };
    audit_outbox::Entity::insert(row.into_active_model())
        .exec_without_returning(auth_db)
        .await?;
    Ok(())
}

/// The oldest `limit` waiting entries.
pub(crate) async fn batch(
    auth_db: &DatabaseConnection,
    limit: u64,
) -> Result<Vec<audit_entry::Model>> {
    let rows = audit_outbox::Entity::find()
        .order_by_asc(audit_outbox::Column::At)
        .order_by_asc(audit_outbox::Column::Id)
        .limit(limit)
        .all(auth_db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| audit_entry::Model {
            id: r.id,
            actor_id: r.actor_id,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            outcome: r.outcome,
            ip: r.ip,
            at: r.at,
            details: r.details,
        })
        .collect())
}

/// Forgets entries that are now in admin_db.
pub(crate) async fn remove(auth_db: &DatabaseConnection, ids: Vec<Uuid>) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    audit_outbox::Entity::delete_many()
        .filter(audit_outbox::Column::Id.is_in(ids))
        .exec(auth_db)
        .await?;
    Ok(())
}
