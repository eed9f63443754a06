//! The users domain's DataLoaders: one batch of ids, one statement (two for specialties),
//! whatever the page size. They return database rows; the types wrap them.

use std::{collections::HashMap, time::Duration};

use async_graphql::dataloader::Loader;
use uuid::Uuid;

use crate::{
    db::users::{coach_profile, profile, specialty},
    services::{users::profiles, SharedServices},
};

/// Public profiles (user_db `user_profiles`) by user id.
pub(crate) struct ProfileLoader(SharedServices);

impl Loader<Uuid> for ProfileLoader {
    type Value = profile::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(profiles::by_ids(&self.0.stores.users, keys).await?)
    }
}

/// Coach profiles (user_db `coach_profiles`) by user id.
pub(crate) struct CoachProfileLoader(SharedServices);

impl Loader<Uuid> for CoachProfileLoader {
    type Value = coach_profile::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(profiles::coaches_by_ids(&self.0.stores.users, keys).await?)
    }
}

/// The specialties of coaches, by coach id, sorted by name.
pub(crate) struct CoachSpecialtiesLoader(SharedServices);

impl Loader<Uuid> for CoachSpecialtiesLoader {
    type Value = Vec<specialty::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(profiles::specialties_by_coach(&self.0.stores.users, keys).await?)
    }
}

/// Adds this domain's loaders to the schema.
pub(crate) fn register<Q, M, S>(
    builder: async_graphql::SchemaBuilder<Q, M, S>,
    services: &SharedServices,
    delay: Duration,
) -> async_graphql::SchemaBuilder<Q, M, S> {
    builder
        .data(crate::schema::loader(
            ProfileLoader(services.clone()),
            delay,
        ))
        .data(crate::schema::loader(
            CoachProfileLoader(services.clone()),
            delay,
        ))
        .data(crate::schema::loader(
            CoachSpecialtiesLoader(services.clone()),
            delay,
        ))
}
