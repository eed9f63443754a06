//! The audit trail: one row in admin_db per state-changing mutation (actor, action,
//! target, outcome, client address). Writing it must never fail the mutation it records:
//! an entry admin_db cannot take waits in auth_db's outbox (`services::audit_outbox`)
//! and housekeeping moves what waits in any outbox over later ([`drain`]); only when
//! both stores refuse it is it lost, with an ERROR. The entry is made (and gets its id)
//! after the change it records has committed, so a process that dies before either
//! write loses that one entry: the remaining window, a few milliseconds wide.

use sea_orm::{
    sea_query::OnConflict, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::{
    db::{admin::audit_entry, Stores},
    error::Result,
    services::{audit_outbox, page::Page, text},
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

/// How many waiting entries one drain moves per round.
const DRAIN_BATCH: u64 = 200;

/// Writes `entry` to admin_db, or into auth_db's outbox when admin_db cannot take it.
pub(crate) async fn record(
    admin_db: &DatabaseConnection,
    auth_db: &DatabaseConnection,
    entry: Entry,
) {
    let row = audit_entry::Model {
        id: Uuid::now_v7(),
        actor_id: entry.actor_id,
        action: entry.action,
        target_type: entry.target_type,
        target_id: entry.target_id,
        outcome: entry.outcome,
        ip: entry.ip,
        at: crate::services::now(),
        details: entry.details,
    };
    let Err(err) = audit_entry::Entity::insert(row.clone().into_active_model())
        .exec_without_returning(admin_db)
        .await
    else {
        return;
    };
    match audit_outbox::stash(auth_db, &row).await {
        Ok(()) => tracing::warn!(
            action = row.action,
            error = %err,
            "admin_db refused an audit entry; it waits in auth_db's outbox"
        ),
        Err(outbox_err) => tracing::error!(
            action = row.action,
            error = %err,
            outbox_error = %outbox_err,
            "could not write the audit trail"
        ),
    }
}

/// Moves the entries waiting in every outbox (auth_db, user_db, post_db,
/// appointment_db) to admin_db, a batch at a time, and returns how many it moved; an
/// outbox it cannot drain now is named in a WARN and tried again next time. Safe on
/// every replica at once: an entry keeps its id and goes in with `ON CONFLICT (id) DO
/// NOTHING`, so two replicas moving the same batch leave one row; an outbox row is
/// deleted only after its insert succeeded.
pub(crate) async fn drain(stores: &Stores) -> u64 {
    let mut moved = 0;
    for db in audit_outbox::OUTBOXES {
        match drain_one(&stores.admin, stores.db(db)).await {
            Ok(n) => moved += n,
            Err(e) => tracing::warn!(
                database = db.file_stem(),
                error = %e,
                "moving waiting audit entries failed"
            ),
        }
    }
    moved
}

async fn drain_one(admin_db: &DatabaseConnection, outbox_db: &DatabaseConnection) -> Result<u64> {
    let mut moved = 0;
    loop {
        let rows = audit_outbox::batch(outbox_db, DRAIN_BATCH).await?;
        if rows.is_empty() {
            return Ok(moved);
        }
        let count = rows.len() as u64;
        let ids = rows.iter().map(|r| r.id).collect();
        audit_entry::Entity::insert_many(rows.into_iter().map(IntoActiveModel::into_active_model))
            .on_conflict(
                OnConflict::column(audit_entry::Column::Id)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(admin_db)
            .await?;
        audit_outbox::remove(outbox_db, ids).await?;
        moved += count;
        if count < DRAIN_BATCH {
            return Ok(moved);
        }
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
