//! Variables as front ends send them: one document per form that declares every variable,
//! and a variables object holding only the ones that are set. An omitted variable leaves
//! its argument absent (the value is kept), an explicit null clears it, and a missing or
//! mistyped required variable is a request error with a code, over every transport.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{code, ws::WsClient, Account, TestApp};

on_both_backends!(
    update_profile_keeps_what_the_variables_leave_out,
    upsert_coach_profile_keeps_what_the_variables_leave_out,
    omitted_variables_are_absent_in_every_document_shape,
    required_variables_are_checked_before_anything_runs,
    omitted_variables_over_the_websocket,
);

/// The profile form's document, as a front end writes it: named, every variable declared.
const UPDATE_PROFILE: &str = "mutation UpdateProfile($displayName: String, $bio: String, $avatarMediaId: ID, $timezone: String) {
  updateProfile(displayName: $displayName, bio: $bio, avatarMediaId: $avatarMediaId, timezone: $timezone) {
    profile { displayName bio timezone }
  }
}";

const ME_PROFILE: &str = "query Me { me { profile { displayName bio timezone } } }";

/// Runs `UPDATE_PROFILE` the way Apollo Client sends it (with its `operationName`).
async fn update_profile(app: &TestApp, user: &Account, variables: Value) -> Value {
    app.post_as(
        &user.token,
        json!({"query": UPDATE_PROFILE, "operationName": "UpdateProfile", "variables": variables}),
    )
    .await
}

async fn me_profile(app: &TestApp, user: &Account) -> Value {
    app.gql_as(&user.token, ME_PROFILE, json!({})).await["data"]["me"]["profile"].clone()
}

async fn update_profile_keeps_what_the_variables_leave_out(app: TestApp) {
    let user = app.register("form@example.com", "USER").await;
    let body = update_profile(
        &app,
        &user,
        json!({"displayName": "Ana", "bio": "Runner", "timezone": "Europe/Paris"}),
    )
    .await;
    let all = json!({"displayName": "Ana", "bio": "Runner", "timezone": "Europe/Paris"});
    assert_eq!(body["data"]["updateProfile"]["profile"], all, "{body}");

    // One variable: only that field changes.
    let body = update_profile(&app, &user, json!({"displayName": "New"})).await;
    let renamed = json!({"displayName": "New", "bio": "Runner", "timezone": "Europe/Paris"});
    assert_eq!(body["data"]["updateProfile"]["profile"], renamed, "{body}");
    let body = update_profile(&app, &user, json!({"bio": "Swimmer"})).await;
    let rebio = json!({"displayName": "New", "bio": "Swimmer", "timezone": "Europe/Paris"});
    assert_eq!(body["data"]["updateProfile"]["profile"], rebio, "{body}");

    // None: nothing changes. No variables key at all reads the same.
    let body = update_profile(&app, &user, json!({})).await;
    assert_eq!(body["data"]["updateProfile"]["profile"], rebio, "{body}");
    let body = app
        .post_as(
            &user.token,
            json!({"query": UPDATE_PROFILE, "operationName": "UpdateProfile"}),
        )
        .await;
    assert_eq!(body["data"]["updateProfile"]["profile"], rebio, "{body}");
    let body = app
        .post_as(
            &user.token,
            json!({"query": UPDATE_PROFILE, "variables": null}),
        )
        .await;
    assert_eq!(body["data"]["updateProfile"]["profile"], rebio, "{body}");

    // An explicit null clears what may be cleared, and only that.
    let body = update_profile(&app, &user, json!({"bio": null})).await;
    let cleared = json!({"displayName": "New", "bio": null, "timezone": "Europe/Paris"});
    assert_eq!(body["data"]["updateProfile"]["profile"], cleared, "{body}");

    // ... and is refused where it may not, with nothing changed.
    for (vars, field) in [
        (json!({"displayName": null, "bio": "lost?"}), "displayName"),
        (json!({"timezone": null}), "timezone"),
        (
            json!({"bio": "lost?", "timezone": "Mars/Olympus"}),
            "timezone",
        ),
        (json!({"avatarMediaId": "not-an-id"}), "avatarMediaId"),
    ] {
        let body = update_profile(&app, &user, vars.clone()).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{vars}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["field"], field,
            "{vars}: {body}"
        );
    }
    assert_eq!(me_profile(&app, &user).await, cleared);
}

