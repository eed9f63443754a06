//! The fields of `Appointment` and `BookingEvent`. Apart from the domain's other types
//! because they name `User` (whose `CoachProfile` names this domain's types back).

use async_graphql::{dataloader::DataLoader, Context, Object, Result, ID};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{AppointmentLoader, AppointmentStatus, BookingEventType};
use crate::{
    db::appointments::appointment,
    error::Error,
    schema::{ids, users::User},
};

pub(crate) struct Appointment(pub(crate) appointment::Model);

#[Object]
impl Appointment {
    async fn id(&self) -> ID {
        ids::to_id(self.0.id)
    }

    /// Null once that account is erased.
    async fn coach(&self) -> Option<User> {
        self.0.coach_id.map(User::new)
    }

    /// Null once that account is erased.
    async fn client(&self) -> Option<User> {
        self.0.client_id.map(User::new)
    }

    async fn starts_at(&self) -> DateTime<Utc> {
        self.0.starts_at
    }

    async fn ends_at(&self) -> DateTime<Utc> {
        self.0.ends_at
    }

    /// As it stands now: a PENDING appointment not confirmed by its start reads CANCELLED.
    async fn status(&self) -> AppointmentStatus {
        AppointmentStatus::parse(&self.0.status)
    }

    async fn notes(&self) -> Option<&str> {
        self.0.notes.as_deref()
    }

    /// "not confirmed" when a PENDING appointment's start passed unconfirmed.
    async fn cancel_reason(&self) -> Option<&str> {
        self.0.cancel_reason.as_deref()
    }

    /// Who cancelled it; null when it was not cancelled by a person (expiry, a coach's
    /// suspension).
    async fn cancelled_by(&self) -> Option<User> {
        self.0.cancelled_by.map(User::new)
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// Something happened to one of the subscriber's appointments.
pub(crate) struct BookingEvent {
    pub(crate) kind: BookingEventType,
    pub(crate) appointment_id: Uuid,
    pub(crate) at: DateTime<Utc>,
}

#[Object]
impl BookingEvent {
    #[graphql(name = "type")]
    async fn kind(&self) -> BookingEventType {
        self.kind
    }

    /// The appointment as it stands when the event is sent.
    async fn appointment(&self, ctx: &Context<'_>) -> Result<Appointment> {
        let row = ctx
            .data::<DataLoader<AppointmentLoader>>()?
            .load_one(self.appointment_id)
            .await?
            .ok_or_else(|| Error::NotFound("appointment not found".into()))?;
        Ok(Appointment(row))
    }

    async fn at(&self) -> DateTime<Utc> {
        self.at
    }
}
