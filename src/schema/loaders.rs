//! DataLoaders for fields that cross databases: one statement per batch of ids, whatever
//! the page size, instead of one per row.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::{
    db::{auth::user, users::profile},
    error::Error,
    services::Services,
};

/// Accounts (auth_db `users`) by user id.
pub struct AccountLoader(pub Arc<Services>);

impl Loader<Uuid> for AccountLoader {
    type Value = user::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = user::Entity::find()
            .filter(user::Column::Id.is_in(keys.iter().copied()))
            .all(&self.0.stores.auth)
            .await
            .map_err(Error::from)?;
        Ok(rows.into_iter().map(|r| (r.id, r)).collect())
    }
}

/// Public profiles (user_db `user_profiles`) by user id.
pub struct ProfileLoader(pub Arc<Services>);

impl Loader<Uuid> for ProfileLoader {
    type Value = profile::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = profile::Entity::find()
            .filter(profile::Column::UserId.is_in(keys.iter().copied()))
            .all(&self.0.stores.users)
            .await
            .map_err(Error::from)?;
        Ok(rows.into_iter().map(|r| (r.user_id, r)).collect())
    }
}
