//! Comments: any signed-in user may comment; a comment may be deleted by its author, the
//! post's author or an admin. The post's `comment_count` moves in the same transaction.

use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, Statement,
    TransactionTrait,
};
use uuid::Uuid;

use super::COMMENT_MAX;
use crate::{
    config::Database,
    db::posts::{comment, post},
    error::{Error, Result},
    services::{
        audit_outbox::{self, Target},
        auth::Viewer,
        now, text, SharedServices,
    },
};

/// Adds `viewer`'s comment to `post_id`. `NOT_FOUND` when the post does not exist, or is
/// hidden with its suspended author (admins excepted).
pub(crate) async fn add(
    services: &SharedServices,
    viewer: &Viewer,
    post_id: Uuid,
    body: &str,
) -> Result<comment::Model> {
    let author = viewer.user_id;
    let body = text::bounded("body", body, 1, COMMENT_MAX)?;
    let txn = services.stores.posts.begin().await?;
    // The count first: it locks the post, so a delete of the post waits for this comment
    // (and deletes it) instead of leaving it behind.
    let mut bump = post::Entity::update_many()
        .col_expr(
            post::Column::CommentCount,
            Expr::col(post::Column::CommentCount).add(1),
        )
        .filter(post::Column::Id.eq(post_id));
    if !viewer.is_admin() {
        bump = bump.filter(post::Column::AuthorHidden.eq(false));
    }
    let bumped = bump.exec(&txn).await?.rows_affected;
    if bumped == 0 {
        return Err(Error::NotFound("post not found".into()));
    }
    let row = comment::Model {
        id: Uuid::now_v7(),
        post_id,
        author_id: author,
        body,
        created_at: now(),
    };
    comment::Entity::insert(comment::ActiveModel {
        id: Set(row.id),
        post_id: Set(row.post_id),
        author_id: Set(row.author_id),
        body: Set(row.body.clone()),
        created_at: Set(row.created_at),
    })
    .exec_without_returning(&txn)
    .await?;
    audit_outbox::stage(&txn, Database::Posts, Target::new("Comment", row.id)).await?;
    txn.commit().await?;
    Ok(row)
}

/// Deletes a comment: its author, the post's author or an admin may. `NOT_FOUND` when
/// there is none, `FORBIDDEN` for anyone else.
pub(crate) async fn delete(services: &SharedServices, viewer: &Viewer, id: Uuid) -> Result<()> {
    let db = &services.stores.posts;
    let backend = db.get_database_backend();
    let txn = db.begin().await?;
    // The comment with its post's author, the post locked (PostgreSQL) first and alone,
    // in the order a post's delete takes them (the post, then its comments), so the two
    // never deadlock; a comment deleted meanwhile is seen by the delete below.
    let lock = if backend == sea_orm::DbBackend::Postgres {
        " FOR NO KEY UPDATE OF p"
    } else {
        ""
    };
    let placeholder = if backend == sea_orm::DbBackend::Postgres {
        "$1"
    } else {
        "?"
    };
    let found = txn
        .query_one(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT c.post_id AS post_id, c.author_id AS author_id, p.author_id AS post_author_id \
                 FROM comments c JOIN posts p ON p.id = c.post_id WHERE c.id = {placeholder}{lock}"
            ),
            [sea_orm::Value::from(id)],
        ))
        .await?
        .ok_or_else(|| Error::NotFound("comment not found".into()))?;
    let post_id: Uuid = found.try_get("", "post_id")?;
    let author: Uuid = found.try_get("", "author_id")?;
    let post_author: Uuid = found.try_get("", "post_author_id")?;
    if viewer.user_id != author && viewer.user_id != post_author && !viewer.is_admin() {
        return Err(Error::Forbidden(
            "only its author, the post's author or an admin may delete a comment".into(),
        ));
    }
    let deleted = comment::Entity::delete_by_id(id)
        .exec(&txn)
        .await?
        .rows_affected;
    if deleted == 0 {
        return Err(Error::NotFound("comment not found".into()));
    }
    post::Entity::update_many()
        .col_expr(
            post::Column::CommentCount,
            Expr::col(post::Column::CommentCount).sub(1),
        )
        .filter(post::Column::Id.eq(post_id))
        .exec(&txn)
        .await?;
    audit_outbox::stage(&txn, Database::Posts, Target::new("Comment", id)).await?;
    txn.commit().await?;
    Ok(())
}
