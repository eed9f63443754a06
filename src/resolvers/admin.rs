//! Administration of accounts: roles and suspension. (Statistics, the audit trail and logs
//! arrive with the admin domain.)

use async_graphql::{Context, Object, Result, ID};
use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::{
    db::{auth::user as account, users::coach_profile},
    error::Error,
    schema::{context::ContextExt, guards::RoleGuard, ids, user::User},
    services::{auth::Role, Services},
};

#[derive(Default)]
pub struct AdminMutation;

async fn load(services: &Services, id: uuid::Uuid) -> Result<account::Model> {
    account::Entity::find_by_id(id)
        .one(&services.stores.auth)
        .await
        .map_err(Error::from)?
        .ok_or_else(|| Error::NotFound("user not found".into()).into())
}

/// Refuses to leave the platform without an active admin.
async fn keep_an_admin(services: &Services, target: &account::Model) -> Result<()> {
    if target.role != Role::Admin.as_str() || target.suspended {
        return Ok(());
    }
    let admins = account::Entity::find()
        .filter(account::Column::Role.eq(Role::Admin.as_str()))
        .filter(account::Column::Suspended.eq(false))
        .count(&services.stores.auth)
        .await
        .map_err(Error::from)?;
    if admins <= 1 {
        return Err(
            Error::Conflict("the last active admin cannot be demoted or suspended".into()).into(),
        );
    }
    Ok(())
}

/// The coach directory lists a profile only while its owner is an unsuspended COACH;
/// user_db keeps that as `listed` so the directory needs no cross-database join.
async fn sync_listing(services: &Services, target: &account::Model) -> Result<()> {
    let listed = target.role == Role::Coach.as_str() && !target.suspended;
    coach_profile::Entity::update_many()
        .col_expr(coach_profile::Column::Listed, Expr::value(listed))
        .filter(coach_profile::Column::UserId.eq(target.id))
        .exec(&services.stores.users)
        .await
        .map_err(Error::from)?;
    Ok(())
}

#[Object]
impl AdminMutation {
    /// Changes a user's role. Their sessions stay; their tokens carry the new role's rights
    /// within the session cache's lifetime.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn set_user_role(&self, ctx: &Context<'_>, user_id: ID, role: Role) -> Result<User> {
        let services = ctx.services()?;
        let id = ids::parse("userId", &user_id)?;
        ctx.audit_target("User", id);
        let target = load(services, id).await?;
        if role != Role::Admin {
            keep_an_admin(services, &target).await?;
        }
        ctx.audit_details(format!("{} -> {}", target.role, role.as_str()));
        account::Entity::update_many()
            .col_expr(account::Column::Role, Expr::value(role.as_str()))
            .col_expr(
                account::Column::UpdatedAt,
                Expr::value(crate::services::now()),
            )
            .filter(account::Column::Id.eq(id))
            .exec(&services.stores.auth)
            .await
            .map_err(Error::from)?;
        services.sessions.forget_user(id);
        let updated = load(services, id).await?;
        sync_listing(services, &updated).await?;
        Ok(User::from_account(updated))
    }

    /// Suspends (or reinstates) a user: a suspended user cannot log in, their tokens stop
    /// working within the session cache's lifetime, and a suspended coach leaves the
    /// directory.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn suspend_user(&self, ctx: &Context<'_>, user_id: ID, suspended: bool) -> Result<User> {
        let services = ctx.services()?;
        let id = ids::parse("userId", &user_id)?;
        ctx.audit_target("User", id);
        ctx.audit_details(if suspended { "suspend" } else { "reinstate" });
        let target = load(services, id).await?;
        if suspended {
            keep_an_admin(services, &target).await?;
        }
        account::Entity::update_many()
            .col_expr(account::Column::Suspended, Expr::value(suspended))
            .col_expr(
                account::Column::UpdatedAt,
                Expr::value(crate::services::now()),
            )
            .filter(account::Column::Id.eq(id))
            .exec(&services.stores.auth)
            .await
            .map_err(Error::from)?;
        services.sessions.forget_user(id);
        let updated = load(services, id).await?;
        sync_listing(services, &updated).await?;
        Ok(User::from_account(updated))
    }
}
