//! `GET /health` (200 healthy, 503 degraded), `GET /schema.graphql`, and the JSON 404.

use axum::{extract::State, response::IntoResponse, Json};
use http::{header, StatusCode};

use super::AppState;
use crate::schema::health::{Health, HealthStatus};

pub(crate) async fn handler(State(state): State<AppState>) -> impl IntoResponse {
    let health = Health::check(&state.services.stores).await;
    let status = match health.status {
        HealthStatus::Healthy => StatusCode::OK,
        HealthStatus::Degraded => StatusCode::SERVICE_UNAVAILABLE,
    };
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(health.to_json()),
    )
}

pub(crate) async fn sdl(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        state.sdl.to_string(),
    )
}

pub(crate) async fn not_found() -> impl IntoResponse {
    crate::error::Error::NotFound("no such route".into())
}
