//! The auth domain's types: `AuthPayload` and `Session`, and the account loader every
//! `User` reads its role, email and creation time through.

mod session;

use std::{collections::HashMap, time::Duration};

use async_graphql::dataloader::Loader;
use uuid::Uuid;

pub(crate) use session::{AuthPayload, Session};

use crate::{
    db::auth::user as account,
    services::{auth::accounts, SharedServices},
};

/// The three roles. Rights come from the live account, never from a token's claim.
// (The service's `Role`, as the schema names it.)
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "Role", remote = "crate::services::auth::Role")]
pub(crate) enum RoleValue {
    User,
    Coach,
    Admin,
}

/// Accounts (auth_db `users`) by user id.
pub(crate) struct AccountLoader(SharedServices);

impl Loader<Uuid> for AccountLoader {
    type Value = account::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(accounts::by_ids(&self.0.stores.auth, keys).await?)
    }
}

/// Adds this domain's loaders to the schema.
pub(crate) fn register_loaders<Q, M, S>(
    builder: async_graphql::SchemaBuilder<Q, M, S>,
    services: &SharedServices,
    delay: Duration,
) -> async_graphql::SchemaBuilder<Q, M, S> {
    builder.data(crate::schema::loader(
        AccountLoader(services.clone()),
        delay,
    ))
}
