//! Accounts and sessions: register, login, refresh rotation, logout, session management.

use async_graphql::{Context, Object, Result, ID};
use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter};

use crate::{
    db::auth::user as account,
    error::Error,
    schema::{
        context::ContextExt,
        guards::LoggedIn,
        ids,
        session::{AuthPayload, Session},
        user::User,
    },
    services::{
        auth::{
            accounts,
            passwords::Hasher,
            ratelimit,
            sessions::{self, ClientInfo},
            Role,
        },
        Services, SharedServices,
    },
};

/// Signs an access token for a session and wraps it with its refresh token.
fn payload(
    services: &Services,
    account: account::Model,
    sid: uuid::Uuid,
    refresh_token: String,
) -> Result<AuthPayload> {
    let role = Role::parse(&account.role).unwrap_or(Role::User);
    let access_token = services
        .tokens
        .issue_access(account.id, role, sid)
        .map_err(Error::internal)?;
    Ok(AuthPayload {
        access_token,
        refresh_token,
        expires_in: services.tokens.access_ttl().as_secs() as i32,
        user: User::signed_in(account),
    })
}

/// The client address the limits count against.
fn client_ip(ctx: &Context<'_>) -> Result<String> {
    Ok(ctx
        .request()?
        .client
        .ip
        .clone()
        .unwrap_or_else(|| "unknown".into()))
}

async fn open_session(ctx: &Context<'_>, account: account::Model) -> Result<AuthPayload> {
    let services = ctx.services()?;
    let client = ctx
        .request()
        .map(|r| r.client.clone())
        .unwrap_or_else(|_| ClientInfo::default());
    let (sid, refresh) = sessions::open(
        &services.stores.auth,
        account.id,
        &client,
        services.config.refresh_token_ttl,
    )
    .await?;
    payload(services, account, sid, refresh)
}

