//! A suspended or erased author's posts leave the feed. post_db keeps that as
//! `posts.author_hidden` so the feed needs no cross-database join; this re-derives it
//! from the account as the auth domain has it now, after a suspension changes and after
//! a post is created (a suspension racing with the post is seen then).

use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    TransactionTrait,
};
use uuid::Uuid;

use crate::{
    db::posts::post,
    error::{Error, Result},
    services::{auth, SharedServices},
};

/// Re-derives `author_hidden` on every post of `user_id`: hidden while the account is
/// suspended or gone. Runs to completion in a task of its own, so a caller that goes
/// away cannot leave the flag stale. Syncs of one author run one after the other (a
/// transaction-scoped advisory lock on PostgreSQL; the embedded database has a single
/// connection), each reading the account under the lock, so a suspension and a
/// reinstatement racing apply in order and the later read wins.
pub(crate) async fn sync(services: SharedServices, user_id: Uuid) -> Result<()> {
    crate::telemetry::spawn(async move {
        let db = &services.stores.posts;
        let txn = db.begin().await?;
        if db.get_database_backend() == DbBackend::Postgres {
            crate::db::advisory_xact_lock(&txn, user_id).await?;
        }
        let hidden = auth::accounts::find(&services.stores.auth, user_id)
            .await?
            .is_none_or(|a| a.suspended);
        post::Entity::update_many()
            .col_expr(post::Column::AuthorHidden, Expr::value(hidden))
            .filter(post::Column::AuthorId.eq(user_id))
            .filter(post::Column::AuthorHidden.ne(hidden))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    })
    .await
    .map_err(Error::internal)?
}
