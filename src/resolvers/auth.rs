//! Accounts and sessions: register, login, refresh rotation, logout, session management.

use async_graphql::{Context, Object, Result, ID};

use crate::{
    schema::{
        auth::{AuthPayload, RoleValue, Session},
        context::ContextExt,
        guards::LoggedIn,
        ids,
        users::User,
    },
    services::auth::{
        sessions,
        signin::{self, Registration},
    },
};

#[derive(Default)]
pub(crate) struct AuthQuery;

#[Object]
impl AuthQuery {
    /// The caller, or null when anonymous.
    async fn me(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        Ok(ctx.optional_viewer()?.map(|v| User::new(v.user_id)))
    }

    /// The caller's active sessions, newest first.
    #[graphql(guard = "LoggedIn")]
    async fn my_sessions(&self, ctx: &Context<'_>) -> Result<Vec<Session>> {
        let viewer = ctx.viewer()?;
        let rows = sessions::active(&ctx.services()?.stores.auth, viewer.user_id).await?;
        Ok(rows
            .into_iter()
            .map(|row| Session {
                current: row.id == viewer.session_id,
                row,
            })
            .collect())
    }
}

#[derive(Default)]
pub(crate) struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Creates an account (USER or COACH) and signs it in.
    async fn register(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
        display_name: String,
        #[graphql(default_with = "Some(RoleValue::User)")] role: Option<RoleValue>,
    ) -> Result<AuthPayload> {
        let input = Registration {
            email,
            password,
            display_name,
            role: role.unwrap_or(RoleValue::User).into(),
        };
        let signed = signin::register(ctx.services()?, &ctx.request()?.client, input).await?;
        ctx.audit_target("User", signed.account.id);
        ctx.audit_actor(signed.account.id);
        Ok(signed.into())
    }

    /// Signs in. Unknown emails and wrong passwords get the same answer in the same time;
    /// repeated failures are rate limited per (email, client address) and per address.
    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> Result<AuthPayload> {
        ctx.audit_details(serde_json::json!({
            "email": email
                .trim()
                .to_lowercase()
                .chars()
                .take(254)
                .map(|c| if c == '\0' { '\u{fffd}' } else { c })
                .collect::<String>()
        }));
        let signed = signin::login(
            ctx.services()?,
            &ctx.request()?.client,
            &email,
            password,
            |account| {
                ctx.audit_target("User", account.id);
                ctx.audit_actor(account.id);
            },
        )
        .await?;
        Ok(signed.into())
    }

    /// Exchanges a refresh token for a new pair. The old token is spent; presenting it
    /// again later revokes the session.
    async fn refresh_token(&self, ctx: &Context<'_>, refresh_token: String) -> Result<AuthPayload> {
        let signed = signin::refresh(ctx.services()?, &refresh_token, |sid, user| {
            ctx.audit_target("Session", sid);
            ctx.audit_actor(user);
        })
        .await?;
        Ok(signed.into())
    }

    /// Ends the current session (or all of the user's sessions). Works with the access
    /// token, or with the refresh token alone when the access token has expired.
    async fn logout(
        &self,
        ctx: &Context<'_>,
        refresh_token: Option<String>,
        #[graphql(default_with = "Some(false)")] all_sessions: Option<bool>,
    ) -> Result<bool> {
        let services = ctx.services()?;
        let (user_id, sid) =
            signin::logout_target(services, refresh_token.as_deref(), || ctx.viewer().cloned())
                .await?;
        ctx.audit_target("Session", sid);
        ctx.audit_actor(user_id);
        signin::logout(services, user_id, sid, all_sessions.unwrap_or(false)).await?;
        Ok(true)
    }

    /// Revokes one of the caller's own sessions.
    #[graphql(guard = "LoggedIn")]
    async fn revoke_session(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let sid = ids::parse("id", &id)?;
        ctx.audit_target("Session", sid);
        signin::revoke_own(ctx.services()?, ctx.viewer()?, sid).await?;
        Ok(id)
    }

    /// Changes the caller's password and revokes every other session.
    #[graphql(guard = "LoggedIn")]
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> Result<bool> {
        let viewer = ctx.viewer()?;
        ctx.audit_target("User", viewer.user_id);
        signin::change_password(
            ctx.services()?,
            &ctx.request()?.client,
            viewer,
            current_password,
            &new_password,
        )
        .await?;
        Ok(true)
    }
}
