//! Profiles, the coach directory and the specialty catalogue (user_db).

use async_graphql::{dataloader::DataLoader, Context, MaybeUndefined, Object, Result, ID};

use crate::{
    schema::{
        auth::AccountLoader,
        connection::{connection, Conn},
        context::ContextExt,
        guards::{LoggedIn, RoleGuard},
        ids,
        users::{Specialty, User},
    },
    services::{
        auth::Role,
        page::{Cursor, Page},
        users::{
            directory::{self, CoachFilter},
            profiles::{self, CoachProfileInput, ProfileUpdate},
        },
    },
};

#[derive(Default)]
pub(crate) struct UsersQuery;

#[Object]
impl UsersQuery {
    /// A user by id; null when there is none.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        let id = ids::parse("id", &id)?;
        let account = ctx
            .data::<DataLoader<AccountLoader>>()?
            .load_one(id)
            .await?;
        Ok(account.map(User::from_account))
    }

    /// Every specialty, by name.
    async fn specialties(&self, ctx: &Context<'_>) -> Result<Vec<Specialty>> {
        let rows = directory::specialties(&ctx.services()?.stores.users).await?;
        Ok(rows.into_iter().map(|row| Specialty { row }).collect())
    }

    /// Coaches with a profile who are not suspended, newest first; `specialty` is a slug,
    /// `search` matches display names and headlines (case and accents ignored).
    #[graphql(complexity = "first.unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn coaches(
        &self,
        ctx: &Context<'_>,
        specialty: Option<String>,
        search: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<User>> {
        let page = Page::new(first, after.as_deref())?;
        let filter = CoachFilter { specialty, search };
        let (rows, total) =
            directory::coaches(&ctx.services()?.stores.users, filter, &page).await?;
        let ids: Vec<_> = rows.iter().map(|c| c.user_id).collect();
        let cursors: Vec<Cursor> = rows
            .iter()
            .map(|c| Cursor {
                at: c.created_at,
                id: c.user_id,
            })
            .collect();
        let look = ctx.look_ahead();
        let selections = [look.field("nodes"), look.field("edges").field("node")];
        let users = User::load_page(ctx, &ids, &selections, Some(rows)).await?;
        Ok(connection(
            &page,
            cursors.into_iter().zip(users).collect(),
            total,
        ))
    }
}

#[derive(Default)]
pub(crate) struct UsersMutation;

#[Object]
impl UsersMutation {
    /// Updates the caller's profile. An omitted argument keeps its value; an explicit
    /// null clears `bio` and `avatarMediaId`.
    #[graphql(guard = "LoggedIn")]
    async fn update_profile(
        &self,
        ctx: &Context<'_>,
        display_name: MaybeUndefined<String>,
        bio: MaybeUndefined<String>,
        avatar_media_id: MaybeUndefined<ID>,
        timezone: MaybeUndefined<String>,
    ) -> Result<User> {
        let viewer = ctx.viewer()?;
        ctx.audit_target("User", viewer.user_id);
        let avatar_media_id = match avatar_media_id {
            MaybeUndefined::Value(id) => MaybeUndefined::Value(ids::parse("avatarMediaId", &id)?),
            MaybeUndefined::Null => MaybeUndefined::Null,
            MaybeUndefined::Undefined => MaybeUndefined::Undefined,
        };
        let update = ProfileUpdate {
            display_name: display_name.into(),
            bio: bio.into(),
            avatar_media_id: avatar_media_id.into(),
            timezone: timezone.into(),
        };
        profiles::update(ctx.services()?, viewer.user_id, update).await?;
        Ok(User::new(viewer.user_id))
    }

    /// Creates or updates the caller's coach profile. An omitted argument keeps its value
    /// (or takes its default on creation: 60-minute sessions, no approval needed); an
    /// explicit null clears `bio`, `priceCents`, `currency` and `timezone` (slots then use
    /// the user profile's timezone).
    #[graphql(guard = "RoleGuard::any(&[Role::Coach])")]
    #[allow(clippy::too_many_arguments)]
    async fn upsert_coach_profile(
        &self,
        ctx: &Context<'_>,
        headline: String,
        bio: MaybeUndefined<String>,
        specialty_slugs: Vec<String>,
        session_minutes: MaybeUndefined<i32>,
        price_cents: MaybeUndefined<i32>,
        currency: MaybeUndefined<String>,
        timezone: MaybeUndefined<String>,
        requires_approval: MaybeUndefined<bool>,
    ) -> Result<User> {
        let viewer = ctx.viewer()?;
        ctx.audit_target("CoachProfile", viewer.user_id);
        let input = CoachProfileInput {
            headline,
            specialty_slugs,
            bio: bio.into(),
            session_minutes: session_minutes.into(),
            price_cents: price_cents.into(),
            currency: currency.into(),
            timezone: timezone.into(),
            requires_approval: requires_approval.into(),
        };
        profiles::upsert_coach(ctx.services()?, viewer.user_id, input).await?;
        Ok(User::new(viewer.user_id))
    }
}
