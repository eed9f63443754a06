//! Every error a client reads carries `extensions.code`. Resolver errors get theirs from
//! [`crate::error::Error`]; the errors the GraphQL library raises itself (parsing,
//! validation, limits, argument coercion) are labelled here, in the one place every
//! response passes through, whatever its transport.

use async_graphql::{ErrorExtensionValues, Response, ServerError, Value};

pub(crate) const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
pub(crate) const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
pub(crate) const BAD_REQUEST: &str = "BAD_REQUEST";
pub(crate) const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
pub(crate) const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";

/// An error of the request as a whole (nothing was executed).
pub(crate) fn request_error(code: &str, message: impl Into<String>) -> ServerError {
    let mut err = ServerError::new(message, None);
    set_code(&mut err, code);
    err
}

/// A server error for a failure that has no place in the document (a header, a limit of
/// the connection): GraphQL locations start at line 1, so it carries none.
pub(crate) fn placeless(err: crate::error::Error) -> ServerError {
    let mut err = async_graphql::Error::from(err).into_server_error(Default::default());
    err.locations.clear();
    err
}

pub(crate) fn set_code(err: &mut ServerError, code: &str) {
    err.extensions
        .get_or_insert_with(ErrorExtensionValues::default)
        .set("code", code);
}

/// The extension that marks a subscriber dropped for falling behind its events: the
/// websocket closes the connection for that error only (a `RATE_LIMITED` of any other
/// operation, say a 6th login, is an ordinary error).
pub(crate) const LAGGED: &str = "lagged";

/// True for the error a subscription stream ends with when it fell too far behind.
pub(crate) fn is_lagged(err: &ServerError) -> bool {
    err.extensions
        .as_ref()
        .and_then(|e| e.get(LAGGED))
        .is_some_and(|v| *v == Value::Boolean(true))
}

pub(crate) fn code_of(err: &ServerError) -> Option<&str> {
    match err.extensions.as_ref()?.get("code")? {
        Value::String(s) => Some(s.as_str()),
        _ => None,
    }
}

/// Labels library errors: without a path, the document was refused before execution
/// (validation and limits); with one, an argument failed to coerce or a validator
/// refused it. Anything else without a code is a server fault: logged, and answered
/// without its details.
pub(crate) fn label(response: &mut Response) {
    for err in &mut response.errors {
        if code_of(err).is_some() {
            continue;
        }
        if let Some(field) = argument_named(&err.message) {
            err.extensions
                .get_or_insert_with(ErrorExtensionValues::default)
                .set("field", field);
        }
        if err.path.is_empty() {
            set_code(err, VALIDATION_FAILED);
        } else if err.message.starts_with("Invalid value for argument")
            || err.message.starts_with("Failed to parse")
            || err.message.starts_with("Expected input type")
        {
            set_code(err, BAD_USER_INPUT);
        } else {
            tracing::error!(error = %err.message, path = ?err.path, "uncoded error from a resolver");
            err.message = "internal server error".into();
            set_code(err, "INTERNAL_SERVER_ERROR");
        }
    }
}

/// The argument an input error names (`Invalid value for argument "first"…`).
fn argument_named(message: &str) -> Option<String> {
    let rest = message.strip_prefix("Invalid value for argument \"")?;
    let name = rest.split('"').next()?;
    // Nested input fields read `argument "input.field"`: the argument is the first part.
    Some(name.split('.').next().unwrap_or(name).to_string())
}

/// True when the response is a request error: nothing executed, so no `data` at all.
pub(crate) fn is_request_error(response: &Response) -> bool {
    matches!(response.data, Value::Null)
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}
