//! The appointments domain's types: `Appointment`, `BookingEvent`, `TimeSlot`,
//! `AvailabilityRule`, `TimeOff` and their enums, and the loaders that read
//! appointment_db for fields of other domains' types (`CoachProfile.availability`,
//! `CoachProfile.timeOff`) and for booking events.

mod appointment;

pub(crate) use appointment::{Appointment, BookingEvent};

use std::{collections::HashMap, time::Duration};

use async_graphql::{dataloader::Loader, Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    db::appointments::{appointment as appointment_row, availability_rule, time_off},
    schema::ids,
    services::{
        appointments::{self as service, availability, events::Kind, listing, slots},
        SharedServices,
    },
};

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AppointmentStatus {
    Pending,
    Confirmed,
    Cancelled,
    Completed,
}

impl AppointmentStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AppointmentStatus::Pending => service::PENDING,
            AppointmentStatus::Confirmed => service::CONFIRMED,
            AppointmentStatus::Cancelled => service::CANCELLED,
            AppointmentStatus::Completed => service::COMPLETED,
        }
    }

    fn parse(s: &str) -> AppointmentStatus {
        match s {
            service::PENDING => AppointmentStatus::Pending,
            service::CONFIRMED => AppointmentStatus::Confirmed,
            service::COMPLETED => AppointmentStatus::Completed,
            _ => AppointmentStatus::Cancelled,
        }
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BookingEventType {
    Booked,
    Confirmed,
    Cancelled,
    Completed,
}

impl From<Kind> for BookingEventType {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Booked => BookingEventType::Booked,
            Kind::Confirmed => BookingEventType::Confirmed,
            Kind::Cancelled => BookingEventType::Cancelled,
            Kind::Completed => BookingEventType::Completed,
        }
    }
}

/// A bookable time, in UTC.
#[derive(SimpleObject, Clone)]
pub(crate) struct TimeSlot {
    pub(crate) starts_at: DateTime<Utc>,
    pub(crate) ends_at: DateTime<Utc>,
}

impl From<slots::Span> for TimeSlot {
    fn from(s: slots::Span) -> Self {
        TimeSlot {
            starts_at: s.start,
            ends_at: s.end,
        }
    }
}

/// A weekly window in which a coach offers slots, in the coach's timezone.
pub(crate) struct AvailabilityRule(pub(crate) availability_rule::Model);

#[Object]
impl AvailabilityRule {
    async fn id(&self) -> ID {
        ids::to_id(self.0.id)
    }

    /// 1 = Monday … 7 = Sunday.
    async fn weekday(&self) -> i32 {
        i32::from(self.0.weekday)
    }

    /// "HH:MM", wall-clock time in the coach's timezone.
    async fn start_time(&self) -> String {
        slots::format_time(self.0.start_minute)
    }

    /// "HH:MM" (up to "24:00"), after `startTime` on the same day.
    async fn end_time(&self) -> String {
        slots::format_time(self.0.end_minute)
    }
}

/// A period in which a coach offers no slot.
pub(crate) struct TimeOff {
    pub(crate) row: time_off::Model,
    /// The reason is the coach's (and admins') to read.
    pub(crate) show_reason: bool,
}

#[Object]
impl TimeOff {
    async fn id(&self) -> ID {
        ids::to_id(self.row.id)
    }

    async fn starts_at(&self) -> DateTime<Utc> {
        self.row.starts_at
    }

    async fn ends_at(&self) -> DateTime<Utc> {
        self.row.ends_at
    }

    /// Only to the coach themself and admins; null for others.
    async fn reason(&self) -> Option<&str> {
        if self.show_reason {
            self.row.reason.as_deref()
        } else {
            None
        }
    }
}

/// Coaches' weekly rules by coach id.
pub(crate) struct AvailabilityLoader(SharedServices);

impl Loader<Uuid> for AvailabilityLoader {
    type Value = Vec<availability_rule::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(availability::rules_by_coach(&self.0.stores.appointments, keys).await?)
    }
}

/// Coaches' upcoming time off by coach id.
pub(crate) struct TimeOffLoader(SharedServices);

impl Loader<Uuid> for TimeOffLoader {
    type Value = Vec<time_off::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(availability::upcoming_time_off(&self.0.stores.appointments, keys).await?)
    }
}

/// Appointments by id, as they read now. Callers decide who may see them.
pub(crate) struct AppointmentLoader(SharedServices);

impl Loader<Uuid> for AppointmentLoader {
    type Value = appointment_row::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(listing::by_ids(&self.0.stores.appointments, keys).await?)
    }
}

/// Adds this domain's loaders to the schema.
pub(crate) fn register_loaders<Q, M, S>(
    builder: async_graphql::SchemaBuilder<Q, M, S>,
    services: &SharedServices,
    delay: Duration,
) -> async_graphql::SchemaBuilder<Q, M, S> {
    builder
        .data(crate::schema::loader(
            AvailabilityLoader(services.clone()),
            delay,
        ))
        .data(crate::schema::loader(
            TimeOffLoader(services.clone()),
            delay,
        ))
        .data(crate::schema::loader(
            AppointmentLoader(services.clone()),
            delay,
        ))
}
