//! Accounts and sessions: who the caller is, checked against the live session on every
//! request, so that a revocation, a suspension or a role change takes effect within the
//! session cache's lifetime (10 s by default, at most 60 s) on every replica.

pub(crate) mod accounts;
pub(crate) mod admin;
pub(crate) mod erasure;
pub(crate) mod passwords;
pub(crate) mod ratelimit;
pub(crate) mod sessions;
pub(crate) mod signin;
pub(crate) mod stats;
pub(crate) mod tokens;

use uuid::Uuid;

use crate::{error::Error, services::Services};

/// The three roles. Rights come from the live account, never from a token's claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Role {
    User,
    Coach,
    Admin,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::User => "USER",
            Role::Coach => "COACH",
            Role::Admin => "ADMIN",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Role> {
        match s {
            "USER" => Some(Role::User),
            "COACH" => Some(Role::Coach),
            "ADMIN" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// An authenticated caller, as the live session says.
#[derive(Clone, Debug)]
pub(crate) struct Viewer {
    pub(crate) user_id: Uuid,
    pub(crate) session_id: Uuid,
    pub(crate) role: Role,
    /// When the access token that authenticated this request expires (Unix seconds).
    pub(crate) token_expires_at: i64,
}

impl Viewer {
    pub(crate) fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// What the credentials of a request amount to.
#[derive(Clone, Debug)]
pub(crate) enum Auth {
    /// No credentials at all.
    Anonymous,
    /// Credentials were sent but do not hold: the request is refused (never silently
    /// anonymous), except by the operations that exist to get new credentials.
    Invalid(String),
    User(Viewer),
}

impl Auth {
    /// The viewer, or `UNAUTHENTICATED` for anonymous and invalid credentials.
    pub(crate) fn viewer(&self) -> Result<&Viewer, Error> {
        match self {
            Auth::User(v) => Ok(v),
            Auth::Anonymous => Err(Error::Unauthenticated("authentication required".into())),
            Auth::Invalid(reason) => Err(Error::Unauthenticated(reason.clone())),
        }
    }

    /// The viewer if there is one; anonymous is fine, invalid credentials are not.
    pub(crate) fn optional_viewer(&self) -> Result<Option<&Viewer>, Error> {
        match self {
            Auth::User(v) => Ok(Some(v)),
            Auth::Anonymous => Ok(None),
            Auth::Invalid(reason) => Err(Error::Unauthenticated(reason.clone())),
        }
    }
}

/// Turns a bearer access token into an [`Auth`], checking the live session.
pub(crate) async fn authenticate_token(services: &Services, token: &str) -> Result<Auth, Error> {
    let claims = match services.tokens.verify_access(token) {
        Ok(c) => c,
        Err(reason) => return Ok(Auth::Invalid(reason.to_string())),
    };
    let live = services
        .sessions
        .check(&services.stores.auth, claims.session_id)
        .await?;
    if live.user_id != claims.user_id {
        return Ok(Auth::Invalid("invalid access token".into()));
    }
    Ok(match live.refusal() {
        Some(reason) => Auth::Invalid(reason.into()),
        None => Auth::User(Viewer {
            user_id: live.user_id,
            session_id: claims.session_id,
            role: live.role,
            token_expires_at: claims.expires_at,
        }),
    })
}

/// Reads an `Authorization` header value (`Bearer <token>`). `None` means no header.
pub(crate) async fn authenticate_header(
    services: &Services,
    header: Option<&str>,
) -> Result<Auth, Error> {
    let Some(raw) = header else {
        return Ok(Auth::Anonymous);
    };
    match bearer(raw) {
        Some(token) => authenticate_token(services, token).await,
        None => Ok(Auth::Invalid(
            "the Authorization header must be `Bearer <access token>`".into(),
        )),
    }
}

/// The token of a `Bearer <token>` value (scheme case-insensitive, as RFC 7235 says).
pub(crate) fn bearer(raw: &str) -> Option<&str> {
    let raw = raw.trim();
    let (scheme, token) = raw.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_required() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }
}
