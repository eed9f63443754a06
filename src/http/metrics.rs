//! `GET /metrics`: counters in the Prometheus text format, for scraping each replica
//! directly (the bundled nginx does not expose it). Today: the SQL statements each
//! database has run since start, which is how N+1 regressions show up, and the WARN/ERROR
//! events the admin log store had to drop, and how often preloaded post pages were answered
//! without the library's per-field futures (`schema::plain`).

use std::sync::atomic::Ordering;

use axum::{extract::State, response::IntoResponse};
use http::header;

use super::AppState;
use crate::config::Database;

pub(crate) async fn handler(State(state): State<AppState>) -> impl IntoResponse {
    let counters = &state.services.stores.statements;
    let mut body = String::from(
        "# HELP jolmood_db_statements_total SQL statements sent to each database since start.\n# TYPE jolmood_db_statements_total counter\n",
    );
    for db in Database::ALL {
        body.push_str(&format!(
            "jolmood_db_statements_total{{database=\"{}\"}} {}\n",
            db.health_key(),
            counters.get(db)
        ));
    }
    body.push_str(&format!(
        "# HELP jolmood_booking_subscribers Open bookingEvents subscriptions on this process.\n# TYPE jolmood_booking_subscribers gauge\njolmood_booking_subscribers {}\n",
        state.services.events.subscribers()
    ));
    body.push_str(&format!(
        "# HELP jolmood_admin_logs_dropped_total WARN/ERROR events not written to admin_db because the writer was behind.\n# TYPE jolmood_admin_logs_dropped_total counter\njolmood_admin_logs_dropped_total {}\n",
        state.services.logs.dropped()
    ));
    body.push_str(&format!(
        "# HELP jolmood_graphql_walks_total Preloaded values (post pages) answered by a walk of the selection (walked) or by the resolvers (resolved).\n# TYPE jolmood_graphql_walks_total counter\njolmood_graphql_walks_total{{outcome=\"walked\"}} {}\njolmood_graphql_walks_total{{outcome=\"resolved\"}} {}\n",
        state.walks.walked.load(Ordering::Relaxed),
        state.walks.resolved.load(Ordering::Relaxed)
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
