//! Guards declared on the fields they protect, so reading a resolver tells who may call it.
//! Roles come from the live session (see `services::auth`), never from the token's claim.

use async_graphql::{Context, Guard};

use super::context::ContextExt;
use crate::{error::Error, services::auth::Role};

/// Admits authenticated callers whose role is one of `roles`.
pub(crate) struct RoleGuard {
    roles: &'static [Role],
}

impl RoleGuard {
    pub(crate) const fn any(roles: &'static [Role]) -> RoleGuard {
        RoleGuard { roles }
    }

    pub(crate) const fn admin() -> RoleGuard {
        RoleGuard {
            roles: &[Role::Admin],
        }
    }
}

impl Guard for RoleGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let viewer = ctx.viewer()?;
        if self.roles.contains(&viewer.role) {
            Ok(())
        } else {
            let names: Vec<&str> = self.roles.iter().map(|r| r.as_str()).collect();
            Err(Error::Forbidden(format!("requires role {}", names.join(" or "))).into())
        }
    }
}

/// Admits any authenticated caller.
pub(crate) struct LoggedIn;

impl Guard for LoggedIn {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        ctx.viewer()?;
        Ok(())
    }
}
