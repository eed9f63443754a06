//! What the appointments domain needs to know of a coach: whether they take bookings,
//! and the settings their slots are computed with. Read here because they live in
//! user_db (the coach profile, and the user profile's timezone as the fallback).

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::rules::DEFAULT_TIMEZONE;
use crate::{
    db::users::{coach_profile, profile},
    error::Result,
};

/// The booking settings of a coach who takes bookings.
#[derive(Clone, Debug)]
pub(crate) struct CoachSettings {
    pub(crate) session_minutes: i32,
    /// IANA name: the coach profile's own, else the user profile's.
    pub(crate) timezone: String,
    pub(crate) requires_approval: bool,
}

/// The settings of `coach_id` when they have a listed coach profile (an unsuspended
/// COACH, as `listed` mirrors); `None` otherwise: such a coach offers no slots.
pub(crate) async fn bookable(
    db: &impl ConnectionTrait,
    coach_id: Uuid,
) -> Result<Option<CoachSettings>> {
    let Some(coach) = coach_profile::Entity::find_by_id(coach_id)
        .filter(coach_profile::Column::Listed.eq(true))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let timezone = match coach.timezone {
        Some(tz) => tz,
        None => profile::Entity::find_by_id(coach_id)
            .one(db)
            .await?
            .map(|p| p.timezone)
            .unwrap_or_else(|| DEFAULT_TIMEZONE.into()),
    };
    Ok(Some(CoachSettings {
        session_minutes: coach.session_minutes,
        timezone,
        requires_approval: coach.requires_approval,
    }))
}
