//! The fields of `Appointment` and `BookingEvent`. Apart from the domain's other types
//! because they name `User` (whose `CoachProfile` names this domain's types back).

use std::{collections::HashMap, sync::Arc};

use async_graphql::{dataloader::DataLoader, Context, Object, Result, ID};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{AppointmentLoader, AppointmentStatus, BookingEventType};
use crate::{
    db::appointments::appointment,
    error::Error,
    schema::{ids, users::User},
};

pub(crate) struct Appointment {
    pub(crate) row: appointment::Model,
    /// The users of a page, preloaded with what the query selects of them (see
    /// [`Appointment::load_page`]); others load on demand.
    known: Arc<HashMap<Uuid, User>>,
}

impl Appointment {
    pub(crate) fn new(row: appointment::Model) -> Appointment {
        Appointment {
            row,
            known: Arc::default(),
        }
    }

    /// Wraps the rows of a page, preloading the coaches, clients and cancellers it
    /// names with what `selections` (the node selections of the list) ask of them: one
    /// batch per part for the whole page, so a page of 100 costs what a page of 10 does.
    pub(crate) async fn load_page(
        ctx: &Context<'_>,
        rows: Vec<appointment::Model>,
        selections: &[async_graphql::Lookahead<'_>],
    ) -> Result<Vec<Appointment>> {
        let parts: Vec<_> = selections
            .iter()
            .flat_map(|s| ["coach", "client", "cancelledBy"].map(|f| s.field(f)))
            .collect();
        let mut ids: Vec<Uuid> = rows
            .iter()
            .flat_map(|r| [r.coach_id, r.client_id, r.cancelled_by])
            .flatten()
            .collect();
        ids.sort();
        ids.dedup();
        let known: HashMap<Uuid, User> = if parts.iter().any(|p| p.exists()) {
            User::load_page(ctx, &ids, &parts, None)
                .await?
                .into_iter()
                .map(|u| (u.id, u))
                .collect()
        } else {
            HashMap::new()
        };
        let known = Arc::new(known);
        Ok(rows
            .into_iter()
            .map(|row| Appointment {
                row,
                known: known.clone(),
            })
            .collect())
    }

    fn user(&self, id: Option<Uuid>) -> Option<User> {
        id.map(|id| {
            self.known
                .get(&id)
                .cloned()
                .unwrap_or_else(|| User::new(id))
        })
    }
}

#[Object]
impl Appointment {
    async fn id(&self) -> ID {
        ids::to_id(self.row.id)
    }

    /// Null once that account is erased.
    async fn coach(&self) -> Option<User> {
        self.user(self.row.coach_id)
    }

    /// Null once that account is erased.
    async fn client(&self) -> Option<User> {
        self.user(self.row.client_id)
    }

    async fn starts_at(&self) -> DateTime<Utc> {
        self.row.starts_at
    }

    async fn ends_at(&self) -> DateTime<Utc> {
        self.row.ends_at
    }

    /// As it stands now: a PENDING appointment not confirmed by its start reads CANCELLED.
    async fn status(&self) -> AppointmentStatus {
        AppointmentStatus::parse(&self.row.status)
    }

    async fn notes(&self) -> Option<&str> {
        self.row.notes.as_deref()
    }

    /// "not confirmed" when a PENDING appointment's start passed unconfirmed.
    async fn cancel_reason(&self) -> Option<&str> {
        self.row.cancel_reason.as_deref()
    }

    /// Who cancelled it; null when it was not cancelled by a person (expiry, a coach's
    /// suspension).
    async fn cancelled_by(&self) -> Option<User> {
        self.user(self.row.cancelled_by)
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.row.updated_at
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
        Ok(Appointment::new(row))
    }

    async fn at(&self) -> DateTime<Utc> {
        self.at
    }
}
