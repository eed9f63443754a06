//! Administration: statistics across every store, the account list, the audit trail,
//! and accounts' roles, suspension and erasure. Everything here is for admins, except that
//! a user may erase their own account.

use async_graphql::{Context, Object, Result, ID};

use crate::{
    schema::{
        admin::{AdminStats, AuditEntry, LogEntry, LogLevel},
        auth::RoleValue,
        connection::{connection, Conn},
        context::ContextExt,
        guards::{LoggedIn, RoleGuard},
        ids,
        users::User,
    },
    services::{
        admin::{accounts, audit, erasure, logs, stats},
        auth::{
            admin::{self, Change},
            Role,
        },
        page::{Cursor, Page},
    },
};

#[derive(Default)]
pub(crate) struct AdminQuery;

#[Object]
impl AdminQuery {
    /// Counts from every store, computed now. If one store is down the call fails with
    /// `INTERNAL_SERVER_ERROR` and `extensions.store` naming it, never with zeros.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn admin_stats(&self, ctx: &Context<'_>) -> Result<AdminStats> {
        Ok(AdminStats(stats::compute(ctx.services()?).await?))
    }

    /// Every account, newest first, suspended ones included; `search` matches emails and
    /// display names (case and accents ignored).
    #[graphql(
        guard = "RoleGuard::admin()",
        complexity = "first.unwrap_or(20).clamp(0, 100) as usize * child_complexity"
    )]
    async fn users(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        role: Option<RoleValue>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<User>> {
        let page = Page::new(first, after.as_deref())?;
        let role: Option<Role> = role.map(Into::into);
        let (rows, total) = accounts::list(ctx.services()?, search, role, &page).await?;
        let cursors: Vec<Cursor> = rows
            .iter()
            .map(|a| Cursor {
                at: a.created_at,
                id: a.id,
            })
            .collect();
        let look = ctx.look_ahead();
        let selections = [look.field("nodes"), look.field("edges").field("node")];
        let users = User::load_account_page(ctx, rows, &selections).await?;
        Ok(connection(
            &page,
            cursors.into_iter().zip(users).collect(),
            total,
        ))
    }

    /// The audit trail, newest first; `action` is a mutation's field name.
    #[graphql(
        guard = "RoleGuard::admin()",
        complexity = "first.unwrap_or(20).clamp(0, 100) as usize * child_complexity"
    )]
    async fn audit_trail(
        &self,
        ctx: &Context<'_>,
        actor_id: Option<ID>,
        action: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<AuditEntry>> {
        let page = Page::new(first, after.as_deref())?;
        let filter = audit::TrailFilter {
            actor_id: actor_id.map(|id| ids::parse("actorId", &id)).transpose()?,
            action,
        };
        let (rows, total) = audit::trail(&ctx.services()?.stores.admin, filter, &page).await?;
        let edges = rows
            .into_iter()
            .map(|row| {
                let cursor = Cursor {
                    at: row.at,
                    id: row.id,
                };
                (cursor, AuditEntry(row))
            })
            .collect();
        Ok(connection(&page, edges, total))
    }

    /// WARN and ERROR events the server logged (kept 30 days), newest first.
    #[graphql(
        guard = "RoleGuard::admin()",
        complexity = "first.unwrap_or(20).clamp(0, 100) as usize * child_complexity"
    )]
    async fn admin_logs(
        &self,
        ctx: &Context<'_>,
        level: Option<LogLevel>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<LogEntry>> {
        let page = Page::new(first, after.as_deref())?;
        let level = level.map(LogLevel::as_str);
        let (rows, total) = logs::page(&ctx.services()?.stores.admin, level, &page).await?;
        let edges = rows
            .into_iter()
            .map(|row| {
                let cursor = Cursor {
                    at: row.at,
                    id: row.id,
                };
                (cursor, LogEntry(row))
            })
            .collect();
        Ok(connection(&page, edges, total))
    }
}

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
        ctx.audit_details(serde_json::json!({ "role": role.as_str() }));
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
        ctx.audit_details(serde_json::json!({ "suspended": suspended }));
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