const UPSERT_COACH: &str = "mutation UpsertCoach($headline: String!, $bio: String, $specialtySlugs: [String!]!, $sessionMinutes: Int, $priceCents: Int, $currency: String, $timezone: String, $requiresApproval: Boolean) {
  upsertCoachProfile(headline: $headline, bio: $bio, specialtySlugs: $specialtySlugs, sessionMinutes: $sessionMinutes, priceCents: $priceCents, currency: $currency, timezone: $timezone, requiresApproval: $requiresApproval) {
    coachProfile { headline bio sessionMinutes priceCents currency timezone requiresApproval specialties { slug } }
  }
}";

async fn upsert_coach_profile_keeps_what_the_variables_leave_out(app: TestApp) {
    let coach = app.register("coach-form@example.com", "COACH").await;
    let upsert = |variables: Value| {
        app.post_as(
            &coach.token,
            json!({"query": UPSERT_COACH, "operationName": "UpsertCoach", "variables": variables}),
        )
    };
    let full = json!({
        "headline": "Breath coach", "bio": "Ten years", "specialtySlugs": ["yoga"],
        "sessionMinutes": 45, "priceCents": 5000, "currency": "EUR",
        "timezone": "Europe/Paris", "requiresApproval": true,
    });
    let body = upsert(full).await;
    let expected = json!({
        "headline": "Breath coach", "bio": "Ten years", "sessionMinutes": 45,
        "priceCents": 5000, "currency": "EUR", "timezone": "Europe/Paris",
        "requiresApproval": true, "specialties": [{"slug": "yoga"}],
    });
    assert_eq!(
        body["data"]["upsertCoachProfile"]["coachProfile"], expected,
        "{body}"
    );

    // Only the required variables: every optional field is kept.
    let body = upsert(json!({"headline": "Breath coach", "specialtySlugs": ["yoga"]})).await;
    assert_eq!(
        body["data"]["upsertCoachProfile"]["coachProfile"], expected,
        "{body}"
    );

    // One optional variable more: that one changes.
    let body = upsert(
        json!({"headline": "Breath coach", "specialtySlugs": ["yoga"], "sessionMinutes": 30}),
    )
    .await;
    let mut thirty = expected.clone();
    thirty["sessionMinutes"] = json!(30);
    assert_eq!(
        body["data"]["upsertCoachProfile"]["coachProfile"], thirty,
        "{body}"
    );

    // Explicit nulls clear the price and the timezone, nothing else.
    let body = upsert(json!({"headline": "Breath coach", "specialtySlugs": ["yoga"], "priceCents": null, "timezone": null})).await;
    let mut cleared = thirty.clone();
    cleared["priceCents"] = Value::Null;
    // Without a timezone of its own, the coach profile reads the user profile's.
    cleared["timezone"] = json!("UTC");
    assert_eq!(
        body["data"]["upsertCoachProfile"]["coachProfile"], cleared,
        "{body}"
    );

    // A null where none is allowed changes nothing.
    let body = upsert(json!({"headline": "Breath coach", "specialtySlugs": ["yoga"], "requiresApproval": null, "bio": "lost?"})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "requiresApproval");
    let body = upsert(json!({"headline": "Breath coach", "specialtySlugs": ["yoga"]})).await;
    assert_eq!(
        body["data"]["upsertCoachProfile"]["coachProfile"], cleared,
        "{body}"
    );
}

