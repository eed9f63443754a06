//! Availability, slots, bookings and booking events (appointment_db).

use async_graphql::{Context, ErrorExtensions, InputObject, Object, Result, Subscription, ID};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};

use crate::{
    error::Error,
    schema::{
        appointments::{
            Appointment, AppointmentStatus, AvailabilityRule, BookingEvent, TimeOff, TimeSlot,
        },
        connection::{connection, Conn},
        context::ContextExt,
        errors::LAGGED,
        guards::{LoggedIn, RoleGuard},
        ids,
    },
    services::{
        appointments::{
            availability::{self, RuleInput},
            booking::{self, Transition},
            listing::{self, Filter},
        },
        auth::Role,
        page::Page,
    },
};

/// One weekly window: weekday 1 (Monday) to 7 (Sunday), "HH:MM" times in the coach's
/// timezone, the end after the start on the same day.
#[derive(InputObject)]
pub(crate) struct AvailabilityRuleInput {
    weekday: i32,
    start_time: String,
    end_time: String,
}

#[derive(Default)]
pub(crate) struct AppointmentsQuery;

#[Object]
impl AppointmentsQuery {
    /// The free slots of a coach whose start lies in `[from, to)` (a window of at most
    /// 31 days), soonest first: inside the coach's weekly rules, 2 hours to 90 days
    /// ahead, clear of time off and bookings. A suspended coach offers none.
    async fn available_slots(
        &self,
        ctx: &Context<'_>,
        coach_id: ID,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<TimeSlot>> {
        let coach_id = ids::parse("coachId", &coach_id)?;
        let slots = availability::available_slots(ctx.services()?, coach_id, from, to).await?;
        Ok(slots.into_iter().map(TimeSlot::from).collect())
    }

    /// The caller's appointments, as coach or client, by start (soonest first);
    /// `from`/`to` keep those whose start lies in `[from, to)`.
    #[graphql(
        guard = "LoggedIn",
        complexity = "first.unwrap_or(20).clamp(0, 100) as usize * child_complexity"
    )]
    async fn my_appointments(
        &self,
        ctx: &Context<'_>,
        status: Option<AppointmentStatus>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<Appointment>> {
        let page = Page::new(first, after.as_deref())?;
        let filter = Filter {
            status: status.map(AppointmentStatus::as_str),
            from,
            to,
        };
        let (rows, total) =
            listing::mine(ctx.services()?, ctx.viewer()?.user_id, filter, &page).await?;
        let cursors: Vec<_> = rows.iter().map(listing::cursor).collect();
        let look = ctx.look_ahead();
        let selections = [look.field("nodes"), look.field("edges").field("node")];
        let nodes = Appointment::load_page(ctx, rows, &selections).await?;
        Ok(connection(
            &page,
            cursors.into_iter().zip(nodes).collect(),
            total,
        ))
    }

    /// An appointment, for its coach, its client and admins; null for anybody else.
    #[graphql(guard = "LoggedIn")]
    async fn appointment(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Appointment>> {
        let id = ids::parse("id", &id)?;
        let found = listing::visible(ctx.services()?, ctx.viewer()?, id).await?;
        Ok(found.map(Appointment::new))
    }
}

#[derive(Default)]
pub(crate) struct AppointmentsMutation;

#[Object]
impl AppointmentsMutation {
    /// Replaces the caller's weekly rules (at most 50; no two of one weekday overlap).
    #[graphql(guard = "RoleGuard::any(&[Role::Coach])")]
    async fn set_availability(
        &self,
        ctx: &Context<'_>,
        rules: Vec<AvailabilityRuleInput>,
    ) -> Result<Vec<AvailabilityRule>> {
        let viewer = ctx.viewer()?;
        ctx.audit_target("CoachProfile", viewer.user_id);
        let input = rules
            .into_iter()
            .map(|r| RuleInput {
                weekday: r.weekday,
                start_time: r.start_time,
                end_time: r.end_time,
            })
            .collect();
        let rows = availability::set_rules(ctx.services()?, viewer.user_id, input).await?;
        Ok(rows.into_iter().map(AvailabilityRule).collect())
    }

    /// Adds time off to the caller's planning: no slot that touches it is offered.
    #[graphql(guard = "RoleGuard::any(&[Role::Coach])")]
    async fn add_time_off(
        &self,
        ctx: &Context<'_>,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        reason: Option<String>,
    ) -> Result<TimeOff> {
        let viewer = ctx.viewer()?;
        let row =
            availability::add_time_off(ctx.services()?, viewer.user_id, starts_at, ends_at, reason)
                .await?;
        ctx.audit_target("TimeOff", row.id);
        Ok(TimeOff {
            row,
            show_reason: true,
        })
    }

    /// Removes one of the caller's own time off.
    #[graphql(guard = "RoleGuard::any(&[Role::Coach])")]
    async fn remove_time_off(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let time_off_id = ids::parse("id", &id)?;
        ctx.audit_target("TimeOff", time_off_id);
        availability::remove_time_off(ctx.services()?, ctx.viewer()?.user_id, time_off_id).await?;
        Ok(id)
    }

    /// Books a slot that `availableSlots` offers now. PENDING when the coach requires
    /// approval, else CONFIRMED; a slot taken meanwhile (or overlapping one of the
    /// caller's own appointments) is CONFLICT.
    #[graphql(guard = "LoggedIn")]
    async fn book_appointment(
        &self,
        ctx: &Context<'_>,
        coach_id: ID,
        starts_at: DateTime<Utc>,
        notes: Option<String>,
    ) -> Result<Appointment> {
        let coach_id = ids::parse("coachId", &coach_id)?;
        let viewer = ctx.viewer()?;
        let row =
            booking::book(ctx.services()?, viewer.user_id, coach_id, starts_at, notes).await?;
        ctx.audit_target("Appointment", row.id);
        Ok(Appointment::new(row))
    }

    /// Confirms a PENDING appointment (its coach).
    #[graphql(guard = "LoggedIn")]
    async fn confirm_appointment(&self, ctx: &Context<'_>, id: ID) -> Result<Appointment> {
        change(ctx, &id, Transition::Confirm, None).await
    }

    /// Cancels an appointment before it starts (its coach or client).
    #[graphql(guard = "LoggedIn")]
    async fn cancel_appointment(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: Option<String>,
    ) -> Result<Appointment> {
        change(ctx, &id, Transition::Cancel, reason).await
    }

    /// Marks a CONFIRMED appointment completed once it has ended (its coach).
    #[graphql(guard = "LoggedIn")]
    async fn complete_appointment(&self, ctx: &Context<'_>, id: ID) -> Result<Appointment> {
        change(ctx, &id, Transition::Complete, None).await
    }
}

/// The three status mutations: parse, one service call, wrap.
async fn change(
    ctx: &Context<'_>,
    id: &ID,
    transition: Transition,
    reason: Option<String>,
) -> Result<Appointment> {
    let id = ids::parse("id", id)?;
    ctx.audit_target("Appointment", id);
    let row = booking::transition(ctx.services()?, ctx.viewer()?, id, transition, reason).await?;
    Ok(Appointment::new(row))
}

#[derive(Default)]
pub(crate) struct AppointmentsSubscription;

#[Subscription]
impl AppointmentsSubscription {
    /// Bookings, confirmations, cancellations and completions of the caller's
    /// appointments (as coach or client), once committed. A subscriber that falls too far
    /// behind gets a RATE_LIMITED error and is dropped: subscribe again (and read
    /// `myAppointments` for what was missed).
    #[graphql(guard = "LoggedIn")]
    async fn booking_events(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = Result<BookingEvent>>> {
        let user = ctx.viewer()?.user_id;
        let stream = ctx.services()?.events.subscribe(user);
        Ok(stream.map(|item| match item {
            Ok(event) => Ok(BookingEvent {
                kind: event.kind.into(),
                appointment_id: event.appointment_id,
                at: event.at,
            }),
            Err(_) => Err(
                async_graphql::Error::from(Error::RateLimited { retry_after: 1 })
                    .extend_with(|_, ext| ext.set(LAGGED, true)),
            ),
        }))
    }
}
