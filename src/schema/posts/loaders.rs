//! The posts domain's loaders: posts by id for one reader (a comment's post), and the
//! first comments of posts that were not read with their page. The reader is part of a
//! post's key, because `likedByMe` and the hiding of suspended authors' posts depend on
//! who asks; with no cache, nothing one reader sees reaches another.

use std::{collections::HashMap, time::Duration};

use async_graphql::dataloader::Loader;
use uuid::Uuid;

use crate::{
    db::posts::comment,
    services::{
        page::{Cursor, Page},
        posts::read::{self, AuthorPage, PostRow, Reader, Scope},
        SharedServices,
    },
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

/// The first comments of a post: (post id, how many rows to read).
pub(crate) struct FirstCommentsLoader(SharedServices);

impl Loader<(Uuid, u64)> for FirstCommentsLoader {
    type Value = Vec<comment::Model>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[(Uuid, u64)],
    ) -> Result<HashMap<(Uuid, u64), Self::Value>, Self::Error> {
        let mut by_limit: HashMap<u64, Vec<Uuid>> = HashMap::new();
        for (id, limit) in keys {
            by_limit.entry(*limit).or_default().push(*id);
        }
        let mut out = HashMap::with_capacity(keys.len());
        for (limit, ids) in by_limit {
            let mut found = read::first_comments(&self.0.stores.posts, &ids, limit).await?;
            for id in ids {
                out.insert((id, limit), found.remove(&id).unwrap_or_default());
            }
        }
        Ok(out)
    }
}

/// One page of one author's posts as one reader sees it (`User.posts` below a list of
/// users): the page, the first comments to read with each post, whether to count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct AuthorPageKey {
    pub(crate) author: Uuid,
    pub(crate) first: u64,
    pub(crate) after: Option<Cursor>,
    pub(crate) reader: Reader,
    pub(crate) comments: Option<u64>,
    pub(crate) total: bool,
}

/// The pages of many authors' posts: one post_db statement for all the authors asked
/// with the same page, reader and selection (every user of a list, in practice).
pub(crate) struct AuthorPagesLoader(SharedServices);

impl Loader<AuthorPageKey> for AuthorPagesLoader {
    type Value = AuthorPage;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[AuthorPageKey],
    ) -> Result<HashMap<AuthorPageKey, Self::Value>, Self::Error> {
        let mut groups: HashMap<AuthorPageKey, Vec<Uuid>> = HashMap::new();
        for k in keys {
            let group = AuthorPageKey {
                author: Uuid::nil(),
                ..*k
            };
            groups.entry(group).or_default().push(k.author);
        }
        let mut out = HashMap::with_capacity(keys.len());
        for (group, authors) in groups {
            let page = Page {
                first: group.first,
                after: group.after,
            };
            let mut found = read::author_pages(
                &self.0.stores.posts,
                &authors,
                group.reader,
                &page,
                group.comments,
                group.total,
            )
            .await?;
            for author in authors {
                let mut value = found.remove(&author).unwrap_or_default();
                if group.total && value.total.is_none() {
                    value.total = Some(0);
                }
                out.insert(AuthorPageKey { author, ..group }, value);
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
    builder
        .data(crate::schema::loader(PostLoader(services.clone()), delay))
        .data(crate::schema::loader(
            FirstCommentsLoader(services.clone()),
            delay,
        ))
        .data(crate::schema::loader(
            AuthorPagesLoader(services.clone()),
            delay,
        ))
}
