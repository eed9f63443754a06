//! Each domain's SQL and rules (`auth`, `users`, `admin`, …), and the plain types they
//! share (keyset pages, update arguments, text bounds). Resolvers and loaders call into
//! these; these never see GraphQL types, so each can be tested without a schema.

pub(crate) mod admin;
pub(crate) mod appointments;
pub(crate) mod audit_outbox;
pub(crate) mod auth;
pub(crate) mod media;
pub(crate) mod page;
pub(crate) mod patch;
pub(crate) mod posts;
pub(crate) mod text;
pub(crate) mod users;

use std::sync::Arc;

use crate::{config::Config, db::Stores};

/// Everything a request handler needs, built once at start and shared by every request.
/// It holds no state another replica would need: caches only.
pub(crate) struct Services {
    pub(crate) config: Config,
    pub(crate) stores: Stores,
    pub(crate) tokens: auth::tokens::TokenKeys,
    pub(crate) passwords: auth::passwords::Hasher,
    pub(crate) sessions: auth::sessions::SessionCache,
    /// Booking events of this process's subscribers.
    pub(crate) events: appointments::events::Bus,
    /// Uploads this process receives at once ([`media::MAX_CONCURRENT_UPLOADS`]); each
    /// holds a blocking thread and a few MiB while its body arrives.
    pub(crate) upload_slots: tokio::sync::Semaphore,
    /// This app's copy of WARN/ERROR events, written to admin_db by `admin::logs`.
    pub(crate) logs: crate::telemetry::LogTap,
}

pub(crate) type SharedServices = Arc<Services>;

/// The current time at the precision every database keeps (microseconds), so a value
/// read back compares equal to the one written: keyset cursors depend on it.
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}
