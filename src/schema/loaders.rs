//! DataLoaders for fields that cross databases: one statement per batch of ids, whatever
//! the page size, instead of one per row.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::coach::Specialty;
use crate::{
    db::{
        auth::user,
        users::{coach_profile, coach_specialty, profile, specialty},
    },
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

/// Coach profiles (user_db `coach_profiles`) by user id.
pub struct CoachProfileLoader(pub Arc<Services>);

impl Loader<Uuid> for CoachProfileLoader {
    type Value = coach_profile::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = coach_profile::Entity::find()
            .filter(coach_profile::Column::UserId.is_in(keys.iter().copied()))
            .all(&self.0.stores.users)
            .await
            .map_err(Error::from)?;
        Ok(rows.into_iter().map(|r| (r.user_id, r)).collect())
    }
}

/// The specialties of coaches, by coach id: two statements per batch (links, then the
/// specialties they name), both in user_db.
pub struct CoachSpecialtiesLoader(pub Arc<Services>);

impl Loader<Uuid> for CoachSpecialtiesLoader {
    type Value = Vec<Specialty>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let db = &self.0.stores.users;
        let links = coach_specialty::Entity::find()
            .filter(coach_specialty::Column::CoachId.is_in(keys.iter().copied()))
            .all(db)
            .await
            .map_err(Error::from)?;
        let mut ids: Vec<Uuid> = links.iter().map(|l| l.specialty_id).collect();
        ids.sort();
        ids.dedup();
        let specialties: HashMap<Uuid, specialty::Model> = if ids.is_empty() {
            HashMap::new()
        } else {
            specialty::Entity::find()
                .filter(specialty::Column::Id.is_in(ids))
                .all(db)
                .await
                .map_err(Error::from)?
                .into_iter()
                .map(|s| (s.id, s))
                .collect()
        };
        let mut out: HashMap<Uuid, Vec<Specialty>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for link in links {
            if let (Some(list), Some(s)) = (
                out.get_mut(&link.coach_id),
                specialties.get(&link.specialty_id),
            ) {
                list.push(Specialty { row: s.clone() });
            }
        }
        for list in out.values_mut() {
            list.sort_by(|a, b| a.row.name.cmp(&b.row.name));
        }
        Ok(out)
    }
}
