//! `CoachProfile` and `Specialty` (user_db).

use async_graphql::{dataloader::DataLoader, Context, Object, Result, ID};

use super::{
    ids,
    loaders::CoachSpecialtiesLoader,
    user::{default_timezone, User},
};
use crate::db::users::{coach_profile, specialty};

#[derive(Clone)]
pub struct Specialty {
    pub row: specialty::Model,
}

#[Object]
impl Specialty {
    async fn id(&self) -> ID {
        ids::to_id(self.row.id)
    }

    /// Stable key for filters and URLs, e.g. `stress-management`.
    async fn slug(&self) -> &str {
        &self.row.slug
    }

    async fn name(&self) -> &str {
        &self.row.name
    }
}

pub struct CoachProfile {
    pub row: coach_profile::Model,
    /// The coach, with whatever parts were already loaded with them.
    pub owner: User,
}

#[Object]
impl CoachProfile {
    async fn user(&self) -> User {
        self.owner.clone()
    }

    async fn headline(&self) -> &str {
        &self.row.headline
    }

    async fn bio(&self) -> Option<&str> {
        self.row.bio.as_deref()
    }

    /// Sorted by name.
    async fn specialties(&self, ctx: &Context<'_>) -> Result<Vec<Specialty>> {
        if let Some(known) = &self.owner.specialties {
            return Ok(known.clone());
        }
        Ok(ctx
            .data::<DataLoader<CoachSpecialtiesLoader>>()?
            .load_one(self.row.user_id)
            .await?
            .unwrap_or_default())
    }

    /// Length of one session, in minutes (15 to 240).
    async fn session_minutes(&self) -> i32 {
        self.row.session_minutes
    }

    async fn price_cents(&self) -> Option<i32> {
        self.row.price_cents
    }

    /// ISO 4217 code of `priceCents`.
    async fn currency(&self) -> Option<&str> {
        self.row.currency.as_deref()
    }

    /// The IANA timezone slots are computed in: the coach profile's own, else the user
    /// profile's.
    async fn timezone(&self, ctx: &Context<'_>) -> Result<String> {
        if let Some(tz) = &self.row.timezone {
            return Ok(tz.clone());
        }
        Ok(self
            .owner
            .profile_row(ctx)
            .await?
            .map(|p| p.timezone)
            .unwrap_or_else(default_timezone))
    }

    /// Bookings stay PENDING until the coach confirms them.
    async fn requires_approval(&self) -> bool {
        self.row.requires_approval
    }
}
