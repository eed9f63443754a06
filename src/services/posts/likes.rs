//! Likes: one per user and post, whatever the number of concurrent requests. The primary
//! key (post, user) settles races: the insert does nothing when the like exists, and the
//! post's `like_count` moves only when a row was really inserted or deleted, in the same
//! transaction.
//!
//! Both lock the post before touching its likes, in the order a post's delete takes
//! them (the post, then its likes): a like racing with the delete waits for it and finds
//! no post, instead of deadlocking with it or failing on the foreign key.

use sea_orm::{ConnectionTrait, DatabaseTransaction, Statement, TransactionTrait, Value};
use uuid::Uuid;

use crate::{
    config::Database,
    error::{Error, Result},
    services::{
        audit_outbox::{self, Target},
        auth::Viewer,
        now, SharedServices,
    },
};

/// Adds `viewer`'s like to `post_id`; liking twice changes nothing. `NOT_FOUND` when the
/// post does not exist, or is hidden with its suspended author (admins excepted).
pub(crate) async fn like(services: &SharedServices, viewer: &Viewer, post_id: Uuid) -> Result<()> {
    let user = viewer.user_id;
    let sees_hidden = viewer.is_admin();
    let db = &services.stores.posts;
    let backend = db.get_database_backend();
    let txn = db.begin().await?;
    match lock_post(&txn, post_id).await? {
        Some(hidden) if !hidden || sees_hidden => {}
        _ => return Err(Error::NotFound("post not found".into())),
    }
    let (insert, bump) = match backend {
        sea_orm::DbBackend::Postgres => (
            "INSERT INTO likes (post_id, user_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            "UPDATE posts SET like_count = like_count + 1 WHERE id = $1",
        ),
        _ => (
            "INSERT INTO likes (post_id, user_id, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            "UPDATE posts SET like_count = like_count + 1 WHERE id = ?1",
        ),
    };
    let inserted = txn
        .execute(Statement::from_sql_and_values(
            backend,
            insert,
            [Value::from(post_id), Value::from(user), Value::from(now())],
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
    }
    audit_outbox::stage(&txn, Database::Posts, Target::new("Post", post_id)).await?;
    txn.commit().await?;
    Ok(())
}

/// Takes `viewer`'s like off `post_id`; unliking twice changes nothing. `NOT_FOUND`
/// when the post does not exist, or is hidden with its suspended author (admins
/// excepted), as for a like: a post the caller cannot read does not change.
pub(crate) async fn unlike(
    services: &SharedServices,
    viewer: &Viewer,
    post_id: Uuid,
) -> Result<()> {
    let user = viewer.user_id;
    let db = &services.stores.posts;
    let backend = db.get_database_backend();
    let txn = db.begin().await?;
    match lock_post(&txn, post_id).await? {
        Some(hidden) if !hidden || viewer.is_admin() => {}
        _ => return Err(Error::NotFound("post not found".into())),
    }
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
    }
    audit_outbox::stage(&txn, Database::Posts, Target::new("Post", post_id)).await?;
    txn.commit().await?;
    Ok(())
}

/// Locks the post for the rest of `txn` (on PostgreSQL; the embedded database runs one
/// transaction at a time) and answers whether it is hidden with its author; `None` when
/// there is no such post (or it was deleted while this waited).
pub(super) async fn lock_post(txn: &DatabaseTransaction, post_id: Uuid) -> Result<Option<bool>> {
    let backend = txn.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => {
            "SELECT author_hidden FROM posts WHERE id = $1 FOR NO KEY UPDATE"
        }
        _ => "SELECT author_hidden FROM posts WHERE id = ?1",
    };
    let row = txn
        .query_one(Statement::from_sql_and_values(
            backend,
            sql,
            [Value::from(post_id)],
        ))
        .await?;
    Ok(match row {
        Some(row) => Some(row.try_get("", "author_hidden")?),
        None => None,
    })
}