async fn omitted_variables_are_absent_in_every_document_shape(app: TestApp) {
    let user = app.register("shapes@example.com", "USER").await;
    let set = update_profile(
        &app,
        &user,
        json!({"displayName": "Ana", "bio": "Runner", "timezone": "Europe/Paris"}),
    )
    .await;
    assert!(set.get("errors").is_none(), "{set}");
    let kept =
        |name: &str| json!({"displayName": name, "bio": "Runner", "timezone": "Europe/Paris"});

    // In a fragment, in a document that holds other operations (selected by name), one
    // of which shares the fragment with the variables it needs.
    let doc = "
      query Other { me { id } }
      mutation Rename($displayName: String, $bio: String, $timezone: String) { ...Fields }
      mutation Full($displayName: String!, $bio: String!, $timezone: String!) { ...Fields }
      fragment Fields on Mutation {
        updateProfile(displayName: $displayName, bio: $bio, timezone: $timezone) { ...P }
      }
      fragment P on User { profile { displayName bio timezone } }";
    let body = app
        .post_as(
            &user.token,
            json!({"query": doc, "operationName": "Rename", "variables": {"displayName": "In fragment"}}),
        )
        .await;
    assert_eq!(
        body["data"]["updateProfile"]["profile"],
        kept("In fragment"),
        "{body}"
    );

    // In a batch, each operation by its own variables.
    let body = app
        .post_as(
            &user.token,
            json!([
                {"query": UPDATE_PROFILE, "operationName": "UpdateProfile", "variables": {"displayName": "Batch 1"}},
                {"query": UPDATE_PROFILE, "operationName": "UpdateProfile", "variables": {}},
                {"query": ME_PROFILE, "operationName": "Me"},
            ]),
        )
        .await;
    let answers = body.as_array().expect("a batch answers an array");
    assert_eq!(
        answers[0]["data"]["updateProfile"]["profile"],
        kept("Batch 1"),
        "{body}"
    );
    assert_eq!(
        answers[1]["data"]["updateProfile"]["profile"],
        kept("Batch 1"),
        "{body}"
    );
    assert_eq!(
        answers[2]["data"]["me"]["profile"],
        kept("Batch 1"),
        "{body}"
    );

    // A default the document declares applies when the variable is left out, and so does
    // the argument's own default (`logout(allSessions: Boolean = false)`): a left-out
    // variable is an absent argument, not `allSessions: null`.
    let other = app.login(&user.email, crate::helpers::PASSWORD).await;
    let other_token = other["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let body = app
        .post_as(
            &other_token,
            json!({"query": "mutation Out($all: Boolean) { logout(allSessions: $all) }", "operationName": "Out", "variables": {}}),
        )
        .await;
    assert_eq!(body["data"]["logout"], true, "{body}");
    let body = app.gql_as(&user.token, ME_PROFILE, json!({})).await;
    assert_eq!(
        body["data"]["me"]["profile"],
        kept("Batch 1"),
        "the other session lives on: {body}"
    );

    // Over GET, a query with a declared default and a left-out nullable variable.
    let resp = app
        .http
        .get(app.url("/graphql"))
        .query(&[
            ("query", "query Coaches($first: Int = 1, $search: String) { coaches(first: $first, search: $search) { totalCount pageInfo { hasNextPage } } }"),
            ("operationName", "Coaches"),
            ("variables", "{}"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["coaches"]["totalCount"], 0, "{body}");
}

async fn required_variables_are_checked_before_anything_runs(app: TestApp) {
    let json_ct = [("content-type", "application/json")];
    let gr = [
        ("content-type", "application/json"),
        ("accept", "application/graphql-response+json"),
    ];
    let query = "query U($id: ID!) { user(id: $id) { id } }";
    for body in [
        json!({"query": query, "variables": {}}),
        json!({"query": query}),
        json!({"query": query, "operationName": "U", "variables": {"id": null}}),
    ] {
        let (status, ct, answer) = app.post_raw(&json_ct, body.to_string()).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert!(ct.starts_with("application/json"), "{ct}");
        assert_eq!(code(&answer), "BAD_USER_INPUT", "{body}: {answer}");
        assert_eq!(answer["errors"][0]["extensions"]["field"], "id", "{answer}");
        let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("$id") && message.contains("ID!"),
            "{answer}"
        );
        assert!(
            answer.get("data").is_none(),
            "a request error has no data: {answer}"
        );
        assert_eq!(
            answer["errors"][0]["locations"],
            json!([{"line": 1, "column": 9}]),
            "it points at the variable's definition: {answer}"
        );

        let (status, ct, answer) = app.post_raw(&gr, body.to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(ct.starts_with("application/graphql-response+json"), "{ct}");
        assert_eq!(code(&answer), "BAD_USER_INPUT");
    }

    // A mistyped variable is refused by validation, before any resolver. (An Int is a
    // valid ID, as the spec says; that id then fails to parse, the argument's error.)
    for vars in [
        json!({"id": true}),
        json!({"id": {"a": 1}}),
        json!({"id": [1]}),
    ] {
        let (status, _, answer) = app
            .post_raw(
                &json_ct,
                json!({"query": query, "variables": vars}).to_string(),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            code(&answer),
            "GRAPHQL_VALIDATION_FAILED",
            "{vars}: {answer}"
        );
        assert!(answer.get("data").is_none(), "{answer}");
    }
    let answer = app.gql(query, json!({"id": 5})).await;
    assert_eq!(code(&answer), "BAD_USER_INPUT", "{answer}");
    assert_eq!(answer["errors"][0]["extensions"]["field"], "id", "{answer}");

    // Mistyped inside a list and next to a left-out variable.
    let (_, _, answer) = app
        .post_raw(
            &json_ct,
            json!({
                "query": "mutation C($h: String!, $s: [String!]!, $bio: String) { upsertCoachProfile(headline: $h, specialtySlugs: $s, bio: $bio) { id } }",
                "variables": {"h": "x", "s": ["yoga", 7]},
            })
            .to_string(),
        )
        .await;
    assert_eq!(code(&answer), "GRAPHQL_VALIDATION_FAILED", "{answer}");

    // Variables that are not an object are a malformed request.
    for vars in [json!([1]), json!("{\"id\": 1}"), json!(5)] {
        let (status, _, answer) = app
            .post_raw(
                &json_ct,
                json!({"query": query, "variables": vars}).to_string(),
            )
            .await;
        assert_eq!(
            (status, code(&answer)),
            (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            "{vars}: {answer}"
        );
    }

    // Over GET, and inside a batch (where the other operations still run).
    let resp = app
        .http
        .get(app.url("/graphql"))
        .query(&[("query", query)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(code(&answer), "BAD_USER_INPUT", "{answer}");
    let (_, _, answer) = app
        .post_raw(
            &json_ct,
            json!([{"query": query}, {"query": "{ __typename }"}]).to_string(),
        )
        .await;
    assert_eq!(code(&answer[0]), "BAD_USER_INPUT", "{answer}");
    assert_eq!(answer[1]["data"]["__typename"], "Query", "{answer}");

    // A header-level error has no place in the document: no `locations`.
    let (_, _, answer) = app
        .post_raw(
            &[
                ("content-type", "application/json"),
                ("authorization", "Bearer nope"),
            ],
            json!({"query": "{ specialties { slug } }"}).to_string(),
        )
        .await;
    assert_eq!(code(&answer), "UNAUTHENTICATED", "{answer}");
    assert!(answer["errors"][0].get("locations").is_none(), "{answer}");
}

const WAIT: Duration = Duration::from_secs(10);

async fn omitted_variables_over_the_websocket(app: TestApp) {
    let user = app.register("ws-vars@example.com", "USER").await;
    let mut ws = WsClient::connect(&app.ws_url, "graphql-transport-ws").await;
    ws.init(json!({"Authorization": format!("Bearer {}", user.token)}))
        .await;
    assert_eq!(ws.message(WAIT).await["type"], "connection_ack");

    // `intervalSeconds` has a default (30): a left-out variable must not be read as null.
    ws.send(json!({"id": "1", "type": "subscribe", "payload": {
        "query": "subscription Health($interval: Int) { health(intervalSeconds: $interval) { status } }",
        "operationName": "Health", "variables": {},
    }}))
    .await;
    let next = ws.message(WAIT).await;
    assert_eq!(
        next["payload"]["data"]["health"]["status"], "HEALTHY",
        "{next}"
    );
    ws.send(json!({"id": "1", "type": "complete"})).await;

    // A mutation over the socket keeps what it does not name.
    update_profile(&app, &user, json!({"bio": "Runner"})).await;
    ws.send(json!({"id": "2", "type": "subscribe", "payload": {
        "query": UPDATE_PROFILE, "operationName": "UpdateProfile", "variables": {"displayName": "Socket"},
    }}))
    .await;
    let next = ws.message(WAIT).await;
    assert_eq!(
        next["payload"]["data"]["updateProfile"]["profile"],
        json!({"displayName": "Socket", "bio": "Runner", "timezone": "UTC"}),
        "{next}"
    );
    assert_eq!(ws.message(WAIT).await["type"], "complete");

    // A missing required variable answers `error` for that operation, with its code.
    ws.send(json!({"id": "3", "type": "subscribe", "payload": {
        "query": "query U($id: ID!) { user(id: $id) { id } }", "variables": {},
    }}))
    .await;
    let err = ws.message(WAIT).await;
    assert_eq!(err["type"], "error", "{err}");
    assert_eq!(
        err["payload"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{err}"
    );
    assert_eq!(err["payload"][0]["extensions"]["field"], "id", "{err}");
}
