//! `User`, `UserProfile` and `CoachProfile`: an account in auth_db joined with its
//! profile and coach profile in user_db. (One file: a user has a coach profile and a
//! coach profile has its user.)
//!
//! A single user loads each part through a DataLoader. A page of users is preloaded:
//! the list resolver asks [`User::load_page`] for what the query selects (a look at the
//! selection set) and gets one statement per part for the whole page, so a page of 100
//! costs what a page of 10 does.

use std::{borrow::Cow, collections::HashMap};

use async_graphql::{dataloader::DataLoader, Context, Lookahead, Object, Result, ID};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    loaders::{CoachProfileLoader, CoachSpecialtiesLoader, ProfileLoader},
    specialty::Specialty,
};
use crate::{
    db::{
        auth::user as account,
        media::StoredMedia,
        users::{coach_profile, profile},
    },
    error::Error,
    schema::{
        appointments::{AvailabilityLoader, AvailabilityRule, TimeOff, TimeOffLoader},
        auth::{AccountLoader, RoleValue},
        connection::Conn,
        context::ContextExt,
        ids,
        media::{Media, MediaLoader},
        plain::{self, Fast, Out, Plain, Sel, Walk},
        posts::{self, Post},
    },
    services::{auth::Role, users::rules::DEFAULT_TIMEZONE},
};

#[derive(Clone, Default)]
pub(crate) struct User {
    pub(crate) id: Uuid,
    /// Parts already loaded by whoever built this value; `None` means "load on demand".
    pub(crate) account: Option<account::Model>,
    pub(crate) profile: Option<profile::Model>,
    /// `Some(None)`: known to have no coach profile.
    pub(crate) coach: Option<Option<coach_profile::Model>>,
    pub(crate) specialties: Option<Vec<Specialty>>,
    /// The profile picture's file when preloaded (`Some(None)`: the file is gone); only
    /// meaningful when the profile names one.
    pub(crate) avatar: Option<Option<StoredMedia>>,
    /// Read by the account's owner even though the request is not (yet) authenticated as
    /// them: the `user` of an `AuthPayload`.
    pub(crate) owner_view: bool,
}

/// Which parts of a user a selection needs.
#[derive(Clone, Copy, Default)]
struct Needs {
    account: bool,
    profile: bool,
    coach: bool,
    specialties: bool,
}

