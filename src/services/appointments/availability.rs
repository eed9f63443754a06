//! A coach's weekly rules and time off, and the slots they make.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};
use uuid::Uuid;

use super::{
    active,
    slots::{self, Plan, Rule, Span},
};
use crate::{
    config::Database,
    db::appointments::{appointment, availability_rule, time_off},
    error::{Error, Result},
    services::{
        audit_outbox::{self, Target},
        now, text,
        users::coaching::{self, CoachSettings},
        SharedServices,
    },
};

/// Rules one coach may have.
pub(crate) const MAX_RULES: usize = 50;
/// Longest time off in one piece.
const MAX_TIME_OFF: Duration = Duration::days(366);
/// Longest reason for time off or a cancellation.
pub(crate) const REASON_MAX: usize = 500;

/// A rule as `setAvailability` receives it.
#[derive(Clone, Debug)]
pub(crate) struct RuleInput {
    pub(crate) weekday: i32,
    pub(crate) start_time: String,
    pub(crate) end_time: String,
}

/// Replaces `coach_id`'s weekly rules in one transaction; answers them by weekday and
/// start.
pub(crate) async fn set_rules(
    services: &SharedServices,
    coach_id: Uuid,
    input: Vec<RuleInput>,
) -> Result<Vec<availability_rule::Model>> {
    if input.len() > MAX_RULES {
        return Err(Error::bad_input(
            "rules",
            format!("at most {MAX_RULES} rules"),
        ));
    }
    let mut rules = Vec::with_capacity(input.len());
    for r in &input {
        let weekday = u32::try_from(r.weekday).unwrap_or(0);
        rules.push(Rule {
            weekday,
            start: slots::parse_time("startTime", &r.start_time)?,
            end: slots::parse_time("endTime", &r.end_time)?,
        });
    }
    slots::check_rules(&rules, MAX_RULES)?;
    rules.sort_by_key(|r| (r.weekday, r.start));
    let at = now();
    let rows: Vec<availability_rule::Model> = rules
        .iter()
        .map(|r| availability_rule::Model {
            id: Uuid::now_v7(),
            coach_id,
            weekday: r.weekday as i16,
            start_minute: r.start,
            end_minute: r.end,
            created_at: at,
        })
        .collect();
    let txn = services.stores.appointments.begin().await?;
    availability_rule::Entity::delete_many()
        .filter(availability_rule::Column::CoachId.eq(coach_id))
        .exec(&txn)
        .await?;
    if !rows.is_empty() {
        availability_rule::Entity::insert_many(rows.iter().map(|r| {
            availability_rule::ActiveModel {
                id: Set(r.id),
                coach_id: Set(r.coach_id),
                weekday: Set(r.weekday),
                start_minute: Set(r.start_minute),
                end_minute: Set(r.end_minute),
                created_at: Set(r.created_at),
            }
        }))
        .exec_without_returning(&txn)
        .await?;
    }
    audit_outbox::stage(
        &txn,
        Database::Appointments,
        Target::new("CoachProfile", coach_id),
    )
    .await?;
    txn.commit().await?;
    Ok(rows)
}

