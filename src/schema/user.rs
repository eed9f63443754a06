//! `User` and `UserProfile`: an account in auth_db joined with its profile in user_db,
//! field by field through DataLoaders so a page of users costs one statement per database.

use async_graphql::{dataloader::DataLoader, Context, Object, Result, ID};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    context::ContextExt,
    ids,
    loaders::{AccountLoader, ProfileLoader},
};
use crate::{
    db::{auth::user as account, users::profile},
    error::Error,
    services::auth::Role,
};

#[derive(Clone)]
pub struct User {
    pub id: Uuid,
    /// The account row when the resolver already had it, saving a load.
    pub account: Option<account::Model>,
    /// Read by the account's owner even though the request is not (yet) authenticated as
    /// them: the `user` of an `AuthPayload`.
    pub owner_view: bool,
}

impl User {
    pub fn new(id: Uuid) -> User {
        User {
            id,
            account: None,
            owner_view: false,
        }
    }

    pub fn from_account(account: account::Model) -> User {
        User {
            id: account.id,
            account: Some(account),
            owner_view: false,
        }
    }

    /// The signed-in user of an `AuthPayload`, who may read their own private fields.
    pub fn signed_in(account: account::Model) -> User {
        User {
            owner_view: true,
            ..User::from_account(account)
        }
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

    async fn role(&self, ctx: &Context<'_>) -> Result<Role> {
        let a = self.account(ctx).await?;
        Ok(Role::parse(&a.role).unwrap_or(Role::User))
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
        let p = ctx
            .data::<DataLoader<ProfileLoader>>()?
            .load_one(self.id)
            .await?
            .ok_or_else(|| Error::NotFound("profile not found".into()))?;
        Ok(UserProfile(p))
    }
}

pub struct UserProfile(pub profile::Model);

#[Object]
impl UserProfile {
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }

    async fn bio(&self) -> Option<&str> {
        self.0.bio.as_deref()
    }

    /// IANA timezone name, e.g. `Europe/Paris`.
    async fn timezone(&self) -> &str {
        &self.0.timezone
    }
}
