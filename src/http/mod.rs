//! The HTTP surface: `/graphql` (POST, GET, websocket), GraphiQL at `/` and `/graphiql`,
//! `/health`, `/schema.graphql` and `/metrics`.

mod client;
mod graphiql;
mod graphql;
mod health;
mod json;
mod media;
mod metrics;
mod multipart;
mod request_id;
mod ws;

use std::{sync::Arc, time::Duration};

use axum::{extract::DefaultBodyLimit, routing::get, Router};
use http::{header, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{resolvers::AppSchema, services::SharedServices};

/// What every handler reads.
#[derive(Clone)]
pub struct AppState {
    pub(crate) services: SharedServices,
    /// The schema that runs mutations, subscriptions, and anything sent with credentials
    /// that do not hold (see `crate::assemble`).
    pub(crate) schema: AppSchema,
    /// The same schema without the per-field extension, for queries whose credentials
    /// hold or are absent.
    pub(crate) reads: AppSchema,
    /// `reads` without the validation it already passed (see `crate::assemble`).
    pub(crate) checked: AppSchema,
    /// The requests `reads` has fully validated.
    pub(crate) validated: Arc<crate::schema::limits::Validated>,
    /// How often preloaded values were answered without the library's per-field futures.
    pub(crate) walks: Arc<crate::schema::plain::WalkStats>,
    pub(crate) sdl: Arc<str>,
}

/// The largest request body: as many files of 10 MiB as one request may carry, plus 2 MiB
/// for the multipart envelope (each file's exact limit is enforced while it streams, and
/// answered as a GraphQL error); JSON bodies have their own, smaller limit.
pub(crate) const MAX_BODY: usize = crate::services::media::MAX_FILES
    * crate::services::media::MAX_FILE_BYTES as usize
    + 2 * 1024 * 1024;

/// The body limit in words, for the error that refuses a larger one.
pub(crate) fn max_body_words() -> String {
    format!(
        "the request is larger than {} MiB",
        MAX_BODY / (1024 * 1024)
    )
}

pub(crate) fn router(state: AppState) -> Router {
    let cors = cors(&state.services.config.cors_origins);
    Router::new()
        .route(
            "/graphql",
            get(graphql::get_handler).post(graphql::post_handler),
        )
        .route("/", get(graphiql::page))
        .route("/graphiql", get(graphiql::page))
        .route("/health", get(health::handler))
        .route("/schema.graphql", get(health::sdl))
        .route("/metrics", get(metrics::handler))
        .route("/media/public/{id}", get(media::public))
        .route("/media/{id}", get(media::private))
        .fallback(health::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(cors)
        .layer(axum::middleware::from_fn(request_id::layer))
        .with_state(state)
}

/// CORS for the web front end: the origins of `CORS_ORIGINS`, or none when unset (the
/// mobile apps and server-side callers need none).
fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::HeaderName::from_static("apollo-require-preflight"),
            header::HeaderName::from_static("x-apollo-operation-name"),
            header::HeaderName::from_static("graphql-require-preflight"),
            request_id::X_REQUEST_ID,
        ])
        .expose_headers([request_id::X_REQUEST_ID])
        .max_age(Duration::from_secs(600))
}
