//! Bookings and the life of an appointment: book, confirm, cancel, complete; the
//! expiry of unconfirmed ones; the cancellations a coach's suspension causes.
//!
//! No two active appointments of one coach, or of one client, ever overlap, and the
//! database decides it, not a read before the write. PostgreSQL: two exclusion
//! constraints (see the migration); the loser's insert fails with 23P01, which
//! `crate::error` maps to CONFLICT. SQLite has none, but one writer at a time: the
//! booking's transaction starts with a write (the expiry sweep of the people involved),
//! which takes the write lock before the overlap check, so check and insert cannot
//! interleave with another booking's.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    sea_query::{Expr, LockBehavior, LockType},
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseBackend,
    DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, Set,
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
    db::appointments::appointment,
    error::{Error, Result},
    services::{admin::audit, auth::Viewer, now, text, SharedServices},
};

/// Longest notes a client may leave with a booking.
pub(crate) const NOTES_MAX: usize = 1_000;
/// The `cancelReason` of appointments cancelled because their coach was suspended.
pub(crate) const COACH_SUSPENDED: &str = "coach suspended";

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
    // The first statement writes (SQLite: takes the write lock before the check below).
    let mut published = expire(
        &txn,
        at,
        Condition::any()
            .add(appointment::Column::CoachId.eq(coach_id))
            .add(appointment::Column::ClientId.eq(client_id)),
    )
    .await?;
    if txn.get_database_backend() != DatabaseBackend::Postgres {
        let overlapping = appointment::Entity::find()
            .filter(
                Condition::any()
                    .add(appointment::Column::CoachId.eq(coach_id))
                    .add(appointment::Column::ClientId.eq(client_id)),
            )
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
    published.push(events::record(&txn, Kind::Booked, &row, at).await?);
    txn.commit().await?;
    services.events.committed(published);
    Ok(row)
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
    txn.commit().await?;
    let n = events.len();
    for event in &events {
        audit::record(
            &services.stores.admin,
            audit::Entry {
                action: "expireAppointment".into(),
                target_type: "Appointment".into(),
                target_id: Some(event.appointment_id.to_string()),
                outcome: "success".into(),
                details: Some(NOT_CONFIRMED.into()),
                ..Default::default()
            },
        )
        .await;
    }
    services.events.committed(events);
    Ok(n)
}

/// Cancels every future active appointment of `coach_id` (their coach was suspended),
/// with events for both parties.
pub(crate) async fn cancel_for_suspended_coach(
    services: &SharedServices,
    coach_id: Uuid,
) -> Result<usize> {
    let at = now();
    let txn = services.stores.appointments.begin().await?;
    let mut published = expire(
        &txn,
        at,
        Condition::all().add(appointment::Column::CoachId.eq(coach_id)),
    )
    .await?;
    let future = appointment::Entity::find()
        .filter(appointment::Column::CoachId.eq(coach_id))
        .filter(active(at))
        .filter(appointment::Column::StartsAt.gt(at))
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
        published.push(events::record(&txn, Kind::Cancelled, &updated, at).await?);
    }
    txn.commit().await?;
    services.events.committed(published);
    Ok(n)
}