/// The weekly rules of each coach, by weekday and start; every id gets an entry.
pub(crate) async fn rules_by_coach(
    db: &impl ConnectionTrait,
    coach_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<availability_rule::Model>>> {
    let rows = availability_rule::Entity::find()
        .filter(availability_rule::Column::CoachId.is_in(coach_ids.iter().copied()))
        .order_by_asc(availability_rule::Column::Weekday)
        .order_by_asc(availability_rule::Column::StartMinute)
        .all(db)
        .await?;
    let mut out: HashMap<Uuid, Vec<availability_rule::Model>> =
        coach_ids.iter().map(|id| (*id, Vec::new())).collect();
    for row in rows {
        out.entry(row.coach_id).or_default().push(row);
    }
    Ok(out)
}

/// The time off of each coach that has not ended yet, soonest first.
pub(crate) async fn upcoming_time_off(
    db: &impl ConnectionTrait,
    coach_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<time_off::Model>>> {
    let rows = time_off::Entity::find()
        .filter(time_off::Column::CoachId.is_in(coach_ids.iter().copied()))
        .filter(time_off::Column::EndsAt.gt(now()))
        .order_by_asc(time_off::Column::StartsAt)
        .order_by_asc(time_off::Column::Id)
        .all(db)
        .await?;
    let mut out: HashMap<Uuid, Vec<time_off::Model>> =
        coach_ids.iter().map(|id| (*id, Vec::new())).collect();
    for row in rows {
        out.entry(row.coach_id).or_default().push(row);
    }
    Ok(out)
}

/// Adds time off to `coach_id`'s planning: no slot that touches it is offered.
pub(crate) async fn add_time_off(
    services: &SharedServices,
    coach_id: Uuid,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    reason: Option<String>,
) -> Result<time_off::Model> {
    let reason = text::optional("reason", reason.as_deref(), REASON_MAX)?;
    if ends_at <= starts_at {
        return Err(Error::bad_input("endsAt", "endsAt must be after startsAt"));
    }
    if ends_at - starts_at > MAX_TIME_OFF {
        return Err(Error::bad_input(
            "endsAt",
            "time off lasts at most 366 days",
        ));
    }
    let at = now();
    if ends_at <= at {
        return Err(Error::bad_input("endsAt", "this time off is already over"));
    }
    let txn = services.stores.appointments.begin().await?;
    let row = time_off::ActiveModel {
        id: Set(Uuid::now_v7()),
        coach_id: Set(coach_id),
        starts_at: Set(starts_at),
        ends_at: Set(ends_at),
        reason: Set(reason),
        created_at: Set(at),
    }
    .insert(&txn)
    .await?;
    audit_outbox::stage(&txn, Database::Appointments, Target::new("TimeOff", row.id)).await?;
    txn.commit().await?;
    Ok(row)
}

/// Removes one of `coach_id`'s own time off; another's is NOT_FOUND.
pub(crate) async fn remove_time_off(
    services: &SharedServices,
    coach_id: Uuid,
    id: Uuid,
) -> Result<()> {
    let txn = services.stores.appointments.begin().await?;
    let done = time_off::Entity::delete_many()
        .filter(time_off::Column::Id.eq(id))
        .filter(time_off::Column::CoachId.eq(coach_id))
        .exec(&txn)
        .await?;
    if done.rows_affected == 0 {
        return Err(Error::NotFound("time off not found".into()));
    }
    audit_outbox::stage(&txn, Database::Appointments, Target::new("TimeOff", id)).await?;
    txn.commit().await?;
    Ok(())
}

/// A coach's settings and planning, ready to compute slots from.
pub(crate) struct Planning {
    pub(crate) settings: CoachSettings,
    tz: chrono_tz::Tz,
    rules: Vec<Rule>,
    busy: Vec<Span>,
}

impl Planning {
    /// The slots whose start lies in `[from, to)` at `now`.
    pub(crate) fn slots(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<Span> {
        Plan {
            rules: &self.rules,
            tz: self.tz,
            session_minutes: i64::from(self.settings.session_minutes),
            now,
            busy: &self.busy,
        }
        .slots(from, to)
    }
}

/// Loads what the slots of `coach_id` in `[from, to)` depend on; `None` when the coach
/// takes no bookings (no listed coach profile: not a coach, or suspended).
/// `with_appointments`: whether booked time counts as busy (a booking checks the grid
/// without it, and lets the database decide the race).
pub(crate) async fn planning(
    services: &SharedServices,
    coach_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    at: DateTime<Utc>,
    with_appointments: bool,
) -> Result<Option<Planning>> {
    let Some(settings) = coaching::bookable(&services.stores.users, coach_id).await? else {
        return Ok(None);
    };
    let tz: chrono_tz::Tz = settings.timezone.parse().unwrap_or(chrono_tz::UTC);
    let db = &services.stores.appointments;
    let rules: Vec<Rule> = rules_by_coach(db, &[coach_id])
        .await?
        .remove(&coach_id)
        .unwrap_or_default()
        .into_iter()
        .map(|r| Rule {
            weekday: u32::try_from(r.weekday).unwrap_or(0),
            start: r.start_minute,
            end: r.end_minute,
        })
        .collect();
    if rules.is_empty() {
        return Ok(Some(Planning {
            settings,
            tz,
            rules,
            busy: Vec::new(),
        }));
    }
    // Anything that overlaps a slot starting in the window ends after `from` and starts
    // before `to` plus one session.
    let reach = to
        .checked_add_signed(Duration::minutes(i64::from(settings.session_minutes)))
        .unwrap_or(to);
    let mut busy: Vec<Span> = time_off::Entity::find()
        .filter(time_off::Column::CoachId.eq(coach_id))
        .filter(time_off::Column::EndsAt.gt(from))
        .filter(time_off::Column::StartsAt.lt(reach))
        .all(db)
        .await?
        .into_iter()
        .map(|t| Span {
            start: t.starts_at,
            end: t.ends_at,
        })
        .collect();
    if with_appointments {
        // The coach's calendar: what they coach and what they booked as a client.
        busy.extend(
            appointment::Entity::find()
                .filter(
                    sea_orm::Condition::any()
                        .add(appointment::Column::CoachId.eq(coach_id))
                        .add(appointment::Column::ClientId.eq(coach_id)),
                )
                .filter(active(at))
                .filter(appointment::Column::EndsAt.gt(from))
                .filter(appointment::Column::StartsAt.lt(reach))
                .all(db)
                .await?
                .into_iter()
                .map(|a| Span {
                    start: a.starts_at,
                    end: a.ends_at,
                }),
        );
    }
    Ok(Some(Planning {
        settings,
        tz,
        rules,
        busy,
    }))
}

/// The free slots of `coach_id` whose start lies in `[from, to)`, soonest first: inside
/// the weekly rules, 2 hours to 90 days ahead, clear of time off and active bookings. A
/// coach who takes no bookings offers none.
pub(crate) async fn available_slots(
    services: &SharedServices,
    coach_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Span>> {
    slots::check_window(from, to)?;
    let at = now();
    // Outside the bookable horizon there is nothing to read.
    if to <= at + slots::MIN_NOTICE || from > at + slots::MAX_AHEAD {
        return Ok(Vec::new());
    }
    Ok(
        match planning(services, coach_id, from, to, at, true).await? {
            Some(p) => p.slots(from, to, at),
            None => Vec::new(),
        },
    )
}