#[derive(Default)]
pub struct AuthQuery;

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
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Creates an account (USER or COACH) and signs it in.
    async fn register(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
        display_name: String,
        #[graphql(default_with = "Some(Role::User)")] role: Option<Role>,
    ) -> Result<AuthPayload> {
        let services = ctx.services()?;
        let role = role.unwrap_or(Role::User);
        if role == Role::Admin {
            return Err(Error::Forbidden(
                "an ADMIN account cannot be registered; an admin grants the role".into(),
            )
            .into());
        }
        let email = accounts::normalize_email(&email)?;
        Hasher::check_policy("password", &password)?;
        let display_name = crate::services::text::bounded("displayName", &display_name, 1, 80)?;
        // Every registration counts against its address, successful or not.
        ratelimit::begin(
            &services.stores.auth,
            ratelimit::register(services.config.registrations_per_address),
            "",
            &client_ip(ctx)?,
        )
        .await?;
        // A taken email is refused before any hashing is spent on it.
        if accounts::find_by_email(services, &email).await?.is_some() {
            return Err(Error::Conflict("an account with this email already exists".into()).into());
        }
        let hash = services.passwords.hash(&password).await?;
        // The two writes run to completion even if the client goes away meanwhile, so a
        // dropped connection cannot stop the undo of a failed second write.
        let shared = ctx.data::<SharedServices>()?.clone();
        let account = tokio::spawn(async move {
            accounts::create(&shared, &email, hash, role, &display_name).await
        })
        .await
        .map_err(Error::internal)??;
        ctx.audit_target("User", account.id);
        ctx.audit_actor(account.id);
        open_session(ctx, account).await
    }

    /// Signs in. Unknown emails and wrong passwords get the same answer in the same time;
    /// repeated failures are rate limited per (email, client address) and per address.
    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> Result<AuthPayload> {
        let services = ctx.services()?;
        let invalid = || Error::Unauthenticated("invalid email or password".into());
        // Bounds first: an oversize or malformed input is refused before any work, and
        // counts as a failed attempt like any other wrong credential.
        let email =
            accounts::normalize_email(&email).unwrap_or_else(|_| email.trim().to_lowercase());
        let email = email.chars().take(254).collect::<String>();
        let ip = client_ip(ctx)?;
        ctx.audit_details(format!("email={email}"));
        let shared = ctx.data::<SharedServices>()?.clone();
        let check = {
            let (email, password) = (email.clone(), password.clone());
            async move {
                // An empty or oversize password is wrong without any hashing.
                if Hasher::check_policy("password", &password).is_err() {
                    return Ok(None);
                }
                let account = accounts::find_by_email(&shared, &email).await?;
                let verified = shared
                    .passwords
                    .verify(
                        &password,
                        account.as_ref().map(|a| a.password_hash.as_str()),
                    )
                    .await?;
                Ok(account
                    .filter(|_| verified.ok)
                    .map(|a| (a, verified.needs_rehash)))
            }
        };
        let checked = ratelimit::guarded(
            services.stores.auth.clone(),
            ratelimit::LOGIN,
            email,
            ip,
            check,
        )
        .await?;
        let Some((account, needs_rehash)) = checked else {
            return Err(invalid().into());
        };
        ctx.audit_target("User", account.id);
        ctx.audit_actor(account.id);
        if account.suspended {
            return Err(Error::Forbidden("this account is suspended".into()).into());
        }
        if needs_rehash {
            let hash = services.passwords.hash(&password).await?;
            account::Entity::update_many()
                .col_expr(account::Column::PasswordHash, Expr::value(hash))
                .filter(account::Column::Id.eq(account.id))
                .exec(&services.stores.auth)
                .await
                .map_err(Error::from)?;
        }
        open_session(ctx, account).await
    }

    /// Exchanges a refresh token for a new pair. The old token is spent; presenting it
    /// again later revokes the session.
    async fn refresh_token(&self, ctx: &Context<'_>, refresh_token: String) -> Result<AuthPayload> {
        let services = ctx.services()?;
        let (session, new_refresh) = sessions::rotate(
            &services.stores.auth,
            &refresh_token,
            services.config.refresh_reuse_grace,
            &services.sessions,
        )
        .await?;
        ctx.audit_target("Session", session.id);
        ctx.audit_actor(session.user_id);
        let account = account::Entity::find_by_id(session.user_id)
            .one(&services.stores.auth)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::Unauthenticated("invalid refresh token".into()))?;
        if account.suspended {
            return Err(Error::Forbidden("this account is suspended".into()).into());
        }
        payload(services, account, session.id, new_refresh)
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
        let (user_id, sid) = match refresh_token {
            Some(token) => {
                let session = sessions::session_of_refresh(&services.stores.auth, &token)
                    .await?
                    .ok_or_else(|| Error::Unauthenticated("invalid refresh token".into()))?;
                (session.user_id, session.id)
            }
            None => {
                let viewer = ctx.viewer()?;
                (viewer.user_id, viewer.session_id)
            }
        };
        ctx.audit_target("Session", sid);
        ctx.audit_actor(user_id);
        if all_sessions.unwrap_or(false) {
            sessions::revoke_all(&services.stores.auth, user_id, None).await?;
            services.sessions.forget_user(user_id);
        } else {
            sessions::revoke_session(&services.stores.auth, sid).await?;
            services.sessions.forget_session(sid);
        }
        Ok(true)
    }

    /// Revokes one of the caller's own sessions.
    #[graphql(guard = "LoggedIn")]
    async fn revoke_session(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let services = ctx.services()?;
        let viewer = ctx.viewer()?;
        let sid = ids::parse("id", &id)?;
        ctx.audit_target("Session", sid);
        if !sessions::revoke_own(&services.stores.auth, viewer.user_id, sid).await? {
            return Err(Error::NotFound("no such active session".into()).into());
        }
        services.sessions.forget_session(sid);
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
        let services = ctx.services()?;
        let viewer = ctx.viewer()?;
        ctx.audit_target("User", viewer.user_id);
        Hasher::check_policy("newPassword", &new_password)?;
        let account = account::Entity::find_by_id(viewer.user_id)
            .one(&services.stores.auth)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::NotFound("user not found".into()))?;
        // A wrong current password is a password guess: it counts like a failed login.
        let shared = ctx.data::<SharedServices>()?.clone();
        let stored = account.password_hash.clone();
        let check = async move {
            let verified = shared
                .passwords
                .verify(&current_password, Some(&stored))
                .await?;
            Ok(verified.ok.then_some(()))
        };
        let checked = ratelimit::guarded(
            services.stores.auth.clone(),
            ratelimit::LOGIN,
            account.email.clone(),
            client_ip(ctx)?,
            check,
        )
        .await?;
        if checked.is_none() {
            return Err(
                Error::bad_input("currentPassword", "the current password is wrong").into(),
            );
        }
        let hash = services.passwords.hash(&new_password).await?;
        account::Entity::update_many()
            .col_expr(account::Column::PasswordHash, Expr::value(hash))
            .col_expr(
                account::Column::UpdatedAt,
                Expr::value(crate::services::now()),
            )
            .filter(account::Column::Id.eq(viewer.user_id))
            .exec(&services.stores.auth)
            .await
            .map_err(Error::from)?;
        sessions::revoke_all(
            &services.stores.auth,
            viewer.user_id,
            Some(viewer.session_id),
        )
        .await?;
        services.sessions.forget_user(viewer.user_id);
        Ok(true)
    }
}
