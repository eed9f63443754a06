//! The media domain's types: `Media` and `MediaVisibility`, and the loader that reads
//! files' metadata from the media store (one round trip per batch of ids).

mod fields;

use std::{collections::HashMap, time::Duration};

use async_graphql::{dataloader::Loader, Enum};
use uuid::Uuid;

use crate::{
    db::media::StoredMedia,
    services::{media, SharedServices},
};

/// Who may read a file: everyone, or its owner and admins.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MediaVisibility {
    Public,
    Private,
}

impl MediaVisibility {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MediaVisibility::Public => media::PUBLIC,
            MediaVisibility::Private => media::PRIVATE,
        }
    }
}

/// A stored file: a picture or a PDF. Its fields are resolved in `fields.rs`, which may
/// name other domains' types (its owner is a `User`) without their modules naming this one
/// back in a circle.
pub(crate) struct Media(pub StoredMedia);

/// Files' metadata by id.
pub(crate) struct MediaLoader(SharedServices);

impl Loader<Uuid> for MediaLoader {
    type Value = StoredMedia;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(media::many(&self.0, keys).await?)
    }
}

/// Adds this domain's loaders to the schema.
pub(crate) fn register_loaders<Q, M, S>(
    builder: async_graphql::SchemaBuilder<Q, M, S>,
    services: &SharedServices,
    delay: Duration,
) -> async_graphql::SchemaBuilder<Q, M, S> {
    builder.data(crate::schema::loader(MediaLoader(services.clone()), delay))
}
