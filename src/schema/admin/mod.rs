//! The admin domain's types: `AdminStats` (with `RoleCount` and `StatusCount`),
//! `AuditEntry`, and `LogEntry` with its `LogLevel`.

mod audit;

pub(crate) use audit::AuditEntry;

use async_graphql::{Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use crate::{
    db::admin::log_entry,
    schema::{appointments::AppointmentStatus, auth::RoleValue, ids},
    services::{
        admin::stats::Stats,
        appointments::{COMPLETED, CONFIRMED, PENDING},
    },
};

#[derive(SimpleObject)]
pub(crate) struct RoleCount {
    pub(crate) role: RoleValue,
    pub(crate) count: i64,
}

#[derive(SimpleObject)]
pub(crate) struct StatusCount {
    pub(crate) status: AppointmentStatus,
    pub(crate) count: i64,
}

/// Counts across every store, computed when asked.
pub(crate) struct AdminStats(pub(crate) Stats);

#[Object]
impl AdminStats {
    /// Every account, suspended ones included.
    async fn users_total(&self) -> i64 {
        self.0.accounts.total
    }

    /// Every role, zero included.
    async fn users_by_role(&self) -> Vec<RoleCount> {
        self.0
            .accounts
            .by_role
            .iter()
            .map(|(role, count)| RoleCount {
                role: (*role).into(),
                count: *count,
            })
            .collect()
    }

    /// Accounts created in the 7 days before `generatedAt`.
    #[graphql(name = "newUsersLast7Days")]
    async fn new_users_last7_days(&self) -> i64 {
        self.0.accounts.created_last_7_days
    }

    async fn posts_total(&self) -> i64 {
        self.0.posts.posts
    }

    async fn comments_total(&self) -> i64 {
        self.0.posts.comments
    }

    async fn likes_total(&self) -> i64 {
        self.0.posts.likes
    }

    /// Every status as clients read it (a PENDING appointment whose start has passed is
    /// CANCELLED), zero included.
    async fn appointments_by_status(&self) -> Vec<StatusCount> {
        self.0
            .appointments_by_status
            .iter()
            .map(|(status, count)| StatusCount {
                status: match *status {
                    PENDING => AppointmentStatus::Pending,
                    CONFIRMED => AppointmentStatus::Confirmed,
                    COMPLETED => AppointmentStatus::Completed,
                    _ => AppointmentStatus::Cancelled,
                },
                count: *count,
            })
            .collect()
    }

    /// Files in the media store.
    async fn media_files(&self) -> i64 {
        i64::try_from(self.0.media_files).unwrap_or(i64::MAX)
    }

    /// Their stored bytes (a Float: it may pass what a GraphQL Int holds).
    async fn media_bytes(&self) -> f64 {
        self.0.media_bytes as f64
    }

    async fn generated_at(&self) -> DateTime<Utc> {
        self.0.generated_at
    }
}

/// The levels `adminLogs` keeps.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogLevel {
    Warn,
    Error,
}

impl LogLevel {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        }
    }
}

/// A WARN or ERROR event the server logged.
pub(crate) struct LogEntry(pub(crate) log_entry::Model);

#[Object]
impl LogEntry {
    async fn id(&self) -> ID {
        ids::to_id(self.0.id)
    }

    async fn level(&self) -> LogLevel {
        if self.0.level == LogLevel::Error.as_str() {
            LogLevel::Error
        } else {
            LogLevel::Warn
        }
    }

    async fn message(&self) -> &str {
        &self.0.message
    }

    /// The module that logged it.
    async fn target(&self) -> Option<&str> {
        self.0.target.as_deref()
    }

    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }

    /// The event's other fields, as a JSON object.
    async fn fields(&self) -> Option<&str> {
        self.0.fields.as_deref()
    }
}
