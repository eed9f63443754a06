//! What an admin changes on an account: its role and its suspension. Both are auth_db
//! writes (so they live here, not in the admin domain), and both re-derive the coach
//! directory's listing flag through the users domain afterwards (a suspension also the
//! feed's hiding of the account's posts, through the posts domain).

use sea_orm::{
    sea_query::{Expr, LikeExpr},
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use super::Role;
use crate::{
    config::Database,
    db::auth::user as account,
    error::{Error, Result},
    services::{
        appointments::booking,
        audit_outbox::{self, Target},
        now,
        page::Page,
        posts::hiding,
        users::listing,
        SharedServices,
    },
};

/// A change an admin makes to an account.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Change {
    Role(Role),
    Suspended(bool),
}

impl Change {
    /// True when the change takes an active admin away.
    fn removes_admin(&self, target: &account::Model) -> bool {
        let active_admin = target.role == Role::Admin.as_str() && !target.suspended;
        active_admin
            && match self {
                Change::Role(role) => *role != Role::Admin,
                Change::Suspended(s) => *s,
            }
    }
}

/// Applies `change` to account `id` in one auth_db transaction that first locks the
/// active admins, so two admins demoting each other at once cannot leave the platform
/// without one (`CONFLICT`). The account's cached sessions are forgotten, so the change
/// reaches its open tokens at once on this replica.
pub(crate) async fn apply(
    services: &SharedServices,
    id: Uuid,
    change: Change,
) -> Result<account::Model> {
    let txn = services.stores.auth.begin().await?;
    let admins = super::accounts::lock_active_admins(&txn).await?;
    let target = account::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| Error::NotFound("user not found".into()))?;
    // An account being erased is as good as gone: reinstating it or changing its role
    // would hand a half-erased account back.
    if super::erasure::started(&txn, id).await? {
        return Err(Error::NotFound("user not found".into()));
    }
    if change.removes_admin(&target) && admins.len() <= 1 {
        return Err(Error::Conflict(
            "the last active admin cannot be demoted or suspended".into(),
        ));
    }
    let update = account::Entity::update_many()
        .col_expr(account::Column::UpdatedAt, Expr::value(now()))
        .filter(account::Column::Id.eq(id));
    let update = match change {
        Change::Role(role) => update.col_expr(account::Column::Role, Expr::value(role.as_str())),
        Change::Suspended(s) => update.col_expr(account::Column::Suspended, Expr::value(s)),
    };
    update.exec(&txn).await?;
    let updated = account::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| Error::NotFound("user not found".into()))?;
    audit_outbox::stage(&txn, Database::Auth, Target::new("User", id)).await?;
    txn.commit().await?;
    services.sessions.forget_user(id);
    listing::sync(services.clone(), id).await?;
    // A suspended coach's future appointments are cancelled (their parties hear of it).
    if let Change::Suspended(true) = change {
        booking::cancel_for_suspended_coach(services, id).await?;
    }
    // A suspended author's posts leave the feed; reinstated, they come back.
    if matches!(change, Change::Suspended(_)) {
        hiding::sync(services.clone(), id).await?;
    }
    Ok(updated)
}

/// What the admin account list is asked for.
#[derive(Clone, Debug, Default)]
pub(crate) struct AccountFilter {
    /// A `LIKE` pattern the email must match (already escaped), or…
    pub(crate) email_pattern: Option<String>,
    /// …one of these ids (users whose display name matched, found in user_db).
    pub(crate) or_ids: Vec<Uuid>,
    pub(crate) role: Option<Role>,
}

/// One page of accounts, newest first, suspended ones included, and how many match.
pub(crate) async fn list(
    db: &DatabaseConnection,
    filter: AccountFilter,
    page: &Page,
) -> Result<(Vec<account::Model>, i64)> {
    let mut query = account::Entity::find();
    if let Some(pattern) = filter.email_pattern {
        let mut matches = Condition::any()
            .add(Expr::col(account::Column::Email).like(LikeExpr::new(pattern).escape('\\')));
        if !filter.or_ids.is_empty() {
            matches = matches.add(account::Column::Id.is_in(filter.or_ids));
        }
        query = query.filter(matches);
    }
    if let Some(role) = filter.role {
        query = query.filter(account::Column::Role.eq(role.as_str()));
    }
    let total = query.clone().count(db).await? as i64;
    let rows = query
        .filter(page.after_desc(account::Column::CreatedAt, account::Column::Id))
        .order_by_desc(account::Column::CreatedAt)
        .order_by_desc(account::Column::Id)
        .limit(page.limit())
        .all(db)
        .await?;
    Ok((rows, total))
}
