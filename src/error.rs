//! The one error type of the server.
//!
//! Every failure a client can see is one of these variants, and each maps to exactly one
//! `extensions.code` (and, where a plain HTTP route answers, one status). Internal causes
//! (database, media store, bugs) are logged with the request's span and answered as
//! `INTERNAL_SERVER_ERROR` without details, so nothing about the infrastructure leaks.

use async_graphql::ErrorExtensions;
use http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// No valid credentials: missing where required, or present but not a live access
    /// token. Clients react by logging in or refreshing.
    #[error("{0}")]
    Unauthenticated(String),

    /// Authenticated, but this caller may not do this. Distinct from `Unauthenticated` so
    /// clients do not loop on refreshing a token that will never be enough.
    #[error("{0}")]
    Forbidden(String),

    /// The request is well-formed GraphQL but an argument is wrong; `field` names the
    /// argument so forms can show the message next to it.
    #[error("{message}")]
    BadUserInput {
        message: String,
        field: Option<String>,
    },

    /// The named object does not exist (or the caller may not know it exists).
    #[error("{0}")]
    NotFound(String),

    /// The write lost against the current state: a duplicate, a taken slot, a reused token.
    #[error("{0}")]
    Conflict(String),

    /// An upload or a request body over its limit.
    #[error("{0}")]
    PayloadTooLarge(String),

    /// An upload whose bytes are not one of the accepted types.
    #[error("{0}")]
    UnsupportedMediaType(String),

    /// Too many attempts; `retry_after` tells clients when to try again (seconds).
    #[error("too many attempts, retry in {retry_after} seconds")]
    RateLimited { retry_after: u64 },

    /// A store an answer needs did not answer, where a partial answer would mislead (the
    /// admin statistics would read zeros). The code is `INTERNAL_SERVER_ERROR`, with
    /// `extensions.store` naming the store as `/health` does; the cause is logged, never
    /// sent.
    #[error("the {store} store is unavailable")]
    StoreUnavailable {
        store: &'static str,
        #[source]
        cause: anyhow::Error,
    },

    /// Anything the client cannot fix. The cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::BadUserInput {
            message: message.into(),
            field: Some(field.into()),
        }
    }

    pub(crate) fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Error::Internal(cause.into())
    }

    /// The value of `extensions.code`.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Error::Unauthenticated(_) => "UNAUTHENTICATED",
            Error::Forbidden(_) => "FORBIDDEN",
            Error::BadUserInput { .. } => "BAD_USER_INPUT",
            Error::NotFound(_) => "NOT_FOUND",
            Error::Conflict(_) => "CONFLICT",
            Error::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Error::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            Error::RateLimited { .. } => "RATE_LIMITED",
            Error::StoreUnavailable { .. } | Error::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    /// The status a plain HTTP route (`/media`, request-level failures) answers with.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::BadUserInput { .. } => StatusCode::BAD_REQUEST,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::StoreUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Logs what must be logged before the error leaves the server: internal causes in
    /// full, at ERROR (which also lands in `adminLogs`).
    fn log(&self) {
        match self {
            Error::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error");
            }
            Error::StoreUnavailable { store, cause } => {
                tracing::error!(store, error = format!("{cause:#}"), "store unavailable");
            }
            _ => {}
        }
    }
}

/// Database failures become client errors in this one place: a unique violation is a
/// `CONFLICT` (the row exists), a foreign key violation a `BAD_USER_INPUT` (the referenced
/// row does not), anything else internal.
impl From<sea_orm::DbErr> for Error {
    fn from(err: sea_orm::DbErr) -> Self {
        // An exclusion constraint (two active appointments of one person that overlap)
        // is SQLSTATE 23P01, which `sql_err()` does not classify.
        if sqlstate(&err).as_deref() == Some(EXCLUSION_VIOLATION) {
            return Error::Conflict("this time overlaps another appointment".into());
        }
        match err.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
                Error::Conflict("this already exists".into())
            }
            Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_)) => Error::BadUserInput {
                message: "a referenced object does not exist".into(),
                field: None,
            },
            _ => Error::Internal(err.into()),
        }
    }
}

/// PostgreSQL's `exclusion_violation`.
const EXCLUSION_VIOLATION: &str = "23P01";

/// The SQLSTATE of a database error, when the database sent one.
fn sqlstate(err: &sea_orm::DbErr) -> Option<String> {
    use sea_orm::{DbErr, RuntimeErr};
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e
            .as_database_error()
            .and_then(|d| d.code())
            .map(|c| c.into_owned()),
        _ => None,
    }
}

impl From<sea_orm::TransactionError<Error>> for Error {
    fn from(err: sea_orm::TransactionError<Error>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(e) => e,
        }
    }
}

impl ErrorExtensions for Error {
    fn extend(&self) -> async_graphql::Error {
        self.log();
        let message = match self {
            Error::Internal(_) => "internal server error".to_string(),
            other => other.to_string(),
        };
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", self.code());
            match self {
                Error::BadUserInput {
                    field: Some(field), ..
                } => ext.set("field", field.as_str()),
                Error::RateLimited { retry_after } => ext.set("retryAfter", *retry_after),
                Error::StoreUnavailable { store, .. } => ext.set("store", *store),
                _ => {}
            }
        })
    }
}

impl From<Error> for async_graphql::Error {
    fn from(err: Error) -> Self {
        err.extend()
    }
}

/// The body of a request-level failure, shaped as a GraphQL response so clients parse one
/// format whatever went wrong.
pub(crate) fn request_error_body(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code } }]
    })
}

impl axum::response::IntoResponse for Error {
    fn into_response(self) -> axum::response::Response {
        self.log();
        let message = match &self {
            Error::Internal(_) => "internal server error".to_string(),
            other => other.to_string(),
        };
        let mut response = (
            self.status(),
            axum::Json(request_error_body(self.code(), &message)),
        )
            .into_response();
        if let Error::RateLimited { retry_after } = self {
            if let Ok(v) = http::HeaderValue::from_str(&retry_after.to_string()) {
                response.headers_mut().insert(http::header::RETRY_AFTER, v);
            }
        }
        response
    }
}
