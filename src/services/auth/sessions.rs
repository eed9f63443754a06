//! Sessions and refresh tokens in auth_db, and the short cache that lets every request
//! check its session without a database round trip each time.
//!
//! A refresh token is single use. Rotation claims it with one conditional UPDATE
//! (`used_at IS NULL`), so of two racing refreshes exactly one wins. Presenting a token
//! that was already used (after a short grace that absorbs such races and client retries) is
//! taken as theft, as RFC 9700 advises (the grace is `REFRESH_REUSE_GRACE_SECONDS`): the whole session is revoked.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::{Expr, Query},
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};
use uuid::Uuid;

use super::{tokens, Role};
use crate::{
    config::Database,
    db::auth::{refresh_token, session, user},
    error::{Error, Result},
    services::audit_outbox::{self, Target},
};

/// `last_used_at` is written at most this often per session.
const TOUCH_EVERY: chrono::Duration = chrono::Duration::seconds(60);
const CACHE_MAX_ENTRIES: usize = 50_000;

/// The state of a session as the database last said.
#[derive(Clone, Debug)]
pub(crate) struct Live {
    pub(crate) user_id: Uuid,
    pub(crate) role: Role,
    pub(crate) suspended: bool,
    pub(crate) revoked: bool,
    pub(crate) expires_at: DateTime<Utc>,
}

impl Live {
    /// Why this session cannot be used, if it cannot.
    pub(crate) fn refusal(&self) -> Option<&'static str> {
        if self.revoked {
            Some("session revoked")
        } else if self.suspended {
            Some("account suspended")
        } else if self.expires_at <= crate::services::now() {
            Some("session expired")
        } else {
            None
        }
    }
}

pub(crate) struct SessionCache {
    ttl: Duration,
    entries: Mutex<HashMap<Uuid, (Instant, Live)>>,
}

impl SessionCache {
    pub(crate) fn new(ttl: Duration) -> SessionCache {
        SessionCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, sid: Uuid) -> Option<Live> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(&sid)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, live)| live.clone())
    }

    fn store(&self, sid: Uuid, live: Live) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CACHE_MAX_ENTRIES {
                let ttl = self.ttl;
                entries.retain(|_, (at, _)| at.elapsed() < ttl);
            }
            entries.insert(sid, (Instant::now(), live));
        }
    }

    /// Forgets a session so the next request reads it again (after a local revocation).
    pub(crate) fn forget_session(&self, sid: Uuid) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&sid);
        }
    }

    /// Forgets every session of a user (after a suspension or a role change here).
    pub(crate) fn forget_user(&self, user_id: Uuid) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (_, live)| live.user_id != user_id);
        }
    }

    /// The live state of a session: from the cache when fresh, else from auth_db.
    /// A session that does not exist reads as revoked.
    pub(crate) async fn check(&self, db: &DatabaseConnection, sid: Uuid) -> Result<Live> {
        if let Some(live) = self.cached(sid) {
            return Ok(live);
        }
        let live = load(db, sid).await?;
        self.store(sid, live.clone());
        Ok(live)
    }
}

async fn load(db: &DatabaseConnection, sid: Uuid) -> Result<Live> {
    let found = match session::Entity::find_by_id(sid).one(db).await? {
        Some(s) => user::Entity::find_by_id(s.user_id)
            .one(db)
            .await?
            .map(|u| (s, u)),
        None => None,
    };
    let Some((s, u)) = found else {
        return Ok(Live {
            user_id: Uuid::nil(),
            role: Role::User,
            suspended: false,
            revoked: true,
            expires_at: crate::services::now(),
        });
    };
    let now = crate::services::now();
    if s.revoked_at.is_none() && s.last_used_at + TOUCH_EVERY < now {
        session::Entity::update_many()
            .col_expr(session::Column::LastUsedAt, Expr::value(now))
            .filter(session::Column::Id.eq(sid))
            .exec(db)
            .await?;
    }
    Ok(Live {
        user_id: u.id,
        role: Role::parse(&u.role).unwrap_or(Role::User),
        suspended: u.suspended,
        revoked: s.revoked_at.is_some(),
        expires_at: s.expires_at,
    })
}

