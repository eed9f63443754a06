//! The audit trail: one row in admin_db per state-changing mutation (actor, action,
//! target, outcome, client address). Writing it must never fail the mutation it records,
//! and an outage of admin_db must lose no entry.
//!
//! A mutation whose change is a SQL transaction wrote its entry into the outbox of its
//! own database in that transaction (`services::audit_outbox`); [`settle`] then writes
//! the final entry here and forgets the staged one. A change that a service makes and no
//! mutation names (an expiry, a cancellation a suspension causes) stages an entry of its
//! own the same way ([`Entry::stage`], [`settle_staged`]). Any other entry (a refused
//! mutation, a change with no transaction of its own) is made after the fact by
//! [`record`] and, when admin_db refuses it, waits in auth_db's outbox: only when both
//! stores refuse it is it lost, with an ERROR (and a process that dies before either
//! write loses it too: the window that staging closes). Housekeeping moves what waits in
//! any outbox ([`drain`]).

use sea_orm::{
    sea_query::OnConflict, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::{
    config::Database,
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

impl Entry {
    /// The row, with its id and time made now.
    fn made_now(self) -> audit_entry::Model {
        audit_entry::Model {
            id: Uuid::now_v7(),
            actor_id: self.actor_id,
            action: self.action,
            target_type: self.target_type,
            target_id: self.target_id,
            outcome: self.outcome,
            ip: self.ip,
            at: crate::services::now(),
            details: self.details,
        }
    }

    /// Stages this entry (made now, with an id of its own) in the outbox of `db` through
    /// `txn`, the transaction of the change it records: for a change that a service makes
    /// and no mutation names (an expiry found by a booking, a cancellation a suspension
    /// causes). After the commit, [`settle_staged`] writes it to admin_db; if the
    /// process dies first, housekeeping does.
    pub(crate) async fn stage(self, txn: &DatabaseTransaction, db: Database) -> Result<Staged> {
        let row = self.made_now();
        audit_outbox::stash(txn, &row).await?;
        Ok(Staged { row, db })
    }
}

/// An entry staged by [`Entry::stage`], to settle once its transaction committed.
pub(crate) struct Staged {
    row: audit_entry::Model,
    db: Database,
}

/// How many waiting entries one drain moves per round.
const DRAIN_BATCH: u64 = 200;

/// Records `entry`, made now, after the fact: to admin_db, or into auth_db's outbox when
/// admin_db cannot take it. For what staged nothing in a transaction of its own.
pub(crate) async fn record(stores: &Stores, entry: Entry) {
    settle(stores, entry.made_now(), &[]).await;
}

/// Settles entries staged by [`Entry::stage`] whose transaction committed.
pub(crate) async fn settle_staged(stores: &Stores, staged: Vec<Staged>) {
    for s in staged {
        settle(stores, s.row, &[s.db]).await;
    }
}

/// Writes the final entry of a mutation to admin_db, where it replaces an entry of the
/// same id that housekeeping may have moved there first (the staged one, `success`): the
/// final entry says what the caller was answered, so it wins. Then forgets the rows
/// staged under its id in the outboxes of `staged`; one that cannot be deleted now is
/// moved again by housekeeping, which leaves the final entry as it is.
///
/// When admin_db refuses, the final entry is written over the staged row and waits
/// there; when no staged row is left (nothing staged, or its transaction rolled back),
/// it waits in auth_db's outbox instead.
pub(crate) async fn settle(stores: &Stores, entry: audit_entry::Model, staged: &[Database]) {
    let written = audit_entry::Entity::insert(entry.clone().into_active_model())
        .on_conflict(audit_outbox::overwrite::<audit_entry::Entity>())
        .exec_without_returning(&stores.admin)
        .await;
    let err = match written {
        Ok(_) => {
            for db in staged {
                if let Err(e) = audit_outbox::remove(stores.db(*db), vec![entry.id]).await {
                    tracing::warn!(
                        action = entry.action,
                        database = db.file_stem(),
                        error = %e,
                        "could not forget a staged audit entry; housekeeping will"
                    );
                }
            }
            return;
        }
        Err(err) => err,
    };
    for db in staged {
        match audit_outbox::rewrite(stores.db(*db), &entry).await {
            Ok(true) => {
                tracing::warn!(
                    action = entry.action,
                    database = db.file_stem(),
                    error = %err,
                    "admin_db refused an audit entry; it waits in the outbox of its change's database"
                );
                return;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(
                action = entry.action,
                database = db.file_stem(),
                error = %e,
                "could not write the final audit entry over the staged one"
            ),
        }
    }
    match audit_outbox::stash(&stores.auth, &entry).await {
        Ok(()) => tracing::warn!(
            action = entry.action,
            error = %err,
            "admin_db refused an audit entry; it waits in auth_db's outbox"
        ),
        Err(outbox_err) => tracing::error!(
            action = entry.action,
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
/// NOTHING` (so two replicas moving the same batch leave one row, and an entry its
/// request already settled keeps its final outcome); an outbox row is deleted only after
/// its insert succeeded.
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
