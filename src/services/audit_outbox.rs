//! The audit entry of a mutation, written in the transaction of the change it records.
//!
//! The audit trail lives in admin_db, but most changes live in another database, so an
//! entry written to admin_db after the change commits can be lost: a process that dies
//! between the commit and that write leaves a change without its entry. So each change
//! also writes its entry into the `audit_outbox` table of its own database (auth_db,
//! user_db, post_db or appointment_db), inside its own transaction: the entry commits
//! with the change or not at all.
//!
//! How one mutation's entry travels:
//!
//! 1. Before the resolver runs, the schema's audit extension opens a [`Pending`] entry
//!    (its id, made now, the action, the caller, the client address, the time) and runs
//!    the resolver inside it ([`Pending::scope`], a task-local: no service signature has
//!    to carry it).
//! 2. Resolvers name the target and details ([`note_target`], …); the service that
//!    makes the change calls [`stage`] inside its transaction, right before the commit:
//!    the entry goes into that database's outbox as `success`, and the pending entry
//!    remembers which database holds it.
//! 3. When the resolver has answered, the extension writes the final entry (same id,
//!    the real outcome) to admin_db and deletes the staged row
//!    (`services::admin::audit::settle`). If admin_db refuses, the staged row is
//!    rewritten with the final entry and waits; housekeeping moves it later
//!    (`services::admin::audit::drain`). If the process dies before step 3, the staged
//!    row (`success`: its change committed) is what housekeeping moves.
//!
//! A mutation that stages nothing (refused before any change, media stored in GridFS or
//! local files, a change with no SQL transaction of its own) gets its entry the older
//! way, written after the fact (`services::admin::audit::record`).
//!
//! The same id everywhere keeps the trail at one row per mutation: admin_db takes an
//! entry with `ON CONFLICT (id)`, so an entry moved twice (the request and a replica's
//! housekeeping, or two replicas) is still one row.

use std::{
    future::Future,
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::{Alias, OnConflict},
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, IdenStatic, IntoActiveModel, Iterable, QueryFilter, QueryOrder, QuerySelect,
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

/// The outcome of a staged entry: the change it records commits with it.
pub(crate) const SUCCESS: &str = "success";

tokio::task_local! {
    static PENDING: Pending;
}

/// The audit entry of the mutation being resolved, shared by the extension that opened
/// it and the resolver and services that run inside it.
#[derive(Clone)]
pub(crate) struct Pending(Arc<Mutex<Draft>>);

/// What the pending entry says so far.
#[derive(Clone, Debug)]
pub(crate) struct Draft {
    pub(crate) id: Uuid,
    pub(crate) action: String,
    pub(crate) actor_id: Option<Uuid>,
    pub(crate) ip: Option<String>,
    pub(crate) at: DateTime<Utc>,
    pub(crate) target_type: Option<&'static str>,
    pub(crate) target_id: Option<String>,
    pub(crate) details: Option<String>,
    /// The databases whose outbox may hold this entry: staged there by a transaction
    /// that committed, or that rolled back and took the row with it.
    pub(crate) staged: Vec<Database>,
}

impl Draft {
    /// The entry as admin_db keeps it, with this outcome; `fallback_type` when nothing
    /// named a target type.
    pub(crate) fn entry(&self, outcome: &str, fallback_type: &str) -> audit_entry::Model {
        audit_entry::Model {
            id: self.id,
            actor_id: self.actor_id,
            action: self.action.clone(),
            target_type: self.target_type.unwrap_or(fallback_type).to_string(),
            target_id: self.target_id.clone(),
            outcome: outcome.to_string(),
            ip: self.ip.clone(),
            at: self.at,
            details: self.details.clone(),
        }
    }
}

impl Pending {
    /// A new entry for `action`, by `actor_id` (the authenticated caller, if any), from
    /// `ip`, with its id and time made now.
    pub(crate) fn new(action: &str, actor_id: Option<Uuid>, ip: Option<String>) -> Pending {
        Pending(Arc::new(Mutex::new(Draft {
            id: Uuid::now_v7(),
            action: action.to_string(),
            actor_id,
            ip,
            at: crate::services::now(),
            target_type: None,
            target_id: None,
            details: None,
            staged: Vec::new(),
        })))
    }

    /// Runs `fut` with this as the entry its changes stage.
    pub(crate) async fn scope<F: Future>(&self, fut: F) -> F::Output {
        PENDING.scope(self.clone(), fut).await
    }

    /// What the entry says now.
    pub(crate) fn draft(&self) -> Draft {
        self.with(|d| d.clone())
    }

    /// Runs `f` on the entry. A panic elsewhere while it was held does not lose the
    /// entry: what it says is still recorded.
    fn with<T>(&self, f: impl FnOnce(&mut Draft) -> T) -> T {
        let mut draft = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut draft)
    }
}

