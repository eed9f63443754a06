//! `AuthPayload` and `Session`.

use async_graphql::{Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use crate::{
    db::auth::session,
    schema::{ids, users::User},
    services::auth::signin::SignedIn,
};

#[derive(SimpleObject)]
pub(crate) struct AuthPayload {
    pub(crate) access_token: String,
    /// Opaque and single use: `refreshToken` exchanges it for a new pair.
    pub(crate) refresh_token: String,
    /// Seconds until the access token expires.
    pub(crate) expires_in: i32,
    pub(crate) user: User,
}

impl From<SignedIn> for AuthPayload {
    fn from(s: SignedIn) -> AuthPayload {
        AuthPayload {
            access_token: s.access_token,
            refresh_token: s.refresh_token,
            expires_in: s.expires_in,
            user: User::signed_in(s.account),
        }
    }
}

pub(crate) struct Session {
    pub(crate) row: session::Model,
    pub(crate) current: bool,
}

#[Object]
impl Session {
    async fn id(&self) -> ID {
        ids::to_id(self.row.id)
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }

    async fn last_used_at(&self) -> DateTime<Utc> {
        self.row.last_used_at
    }

    async fn user_agent(&self) -> Option<&str> {
        self.row.user_agent.as_deref()
    }

    async fn ip(&self) -> Option<&str> {
        self.row.ip.as_deref()
    }

    /// True for the session of the access token making this request.
    async fn current(&self) -> bool {
        self.current
    }
}
