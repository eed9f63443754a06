//! Bookings and the life of an appointment: book, confirm, cancel, complete; the
//! expiry of unconfirmed ones; the cancellations a coach's suspension causes.
//!
//! No two active appointments of one person ever overlap, whatever role they hold in
//! each (a coach may also book another coach), and the database decides it, not a read
//! before the write. PostgreSQL: one exclusion constraint over each person's active
//! appointments (`appointment_participants`, kept by a trigger in the appointment's own
//! statement; see the migration); the loser's insert fails with 23P01, which
//! `crate::error` maps to CONFLICT. Bookings of one person queue on an advisory lock
//! first ([`queue_behind`]), so two overlapping inserts are never in flight together
//! (they would deadlock on the constraint's check). SQLite has none, but one writer at a time: the
//! booking's transaction starts with a write (the expiry sweep of the people involved),
//! which takes the write lock before the overlap check (both people, both roles), so
//! check and insert cannot interleave with another booking's.
//!
//! Every state change leaves exactly one audit entry, staged in the change's own
//! transaction: the mutation's (`services::audit_outbox::stage`), or, for the changes no
//! mutation names (expiries found by a booking or the sweep, cancellations caused by a
//! suspension or an erasure), one made here (`expireAppointment`, `cancelAppointment`)
//! and written to admin_db after the commit.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    sea_query::{Expr, LockBehavior, LockType},
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseBackend,
    DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use uuid::Uuid;

use super::{
    active,
    availability::{self, REASON_MAX},
    effective,
    events::{self, Event, Kind},
    slots, CANCELLED, COMPLETED, CONFIRMED, NOT_CONFIRMED, PENDING,
};
use crate::{
    config::Database,
    db::appointments::{appointment, availability_rule, booking_event, time_off},
    error::{Error, Result},
    services::{
        admin::audit,
        audit_outbox::{self, Target},
        auth::Viewer,
        now, text, SharedServices,
    },
};

/// Longest notes a client may leave with a booking.
pub(crate) const NOTES_MAX: usize = 1_000;
/// The `cancelReason` of appointments cancelled because their coach was suspended.
pub(crate) const COACH_SUSPENDED: &str = "coach suspended";
/// The `cancelReason` of appointments cancelled because a party's account was erased.
pub(crate) const ACCOUNT_ERASED: &str = "account erased";

/// Books `starts_at` with `coach_id` for `client_id`: only a start that `availableSlots`
/// would offer now (else BAD_USER_INPUT), PENDING when the coach requires approval, else
/// CONFIRMED. A slot taken meanwhile, or one overlapping the client's own appointment,
/// is CONFLICT.
pub(crate) async fn book(
    services: &SharedServices,
    client_id: Uuid,
    coach_id: Uuid,
    starts_at: DateTime<Utc>,
    notes: Option<String>,
) -> Result<appointment::Model> {
    let notes = text::optional("notes", notes.as_deref(), NOTES_MAX)?;
    if coach_id == client_id {
        return Err(Error::bad_input("coachId", "you cannot book yourself"));
    }
    let at = now();
    if starts_at < at + slots::MIN_NOTICE {
        return Err(Error::bad_input(
            "startsAt",
            "a booking starts at least 2 hours ahead",
        ));
    }
    if starts_at > at + slots::MAX_AHEAD {
        return Err(Error::bad_input(
            "startsAt",
            "a booking starts at most 90 days ahead",
        ));
    }
    let probe_end = starts_at + Duration::seconds(1);
    let planning = availability::planning(services, coach_id, starts_at, probe_end, at, false)
        .await?
        .ok_or_else(|| Error::bad_input("coachId", "this coach takes no bookings"))?;
    let slot = planning
        .slots(starts_at, probe_end, at)
        .into_iter()
        .find(|s| s.start == starts_at)
        .ok_or_else(|| {
            Error::bad_input(
                "startsAt",
                "startsAt is not a slot this coach offers (off the grid, outside the rules or in time off)",
            )
        })?;
    let status = if planning.settings.requires_approval {
        PENDING
    } else {
        CONFIRMED
    };

    let txn = services.stores.appointments.begin().await?;
    queue_behind(&txn, [coach_id, client_id]).await?;
    // The first statement writes (SQLite: takes the write lock before the check below).
    let expired = expire(&txn, at, involving(&[coach_id, client_id])).await?;
    if txn.get_database_backend() != DatabaseBackend::Postgres {
        let overlapping = appointment::Entity::find()
            .filter(involving(&[coach_id, client_id]))
            .filter(active(at))
            .filter(appointment::Column::StartsAt.lt(slot.end))
            .filter(appointment::Column::EndsAt.gt(slot.start))
            .count(&txn)
            .await?;
        if overlapping > 0 {
            return Err(Error::Conflict(
                "this time overlaps another appointment".into(),
            ));
        }
    }
    let row = appointment::ActiveModel {
        id: Set(Uuid::now_v7()),
        coach_id: Set(Some(coach_id)),
        client_id: Set(Some(client_id)),
        starts_at: Set(slot.start),
        ends_at: Set(slot.end),
        status: Set(status.into()),
        notes: Set(notes),
        cancel_reason: Set(None),
        cancelled_by: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
    }
    .insert(&txn)
    .await?;
    let booked = events::record(&txn, Kind::Booked, &row, at).await?;
    let audited = stage_changes(&txn, &expired, EXPIRED).await?;
    audit_outbox::stage(
        &txn,
        Database::Appointments,
        Target::new("Appointment", row.id),
    )
    .await?;
    txn.commit().await?;
    audit::settle_staged(&services.stores, audited).await;
    let mut published = expired;
    published.push(booked);
    services.events.committed(published);
    unless_coach_suspended(services, row).await
}

