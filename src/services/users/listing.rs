//! The coach directory lists a profile only while its owner is an unsuspended COACH.
//! user_db keeps that as `listed` so the directory needs no cross-database join; this
//! re-derives it from the account as the auth domain has it now.

use sea_orm::{
    sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use crate::{
    db::users::coach_profile,
    error::{Error, Result},
    services::{auth, SharedServices},
};

/// Re-derives the `listed` flag of `user_id`'s coach profile, if there is one.
///
/// It runs to completion in a task of its own (a caller that goes away cannot leave the
/// flag stale), with the coach profile row locked while the account is read, so two
/// syncs racing (an upsert's and a suspension's) apply in order and the later read wins.
pub(crate) async fn sync(services: SharedServices, user_id: Uuid) -> Result<()> {
    crate::telemetry::spawn(async move {
        let txn = services.stores.users.begin().await?;
        let locked = coach_profile::Entity::find_by_id(user_id)
            .lock_exclusive()
            .one(&txn)
            .await?;
        if locked.is_none() {
            return Ok(());
        }
        let listed = auth::accounts::find(&services.stores.auth, user_id)
            .await?
            .is_some_and(|a| a.role == auth::Role::Coach.as_str() && !a.suspended);
        coach_profile::Entity::update_many()
            .col_expr(coach_profile::Column::Listed, Expr::value(listed))
            .filter(coach_profile::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    })
    .await
    .map_err(Error::internal)?
}
