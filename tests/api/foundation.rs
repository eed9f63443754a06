//! The foundation: health, GraphiQL, the SDL, request-level errors and limits, and both
//! websocket sub-protocols, on both backends.

use std::time::Duration;

use crate::helpers::{code, ws::WsClient, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both_backends!(
    health_reports_every_store,
    health_degrades_when_a_store_is_down,
    graphiql_and_sdl_are_served,
    unknown_routes_answer_json_404,
    malformed_requests_get_coded_errors,
    documents_over_the_limits_are_refused,
    batches_run_up_to_ten_operations,
    get_runs_queries_but_not_mutations,
    content_negotiation_follows_graphql_over_http,
    websocket_transport_ws_streams_and_completes,
    websocket_legacy_protocol_streams,
    websocket_close_codes,
);

async fn health_reports_every_store(app: TestApp) {
    let resp = app.http.get(app.url("/health")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["service"], "jolmood-api");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    for store in ["auth", "users", "posts", "appointments", "admin", "media"] {
        assert_eq!(body["databases"][store], "connected", "{store}: {body}");
    }
    let ts = body["timestamp"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
    assert!(ts.ends_with('Z'), "answered in UTC: {ts}");

    let q = "{ health { status databases { name status } } version }";
    let anonymous = app.gql(q, json!({})).await;
    assert_eq!(
        code(&anonymous),
        "UNAUTHENTICATED",
        "GraphQL health is for signed-in clients"
    );
    let user = app.register("health@example.com", "USER").await;
    let q = app.gql_as(&user.token, q, json!({})).await;
    assert_eq!(q["data"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(q["data"]["health"]["status"], "HEALTHY");
    assert_eq!(
        q["data"]["health"]["databases"].as_array().unwrap().len(),
        6
    );
}

async fn health_degrades_when_a_store_is_down(app: TestApp) {
    use sea_orm::ConnectionTrait;
    let down = match app.backend {
        crate::helpers::Backend::Postgres => {
            // Drop the admin database out from under the server.
            let url = &app.dbs.urls[&jolmood::config::Database::Admin];
            let name = url.rsplit('/').next().unwrap().to_string();
            let admin_url = std::env::var("TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
            let db = sea_orm::Database::connect(admin_url).await.unwrap();
            db.execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
                .await
                .unwrap();
            "admin"
        }
        crate::helpers::Backend::Embedded => {
            // Take the media folder away.
            let media = app.dbs.urls[&jolmood::config::Database::Auth]
                .trim_start_matches("sqlite://")
                .rsplit_once('/')
                .map(|(dir, _)| format!("{dir}/media"))
                .unwrap();
            std::fs::remove_dir_all(&media).unwrap();
            "media"
        }
    };
    let started = std::time::Instant::now();
    let resp = app.http.get(app.url("/health")).send().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a dead store must not hang /health"
    );
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["databases"][down], "disconnected", "{body}");
    assert_eq!(body["databases"]["auth"], "connected", "{body}");
}

async fn graphiql_and_sdl_are_served(app: TestApp) {
    for path in ["/", "/graphiql"] {
        let resp = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let html = resp.text().await.unwrap();
        assert!(
            html.contains("graphiql") && html.contains("/graphql"),
            "{path}"
        );
    }
    let sdl = app.get_text("/schema.graphql").await;
    let checked_in =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    let first_difference = sdl
        .lines()
        .zip(checked_in.lines())
        .position(|(a, b)| a != b)
        .map(|i| i + 1);
    assert!(
        sdl == checked_in,
        "the schema drifted from schema.graphql (first difference at line {first_difference:?}); \
         run `cargo run -- export-schema -o schema.graphql`"
    );
}

async fn unknown_routes_answer_json_404(app: TestApp) {
    let resp = app.http.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "NOT_FOUND");
}

async fn malformed_requests_get_coded_errors(app: TestApp) {
    let json = [("content-type", "application/json")];
    let (status, _, body) = app.post_raw(&json, "{not json").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
        "{body}"
    );

    let (status, _, body) = app.post_raw(&json, r#"{"hello": "world"}"#).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
        "{body}"
    );

    let (status, _, body) = app.post_raw(&json, r#""just a string""#).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
        "{body}"
    );

    let (status, _, body) = app
        .post_raw(&[("content-type", "text/plain")], "{ __typename }")
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE"),
        "{body}"
    );

    let huge =
        json!({"query": "{ __typename }", "variables": {"pad": "x".repeat(2 * 1024 * 1024)}})
            .to_string();
    let (status, _, body) = app.post_raw(&json, huge).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
        "{body}"
    );

    let (status, _, body) = app
        .post_raw(&json, json!({"query": "{ __typename "}).to_string())
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::OK, "GRAPHQL_PARSE_FAILED"),
        "{body}"
    );
    assert!(
        body.get("data").is_none(),
        "a request error has no data: {body}"
    );

    let (status, _, body) = app
        .post_raw(&json, json!({"query": "{ nope }"}).to_string())
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::OK, "GRAPHQL_VALIDATION_FAILED"),
        "{body}"
    );

    let (status, _, body) = app
        .post_raw(
            &json,
            json!({"query": "query A { __typename } query B { __typename }", "operationName": "C"})
                .to_string(),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::OK, "GRAPHQL_VALIDATION_FAILED"),
        "{body}"
    );

    let (status, _, body) = app
        .post_raw(&json, json!({"query": "mutation($r: Role) { register(email: \"a@b.io\", password: \"x\", displayName: \"x\", role: $r) { accessToken } }", "variables": {"r": 42}}).to_string())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");

    // Browsers' boundaries have capitals; they must reach the parser untouched. And a
    // multipart batch obeys the same limit as a JSON one.
    let multipart = |operations: String| {
        let boundary = "----WebKitFormBoundaryAbCdEf012345";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{operations}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{{}}\r\n--{boundary}--\r\n"
        );
        app.http
            .post(app.url("/graphql"))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header("graphql-require-preflight", "1")
            .body(body)
            .send()
    };
    let resp = multipart(r#"{"query":"{ __typename }"}"#.into())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
    let eleven = Value::Array(
        (0..11)
            .map(|_| json!({"query": "{ __typename }"}))
            .collect(),
    );
    let resp = multipart(eleven.to_string()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "BAD_REQUEST", "{body}");

    // Multipart without Authorization or a preflight header is refused as possible CSRF.
    let form = reqwest::multipart::Form::new()
        .text("operations", r#"{"query":"{ __typename }"}"#)
        .text("map", "{}");
    let resp = app
        .http
        .post(app.url("/graphql"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "BAD_REQUEST");

    let form = reqwest::multipart::Form::new()
        .text("operations", r#"{"query":"{ __typename }"}"#)
        .text("map", "{}");
    let resp = app
        .http
        .post(app.url("/graphql"))
        .header("apollo-require-preflight", "true")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["__typename"], "Query");
}

/// Asserts that the first error's message mentions `needle` (case-insensitive).
fn assert_message(body: &Value, needle: &str) {
    let message = body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(message.contains(needle), "expected {needle:?} in {body}");
}

fn nested(depth: usize) -> String {
    // __type(name) { ofType { ofType … } } nests as deep as asked.
    let mut q = String::from("name");
    for _ in 0..depth {
        q = format!("ofType {{ {q} }}");
    }
    format!("{{ __type(name: \"Query\") {{ {q} }} }}")
}

async fn documents_over_the_limits_are_refused(app: TestApp) {
    let ok = app.gql(&nested(12), json!({})).await;
    assert!(ok.get("errors").is_none(), "{ok}");
    let deep = app.gql(&nested(20), json!({})).await;
    assert_eq!(code(&deep), "GRAPHQL_VALIDATION_FAILED", "{deep}");
    assert_message(&deep, "nested");

    let aliases: String = (0..31).map(|i| format!("a{i}: __typename ")).collect();
    let body = app.gql(&format!("{{ {aliases} }}"), json!({})).await;
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    assert_message(&body, "aliases");
    let thirty: String = (0..30).map(|i| format!("a{i}: __typename ")).collect();
    let body = app.gql(&format!("{{ {thirty} }}"), json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");

    // Complexity: 5,001 fields.
    let wide = format!(
        "{{ {} }}",
        (0..2501).map(|_| "me { id }").collect::<Vec<_>>().join(" ")
    );
    let body = app.gql(&wide, json!({})).await;
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    assert_message(&body, "complex");
    // A connection costs its `first` times its children: about 66 fields per coach.
    let user = "id role createdAt email suspended profile { displayName bio timezone }";
    let fields = format!("{user} coachProfile {{ headline bio sessionMinutes priceCents currency timezone requiresApproval specialties {{ id slug name }} user {{ {user} }} }}");
    let page = |first: u32| {
        format!("{{ coaches(first: {first}) {{ nodes {{ {fields} }} edges {{ cursor node {{ {fields} }} }} }} }}")
    };
    let body = app.gql(&page(100), json!({})).await;
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    assert_message(&body, "complex");
    let body = app.gql(&page(10), json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");

    // Directives: at most 5 on one field.
    let six = "@include(if: true) ".repeat(6);
    let body = app.gql(&format!("{{ __typename {six} }}"), json!({})).await;
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");

    // Nesting inside values: a list nested 40 deep is refused before anything runs.
    let nested_list = format!("{}1{}", "[".repeat(40), "]".repeat(40));
    let body = app
        .gql(
            &format!("{{ coaches(search: {nested_list}) {{ totalCount }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
}

async fn batches_run_up_to_ten_operations(app: TestApp) {
    let json = [("content-type", "application/json")];
    let ten: Vec<Value> = (0..10)
        .map(|_| json!({"query": "{ __typename }"}))
        .collect();
    let (status, _, body) = app.post_raw(&json, Value::Array(ten).to_string()).await;
    assert_eq!(status, StatusCode::OK);
    let arr = body.as_array().expect("a batch answers an array");
    assert_eq!(arr.len(), 10);
    assert!(arr.iter().all(|r| r["data"]["__typename"] == "Query"));

    let eleven: Vec<Value> = (0..11)
        .map(|_| json!({"query": "{ __typename }"}))
        .collect();
    let (status, _, body) = app.post_raw(&json, Value::Array(eleven).to_string()).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
        "{body}"
    );

    let (status, _, body) = app.post_raw(&json, "[]").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
        "{body}"
    );
}

async fn get_runs_queries_but_not_mutations(app: TestApp) {
    let resp = app
        .http
        .get(app.url("/graphql"))
        .query(&[("query", "{ __typename }")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["__typename"], "Query");

    let resp = app
        .http
        .get(app.url("/graphql"))
        .query(&[("query", "mutation { logout }")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "METHOD_NOT_ALLOWED");

    let resp = app
        .http
        .get(app.url("/graphql"))
        .query(&[("variables", "{")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

async fn content_negotiation_follows_graphql_over_http(app: TestApp) {
    let (status, ct, body) = app
        .post_raw(
            &[("content-type", "application/json")],
            json!({"query": "{ __typename }"}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("application/json"), "{ct}");
    assert_eq!(body["data"]["__typename"], "Query");

    let gr = [
        ("content-type", "application/json"),
        ("accept", "application/graphql-response+json"),
    ];
    let (status, ct, _) = app
        .post_raw(&gr, json!({"query": "{ __typename }"}).to_string())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("application/graphql-response+json"), "{ct}");

    let (status, ct, body) = app
        .post_raw(&gr, json!({"query": "{ __typename "}).to_string())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(ct.starts_with("application/graphql-response+json"));
    assert_eq!(code(&body), "GRAPHQL_PARSE_FAILED");

    let (status, _, body) = app
        .post_raw(&gr, json!({"query": "{ nope }"}).to_string())
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "GRAPHQL_VALIDATION_FAILED")
    );

    // An execution error is still 200: the data key is there.
    let (status, _, body) = app
        .post_raw(&gr, json!({"query": "{ mySessions { id } }"}).to_string())
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::OK, "UNAUTHENTICATED"),
        "{body}"
    );
}

const WAIT: Duration = Duration::from_secs(10);

async fn websocket_transport_ws_streams_and_completes(app: TestApp) {
    let user = app.register("ws@example.com", "USER").await;
    let mut ws = WsClient::connect(&app.ws_url, "graphql-transport-ws").await;
    assert_eq!(ws.protocol, "graphql-transport-ws");
    ws.init(json!({"Authorization": format!("Bearer {}", user.token)}))
        .await;
    assert_eq!(ws.message(WAIT).await["type"], "connection_ack");

    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.message(WAIT).await["type"], "pong");

    ws.send(json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { health { status } }"}}))
        .await;
    let next = ws.message(WAIT).await;
    assert_eq!(next["type"], "next", "{next}");
    assert_eq!(next["id"], "1");
    assert_eq!(next["payload"]["data"]["health"]["status"], "HEALTHY");
    ws.send(json!({"id": "1", "type": "complete"})).await;

    // A query over the socket answers once and completes.
    ws.send(json!({"id": "2", "type": "subscribe", "payload": {"query": "{ me { id } }"}}))
        .await;
    let next = ws.message(WAIT).await;
    assert_eq!(next["payload"]["data"]["me"]["id"], user.id.as_str());
    assert_eq!(
        ws.message(WAIT).await,
        json!({"type": "complete", "id": "2"})
    );

    // A document that does not validate answers `error` for that operation only.
    ws.send(json!({"id": "3", "type": "subscribe", "payload": {"query": "subscription { nope }"}}))
        .await;
    let err = ws.message(WAIT).await;
    assert_eq!(err["type"], "error");
    assert_eq!(
        err["payload"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );

    // An argument its validator refuses is the client's error, with its code.
    ws.send(json!({"id": "4", "type": "subscribe", "payload": {"query": "subscription { health(intervalSeconds: 1) { status } }"}}))
        .await;
    let refused = ws.message(WAIT).await;
    let errors = if refused["type"] == "error" {
        &refused["payload"]
    } else {
        &refused["payload"]["errors"]
    };
    assert_eq!(
        errors[0]["extensions"]["code"], "BAD_USER_INPUT",
        "{refused}"
    );
}

async fn websocket_legacy_protocol_streams(app: TestApp) {
    let user = app.register("legacy@example.com", "USER").await;
    let mut ws = WsClient::connect(&app.ws_url, "graphql-ws").await;
    assert_eq!(ws.protocol, "graphql-ws");
    ws.init(json!({"token": user.token})).await;
    assert_eq!(ws.message(WAIT).await["type"], "connection_ack");
    ws.send(json!({"id": "a", "type": "start", "payload": {"query": "subscription { health { status } }"}}))
        .await;
    let data = ws.message(WAIT).await;
    assert_eq!(data["type"], "data", "{data}");
    assert_eq!(data["payload"]["data"]["health"]["status"], "HEALTHY");
    // Starting an id again restarts that operation (the legacy protocol's rule).
    ws.send(json!({"id": "a", "type": "start", "payload": {"query": "subscription { health(intervalSeconds: 3600) { status } }"}}))
        .await;
    let again = ws.message(WAIT).await;
    assert_eq!(
        (again["type"].clone(), again["id"].clone()),
        (json!("data"), json!("a")),
        "{again}"
    );
    ws.send(json!({"id": "a", "type": "stop"})).await;
    ws.send(json!({"type": "connection_terminate"})).await;
    assert!(matches!(
        ws.next(WAIT).await,
        crate::helpers::ws::Event::Closed(..)
    ));
}

async fn websocket_close_codes(app: TestApp) {
    let user = app.register("codes@example.com", "USER").await;
    let bearer = json!({"authorization": format!("Bearer {}", user.token)});

    // No token, a bad token: no ack, 4403.
    for payload in [json!({}), json!({"Authorization": "Bearer nope"})] {
        let mut ws = WsClient::connect(&app.ws_url, "graphql-transport-ws").await;
        ws.init(payload).await;
        assert_eq!(ws.close_code(WAIT).await, Some(4403));
    }
    // Subscribing before the handshake: 4401.
    let mut ws = WsClient::connect(&app.ws_url, "graphql-transport-ws").await;
    ws.send(json!({"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }"}}))
        .await;
    assert_eq!(ws.close_code(WAIT).await, Some(4401));
    // Nothing sent: 4408 after the init timeout (1 s in tests).
    let mut ws = WsClient::connect(&app.ws_url, "graphql-transport-ws").await;
    assert_eq!(ws.close_code(WAIT).await, Some(4408));
    // A second connection_init: 4429.
    let mut ws = WsClient::connect(&app.ws_url, "graphql-transport-ws").await;
    ws.init(bearer.clone()).await;
    assert_eq!(ws.message(WAIT).await["type"], "connection_ack");
    ws.init(bearer.clone()).await;
    assert_eq!(ws.close_code(WAIT).await, Some(4429));
    // A duplicate operation id: 4409.
    let mut ws = WsClient::connect(&app.ws_url, "graphql-transport-ws").await;
    ws.init(bearer.clone()).await;
    assert_eq!(ws.message(WAIT).await["type"], "connection_ack");
    let sub = json!({"id": "x", "type": "subscribe", "payload": {"query": "subscription { health(intervalSeconds: 3600) { status } }"}});
    ws.send(sub.clone()).await;
    assert_eq!(ws.message(WAIT).await["type"], "next");
    ws.send(sub).await;
    assert_eq!(ws.close_code(WAIT).await, Some(4409));
    // Garbage: 4400.
    let mut ws = WsClient::connect(&app.ws_url, "graphql-transport-ws").await;
    ws.send(json!({"type": "what"})).await;
    assert_eq!(ws.close_code(WAIT).await, Some(4400));
}
