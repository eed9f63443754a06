//! Telemetry as an operator reads it: the server's JSON log lines name the request (its
//! `X-Request-Id`, echoed in the response) and the GraphQL operation (name, type, caller)
//! they belong to.

use serde_json::{json, Value};

use crate::helpers::{process::ServerProcess, Backend};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_name_the_request_and_the_operation() {
    let Some((server, app)) = ServerProcess::start(Backend::Embedded, &[]).await else {
        return;
    };
    let user = app.register("traced@example.com", "USER").await;

    let response = app
        .http
        .post(app.url("/graphql"))
        .header("authorization", format!("Bearer {}", user.token))
        .header("x-request-id", "trace-me-42")
        .json(&json!({"query": "query Who { me { id } }", "operationName": "Who"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["data"]["me"]["id"], user.id.as_str());

    // Without one (or with one that is not a sane id), the server makes one up.
    for sent in [None, Some("not a sane id")] {
        let mut request = app
            .http
            .post(app.url("/graphql"))
            .json(&json!({"query": "{ __typename }"}));
        if let Some(v) = sent {
            request = request.header("x-request-id", v);
        }
        let response = request.send().await.expect("request");
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap_or_default()
            .to_string();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "a generated id: {id}");
    }

    let logs = server.stop();
    let finished: Vec<&Value> = logs
        .0
        .iter()
        .filter(|l| l["fields"]["message"] == "operation finished")
        .filter(|l| {
            l["spans"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["request_id"] == "trace-me-42"))
        })
        .collect();
    assert_eq!(
        finished.len(),
        1,
        "one line for the operation: {:?}",
        logs.0.len()
    );
    let spans = finished[0]["spans"].as_array().expect("spans");
    let operation = spans
        .iter()
        .find(|s| s["name"] == "graphql")
        .expect("the operation's span");
    assert_eq!(operation["operation_name"], "Who");
    assert_eq!(operation["operation_type"], "query");
    assert_eq!(operation["user_id"], user.id.as_str());
    let request = spans
        .iter()
        .find(|s| s["name"] == "request")
        .expect("the request's span");
    assert_eq!(request["path"], "/graphql");
    assert_eq!(request["method"], "POST");
}