impl Needs {
    fn of(selections: &[Lookahead<'_>]) -> Needs {
        let any = |f: &dyn Fn(&Lookahead<'_>) -> bool| selections.iter().any(f);
        let coach = any(&|s| s.field("coachProfile").exists());
        Needs {
            account: any(&|s| {
                ["role", "createdAt", "email", "suspended"]
                    .iter()
                    .any(|f| s.field(f).exists())
            }),
            profile: any(&|s| {
                s.field("profile").exists() || s.field("coachProfile").field("timezone").exists()
            }),
            coach,
            specialties: any(&|s| s.field("coachProfile").field("specialties").exists()),
        }
    }
}

/// Loads `keys` in one batch when `wanted`.
async fn batch<L>(
    ctx: &Context<'_>,
    keys: &[Uuid],
    wanted: bool,
) -> Result<Option<HashMap<Uuid, L::Value>>>
where
    L: async_graphql::dataloader::Loader<Uuid, Error = async_graphql::Error>,
{
    if !wanted {
        return Ok(None);
    }
    let loader = ctx.data::<DataLoader<L>>()?;
    Ok(Some(loader.load_many(keys.iter().copied()).await?))
}

impl User {
    pub(crate) fn new(id: Uuid) -> User {
        User {
            id,
            ..User::default()
        }
    }

    pub(crate) fn from_account(account: account::Model) -> User {
        User {
            id: account.id,
            account: Some(account),
            ..User::default()
        }
    }

    /// The signed-in user of an `AuthPayload`, who may read their own private fields.
    pub(crate) fn signed_in(account: account::Model) -> User {
        User {
            owner_view: true,
            ..User::from_account(account)
        }
    }

    /// Builds the users of a page, loading what `selections` (the node selections of the
    /// list) ask for in one batch per part. Ids without an account are kept: their
    /// fields answer NOT_FOUND if asked. `coaches`: the coach profiles when the caller
    /// already read them (the coach directory), saving their load.
    pub(crate) async fn load_page(
        ctx: &Context<'_>,
        ids: &[Uuid],
        selections: &[Lookahead<'_>],
        coaches: Option<Vec<coach_profile::Model>>,
    ) -> Result<Vec<User>> {
        Self::load_parts(ctx, ids, selections, coaches, None).await
    }

    /// Like [`User::load_page`] for a page of accounts already read (the admin account
    /// list), which are not read again.
    pub(crate) async fn load_account_page(
        ctx: &Context<'_>,
        accounts: Vec<account::Model>,
        selections: &[Lookahead<'_>],
    ) -> Result<Vec<User>> {
        let ids: Vec<Uuid> = accounts.iter().map(|a| a.id).collect();
        let known = accounts.into_iter().map(|a| (a.id, a)).collect();
        Self::load_parts(ctx, &ids, selections, None, Some(known)).await
    }

    async fn load_parts(
        ctx: &Context<'_>,
        ids: &[Uuid],
        selections: &[Lookahead<'_>],
        coaches: Option<Vec<coach_profile::Model>>,
        known_accounts: Option<HashMap<Uuid, account::Model>>,
    ) -> Result<Vec<User>> {
        let mut needs = Needs::of(selections);
        let known_coaches: Option<HashMap<Uuid, coach_profile::Model>> =
            coaches.map(|rows| rows.into_iter().map(|c| (c.user_id, c)).collect());
        needs.coach &= known_coaches.is_none();
        needs.account &= known_accounts.is_none();
        let (accounts, mut profiles, coaches, mut specialties) = futures_util::try_join!(
            batch::<AccountLoader>(ctx, ids, needs.account),
            batch::<ProfileLoader>(ctx, ids, needs.profile),
            batch::<CoachProfileLoader>(ctx, ids, needs.coach),
            batch::<CoachSpecialtiesLoader>(ctx, ids, needs.specialties),
        )?;
        let mut coaches = known_coaches.or(coaches);
        let mut accounts = known_accounts.or(accounts);
        Ok(ids
            .iter()
            .map(|id| User {
                id: *id,
                account: accounts.as_mut().and_then(|m| m.remove(id)),
                profile: profiles.as_mut().and_then(|m| m.remove(id)),
                coach: coaches.as_mut().map(|m| m.remove(id)),
                specialties: specialties.as_mut().map(|m| {
                    m.remove(id)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|row| Specialty { row })
                        .collect()
                }),
                avatar: None,
                owner_view: false,
            })
            .collect())
    }

    async fn account(&self, ctx: &Context<'_>) -> Result<account::Model> {
        if let Some(a) = &self.account {
            return Ok(a.clone());
        }
        ctx.data::<DataLoader<AccountLoader>>()?
            .load_one(self.id)
            .await?
            .ok_or_else(|| Error::NotFound("user not found".into()).into())
    }

    async fn profile_row(&self, ctx: &Context<'_>) -> Result<Option<profile::Model>> {
        if let Some(p) = &self.profile {
            return Ok(Some(p.clone()));
        }
        ctx.data::<DataLoader<ProfileLoader>>()?
            .load_one(self.id)
            .await
    }

    /// The user themself or an admin may read private fields.
    fn may_read_private(&self, ctx: &Context<'_>) -> Result<bool> {
        if self.owner_view {
            return Ok(true);
        }
        Ok(ctx
            .optional_viewer()?
            .is_some_and(|v| v.user_id == self.id || v.is_admin()))
    }
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ids::to_id(self.id)
    }

    async fn role(&self, ctx: &Context<'_>) -> Result<RoleValue> {
        let a = self.account(ctx).await?;
        Ok(Role::parse(&a.role).unwrap_or(Role::User).into())
    }

    async fn created_at(&self, ctx: &Context<'_>) -> Result<DateTime<Utc>> {
        Ok(self.account(ctx).await?.created_at)
    }

    /// Only to the user themself and admins; null for others.
    async fn email(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        if !self.may_read_private(ctx)? {
            return Ok(None);
        }
        Ok(Some(self.account(ctx).await?.email))
    }

    /// Only to the user themself and admins; null for others.
    async fn suspended(&self, ctx: &Context<'_>) -> Result<Option<bool>> {
        if !self.may_read_private(ctx)? {
            return Ok(None);
        }
        Ok(Some(self.account(ctx).await?.suspended))
    }

    async fn profile(&self, ctx: &Context<'_>) -> Result<UserProfile> {
        let p = self
            .profile_row(ctx)
            .await?
            .ok_or_else(|| Error::NotFound("profile not found".into()))?;
        Ok(UserProfile {
            row: p,
            avatar: self.avatar.clone(),
        })
    }

    /// Set for users who offer sessions.
    async fn coach_profile(&self, ctx: &Context<'_>) -> Result<Option<CoachProfile>> {
        let row = match &self.coach {
            Some(known) => known.clone(),
            None => {
                ctx.data::<DataLoader<CoachProfileLoader>>()?
                    .load_one(self.id)
                    .await?
            }
        };
        Ok(row.map(|row| CoachProfile {
            row,
            owner: self.clone(),
        }))
    }

    /// Their posts, newest first.
    #[graphql(complexity = "first.unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn posts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Fast<Conn<Post>>> {
        posts::author_connection(ctx, self.id, first, after.as_deref())
            .await
            .map(Fast)
    }
}

pub(crate) struct UserProfile {
    pub(crate) row: profile::Model,
    /// The avatar's file when its user was preloaded with it (see `User::avatar`).
    pub(crate) avatar: Option<Option<StoredMedia>>,
}

#[Object]
impl UserProfile {
    async fn display_name(&self) -> &str {
        &self.row.display_name
    }

    async fn bio(&self) -> Option<&str> {
        self.row.bio.as_deref()
    }

    /// The profile picture: always a public image of the user's own.
    async fn avatar(&self, ctx: &Context<'_>) -> Result<Option<Media>> {
        let Some(id) = self.row.avatar_media_id else {
            return Ok(None);
        };
        if let Some(known) = &self.avatar {
            return Ok(known.clone().map(Media));
        }
        let found = ctx.data::<DataLoader<MediaLoader>>()?.load_one(id).await?;
        Ok(found.map(Media))
    }

    /// IANA timezone name, e.g. `Europe/Paris`.
    async fn timezone(&self) -> &str {
        &self.row.timezone
    }
}

pub(crate) struct CoachProfile {
    pub(crate) row: coach_profile::Model,
    /// The coach, with whatever parts were already loaded with them.
    pub(crate) owner: User,
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
            .unwrap_or_default()
            .into_iter()
            .map(|row| Specialty { row })
            .collect())
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
            .unwrap_or_else(|| DEFAULT_TIMEZONE.into()))
    }

    /// Bookings stay PENDING until the coach confirms them.
    async fn requires_approval(&self) -> bool {
        self.row.requires_approval
    }

    /// The weekly rules slots are offered in, by weekday and start.
    async fn availability(&self, ctx: &Context<'_>) -> Result<Vec<AvailabilityRule>> {
        Ok(ctx
            .data::<DataLoader<AvailabilityLoader>>()?
            .load_one(self.row.user_id)
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(AvailabilityRule)
            .collect())
    }

    /// Time off that has not ended yet, soonest first.
    async fn time_off(&self, ctx: &Context<'_>) -> Result<Vec<TimeOff>> {
        let show_reason = self.owner.may_read_private(ctx)?;
        Ok(ctx
            .data::<DataLoader<TimeOffLoader>>()?
            .load_one(self.row.user_id)
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(|row| TimeOff { row, show_reason })
            .collect())
    }
}

