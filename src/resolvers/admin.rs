//! Administration of accounts: roles, suspension and erasure. (Statistics, the audit
//! trail and logs arrive with the admin domain.)

use async_graphql::{Context, Object, Result, ID};

use crate::{
    schema::{
        auth::RoleValue,
        context::ContextExt,
        guards::{LoggedIn, RoleGuard},
        ids,
        users::User,
    },
    services::{
        admin::erasure,
        auth::{
            admin::{self, Change},
            Role,
        },
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

    /// Erases an account across every database and the media store: an admin erases
    /// anyone but the last active admin (`CONFLICT`), a user erases themself. Its sessions
    /// end at once; only the audit trail keeps its id. An id that never had an account is
    /// `NOT_FOUND`; erasing an erased account again answers true. An erasure interrupted by
    /// a failing store answers the error and resumes with the next call (or the next start).
    #[graphql(guard = "LoggedIn")]
    async fn delete_user(&self, ctx: &Context<'_>, user_id: ID) -> Result<bool> {
        let id = ids::parse("userId", &user_id)?;
        ctx.audit_target("User", id);
        let viewer = ctx.viewer()?;
        Ok(erasure::delete_user(ctx.services()?, viewer, id).await?)
    }
}