/// Where a session was opened from, shown in `mySessions`.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientInfo {
    pub(crate) ip: Option<String>,
    pub(crate) user_agent: Option<String>,
}

/// Opens a session for a user and issues its first refresh token. Returns the session id
/// and the opaque refresh token.
pub(crate) async fn open<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    client: &ClientInfo,
    ttl: Duration,
) -> Result<(Uuid, String)> {
    let now = crate::services::now();
    let expires_at = now + chrono::Duration::from_std(ttl).map_err(Error::internal)?;
    let sid = Uuid::now_v7();
    session::ActiveModel {
        id: Set(sid),
        user_id: Set(user_id),
        created_at: Set(now),
        last_used_at: Set(now),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
        user_agent: Set(client.user_agent.clone()),
        ip: Set(client.ip.clone()),
    }
    .insert(db)
    .await?;
    let token = issue_refresh(db, sid, expires_at).await?;
    Ok((sid, token))
}

async fn issue_refresh<C: ConnectionTrait>(
    db: &C,
    sid: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<String> {
    let (token, hash) = tokens::new_refresh_token();
    refresh_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        session_id: Set(sid),
        token_hash: Set(hash),
        created_at: Set(crate::services::now()),
        expires_at: Set(expires_at),
        used_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(token)
}

/// The live session of a refresh token that can still be used: unspent, unexpired, and
/// its session neither revoked nor expired. Anything else reads as `None`.
pub(crate) async fn session_of_refresh(
    db: &DatabaseConnection,
    token: &str,
) -> Result<Option<session::Model>> {
    let now = crate::services::now();
    let hash = tokens::hash_refresh_token(token);
    let Some(row) = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(hash))
        .filter(refresh_token::Column::UsedAt.is_null())
        .filter(refresh_token::Column::ExpiresAt.gt(now))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    Ok(session::Entity::find_by_id(row.session_id)
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(now))
        .one(db)
        .await?)
}