/// PostgreSQL: makes what changes one person's calendar wait for anything else that
/// does: bookings, and the passes that cancel all of a person's appointments.
///
/// Two overlapping booking inserts in flight at once each find the other's row while
/// checking the exclusion constraint and wait for it: a deadlock, which PostgreSQL breaks
/// after a second by failing one of them with 40P01 (an internal error, where CONFLICT
/// is the answer). Several cancellation passes for one coach do run at once (the
/// suspension's, and each booking's that finds its coach suspended after committing:
/// [`unless_coach_suspended`]); each locks the same rows, and two of them could lock them
/// in different orders (one connection's prepared plan can use an index where another's
/// scans the table) and deadlock. Those passes also lock rows in id order.
///
/// With a transaction-scoped advisory lock per person, taken in one order (sorted), the
/// second booking starts its insert after the first committed and gets a clean 23P01,
/// and passes run one after the other. Work on people who share no one never waits (a
/// key collision between two people only makes them queue:
/// `crate::db::advisory_xact_lock`). SQLite has one writer at a time already.
async fn queue_behind<const N: usize>(
    txn: &DatabaseTransaction,
    mut people: [Uuid; N],
) -> Result<()> {
    if txn.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    people.sort();
    for person in people {
        crate::db::advisory_xact_lock(txn, person).await?;
    }
    Ok(())
}

/// Rows whose coach or client is one of `people`: a person's calendar covers both roles.
fn involving(people: &[Uuid]) -> Condition {
    Condition::any()
        .add(appointment::Column::CoachId.is_in(people.iter().copied()))
        .add(appointment::Column::ClientId.is_in(people.iter().copied()))
}

/// Closes the race between a booking and its coach's suspension, which live in
/// different databases. The suspension commits the account's flag, then cancels the
/// coach's future appointments in one pass ([`cancel_for_suspended_coach`]); a booking
/// checks the coach before its transaction, and reads the flag again here, after its
/// commit. Either the cancellation pass's read (which starts after the flag committed)
/// sees the booking's row and cancels it, or the booking committed after that read
/// started, hence after the flag committed, and this read sees the flag and cancels it
/// itself. Both may happen: whoever comes second finds the row no longer active and
/// leaves it. So no suspended coach keeps an active future appointment.
async fn unless_coach_suspended(
    services: &SharedServices,
    row: appointment::Model,
) -> Result<appointment::Model> {
    let Some(coach_id) = row.coach_id else {
        return Ok(row);
    };
    let suspended = crate::services::auth::accounts::find(&services.stores.auth, coach_id)
        .await?
        .is_some_and(|account| account.suspended);
    if !suspended {
        return Ok(row);
    }
    cancel_for_suspended_coach(services, coach_id).await?;
    Ok(appointment::Entity::find_by_id(row.id)
        .one(&services.stores.appointments)
        .await?
        .unwrap_or(row))
}

