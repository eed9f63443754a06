//! Administration of accounts: roles and suspension. (Statistics, the audit trail and logs
//! arrive with the admin domain.)

use async_graphql::{Context, Object, Result, ID};

use crate::{
    schema::{auth::RoleValue, context::ContextExt, guards::RoleGuard, ids, users::User},
    services::auth::{
        admin::{self, Change},
        Role,
    },
};

#[derive(Default)]
pub(crate) struct AdminMutation;

#[Object]
impl AdminMutation {
    /// Changes a user's role. Their sessions stay; their tokens carry the new role's rights
    /// within the session cache's lifetime.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn set_user_role(&self, ctx: &Context<'_>, user_id: ID, role: RoleValue) -> Result<User> {
        let role: Role = role.into();
        let id = ids::parse("userId", &user_id)?;
        ctx.audit_target("User", id);
        ctx.audit_details(format!("role -> {}", role.as_str()));
        let account = admin::apply(ctx.services()?, id, Change::Role(role)).await?;
        Ok(User::from_account(account))
    }

    /// Suspends (or reinstates) a user: a suspended user cannot log in, their tokens stop
    /// working within the session cache's lifetime, and a suspended coach leaves the
    /// directory.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn suspend_user(&self, ctx: &Context<'_>, user_id: ID, suspended: bool) -> Result<User> {
        let id = ids::parse("userId", &user_id)?;
        ctx.audit_target("User", id);
        ctx.audit_details(if suspended { "suspend" } else { "reinstate" });
        let account = admin::apply(ctx.services()?, id, Change::Suspended(suspended)).await?;
        Ok(User::from_account(account))
    }
}
