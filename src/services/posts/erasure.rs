//! The posts domain's part of an account erasure: the account's posts with their likes,
//! comments and image lists, and its likes and comments on other people's posts, whose
//! counts are then counted again.

use std::collections::BTreeSet;

use sea_orm::{
    sea_query::Expr, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use crate::{
    db::posts::{comment, like, post, post_media},
    error::Result,
};

/// Erases `user_id`'s posts, likes and comments in one transaction (so running it again
/// after a failure finds either nothing done or everything). The posts whose counts it
/// changes are locked first, in id order, as a like or a comment's delete locks its post
/// before it writes; their counts are then counted from the rows that remain rather than
/// decremented, so they come out right whatever ran before.
pub(crate) async fn erase(db: &DatabaseConnection, user_id: Uuid) -> Result<()> {
    let txn = db.begin().await?;
    let own: Vec<Uuid> = post::Entity::find()
        .select_only()
        .column(post::Column::Id)
        .filter(post::Column::AuthorId.eq(user_id))
        .into_tuple()
        .all(&txn)
        .await?;
    let liked: Vec<Uuid> = like::Entity::find()
        .select_only()
        .column(like::Column::PostId)
        .filter(like::Column::UserId.eq(user_id))
        .into_tuple()
        .all(&txn)
        .await?;
    let commented: Vec<Uuid> = comment::Entity::find()
        .select_only()
        .column(comment::Column::PostId)
        .filter(comment::Column::AuthorId.eq(user_id))
        .into_tuple()
        .all(&txn)
        .await?;
    let own_set: BTreeSet<Uuid> = own.iter().copied().collect();
    let touched: Vec<Uuid> = liked
        .into_iter()
        .chain(commented)
        .filter(|id| !own_set.contains(id))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let locked: BTreeSet<Uuid> = own_set.iter().chain(touched.iter()).copied().collect();
    if !locked.is_empty() {
        post::Entity::find()
            .select_only()
            .column(post::Column::Id)
            .filter(post::Column::Id.is_in(locked))
            .order_by_asc(post::Column::Id)
            .lock_exclusive()
            .into_tuple::<Uuid>()
            .all(&txn)
            .await?;
    }
    if !own.is_empty() {
        like::Entity::delete_many()
            .filter(like::Column::PostId.is_in(own.iter().copied()))
            .exec(&txn)
            .await?;
        comment::Entity::delete_many()
            .filter(comment::Column::PostId.is_in(own.iter().copied()))
            .exec(&txn)
            .await?;
        post_media::Entity::delete_many()
            .filter(post_media::Column::PostId.is_in(own.iter().copied()))
            .exec(&txn)
            .await?;
        post::Entity::delete_many()
            .filter(post::Column::Id.is_in(own.iter().copied()))
            .exec(&txn)
            .await?;
    }
    like::Entity::delete_many()
        .filter(like::Column::UserId.eq(user_id))
        .exec(&txn)
        .await?;
    comment::Entity::delete_many()
        .filter(comment::Column::AuthorId.eq(user_id))
        .exec(&txn)
        .await?;
    if !touched.is_empty() {
        post::Entity::update_many()
            .col_expr(
                post::Column::LikeCount,
                Expr::cust("(SELECT COUNT(*) FROM likes WHERE likes.post_id = posts.id)"),
            )
            .col_expr(
                post::Column::CommentCount,
                Expr::cust("(SELECT COUNT(*) FROM comments WHERE comments.post_id = posts.id)"),
            )
            .filter(post::Column::Id.is_in(touched))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(())
}