/// The audit action and details of changes no mutation of their own names.
const EXPIRED: (&str, &str) = ("expireAppointment", NOT_CONFIRMED);
const CANCELLED_FOR_SUSPENSION: (&str, &str) = ("cancelAppointment", COACH_SUSPENDED);
const CANCELLED_FOR_ERASURE: (&str, &str) = ("cancelAppointment", ACCOUNT_ERASED);

/// Stages one audit entry per change in `changes` (no person acted: no actor) in `txn`,
/// the transaction that makes them; settle them after its commit.
async fn stage_changes(
    txn: &DatabaseTransaction,
    changes: &[Event],
    (action, details): (&str, &str),
) -> Result<Vec<audit::Staged>> {
    let mut staged = Vec::with_capacity(changes.len());
    for event in changes {
        let entry = audit::Entry {
            action: action.into(),
            target_type: "Appointment".into(),
            target_id: Some(event.appointment_id.to_string()),
            outcome: audit_outbox::SUCCESS.into(),
            details: Some(serde_json::json!({ "reason": details }).to_string()),
            ..Default::default()
        };
        staged.push(entry.stage(txn, Database::Appointments).await?);
    }
    Ok(staged)
}

/// What a party asks of an appointment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    /// Its coach, while PENDING (and not yet started).
    Confirm,
    /// Its coach or client, before it starts, while PENDING or CONFIRMED.
    Cancel,
    /// Its coach, after it ended, when CONFIRMED.
    Complete,
}

/// Applies `transition` to appointment `id` for `viewer`. The row is loaded (and locked)
/// only if the viewer is its coach or client; anyone else gets NOT_FOUND, a client asking
/// what only the coach may do FORBIDDEN, a transition the status or the clock does not
/// allow BAD_USER_INPUT; the row is then unchanged.
pub(crate) async fn transition(
    services: &SharedServices,
    viewer: &Viewer,
    id: Uuid,
    transition: Transition,
    reason: Option<String>,
) -> Result<appointment::Model> {
    let reason = match transition {
        Transition::Cancel => text::optional("reason", reason.as_deref(), REASON_MAX)?,
        _ => None,
    };
    let at = now();
    let txn = services.stores.appointments.begin().await?;
    let row = party_row(&txn, viewer.user_id, id).await?;
    let shown = effective(row.clone(), at);
    let is_coach = row.coach_id == Some(viewer.user_id);
    let (status, kind) = match transition {
        Transition::Confirm => {
            if !is_coach {
                return Err(Error::Forbidden(
                    "only its coach confirms an appointment".into(),
                ));
            }
            if shown.status != PENDING {
                return Err(Error::bad_input(
                    "id",
                    format!("a {} appointment cannot be confirmed", shown.status),
                ));
            }
            (CONFIRMED, Kind::Confirmed)
        }
        Transition::Cancel => {
            if shown.status != PENDING && shown.status != CONFIRMED {
                return Err(Error::bad_input(
                    "id",
                    format!("a {} appointment cannot be cancelled", shown.status),
                ));
            }
            if row.starts_at <= at {
                return Err(Error::bad_input(
                    "id",
                    "an appointment cannot be cancelled once it has started",
                ));
            }
            (CANCELLED, Kind::Cancelled)
        }
        Transition::Complete => {
            if !is_coach {
                return Err(Error::Forbidden(
                    "only its coach completes an appointment".into(),
                ));
            }
            if shown.status != CONFIRMED {
                return Err(Error::bad_input(
                    "id",
                    format!("a {} appointment cannot be completed", shown.status),
                ));
            }
            if row.ends_at > at {
                return Err(Error::bad_input(
                    "id",
                    "an appointment is completed after it ends",
                ));
            }
            (COMPLETED, Kind::Completed)
        }
    };
    let mut change: appointment::ActiveModel = row.into();
    change.status = Set(status.into());
    change.updated_at = Set(at);
    if transition == Transition::Cancel {
        change.cancel_reason = Set(reason);
        change.cancelled_by = Set(Some(viewer.user_id));
    }
    let updated = change.update(&txn).await?;
    let event = events::record(&txn, kind, &updated, at).await?;
    audit_outbox::stage(&txn, Database::Appointments, Target::new("Appointment", id)).await?;
    txn.commit().await?;
    services.events.committed(vec![event]);
    Ok(updated)
}

