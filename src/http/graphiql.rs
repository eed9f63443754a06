//! The GraphiQL playground, wired to `/graphql` for queries and to its websocket for
//! subscriptions (connection_init carries the `Authorization` header set in the editor).

use async_graphql::http::GraphiQLSource;
use axum::response::{Html, IntoResponse};

pub(crate) async fn page() -> impl IntoResponse {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql")
            .title("Jolmood API")
            .finish(),
    )
}
