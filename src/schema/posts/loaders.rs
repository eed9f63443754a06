//! The posts domain's loader: posts by id for one reader (a comment's post). The reader
//! is part of the key, because `likedByMe` and the hiding of suspended authors' posts
//! depend on who asks; with no cache, nothing one reader sees reaches another.

use std::{collections::HashMap, time::Duration};

use async_graphql::dataloader::Loader;
use uuid::Uuid;

use crate::services::{
    posts::read::{self, PostRow, Reader, Scope},
    SharedServices,
};

/// A post as one reader sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PostKey {
    pub(crate) id: Uuid,
    pub(crate) reader: Reader,
}

pub(crate) struct PostLoader(SharedServices);

impl Loader<PostKey> for PostLoader {
    type Value = PostRow;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[PostKey]) -> Result<HashMap<PostKey, Self::Value>, Self::Error> {
        let mut by_reader: HashMap<Reader, Vec<Uuid>> = HashMap::new();
        for k in keys {
            by_reader.entry(k.reader).or_default().push(k.id);
        }
        let mut out = HashMap::with_capacity(keys.len());
        for (reader, ids) in by_reader {
            let rows =
                read::posts(&self.0.stores.posts, &Scope::Ids(ids), reader, None, None).await?;
            for row in rows {
                out.insert(
                    PostKey {
                        id: row.post.id,
                        reader,
                    },
                    row,
                );
            }
        }
        Ok(out)
    }
}

/// Adds this domain's loaders to the schema.
pub(crate) fn register<Q, M, S>(
    builder: async_graphql::SchemaBuilder<Q, M, S>,
    services: &SharedServices,
    delay: Duration,
) -> async_graphql::SchemaBuilder<Q, M, S> {
    builder.data(crate::schema::loader(PostLoader(services.clone()), delay))
}
