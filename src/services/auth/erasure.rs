//! The auth domain's part of an account erasure, and the record of every erasure.
//!
//! An erasure starts here, in one auth_db transaction: the account is suspended (it can
//! neither sign in nor pass a session check, and the directory and the feed hide it),
//! every session is revoked, and a row of `erasures` says that the erasure started and
//! how many of its steps are done. The other domains then erase their parts, each step
//! counted when done; the last step, here again, deletes the credentials and sessions
//! and closes the record, in one transaction. The record outlives the account with
//! nothing but its id, so asking again for a finished erasure answers that it is done.

use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use super::{accounts::lock_active_admins, sessions, Role};
use crate::{
    config::Database,
    db::auth::{erasure, login_failure, session, user as account},
    error::{Error, Result},
    services::{
        audit_outbox::{self, Target},
        now, Services,
    },
};

/// Where an erasure stands once asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Standing {
    /// Started (now or earlier), with this many steps done.
    Pending { steps_done: i32 },
    /// Finished earlier: nothing of the account is left.
    Finished,
}

/// True when an erasure of `user_id` was ever started.
pub(crate) async fn started(db: &impl ConnectionTrait, user_id: Uuid) -> Result<bool> {
    Ok(erasure::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .is_some())
}

/// Starts erasing `user_id` (or finds the erasure already under way or done), in one
/// transaction that locks the active admins first: the last active admin cannot be
/// erased (`CONFLICT`), and two erasures of the last two admins cannot both pass. An id
/// that never had an account is `NOT_FOUND`. When it starts, the account is suspended and
/// its sessions revoked in the same transaction, so from its commit the account is no
/// longer usable, whatever happens to the steps after it.
pub(crate) async fn begin(
    services: &Services,
    user_id: Uuid,
    requested_by: Uuid,
) -> Result<Standing> {
    let txn = services.stores.auth.begin().await?;
    let admins = lock_active_admins(&txn).await?;
    // The account row locked, so two requests to erase it take turns here and the second
    // finds the first one's record.
    let target = account::Entity::find_by_id(user_id)
        .lock_exclusive()
        .one(&txn)
        .await?;
    if let Some(record) = erasure::Entity::find_by_id(user_id).one(&txn).await? {
        return Ok(match record.finished_at {
            Some(_) => Standing::Finished,
            None => Standing::Pending {
                steps_done: record.steps_done,
            },
        });
    }
    let target = target.ok_or_else(|| Error::NotFound("user not found".into()))?;
    let active_admin = target.role == Role::Admin.as_str() && !target.suspended;
    if active_admin && admins.len() <= 1 {
        return Err(Error::Conflict(
            "the last active admin cannot be erased".into(),
        ));
    }
    let at = now();
    erasure::ActiveModel {
        user_id: Set(user_id),
        requested_by: Set(Some(requested_by)),
        steps_done: Set(0),
        started_at: Set(at),
        finished_at: Set(None),
    }
    .insert(&txn)
    .await?;
    account::Entity::update_many()
        .col_expr(account::Column::Suspended, Expr::value(true))
        .col_expr(account::Column::UpdatedAt, Expr::value(at))
        .filter(account::Column::Id.eq(user_id))
        .exec(&txn)
        .await?;
    sessions::revoke_all(&txn, user_id, None).await?;
    audit_outbox::stage(&txn, Database::Auth, Target::new("User", user_id)).await?;
    txn.commit().await?;
    services.sessions.forget_user(user_id);
    Ok(Standing::Pending { steps_done: 0 })
}

/// Counts `steps` of `user_id`'s erasure as done (never fewer than already counted, so
/// two runs of one erasure cannot move it back).
pub(crate) async fn steps_done(db: &DatabaseConnection, user_id: Uuid, steps: i32) -> Result<()> {
    erasure::Entity::update_many()
        .col_expr(erasure::Column::StepsDone, Expr::value(steps))
        .filter(erasure::Column::UserId.eq(user_id))
        .filter(erasure::Column::StepsDone.lt(steps))
        .exec(db)
        .await?;
    Ok(())
}

/// The erasures started and not finished, oldest first, with their steps done: what a
/// crash or a failed store left, for the next start to finish.
pub(crate) async fn pending(db: &DatabaseConnection) -> Result<Vec<(Uuid, i32)>> {
    Ok(erasure::Entity::find()
        .filter(erasure::Column::FinishedAt.is_null())
        .order_by_asc(erasure::Column::StartedAt)
        .limit(1_000)
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.user_id, r.steps_done))
        .collect())
}

/// The last step: deletes the credentials and the sessions with their refresh tokens,
/// takes the account's email off the counted sign-in attempts, and closes the record
/// with `steps` done, in one transaction.
pub(crate) async fn finish(services: &Services, user_id: Uuid, steps: i32) -> Result<()> {
    let txn = services.stores.auth.begin().await?;
    if let Some(account) = account::Entity::find_by_id(user_id)
        .lock_exclusive()
        .one(&txn)
        .await?
    {
        // The counted attempts keep counting against their client address until they
        // are pruned (an erasure must not reset a limit), but no longer name the email.
        login_failure::Entity::update_many()
            .col_expr(login_failure::Column::Email, Expr::value(""))
            .filter(login_failure::Column::Email.eq(account.email))
            .exec(&txn)
            .await?;
    }
    // Refresh tokens go with their sessions (foreign key, ON DELETE CASCADE).
    session::Entity::delete_many()
        .filter(session::Column::UserId.eq(user_id))
        .exec(&txn)
        .await?;
    account::Entity::delete_by_id(user_id).exec(&txn).await?;
    erasure::Entity::update_many()
        .col_expr(erasure::Column::StepsDone, Expr::value(steps))
        .col_expr(erasure::Column::FinishedAt, Expr::value(Some(now())))
        .filter(erasure::Column::UserId.eq(user_id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    services.sessions.forget_user(user_id);
    Ok(())
}
