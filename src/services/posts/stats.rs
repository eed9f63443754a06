//! What the admin statistics ask of post_db: how many posts, comments and likes exist
//! (those of suspended authors included: they are hidden from the feed, not gone).

use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};

use crate::{
    db::posts::{comment, like, post},
    error::Result,
};

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PostCounts {
    pub(crate) posts: i64,
    pub(crate) comments: i64,
    pub(crate) likes: i64,
}

/// The three counts, asked at once (a pooled database answers them side by side).
pub(crate) async fn counts(db: &DatabaseConnection) -> Result<PostCounts> {
    let (posts, comments, likes) = futures_util::try_join!(
        post::Entity::find().count(db),
        comment::Entity::find().count(db),
        like::Entity::find().count(db),
    )?;
    Ok(PostCounts {
        posts: posts as i64,
        comments: comments as i64,
        likes: likes as i64,
    })
}