/// The appointment `id` if `user` is its coach or client, locked for the transaction
/// (PostgreSQL; the embedded database has one writer); NOT_FOUND otherwise.
async fn party_row(txn: &DatabaseTransaction, user: Uuid, id: Uuid) -> Result<appointment::Model> {
    appointment::Entity::find_by_id(id)
        .filter(
            Condition::any()
                .add(appointment::Column::CoachId.eq(user))
                .add(appointment::Column::ClientId.eq(user)),
        )
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| Error::NotFound("appointment not found".into()))
}

/// Writes down the expiry of PENDING appointments whose start has passed (among those
/// `scope` selects), with their events. Rows another replica is expiring at the same
/// moment are skipped (PostgreSQL), so each expiry is recorded once.
async fn expire(
    txn: &DatabaseTransaction,
    at: DateTime<Utc>,
    scope: Condition,
) -> Result<Vec<Event>> {
    // A write first, whatever it finds (SQLite takes its write lock here).
    appointment::Entity::update_many()
        .col_expr(appointment::Column::UpdatedAt, Expr::value(at))
        .filter(appointment::Column::Id.eq(Uuid::nil()))
        .exec(txn)
        .await?;
    let expired = appointment::Entity::find()
        .filter(scope)
        .filter(appointment::Column::Status.eq(PENDING))
        .filter(appointment::Column::StartsAt.lte(at))
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .all(txn)
        .await?;
    let mut events = Vec::with_capacity(expired.len());
    for row in expired {
        let mut change: appointment::ActiveModel = row.into();
        change.status = Set(CANCELLED.into());
        change.cancel_reason = Set(Some(NOT_CONFIRMED.into()));
        change.updated_at = Set(at);
        let updated = change.update(txn).await?;
        events.push(events::record(txn, Kind::Cancelled, &updated, updated.starts_at).await?);
    }
    Ok(events)
}

/// The housekeeping sweep: writes down every expired PENDING appointment, with events
/// and an audit entry each (no person acted: no actor). Safe on every replica at once.
/// Returns how many it expired.
pub(crate) async fn sweep_expired(services: &SharedServices) -> Result<usize> {
    let txn = services.stores.appointments.begin().await?;
    let events = expire(&txn, now(), Condition::all()).await?;
    let audited = stage_changes(&txn, &events, EXPIRED).await?;
    txn.commit().await?;
    let n = events.len();
    audit::settle_staged(&services.stores, audited).await;
    services.events.committed(events);
    Ok(n)
}

