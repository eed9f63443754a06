//! The account flows behind the auth mutations: registration, login, refresh rotation,
//! logout and password change. Each is one function the resolver calls; what it answers
//! carries what the audit trail names (the account, the session).

use sea_orm::TransactionTrait;
use uuid::Uuid;

use super::{accounts, passwords::Hasher, ratelimit, sessions, sessions::ClientInfo, Role, Viewer};
use crate::{
    config::Database,
    db::auth::user as account,
    error::{Error, Result},
    services::{
        audit_outbox::{self, Target},
        text,
        users::rules::DISPLAY_NAME_MAX,
        SharedServices,
    },
};

/// A session just opened (or rotated): the tokens a client keeps, and whose they are.
pub(crate) struct SignedIn {
    pub(crate) account: account::Model,
    pub(crate) access_token: String,
    pub(crate) refresh_token: String,
    /// Seconds until the access token expires.
    pub(crate) expires_in: i32,
}

/// Signs an access token for `session_id` and pairs it with its refresh token.
fn signed_in(
    services: &SharedServices,
    account: account::Model,
    session_id: Uuid,
    refresh_token: String,
) -> Result<SignedIn> {
    let role = Role::parse(&account.role).unwrap_or(Role::User);
    let access_token = services
        .tokens
        .issue_access(account.id, role, session_id)
        .map_err(Error::internal)?;
    Ok(SignedIn {
        account,
        access_token,
        refresh_token,
        expires_in: i32::try_from(services.tokens.access_ttl().as_secs()).unwrap_or(i32::MAX),
    })
}

/// Opens a session for `account`, the change of a login (and the last of a
/// registration), with the mutation's audit entry.
async fn open_session(
    services: &SharedServices,
    account: account::Model,
    client: &ClientInfo,
) -> Result<SignedIn> {
    let txn = services.stores.auth.begin().await?;
    let (sid, refresh) =
        sessions::open(&txn, account.id, client, services.config.refresh_token_ttl).await?;
    let target = Target::new("User", account.id).by(account.id);
    audit_outbox::stage(&txn, Database::Auth, target).await?;
    txn.commit().await?;
    signed_in(services, account, sid, refresh)
}

/// The client address the limits count against.
fn address(client: &ClientInfo) -> String {
    client.ip.clone().unwrap_or_else(|| "unknown".into())
}

/// What `register` asks for.
pub(crate) struct Registration {
    pub(crate) email: String,
    pub(crate) password: String,
    pub(crate) display_name: String,
    pub(crate) role: Role,
}

/// Creates an account (USER or COACH) and signs it in. Every attempt counts against the
/// client address; a taken email is refused before any hashing is spent on it.
pub(crate) async fn register(
    services: &SharedServices,
    client: &ClientInfo,
    input: Registration,
) -> Result<SignedIn> {
    if input.role == Role::Admin {
        return Err(Error::Forbidden(
            "an ADMIN account cannot be registered; an admin grants the role".into(),
        ));
    }
    let email = accounts::normalize_email(&input.email)?;
    Hasher::check_policy("password", &input.password)?;
    let display_name = text::bounded("displayName", &input.display_name, 1, DISPLAY_NAME_MAX)?;
    ratelimit::begin(
        &services.stores.auth,
        ratelimit::register(services.config.registrations_per_address),
        "",
        &address(client),
    )
    .await?;
    if accounts::find_by_email(services, &email).await?.is_some() {
        return Err(Error::Conflict(
            "an account with this email already exists".into(),
        ));
    }
    let hash = services.passwords.hash(&input.password).await?;
    // The two writes run to completion even if the client goes away meanwhile, so a
    // dropped connection cannot stop the undo of a failed second write; they stage the
    // mutation's audit entry all the same.
    let shared = services.clone();
    let role = input.role;
    let account = crate::telemetry::spawn(audit_outbox::carried(async move {
        accounts::create(&shared, &email, hash, role, &display_name).await
    }))
    .await
    .map_err(Error::internal)??;
    open_session(services, account, client).await
}

/// Signs in. Unknown emails and wrong passwords get the same answer in the same time;
/// failures are rate limited per (email, client address) and per address. `tried` is
/// told the account whose password matched, before any later refusal (suspension), so
/// the audit trail names it.
pub(crate) async fn login(
    services: &SharedServices,
    client: &ClientInfo,
    email: &str,
    password: String,
    tried: impl FnOnce(&account::Model),
) -> Result<SignedIn> {
    // Bounds first: an oversize or malformed input is refused before any work, and counts
    // as a failed attempt like any other wrong credential.
    let email = accounts::normalize_email(email).unwrap_or_else(|_| email.trim().to_lowercase());
    // PostgreSQL text holds no NUL: such an email (no account has one) is kept, visibly
    // replaced, so the attempt is counted and refused like any other unknown email.
    let email = email
        .chars()
        .take(254)
        .map(|c| if c == '\0' { '\u{fffd}' } else { c })
        .collect::<String>();
    let shared = services.clone();
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
        address(client),
        check,
    )
    .await?;
    let Some((account, needs_rehash)) = checked else {
        return Err(Error::Unauthenticated("invalid email or password".into()));
    };
    tried(&account);
    if account.suspended {
        return Err(Error::Forbidden("this account is suspended".into()));
    }
    if needs_rehash {
        let hash = services.passwords.hash(&password).await?;
        accounts::set_password_hash(&services.stores.auth, account.id, hash).await?;
    }
    open_session(services, account, client).await
}

