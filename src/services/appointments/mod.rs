//! The appointments domain (appointment_db): coaches' weekly availability and time off,
//! the slots they offer, bookings and their life (confirm, cancel, complete), and the
//! booking events subscribers hear of. Only this module names appointment_db's tables;
//! coaches' settings come from [`crate::services::users::coaching`].
//!
//! A PENDING appointment that its coach did not confirm by its start stops blocking its
//! time and reads CANCELLED ("not confirmed"): every read computes that from the clock
//! ([`effective`]), so every replica agrees at once, and a sweep (housekeeping, and each
//! booking for the people it involves) writes it down with its event.

pub(crate) mod availability;
pub(crate) mod booking;
pub(crate) mod events;
pub(crate) mod listing;
pub(crate) mod slots;
pub(crate) mod stats;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, Condition};

use crate::db::appointments::appointment;

pub(crate) const PENDING: &str = "PENDING";
pub(crate) const CONFIRMED: &str = "CONFIRMED";
pub(crate) const CANCELLED: &str = "CANCELLED";
pub(crate) const COMPLETED: &str = "COMPLETED";
/// The `cancelReason` of a PENDING appointment whose start passed unconfirmed.
pub(crate) const NOT_CONFIRMED: &str = "not confirmed";

/// The row as clients see it at `now`: a PENDING appointment whose start has passed
/// reads CANCELLED with the reason "not confirmed".
pub(crate) fn effective(mut row: appointment::Model, now: DateTime<Utc>) -> appointment::Model {
    if row.status == PENDING && row.starts_at <= now {
        row.status = CANCELLED.into();
        row.cancel_reason = Some(NOT_CONFIRMED.into());
    }
    row
}

/// Rows that block their time at `now`: CONFIRMED, or PENDING and not yet started.
pub(crate) fn active(now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(appointment::Column::Status.eq(CONFIRMED))
        .add(
            Condition::all()
                .add(appointment::Column::Status.eq(PENDING))
                .add(appointment::Column::StartsAt.gt(now)),
        )
}

/// Rows whose status reads `status` at `now` (see [`effective`]).
pub(crate) fn reads_as(status: &str, now: DateTime<Utc>) -> Condition {
    let expired = Condition::all()
        .add(appointment::Column::Status.eq(PENDING))
        .add(appointment::Column::StartsAt.lte(now));
    match status {
        PENDING => Condition::all()
            .add(appointment::Column::Status.eq(PENDING))
            .add(appointment::Column::StartsAt.gt(now)),
        CANCELLED => Condition::any()
            .add(appointment::Column::Status.eq(CANCELLED))
            .add(expired),
        other => Condition::all().add(appointment::Column::Status.eq(other)),
    }
}