/// Cancels every future active appointment of `coach_id` (their coach was suspended),
/// with events for both parties and an audit entry each. Called after the suspension
/// committed, and by a booking that finds its coach suspended after its own commit (see
/// [`unless_coach_suspended`]).
pub(crate) async fn cancel_for_suspended_coach(
    services: &SharedServices,
    coach_id: Uuid,
) -> Result<usize> {
    let at = now();
    let txn = services.stores.appointments.begin().await?;
    queue_behind(&txn, [coach_id]).await?;
    let expired = expire(
        &txn,
        at,
        Condition::all().add(appointment::Column::CoachId.eq(coach_id)),
    )
    .await?;
    let mut cancelled = Vec::new();
    let future = appointment::Entity::find()
        .filter(appointment::Column::CoachId.eq(coach_id))
        .filter(active(at))
        .filter(appointment::Column::StartsAt.gt(at))
        .order_by_asc(appointment::Column::Id)
        .lock_exclusive()
        .all(&txn)
        .await?;
    let n = future.len();
    for row in future {
        let mut change: appointment::ActiveModel = row.into();
        change.status = Set(CANCELLED.into());
        change.cancel_reason = Set(Some(COACH_SUSPENDED.into()));
        change.cancelled_by = Set(None);
        change.updated_at = Set(at);
        let updated = change.update(&txn).await?;
        cancelled.push(events::record(&txn, Kind::Cancelled, &updated, at).await?);
    }
    let mut audited = stage_changes(&txn, &expired, EXPIRED).await?;
    audited.extend(stage_changes(&txn, &cancelled, CANCELLED_FOR_SUSPENSION).await?);
    txn.commit().await?;
    audit::settle_staged(&services.stores, audited).await;
    let mut published = expired;
    published.extend(cancelled);
    services.events.committed(published);
    Ok(n)
}

/// The appointments domain's part of erasing `user_id`'s account, in one transaction (so
/// running it again after a failure finds either nothing done or everything): their
/// expired PENDING appointments are written down, their future active ones cancelled
/// ("account erased") with an event for the other party and an audit entry each, their
/// side of every appointment and event kept for the other party is set to null (also as
/// the one who cancelled), and their availability rules and time off are deleted.
pub(crate) async fn erase(services: &SharedServices, user_id: Uuid) -> Result<usize> {
    let at = now();
    let txn = services.stores.appointments.begin().await?;
    queue_behind(&txn, [user_id]).await?;
    let expired = expire(&txn, at, involving(&[user_id])).await?;
    let future = appointment::Entity::find()
        .filter(involving(&[user_id]))
        .filter(active(at))
        .filter(appointment::Column::StartsAt.gt(at))
        .order_by_asc(appointment::Column::Id)
        .lock_exclusive()
        .all(&txn)
        .await?;
    let mut cancelled = Vec::with_capacity(future.len());
    for row in future {
        let erased_coach = row.coach_id == Some(user_id);
        let erased_client = row.client_id == Some(user_id);
        let mut change: appointment::ActiveModel = row.into();
        change.status = Set(CANCELLED.into());
        change.cancel_reason = Set(Some(ACCOUNT_ERASED.into()));
        change.cancelled_by = Set(None);
        change.updated_at = Set(at);
        if erased_coach {
            change.coach_id = Set(None);
        }
        if erased_client {
            change.client_id = Set(None);
        }
        let updated = change.update(&txn).await?;
        // Recorded with the erased side already null: only the other party hears of it.
        cancelled.push(events::record(&txn, Kind::Cancelled, &updated, at).await?);
    }
    let none = Expr::value(Option::<Uuid>::None);
    for column in [
        appointment::Column::CoachId,
        appointment::Column::ClientId,
        appointment::Column::CancelledBy,
    ] {
        appointment::Entity::update_many()
            .col_expr(column, none.clone())
            .filter(column.eq(user_id))
            .exec(&txn)
            .await?;
    }
    for column in [
        booking_event::Column::CoachId,
        booking_event::Column::ClientId,
    ] {
        booking_event::Entity::update_many()
            .col_expr(column, none.clone())
            .filter(column.eq(user_id))
            .exec(&txn)
            .await?;
    }
    availability_rule::Entity::delete_many()
        .filter(availability_rule::Column::CoachId.eq(user_id))
        .exec(&txn)
        .await?;
    time_off::Entity::delete_many()
        .filter(time_off::Column::CoachId.eq(user_id))
        .exec(&txn)
        .await?;
    let mut audited = stage_changes(&txn, &expired, EXPIRED).await?;
    audited.extend(stage_changes(&txn, &cancelled, CANCELLED_FOR_ERASURE).await?);
    txn.commit().await?;
    audit::settle_staged(&services.stores, audited).await;
    let n = cancelled.len();
    let mut published = expired;
    published.extend(cancelled);
    services.events.committed(published);
    Ok(n)
}
