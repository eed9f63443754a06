//! Likes: one per user and post, whatever the number of concurrent requests. The primary
//! key (post, user) settles races: the insert does nothing when the like exists, and the
//! post's `like_count` moves only when a row was really inserted or deleted, in the same
//! transaction.

use sea_orm::{ConnectionTrait, EntityTrait, Statement, TransactionTrait, Value};
use uuid::Uuid;

use crate::{
    db::posts::post,
    error::{Error, Result},
    services::{auth::Viewer, now, SharedServices},
};

/// Adds `viewer`'s like to `post_id`; liking twice changes nothing. `NOT_FOUND` when the
/// post does not exist, or is hidden with its suspended author (admins excepted).
pub(crate) async fn like(services: &SharedServices, viewer: &Viewer, post_id: Uuid) -> Result<()> {
    let user = viewer.user_id;
    let sees_hidden = viewer.is_admin();
    let db = &services.stores.posts;
    let backend = db.get_database_backend();
    let txn = db.begin().await?;
    let (insert, bump) = match backend {
        sea_orm::DbBackend::Postgres => (
            "INSERT INTO likes (post_id, user_id, created_at) SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM posts WHERE id = $1 AND (author_hidden = FALSE OR $4)) ON CONFLICT DO NOTHING",
            "UPDATE posts SET like_count = like_count + 1 WHERE id = $1",
        ),
        _ => (
            "INSERT INTO likes (post_id, user_id, created_at) SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM posts WHERE id = ?1 AND (author_hidden = FALSE OR ?4)) ON CONFLICT DO NOTHING",
            "UPDATE posts SET like_count = like_count + 1 WHERE id = ?1",
        ),
    };
    let inserted = txn
        .execute(Statement::from_sql_and_values(
            backend,
            insert,
            [
                Value::from(post_id),
                Value::from(user),
                Value::from(now()),
                Value::from(sees_hidden),
            ],
        ))
        .await?
        .rows_affected();
    if inserted == 1 {
        txn.execute(Statement::from_sql_and_values(
            backend,
            bump,
            [Value::from(post_id)],
        ))
        .await?;
    } else if !exists(&txn, post_id, sees_hidden).await? {
        return Err(Error::NotFound("post not found".into()));
    }
    txn.commit().await?;
    Ok(())
}

/// Takes `user`'s like off `post_id`; unliking twice changes nothing. `NOT_FOUND` when
/// the post does not exist.
pub(crate) async fn unlike(services: &SharedServices, user: Uuid, post_id: Uuid) -> Result<()> {
    let db = &services.stores.posts;
    let backend = db.get_database_backend();
    let txn = db.begin().await?;
    let (delete, drop) = match backend {
        sea_orm::DbBackend::Postgres => (
            "DELETE FROM likes WHERE post_id = $1 AND user_id = $2",
            "UPDATE posts SET like_count = like_count - 1 WHERE id = $1",
        ),
        _ => (
            "DELETE FROM likes WHERE post_id = ?1 AND user_id = ?2",
            "UPDATE posts SET like_count = like_count - 1 WHERE id = ?1",
        ),
    };
    let deleted = txn
        .execute(Statement::from_sql_and_values(
            backend,
            delete,
            [Value::from(post_id), Value::from(user)],
        ))
        .await?
        .rows_affected();
    if deleted == 1 {
        txn.execute(Statement::from_sql_and_values(
            backend,
            drop,
            [Value::from(post_id)],
        ))
        .await?;
    } else if !exists(&txn, post_id, true).await? {
        return Err(Error::NotFound("post not found".into()));
    }
    txn.commit().await?;
    Ok(())
}

/// Whether the post exists (and, unless `hidden_too`, is not hidden with its author).
async fn exists(db: &impl ConnectionTrait, post_id: Uuid, hidden_too: bool) -> Result<bool> {
    Ok(post::Entity::find_by_id(post_id)
        .one(db)
        .await?
        .is_some_and(|p| hidden_too || !p.author_hidden))
}
