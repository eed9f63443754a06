//! Every request has an id: the client's `X-Request-Id` when it sends a sane one (a
//! proxy's or a front end's, so one id follows a request across systems), else a new
//! UUID. It is echoed in the response and carried by the request's span, so every log
//! line of the request (and of the GraphQL operations inside it) names it.

use std::time::Instant;

use axum::{extract::Request, middleware::Next, response::Response};
use http::{HeaderName, HeaderValue};
use tracing::Instrument;

pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client-given id kept; a longer (or non-printable) one is replaced.
const MAX_LEN: usize = 128;

fn sane(v: &str) -> bool {
    !v.is_empty() && v.len() <= MAX_LEN && v.bytes().all(|b| b.is_ascii_graphic())
}

/// The middleware: names the request, runs it inside its span, echoes the id.
pub(crate) async fn layer(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %id,
    );
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            micros = started.elapsed().as_micros() as u64,
            "answered"
        )
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::sane;

    #[test]
    fn only_short_printable_ids_are_kept() {
        assert!(sane("req-123_abc"));
        assert!(!sane(""));
        assert!(!sane("has space"));
        assert!(!sane(&"x".repeat(129)));
        assert!(!sane("line\nbreak"));
    }
}