/// Changes the pending entry, if a mutation is being resolved in this task.
fn edit<T>(f: impl FnOnce(&mut Draft) -> T) -> Option<T> {
    PENDING.try_with(|p| p.with(f)).ok()
}

/// Names what the mutation acts on.
pub(crate) fn note_target(kind: &'static str, id: String) {
    edit(|d| {
        d.target_type = Some(kind);
        d.target_id = Some(id);
    });
}

/// Names the actor when the caller was anonymous (a login, a registration); the
/// authenticated caller stays the actor otherwise.
pub(crate) fn note_actor(actor: Uuid) {
    edit(|d| {
        d.actor_id.get_or_insert(actor);
    });
}

/// A short note for the trail (never a secret).
pub(crate) fn note_details(details: String) {
    edit(|d| d.details = Some(details));
}

/// `fut` with the pending entry of the current task, for a service that runs part of a
/// mutation's change in a task of its own (so that a client going away cannot stop it
/// half-way): what it stages is still this mutation's entry. Without a pending entry,
/// `fut` as it is.
pub(crate) fn carried<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    let pending = PENDING.try_with(Pending::clone).ok();
    async move {
        match pending {
            Some(p) => PENDING.scope(p, fut).await,
            None => fut.await,
        }
    }
}

/// What a change names when it stages its entry.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    kind: &'static str,
    id: String,
    actor: Option<Uuid>,
}

impl Target {
    /// The object changed: its GraphQL type name and id.
    pub(crate) fn new(kind: &'static str, id: impl ToString) -> Target {
        Target {
            kind,
            id: id.to_string(),
            actor: None,
        }
    }

    /// The account that acts when the caller was anonymous (a login, a registration,
    /// a refresh).
    pub(crate) fn by(mut self, actor: Uuid) -> Target {
        self.actor = Some(actor);
        self
    }
}

/// Writes the pending entry, as [`SUCCESS`], into the outbox of `db` through `txn`, the
/// transaction of the change it records: call it last before the commit. Staged twice in
/// one database (two transactions of one mutation), the row is written over.
///
/// Outside a mutation (housekeeping, the start, a helper task) there is no pending entry
/// and this writes nothing: those changes are recorded after the fact, if at all.
pub(crate) async fn stage(txn: &DatabaseTransaction, db: Database, target: Target) -> Result<()> {
    let Some(draft) = edit(|d| {
        d.target_type = Some(target.kind);
        d.target_id = Some(target.id.clone());
        if let Some(actor) = target.actor {
            d.actor_id.get_or_insert(actor);
        }
        if !d.staged.contains(&db) {
            d.staged.push(db);
        }
        d.clone()
    }) else {
        return Ok(());
    };
    stash(txn, &draft.entry(SUCCESS, target.kind)).await
}

/// Takes the pending entry back out of the outbox of `db` through `txn`, the transaction
/// that undoes the change it was staged with (a registration whose second write failed):
/// what the mutation answers is then its only entry.
pub(crate) async fn unstage(txn: &DatabaseTransaction, db: Database) -> Result<()> {
    let Some(Some(id)) = edit(|d| d.staged.contains(&db).then_some(d.id)) else {
        return Ok(());
    };
    remove(txn, vec![id]).await
}

/// `ON CONFLICT (id) DO UPDATE` every other column of `E` (an outbox row, an audit
/// row: both keep an entry under its id).
pub(crate) fn overwrite<E: EntityTrait>() -> OnConflict {
    let others = E::Column::iter().filter(|c| c.as_str() != "id");
    OnConflict::column(Alias::new("id"))
        .update_columns(others)
        .to_owned()
}

/// Keeps `entry` in the outbox of `db` (a connection to it) until it can be moved to
/// admin_db; an entry of that id already waiting there is written over.
pub(crate) async fn stash(db: &impl ConnectionTrait, entry: &audit_entry::Model) -> Result<()> {
    outbox::Entity::insert(outbox::Model::from(entry).into_active_model())
        .on_conflict(overwrite::<outbox::Entity>())
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Writes `entry` over the row of its id waiting in the outbox of `db`; false when no
/// such row waits there (its transaction rolled back, or it was moved meanwhile).
pub(crate) async fn rewrite(db: &DatabaseConnection, entry: &audit_entry::Model) -> Result<bool> {
    let done = outbox::Entity::update_many()
        .set(outbox::Model::from(entry).into_active_model().reset_all())
        .filter(outbox::Column::Id.eq(entry.id))
        .exec(db)
        .await?;
    Ok(done.rows_affected > 0)
}

/// The oldest `limit` entries waiting in the outbox of `db`.
pub(crate) async fn batch(db: &DatabaseConnection, limit: u64) -> Result<Vec<audit_entry::Model>> {
    let rows = outbox::Entity::find()
        .order_by_asc(outbox::Column::At)
        .order_by_asc(outbox::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(audit_entry::Model::from).collect())
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
