//! `AuthPayload` and `Session`.

use async_graphql::{Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::{ids, user::User};
use crate::db::auth::session;

#[derive(SimpleObject)]
pub struct AuthPayload {
    pub access_token: String,
    /// Opaque and single use: `refreshToken` exchanges it for a new pair.
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i32,
    pub user: User,
}

pub struct Session {
    pub row: session::Model,
    pub current: bool,
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
