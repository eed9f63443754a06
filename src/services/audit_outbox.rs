//! The `audit_outbox` tables: where an audit entry waits until admin_db takes it. Each of
//! auth_db, user_db, post_db and appointment_db holds one (the same columns as admin_db's
//! `audit_trail`); entries keep the id they were made with, so moving one twice (two
//! replicas draining at once) still leaves one row in the trail.

use sea_orm::{
    sea_query::OnConflict, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::{
    config::Database,
    db::{admin::audit_entry, audit_outbox as outbox},
    error::Result,
};

/// The databases that hold an outbox, in the order housekeeping drains them.
pub(crate) const OUTBOXES: [Database; 4] = [
    Database::Auth,
    Database::Users,
    Database::Posts,
    Database::Appointments,
];

/// `ON CONFLICT (id) DO UPDATE` every other column.
fn overwrite() -> OnConflict {
    OnConflict::column(outbox::Column::Id)
        .update_columns([
            outbox::Column::ActorId,
            outbox::Column::Action,
            outbox::Column::TargetType,
            outbox::Column::TargetId,
            outbox::Column::Outcome,
            outbox::Column::Ip,
            outbox::Column::At,
            outbox::Column::Details,
        ])
        .to_owned()
}

fn row(entry: &audit_entry::Model) -> outbox::Model {
    outbox::Model {
        id: entry.id,
        actor_id: entry.actor_id,
        action: entry.action.clone(),
        target_type: entry.target_type.clone(),
        target_id: entry.target_id.clone(),
        outcome: entry.outcome.clone(),
        ip: entry.ip.clone(),
        at: entry.at,
        details: entry.details.clone(),
    }
}

/// Keeps `entry` in the outbox of `db` (a connection to it) until it can be moved to
/// admin_db; an entry of that id already waiting there is written over.
pub(crate) async fn stash(db: &impl ConnectionTrait, entry: &audit_entry::Model) -> Result<()> {
    outbox::Entity::insert(row(entry).into_active_model())
        .on_conflict(overwrite())
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The oldest `limit` entries waiting in the outbox of `db`.
pub(crate) async fn batch(db: &DatabaseConnection, limit: u64) -> Result<Vec<audit_entry::Model>> {
    let rows = outbox::Entity::find()
        .order_by_asc(outbox::Column::At)
        .order_by_asc(outbox::Column::Id)
        .limit(limit)
        .all(db)
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

/// Forgets entries of the outbox of `db` that are now in admin_db.
pub(crate) async fn remove(db: &impl ConnectionTrait, ids: Vec<Uuid>) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    outbox::Entity::delete_many()
        .filter(outbox::Column::Id.is_in(ids))
        .exec(db)
        .await?;
    Ok(())
}