/// A preloaded user answers `id` and its preloaded profile; anything else (role, email,
/// coach profile, posts…) is left to the resolvers above.
impl Plain for User {
    fn typename(&self) -> Cow<'static, str> {
        Cow::Borrowed("User")
    }

    fn field(&self, walk: &Walk<'_>, field: Sel<'_>, out: &mut Out) -> Option<()> {
        match field.name() {
            "id" => out.id(self.id),
            "profile" => plain::object(
                walk,
                &ProfileView {
                    row: self.profile.as_ref()?,
                    avatar: self.avatar.as_ref(),
                },
                field,
                out,
            )?,
            _ => return None,
        }
        Some(())
    }
}

/// A preloaded user's profile, borrowed for a walk.
struct ProfileView<'a> {
    row: &'a profile::Model,
    avatar: Option<&'a Option<StoredMedia>>,
}

impl Plain for ProfileView<'_> {
    fn typename(&self) -> Cow<'static, str> {
        Cow::Borrowed("UserProfile")
    }

    fn field(&self, walk: &Walk<'_>, field: Sel<'_>, out: &mut Out) -> Option<()> {
        match field.name() {
            "displayName" => out.str(&self.row.display_name),
            "bio" => match &self.row.bio {
                Some(bio) => out.str(bio),
                None => out.null(),
            },
            "timezone" => out.str(&self.row.timezone),
            "avatar" => match self.row.avatar_media_id {
                None => out.null(),
                Some(_) => plain::nullable(walk, self.avatar?.as_ref(), field, out)?,
            },
            _ => return None,
        }
        Some(())
    }
}
