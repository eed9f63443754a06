//! Administration of accounts: roles and suspension. (Statistics, the audit trail and logs
//! arrive with the admin domain.)

use async_graphql::{Context, Object, Result, ID};
use sea_orm::{
    sea_query::Expr, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use crate::{
    db::auth::user as account,
    error::Error,
    schema::{context::ContextExt, guards::RoleGuard, ids, user::User},
    services::{auth::Role, now, profiles::sync_listing, SharedServices},
};

#[derive(Default)]
pub struct AdminMutation;

/// What an admin changes on an account.
enum Change {
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

/// Applies `change` in one auth_db transaction that first locks the active admins, so two
/// admins demoting each other at once cannot leave the platform without one.
async fn apply(services: &SharedServices, id: Uuid, change: Change) -> Result<account::Model> {
    let txn: DatabaseTransaction = services.stores.auth.begin().await.map_err(Error::from)?;
    let admins: Vec<account::Model> = account::Entity::find()
        .filter(account::Column::Role.eq(Role::Admin.as_str()))
        .filter(account::Column::Suspended.eq(false))
        .order_by_asc(account::Column::Id)
        .lock_exclusive()
        .all(&txn)
        .await
        .map_err(Error::from)?;
    let target = account::Entity::find_by_id(id)
        .one(&txn)
        .await
        .map_err(Error::from)?
        .ok_or_else(|| Error::NotFound("user not found".into()))?;
    if change.removes_admin(&target) && admins.len() <= 1 {
        return Err(
            Error::Conflict("the last active admin cannot be demoted or suspended".into()).into(),
        );
    }
    let update = account::Entity::update_many()
        .col_expr(account::Column::UpdatedAt, Expr::value(now()))
        .filter(account::Column::Id.eq(id));
    let update = match change {
        Change::Role(role) => update.col_expr(account::Column::Role, Expr::value(role.as_str())),
        Change::Suspended(s) => update.col_expr(account::Column::Suspended, Expr::value(s)),
    };
    update.exec(&txn).await.map_err(Error::from)?;
    let updated = account::Entity::find_by_id(id)
        .one(&txn)
        .await
        .map_err(Error::from)?
        .ok_or_else(|| Error::NotFound("user not found".into()))?;
    txn.commit().await.map_err(Error::from)?;
    services.sessions.forget_user(id);
    sync_listing(services.clone(), id).await?;
    Ok(updated)
}

#[Object]
impl AdminMutation {
    /// Changes a user's role. Their sessions stay; their tokens carry the new role's rights
    /// within the session cache's lifetime.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn set_user_role(&self, ctx: &Context<'_>, user_id: ID, role: Role) -> Result<User> {
        let services = ctx.data::<SharedServices>()?;
        let id = ids::parse("userId", &user_id)?;
        ctx.audit_target("User", id);
        ctx.audit_details(format!("role -> {}", role.as_str()));
        Ok(User::from_account(
            apply(services, id, Change::Role(role)).await?,
        ))
    }

    /// Suspends (or reinstates) a user: a suspended user cannot log in, their tokens stop
    /// working within the session cache's lifetime, and a suspended coach leaves the
    /// directory.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn suspend_user(&self, ctx: &Context<'_>, user_id: ID, suspended: bool) -> Result<User> {
        let services = ctx.data::<SharedServices>()?;
        let id = ids::parse("userId", &user_id)?;
        ctx.audit_target("User", id);
        ctx.audit_details(if suspended { "suspend" } else { "reinstate" });
        Ok(User::from_account(
            apply(services, id, Change::Suspended(suspended)).await?,
        ))
    }
}