/// Exchanges a refresh token for a new one in the same session, in one transaction with
/// the mutation's audit entry. Returns the session and the new token. Reuse of a spent
/// token revokes the session.
///
/// `reuse_grace`: how long after its first use a reuse counts as a race, not a theft.
pub(crate) async fn rotate(
    db: &DatabaseConnection,
    token: &str,
    reuse_grace: Duration,
    cache: &SessionCache,
) -> Result<(session::Model, String)> {
    let reuse_grace = chrono::Duration::from_std(reuse_grace).map_err(Error::internal)?;
    let invalid = || Error::Unauthenticated("invalid refresh token".into());
    let hash = tokens::hash_refresh_token(token);
    let now = crate::services::now();
    let txn = db.begin().await?;
    let Some(row) = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(hash))
        .one(&txn)
        .await?
    else {
        return Err(invalid());
    };
    // The claim also requires the account not to be suspended, in the same statement: a
    // suspended user's token stays unspent, so that using it after reinstatement is not
    // mistaken for the reuse of a stolen token.
    let suspended_owner = Query::select()
        .expr(Expr::val(1))
        .from(session::Entity)
        .inner_join(
            user::Entity,
            Expr::col((user::Entity, user::Column::Id))
                .equals((session::Entity, session::Column::UserId)),
        )
        .and_where(
            Expr::col((session::Entity, session::Column::Id))
                .equals((refresh_token::Entity, refresh_token::Column::SessionId)),
        )
        .and_where(Expr::col((user::Entity, user::Column::Suspended)).eq(true))
        .to_owned();
    let claimed = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::UsedAt, Expr::value(now))
        .filter(refresh_token::Column::Id.eq(row.id))
        .filter(refresh_token::Column::UsedAt.is_null())
        .filter(Expr::exists(suspended_owner).not())
        .exec(&txn)
        .await?
        .rows_affected
        == 1;
    if !claimed {
        let Some(first_use) = refresh_token::Entity::find_by_id(row.id)
            .one(&txn)
            .await?
            .and_then(|r| r.used_at)
        else {
            return Err(Error::Forbidden("this account is suspended".into()));
        };
        if now - first_use >= reuse_grace {
            // Refused, but the revocation stands.
            revoke_session(&txn, row.session_id).await?;
            txn.commit().await?;
            cache.forget_session(row.session_id);
            tracing::warn!(session = %row.session_id, "refresh token reused: session revoked");
            return Err(Error::Unauthenticated(
                "refresh token already used: the session has been revoked".into(),
            ));
        }
        return Err(Error::Unauthenticated("refresh token already used".into()));
    }
    let Some(s) = session::Entity::find_by_id(row.session_id)
        .one(&txn)
        .await?
    else {
        return Err(invalid());
    };
    if s.revoked_at.is_some() || s.expires_at <= now || row.expires_at <= now {
        // Refused, and the token stays spent.
        txn.commit().await?;
        return Err(Error::Unauthenticated("session expired or revoked".into()));
    }
    let new_token = issue_refresh(&txn, s.id, s.expires_at).await?;
    session::Entity::update_many()
        .col_expr(session::Column::LastUsedAt, Expr::value(now))
        .filter(session::Column::Id.eq(s.id))
        .exec(&txn)
        .await?;
    let target = Target::new("Session", s.id).by(s.user_id);
    audit_outbox::stage(&txn, Database::Auth, target).await?;
    txn.commit().await?;
    Ok((s, new_token))
}

/// Revokes one session (idempotent). Its refresh tokens die with it.
pub(crate) async fn revoke_session<C: ConnectionTrait>(db: &C, sid: Uuid) -> Result<()> {
    session::Entity::update_many()
        .col_expr(
            session::Column::RevokedAt,
            Expr::value(crate::services::now()),
        )
        .filter(session::Column::Id.eq(sid))
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Revokes every live session of a user, except `keep` when given.
pub(crate) async fn revoke_all<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    keep: Option<Uuid>,
) -> Result<u64> {
    let mut q = session::Entity::update_many()
        .col_expr(
            session::Column::RevokedAt,
            Expr::value(crate::services::now()),
        )
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null());
    if let Some(keep) = keep {
        q = q.filter(session::Column::Id.ne(keep));
    }
    Ok(q.exec(db).await?.rows_affected)
}

/// Revokes one live session of `user_id`, in one statement; false when the user has no
/// such live session (another user's, already ended, or unknown).
pub(crate) async fn revoke_own<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    sid: Uuid,
) -> Result<bool> {
    let res = session::Entity::update_many()
        .col_expr(
            session::Column::RevokedAt,
            Expr::value(crate::services::now()),
        )
        .filter(session::Column::Id.eq(sid))
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(crate::services::now()))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// The user's live sessions, newest first.
pub(crate) async fn active(db: &DatabaseConnection, user_id: Uuid) -> Result<Vec<session::Model>> {
    Ok(session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(crate::services::now()))
        .order_by_desc(session::Column::CreatedAt)
        .order_by_desc(session::Column::Id)
        .all(db)
        .await?)
}

/// Deletes sessions that ended more than a day ago, with their refresh tokens (spent
/// tokens are kept while their session lives, for reuse detection).
pub(crate) async fn prune<C: ConnectionTrait>(db: &C) -> Result<u64> {
    let before = crate::services::now() - chrono::Duration::days(1);
    let res = session::Entity::delete_many()
        .filter(
            sea_orm::Condition::any()
                .add(session::Column::RevokedAt.lt(before))
                .add(session::Column::ExpiresAt.lt(before)),
        )
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}