/// Exchanges a refresh token for a new pair; the old token is spent, and presenting it
/// again later revokes the session. `rotated` is told the session before any later
/// refusal, for the audit trail.
pub(crate) async fn refresh(
    services: &SharedServices,
    refresh_token: &str,
    rotated: impl FnOnce(Uuid, Uuid),
) -> Result<SignedIn> {
    let (session, new_refresh) = sessions::rotate(
        &services.stores.auth,
        refresh_token,
        services.config.refresh_reuse_grace,
        &services.sessions,
    )
    .await?;
    rotated(session.id, session.user_id);
    let account = accounts::find(&services.stores.auth, session.user_id)
        .await?
        .ok_or_else(|| Error::Unauthenticated("invalid refresh token".into()))?;
    if account.suspended {
        return Err(Error::Forbidden("this account is suspended".into()));
    }
    signed_in(services, account, session.id, new_refresh)
}

/// The session a `logout` ends: named by the refresh token when one is given (the access
/// token may have expired), else the caller's own.
pub(crate) async fn logout_target(
    services: &SharedServices,
    refresh_token: Option<&str>,
    viewer: impl FnOnce() -> Result<Viewer>,
) -> Result<(Uuid, Uuid)> {
    match refresh_token {
        Some(token) => {
            let session = sessions::session_of_refresh(&services.stores.auth, token)
                .await?
                .ok_or_else(|| Error::Unauthenticated("invalid refresh token".into()))?;
            Ok((session.user_id, session.id))
        }
        None => {
            let viewer = viewer()?;
            Ok((viewer.user_id, viewer.session_id))
        }
    }
}

/// Ends session `sid` of `user_id`, or every session of theirs.
pub(crate) async fn logout(
    services: &SharedServices,
    user_id: Uuid,
    sid: Uuid,
    all_sessions: bool,
) -> Result<()> {
    let txn = services.stores.auth.begin().await?;
    if all_sessions {
        sessions::revoke_all(&txn, user_id, None).await?;
    } else {
        sessions::revoke_session(&txn, sid).await?;
    }
    let target = Target::new("Session", sid).by(user_id);
    audit_outbox::stage(&txn, Database::Auth, target).await?;
    txn.commit().await?;
    if all_sessions {
        services.sessions.forget_user(user_id);
    } else {
        services.sessions.forget_session(sid);
    }
    Ok(())
}

/// Revokes one of the caller's own sessions, decided in the statement that revokes it;
/// another user's session is `NOT_FOUND`, like one that does not exist.
pub(crate) async fn revoke_own(
    services: &SharedServices,
    viewer: &Viewer,
    sid: Uuid,
) -> Result<()> {
    let txn = services.stores.auth.begin().await?;
    if !sessions::revoke_own(&txn, viewer.user_id, sid).await? {
        return Err(Error::NotFound("no such active session".into()));
    }
    audit_outbox::stage(&txn, Database::Auth, Target::new("Session", sid)).await?;
    txn.commit().await?;
    services.sessions.forget_session(sid);
    Ok(())
}

/// Changes the caller's password and revokes every other session. A wrong current
/// password is a password guess: it counts like a failed login.
pub(crate) async fn change_password(
    services: &SharedServices,
    client: &ClientInfo,
    viewer: &Viewer,
    current_password: String,
    new_password: &str,
) -> Result<()> {
    Hasher::check_policy("newPassword", new_password)?;
    let account = accounts::find(&services.stores.auth, viewer.user_id)
        .await?
        .ok_or_else(|| Error::NotFound("user not found".into()))?;
    let shared = services.clone();
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
        address(client),
        check,
    )
    .await?;
    if checked.is_none() {
        return Err(Error::bad_input(
            "currentPassword",
            "the current password is wrong",
        ));
    }
    let hash = services.passwords.hash(new_password).await?;
    let txn = services.stores.auth.begin().await?;
    accounts::set_password_hash(&txn, viewer.user_id, hash).await?;
    sessions::revoke_all(&txn, viewer.user_id, Some(viewer.session_id)).await?;
    let target = Target::new("User", viewer.user_id);
    audit_outbox::stage(&txn, Database::Auth, target).await?;
    txn.commit().await?;
    services.sessions.forget_user(viewer.user_id);
    Ok(())
}
