//! Accounts, sessions and roles, over HTTP and websocket, on both backends.

use std::time::Duration;

use crate::helpers::{
    code, eventually, ws::WsClient, Account, Backend, TestApp, JWT_SECRET, PASSWORD,
};
use base64::Engine;
use jolmood::config::Database;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};

const ADMIN_EMAIL: &str = "root@jolmood.test";
const ADMIN_PASSWORD: &str = "admin password 123";
const ME: &str = "{ me { id email role suspended } }";

async fn spawn_with_admin(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |c| {
        c.admin_email = Some(ADMIN_EMAIL.into());
        c.admin_password = Some(ADMIN_PASSWORD.into());
    })
    .await
}

async fn admin_token(app: &TestApp) -> String {
    let body = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(body["data"]["login"]["user"]["role"], "ADMIN", "{body}");
    body["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Sends `query` with a raw Authorization header value.
async fn with_header(app: &TestApp, header: &str, query: &str, vars: Value) -> Value {
    let body = json!({"query": query, "variables": vars}).to_string();
    let (status, _, body) = app
        .post_raw(
            &[
                ("content-type", "application/json"),
                ("authorization", header),
            ],
            body,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

on_both_backends!(
    register_then_me,
    emails_are_normalised_and_unique,
    register_refuses_admin_and_bad_input,
    unknown_email_and_wrong_password_look_the_same,
    failed_logins_are_rate_limited,
    concurrent_guesses_cannot_pass_the_limit,
    refresh_tokens_rotate_and_are_single_use,
    racing_refreshes_let_exactly_one_through,
    logout_by_access_or_refresh_token,
    sessions_are_listed_and_revocable,
    change_password_revokes_other_sessions,
    forged_and_foreign_tokens_are_refused,
    oversize_documents_and_batches_store_nothing,
    registration_leaves_no_half_account,
    weak_hashes_are_upgraded_at_login,
    auth_mutations_are_audited,
    registrations_are_limited_per_address,
    spent_refresh_tokens_cannot_log_anyone_out,
    a_crowd_behind_one_address_can_sign_in,
);

mod with_admin {
    use super::*;

    async fn suspension_blocks_login_and_tokens(app: TestApp) {
        let admin = admin_token(&app).await;
        let user = app.register("sus@example.com", "USER").await;
        let q = "mutation($u: ID!, $s: Boolean!) { suspendUser(userId: $u, suspended: $s) { id suspended } }";
        let body = app
            .gql_as(&admin, q, json!({"u": user.id, "s": true}))
            .await;
        assert_eq!(body["data"]["suspendUser"]["suspended"], true, "{body}");

        let body = app.login("sus@example.com", PASSWORD).await;
        assert_eq!(code(&body), "FORBIDDEN");
        assert!(body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("suspended"));
        let body = app.login("sus@example.com", "wrong password").await;
        assert_eq!(code(&body), "UNAUTHENTICATED");
        let body = app.gql_as(&user.token, ME, json!({})).await;
        assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
        let body = app
            .gql(
                "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }",
                json!({"t": user.refresh}),
            )
            .await;
        assert_eq!(code(&body), "FORBIDDEN", "{body}");

        app.gql_as(&admin, q, json!({"u": user.id, "s": false}))
            .await;
        let body = app.login("sus@example.com", PASSWORD).await;
        assert!(body["data"]["login"]["accessToken"].is_string(), "{body}");
        // The refresh token refused during the suspension was not spent: it still works.
        let body = app
            .gql(
                "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }",
                json!({"t": user.refresh}),
            )
            .await;
        assert!(
            body["data"]["refreshToken"]["accessToken"].is_string(),
            "{body}"
        );
    }

    async fn role_changes_apply_to_existing_tokens(app: TestApp) {
        let admin = admin_token(&app).await;
        let user = app.register("promoted@example.com", "USER").await;
        let set_role =
            "mutation($u: ID!, $r: Role!) { setUserRole(userId: $u, role: $r) { id role } }";
        let body = app
            .gql_as(&user.token, set_role, json!({"u": user.id, "r": "ADMIN"}))
            .await;
        assert_eq!(code(&body), "FORBIDDEN");

        let body = app
            .gql_as(&admin, set_role, json!({"u": user.id, "r": "ADMIN"}))
            .await;
        assert_eq!(body["data"]["setUserRole"]["role"], "ADMIN", "{body}");
        // The same token now carries admin rights (the claim inside it still says USER).
        let ok = eventually(Duration::from_secs(5), || async {
            let b = app
                .gql_as(&user.token, set_role, json!({"u": user.id, "r": "ADMIN"}))
                .await;
            b["data"]["setUserRole"]["role"] == "ADMIN"
        })
        .await;
        assert!(ok, "the promoted user's token never gained admin rights");
        // The platform keeps at least one active admin.
        let body = app
            .gql_as(&user.token, set_role, json!({"u": user.id, "r": "USER"}))
            .await;
        assert_eq!(body["data"]["setUserRole"]["role"], "USER", "{body}");
        let me = app.gql_as(&admin, ME, json!({})).await;
        let admin_id = me["data"]["me"]["id"].as_str().unwrap().to_string();
        let body = app
            .gql_as(&admin, set_role, json!({"u": admin_id, "r": "USER"}))
            .await;
        assert_eq!(code(&body), "CONFLICT", "{body}");
    }

    async fn open_subscriptions_close_when_the_session_ends(app: TestApp) {
        let admin = admin_token(&app).await;
        // Logout closes the socket with 4403.
        let user = app.register("wsout@example.com", "USER").await;
        let mut ws = WsClient::connect(&app.ws_url, "graphql-transport-ws").await;
        ws.init(json!({"Authorization": format!("Bearer {}", user.token)}))
            .await;
        assert_eq!(
            ws.message(Duration::from_secs(5)).await["type"],
            "connection_ack"
        );
        ws.send(json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { health(intervalSeconds: 3600) { status } }"}})).await;
        assert_eq!(ws.message(Duration::from_secs(5)).await["type"], "next");
        let body = app
            .gql_as(&user.token, "mutation { logout }", json!({}))
            .await;
        assert_eq!(body["data"]["logout"], true);
        assert_eq!(ws.close_code(Duration::from_secs(10)).await, Some(4403));

        // So does a suspension.
        let user = app.register("wssus@example.com", "USER").await;
        let mut ws = WsClient::connect(&app.ws_url, "graphql-ws").await;
        ws.init(json!({"token": user.token})).await;
        assert_eq!(
            ws.message(Duration::from_secs(5)).await["type"],
            "connection_ack"
        );
        app.gql_as(
            &admin,
            "mutation($u: ID!) { suspendUser(userId: $u, suspended: true) { id } }",
            json!({"u": user.id}),
        )
        .await;
        assert_eq!(ws.close_code(Duration::from_secs(10)).await, Some(4403));
    }

    async fn first_admin_comes_from_the_environment(app: TestApp) {
        let token = admin_token(&app).await;
        let body = app.gql_as(&token, ME, json!({})).await;
        assert_eq!(body["data"]["me"]["email"], ADMIN_EMAIL);
        assert_eq!(body["data"]["me"]["role"], "ADMIN");
    }

    on_both_backends!(
        spawn = super::spawn_with_admin;
        suspension_blocks_login_and_tokens,
        role_changes_apply_to_existing_tokens,
        open_subscriptions_close_when_the_session_ends,
        first_admin_comes_from_the_environment
    );
}

async fn register_then_me(app: TestApp) {
    let body = app
        .gql(
            "mutation { register(email: \"coach@example.com\", password: \"long enough pw\", displayName: \"  Zoé  \", role: COACH) { accessToken refreshToken expiresIn user { id role email suspended profile { displayName timezone } } } }",
            json!({}),
        )
        .await;
    let p = &body["data"]["register"];
    assert_eq!(p["expiresIn"], 900, "{body}");
    assert_eq!(p["user"]["role"], "COACH");
    assert_eq!(p["user"]["email"], "coach@example.com");
    assert_eq!(p["user"]["suspended"], false);
    assert_eq!(p["user"]["profile"]["displayName"], "Zoé");
    assert_eq!(p["user"]["profile"]["timezone"], "UTC");
    let id = p["user"]["id"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);

    let token = p["accessToken"].as_str().unwrap();
    let me = app.gql_as(token, ME, json!({})).await;
    assert_eq!(me["data"]["me"]["id"], id);
    assert_eq!(app.gql(ME, json!({})).await["data"]["me"], Value::Null);

    let user = app.register("plain@example.com", "USER").await;
    let me = app.gql_as(&user.token, ME, json!({})).await;
    assert_eq!(me["data"]["me"]["role"], "USER");
}

async fn emails_are_normalised_and_unique(app: TestApp) {
    let a = app.register("  Ana@Example.COM ", "USER").await;
    assert_eq!(a.email, "ana@example.com");
    let body = app
        .gql(
            "mutation { register(email: \"ana@example.com\", password: \"long enough pw\", displayName: \"Ana\") { accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "CONFLICT", "{body}");
    let body = app.login("ANA@example.com", PASSWORD).await;
    assert_eq!(body["data"]["login"]["user"]["id"], a.id.as_str());
}

async fn register_refuses_admin_and_bad_input(app: TestApp) {
    let q = "mutation($e: String!, $p: String!, $n: String!, $r: Role) { register(email: $e, password: $p, displayName: $n, role: $r) { accessToken } }";
    let cases = [
        (
            json!({"e": "x@example.com", "p": PASSWORD, "n": "X", "r": "ADMIN"}),
            "FORBIDDEN",
            None,
        ),
        (
            json!({"e": "x@example.com", "p": "short", "n": "X"}),
            "BAD_USER_INPUT",
            Some("password"),
        ),
        (
            json!({"e": "x@example.com", "p": "", "n": "X"}),
            "BAD_USER_INPUT",
            Some("password"),
        ),
        (
            json!({"e": "x@example.com", "p": "p".repeat(10 * 1024), "n": "X"}),
            "BAD_USER_INPUT",
            Some("password"),
        ),
        (
            json!({"e": "x@example.com", "p": PASSWORD, "n": "   "}),
            "BAD_USER_INPUT",
            Some("displayName"),
        ),
        (
            json!({"e": "x@example.com", "p": PASSWORD, "n": "n".repeat(81)}),
            "BAD_USER_INPUT",
            Some("displayName"),
        ),
        (
            json!({"e": "not-an-email", "p": PASSWORD, "n": "X"}),
            "BAD_USER_INPUT",
            Some("email"),
        ),
    ];
    for (vars, expected, field) in cases {
        let body = app.gql(q, vars.clone()).await;
        assert_eq!(code(&body), expected, "{vars}: {body}");
        if let Some(field) = field {
            assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
        }
    }
    // None of those stored anything: the email is still free.
    let body = app
        .gql(q, json!({"e": "x@example.com", "p": PASSWORD, "n": "X"}))
        .await;
    assert!(
        body["data"]["register"]["accessToken"].is_string(),
        "{body}"
    );
}

async fn unknown_email_and_wrong_password_look_the_same(app: TestApp) {
    app.register("known@example.com", "USER").await;
    let mut unknown = Vec::new();
    let mut wrong = Vec::new();
    for i in 0..5 {
        let t = std::time::Instant::now();
        let a = app
            .login(&format!("nobody{i}@example.com"), "whatever password")
            .await;
        unknown.push(t.elapsed());
        let t = std::time::Instant::now();
        let b = app
            .login("known@example.com", &format!("wrong password {i}"))
            .await;
        wrong.push(t.elapsed());
        assert_eq!(
            a["errors"], b["errors"],
            "the two failures must be indistinguishable"
        );
        assert_eq!(code(&a), "UNAUTHENTICATED");
    }
    unknown.sort();
    wrong.sort();
    // Both verify a full Argon2id hash; without the dummy hash an unknown email would
    // answer in a database round trip, more than ten times faster. The bounds are wide
    // because hashing runs at the lowest priority and a busy machine delays it unevenly.
    let (u, w) = (unknown[2].as_secs_f64(), wrong[2].as_secs_f64());
    assert!(
        u > w * 0.25 && u < w * 4.0,
        "median unknown {u:.3}s vs wrong {w:.3}s"
    );
}

async fn failed_logins_are_rate_limited(app: TestApp) {
    app.register("target@example.com", "USER").await;
    app.register("other@example.com", "USER").await;
    app.register("late@example.com", "USER").await;
    for i in 1..=5 {
        let body = app.login("target@example.com", "wrong password").await;
        assert_eq!(code(&body), "UNAUTHENTICATED", "failure {i}: {body}");
    }
    // From the 6th attempt on: refused, even with the right password.
    let body = app.login("target@example.com", PASSWORD).await;
    assert_eq!(code(&body), "RATE_LIMITED", "{body}");
    let retry = body["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap();
    assert!(retry > 0 && retry <= 900, "{retry}");
    // Another email from the same address is not locked out by this one.
    let body = app.login("other@example.com", PASSWORD).await;
    assert!(body["data"]["login"]["accessToken"].is_string(), "{body}");
    // 20 failures from one address lock the address, whatever the email.
    for i in 0..15 {
        let body = app
            .login(&format!("ghost{i}@example.com"), "wrong password")
            .await;
        assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    }
    let body = app.login("late@example.com", PASSWORD).await;
    assert_eq!(code(&body), "RATE_LIMITED", "{body}");
}

async fn concurrent_guesses_cannot_pass_the_limit(app: TestApp) {
    app.register("burst@example.com", "USER").await;
    let attempts = (0..12).map(|i| {
        let app = &app;
        async move {
            app.login("burst@example.com", &format!("guess number {i}"))
                .await
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    let checked = results
        .iter()
        .filter(|b| code(b) == "UNAUTHENTICATED")
        .count();
    let limited = results.iter().filter(|b| code(b) == "RATE_LIMITED").count();
    assert!(checked <= 5, "{checked} guesses were checked");
    assert_eq!(checked + limited, 12);
}

const REFRESH: &str = "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken user { id } } }";

async fn refresh_tokens_rotate_and_are_single_use(app: TestApp) {
    let user = app.register("rot@example.com", "USER").await;
    let body = app.gql(REFRESH, json!({"t": user.refresh})).await;
    let p = &body["data"]["refreshToken"];
    let (access, refresh) = (
        p["accessToken"].as_str().unwrap(),
        p["refreshToken"].as_str().unwrap(),
    );
    assert_ne!(refresh, user.refresh);
    assert_eq!(
        app.gql_as(access, ME, json!({})).await["data"]["me"]["id"],
        user.id.as_str()
    );

    // The spent token is refused; within the grace period it does not revoke anything.
    let body = app.gql(REFRESH, json!({"t": user.refresh})).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    let body = app.gql(REFRESH, json!({"t": "not-a-token"})).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");

    // An app where any reuse counts as theft: the whole session goes.
    let Some(strict) =
        TestApp::spawn_with(app.backend, |c| c.refresh_reuse_grace = Duration::ZERO).await
    else {
        return;
    };
    let user = strict.register("theft@example.com", "USER").await;
    let body = strict.gql(REFRESH, json!({"t": user.refresh})).await;
    let new_refresh = body["data"]["refreshToken"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_string();
    let new_access = body["data"]["refreshToken"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let body = strict.gql(REFRESH, json!({"t": user.refresh})).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{body}"
    );
    let body = strict.gql(REFRESH, json!({"t": new_refresh})).await;
    assert_eq!(
        code(&body),
        "UNAUTHENTICATED",
        "the thief's token died with the session"
    );
    let dead = eventually(Duration::from_secs(5), || async {
        code(&strict.gql_as(&new_access, ME, json!({})).await) == "UNAUTHENTICATED"
    })
    .await;
    assert!(dead, "access tokens of a revoked session must stop working");
}

async fn racing_refreshes_let_exactly_one_through(app: TestApp) {
    let user = app.register("race@example.com", "USER").await;
    let racers = (0..8).map(|_| app.gql(REFRESH, json!({"t": user.refresh})));
    let results = futures_util::future::join_all(racers).await;
    let winners: Vec<&Value> = results
        .iter()
        .filter(|b| b["data"]["refreshToken"].is_object())
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(results
        .iter()
        .filter(|b| !b["data"]["refreshToken"].is_object())
        .all(|b| code(b) == "UNAUTHENTICATED"));
    let access = winners[0]["data"]["refreshToken"]["accessToken"]
        .as_str()
        .unwrap();
    assert_eq!(
        app.gql_as(access, ME, json!({})).await["data"]["me"]["id"],
        user.id.as_str()
    );
}

async fn logout_by_access_or_refresh_token(app: TestApp) {
    let user = app.register("out@example.com", "USER").await;
    let body = app
        .gql_as(&user.token, "mutation { logout }", json!({}))
        .await;
    assert_eq!(body["data"]["logout"], true);
    assert_eq!(
        code(&app.gql_as(&user.token, ME, json!({})).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        code(&app.gql(REFRESH, json!({"t": user.refresh})).await),
        "UNAUTHENTICATED"
    );

    // With an expired (here: garbage) access token, the refresh token alone logs out.
    let again = app.login("out@example.com", PASSWORD).await;
    let refresh = again["data"]["login"]["refreshToken"].as_str().unwrap();
    let access = again["data"]["login"]["accessToken"].as_str().unwrap();
    let body = with_header(
        &app,
        "Bearer expired.token.here",
        "mutation($t: String) { logout(refreshToken: $t) }",
        json!({"t": refresh}),
    )
    .await;
    assert_eq!(body["data"]["logout"], true, "{body}");
    assert_eq!(
        code(&app.gql_as(access, ME, json!({})).await),
        "UNAUTHENTICATED"
    );
    // Without a refresh token, a bad header is refused.
    let body = with_header(
        &app,
        "Bearer expired.token.here",
        "mutation { logout }",
        json!({}),
    )
    .await;
    assert_eq!(code(&body), "UNAUTHENTICATED");

    // allSessions ends every session of the user.
    let a = app.login("out@example.com", PASSWORD).await;
    let b = app.login("out@example.com", PASSWORD).await;
    let ta = a["data"]["login"]["accessToken"].as_str().unwrap();
    let tb = b["data"]["login"]["accessToken"].as_str().unwrap();
    let body = app
        .gql_as(ta, "mutation { logout(allSessions: true) }", json!({}))
        .await;
    assert_eq!(body["data"]["logout"], true);
    assert_eq!(
        code(&app.gql_as(tb, ME, json!({})).await),
        "UNAUTHENTICATED"
    );
}

async fn sessions_are_listed_and_revocable(app: TestApp) {
    let first = app.register("multi@example.com", "USER").await;
    let second = app.login("multi@example.com", PASSWORD).await;
    let second_token = second["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let body = app
        .gql_as(
            &second_token,
            "{ mySessions { id current createdAt lastUsedAt ip userAgent } }",
            json!({}),
        )
        .await;
    let sessions = body["data"]["mySessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2, "{body}");
    assert_eq!(
        sessions[0]["current"], true,
        "newest first, and it is this one"
    );
    assert_eq!(sessions[1]["current"], false);
    assert_eq!(sessions[0]["ip"], "127.0.0.1");
    let other_id = sessions[1]["id"].as_str().unwrap();

    let body = app
        .gql_as(
            &second_token,
            "mutation { revokeSession(id: \"nope\") }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["field"], "id");
    let stranger = app.register("stranger@example.com", "USER").await;
    let body = app
        .gql_as(
            &stranger.token,
            "mutation($id: ID!) { revokeSession(id: $id) }",
            json!({"id": other_id}),
        )
        .await;
    assert_eq!(
        code(&body),
        "NOT_FOUND",
        "another user's session is not theirs to revoke"
    );

    let body = app
        .gql_as(
            &second_token,
            "mutation($id: ID!) { revokeSession(id: $id) }",
            json!({"id": other_id}),
        )
        .await;
    assert_eq!(body["data"]["revokeSession"], other_id);
    assert_eq!(
        code(&app.gql_as(&first.token, ME, json!({})).await),
        "UNAUTHENTICATED"
    );
    let body = app
        .gql_as(&second_token, "{ mySessions { id } }", json!({}))
        .await;
    assert_eq!(body["data"]["mySessions"].as_array().unwrap().len(), 1);
    assert_eq!(
        code(&app.gql("{ mySessions { id } }", json!({})).await),
        "UNAUTHENTICATED"
    );
}

async fn change_password_revokes_other_sessions(app: TestApp) {
    let first = app.register("pw@example.com", "USER").await;
    let second = app.login("pw@example.com", PASSWORD).await;
    let token = second["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let q = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";
    let body = app
        .gql_as(
            &token,
            q,
            json!({"c": "not it at all", "n": "a new password"}),
        )
        .await;
    assert_eq!(
        (code(&body), &body["errors"][0]["extensions"]["field"]),
        ("BAD_USER_INPUT", &json!("currentPassword"))
    );
    let body = app
        .gql_as(&token, q, json!({"c": PASSWORD, "n": "short"}))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "newPassword");
    let body = app
        .gql_as(&token, q, json!({"c": PASSWORD, "n": "a new password"}))
        .await;
    assert_eq!(body["data"]["changePassword"], true, "{body}");

    assert_eq!(
        code(&app.gql_as(&first.token, ME, json!({})).await),
        "UNAUTHENTICATED"
    );
    assert!(app.gql_as(&token, ME, json!({})).await["data"]["me"].is_object());
    assert_eq!(
        code(&app.login("pw@example.com", PASSWORD).await),
        "UNAUTHENTICATED"
    );
    assert!(app.login("pw@example.com", "a new password").await["data"]["login"].is_object());
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

fn sign(alg: jsonwebtoken::Algorithm, secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn forged_and_foreign_tokens_are_refused(app: TestApp) {
    let user: Account = app.register("victim@example.com", "USER").await;
    let good = claims_of(&user.token);
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let now = chrono::Utc::now().timestamp();
    let none_alg = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&good)
    );
    let forged = [
        ("alg none", none_alg),
        (
            "other secret",
            sign(
                jsonwebtoken::Algorithm::HS256,
                "another-secret-that-is-long-enough-000",
                &good,
            ),
        ),
        (
            "other algorithm",
            sign(jsonwebtoken::Algorithm::HS512, JWT_SECRET, &good),
        ),
        (
            "wrong audience",
            sign(
                jsonwebtoken::Algorithm::HS256,
                JWT_SECRET,
                &with("aud", json!("someone-else")),
            ),
        ),
        (
            "wrong issuer",
            sign(
                jsonwebtoken::Algorithm::HS256,
                JWT_SECRET,
                &with("iss", json!("evil")),
            ),
        ),
        (
            "not an access token",
            sign(
                jsonwebtoken::Algorithm::HS256,
                JWT_SECRET,
                &with("typ", json!("refresh")),
            ),
        ),
        (
            "expired",
            sign(jsonwebtoken::Algorithm::HS256, JWT_SECRET, &{
                let mut c = with("exp", json!(now - 120));
                c["iat"] = json!(now - 1000);
                c
            }),
        ),
        ("refresh token", user.refresh.clone()),
        ("garbage", "garbage".into()),
    ];
    for (what, token) in &forged {
        for query in [ME, "{ version }"] {
            let body = with_header(&app, &format!("Bearer {token}"), query, json!({})).await;
            assert_eq!(code(&body), "UNAUTHENTICATED", "{what} on {query}: {body}");
        }
    }
    for header in ["Basic dXNlcjpwYXNz", "Bearer", "", "Bearer  "] {
        let body = with_header(&app, header, ME, json!({})).await;
        assert_eq!(code(&body), "UNAUTHENTICATED", "header {header:?}: {body}");
    }
    // The operations that obtain credentials ignore a bad header.
    let body = with_header(
        &app,
        "Bearer garbage",
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
        json!({"e": "victim@example.com", "p": PASSWORD}),
    )
    .await;
    assert!(body["data"]["login"]["accessToken"].is_string(), "{body}");
    // And the genuine token still works.
    assert_eq!(
        app.gql_as(&user.token, ME, json!({})).await["data"]["me"]["id"],
        user.id.as_str()
    );
}

async fn oversize_documents_and_batches_store_nothing(app: TestApp) {
    app.register("alias@example.com", "USER").await;
    // An empty or a 10 KB password is a wrong password, refused before any hashing.
    for password in [String::new(), "p".repeat(10 * 1024)] {
        let body = app.login("alias@example.com", &password).await;
        assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    }
    let aliases: String = (0..100)
        .map(|i| format!("a{i}: login(email: \"alias@example.com\", password: \"guess {i}\") {{ accessToken }} "))
        .collect();
    let body = app
        .gql(&format!("mutation {{ {aliases} }}"), json!({}))
        .await;
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");

    let batch: Vec<Value> = (0..50)
        .map(|i| json!({"query": format!("mutation {{ login(email: \"alias@example.com\", password: \"guess {i}\") {{ accessToken }} }}")}))
        .collect();
    let (status, _, body) = app
        .post_raw(
            &[("content-type", "application/json")],
            Value::Array(batch).to_string(),
        )
        .await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (400, "BAD_REQUEST"),
        "{body}"
    );

    // Neither document ran a single login: after four failures in all (the two above and
    // these two) the right password still gets in, which a 5th counted failure would stop.
    for _ in 0..2 {
        assert_eq!(
            code(&app.login("alias@example.com", "wrong password").await),
            "UNAUTHENTICATED"
        );
    }
    let body = app.login("alias@example.com", PASSWORD).await;
    assert!(body["data"]["login"]["accessToken"].is_string(), "{body}");
}

async fn registration_leaves_no_half_account(app: TestApp) {
    // Make user_db refuse one profile, as a failing database would.
    let users = app.db(Database::Users).await;
    let fault = match app.backend {
        Backend::Postgres => vec![
            "CREATE FUNCTION fail_profile() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER fail_profile BEFORE INSERT ON user_profiles FOR EACH ROW WHEN (NEW.display_name = 'Fail Me') EXECUTE FUNCTION fail_profile()",
        ],
        Backend::Embedded => vec![
            "CREATE TRIGGER fail_profile BEFORE INSERT ON user_profiles WHEN NEW.display_name = 'Fail Me' BEGIN SELECT RAISE(ABORT, 'injected'); END",
        ],
    };
    for sql in fault {
        users.execute_unprepared(sql).await.unwrap();
    }
    let q = "mutation($n: String!) { register(email: \"half@example.com\", password: \"long enough pw\", displayName: $n) { accessToken } }";
    let body = app.gql(q, json!({"n": "Fail Me"})).await;
    assert_eq!(code(&body), "INTERNAL_SERVER_ERROR", "{body}");
    assert!(
        !body.to_string().contains("injected"),
        "internal causes are never sent: {body}"
    );
    assert_eq!(
        code(&app.login("half@example.com", "long enough pw").await),
        "UNAUTHENTICATED"
    );
    let auth = app.db(Database::Auth).await;
    let rows = auth
        .query_all(Statement::from_string(
            auth.get_database_backend(),
            "SELECT id FROM users WHERE email = 'half@example.com'",
        ))
        .await
        .unwrap();
    assert!(
        rows.is_empty(),
        "credentials of the failed registration remain"
    );
    // The email is free again.
    let body = app.gql(q, json!({"n": "Fine"})).await;
    assert!(
        body["data"]["register"]["accessToken"].is_string(),
        "{body}"
    );
}

async fn weak_hashes_are_upgraded_at_login(app: TestApp) {
    use argon2::{password_hash::SaltString, PasswordHasher};
    let user = app.register("legacy@example.com", "USER").await;
    let weak = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(4096, 1, 1, None).unwrap(),
    )
    .hash_password(
        PASSWORD.as_bytes(),
        &SaltString::generate(&mut rand::rngs::OsRng),
    )
    .unwrap()
    .to_string();
    let auth = app.db(Database::Auth).await;
    let backend = auth.get_database_backend();
    let id = uuid::Uuid::parse_str(&user.id).unwrap();
    auth.execute(Statement::from_sql_and_values(
        backend,
        match backend {
            sea_orm::DatabaseBackend::Postgres => {
                "UPDATE users SET password_hash = $1 WHERE id = $2"
            }
            _ => "UPDATE users SET password_hash = ? WHERE id = ?",
        },
        [weak.clone().into(), id.into()],
    ))
    .await
    .unwrap();
    let body = app.login("legacy@example.com", PASSWORD).await;
    assert!(body["data"]["login"].is_object(), "{body}");
    let row = auth
        .query_one(Statement::from_sql_and_values(
            backend,
            match backend {
                sea_orm::DatabaseBackend::Postgres => {
                    "SELECT password_hash FROM users WHERE id = $1"
                }
                _ => "SELECT password_hash FROM users WHERE id = ?",
            },
            [id.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    let stored: String = row.try_get("", "password_hash").unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert!(app.login("legacy@example.com", PASSWORD).await["data"]["login"].is_object());
}

async fn auth_mutations_are_audited(app: TestApp) {
    let user = app.register("audited@example.com", "USER").await;
    app.login("audited@example.com", "wrong password").await;
    app.gql_as(&user.token, "mutation { logout }", json!({}))
        .await;
    let admin = app.db(Database::Admin).await;
    let rows = admin
        .query_all(Statement::from_string(
            admin.get_database_backend(),
            "SELECT action, target_type, outcome, ip FROM audit_trail ORDER BY at, id",
        ))
        .await
        .unwrap();
    let got: Vec<(String, String, String, Option<String>)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("", "action").unwrap(),
                r.try_get("", "target_type").unwrap(),
                r.try_get("", "outcome").unwrap(),
                r.try_get("", "ip").unwrap(),
            )
        })
        .collect();
    let ip = Some("127.0.0.1".to_string());
    assert_eq!(
        got,
        vec![
            (
                "register".into(),
                "User".into(),
                "success".into(),
                ip.clone()
            ),
            (
                "login".into(),
                "AuthPayload".into(),
                "UNAUTHENTICATED".into(),
                ip.clone()
            ),
            ("logout".into(), "Session".into(), "success".into(), ip),
        ]
    );
}

async fn registrations_are_limited_per_address(app: TestApp) {
    let Some(app) = TestApp::spawn_with(app.backend, |c| c.registrations_per_address = 3).await
    else {
        return;
    };
    for i in 0..3 {
        app.register(&format!("r{i}@example.com"), "USER").await;
    }
    let body = app
        .gql(
            "mutation { register(email: \"r3@example.com\", password: \"long enough pw\", displayName: \"R\") { accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "RATE_LIMITED", "{body}");
    assert!(
        body["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .unwrap()
            > 0
    );
    // Logins are not registrations.
    assert!(app.login("r0@example.com", PASSWORD).await["data"]["login"].is_object());
}

async fn spent_refresh_tokens_cannot_log_anyone_out(app: TestApp) {
    let user = app.register("spent@example.com", "USER").await;
    let body = app.gql(REFRESH, json!({"t": user.refresh})).await;
    let access = body["data"]["refreshToken"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let q = "mutation($t: String) { logout(refreshToken: $t, allSessions: true) }";
    let body = app.gql(q, json!({"t": user.refresh})).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    assert!(
        app.gql_as(&access, ME, json!({})).await["data"]["me"].is_object(),
        "the session lives on"
    );
}

async fn a_crowd_behind_one_address_can_sign_in(app: TestApp) {
    // 15 people behind one address sign in at once: successful sign-ins do not count
    // against the address (only more than 20 checks in flight at one instant would).
    for i in 0..15 {
        app.register(&format!("crowd{i}@example.com"), "USER").await;
    }
    let logins = (0..15).map(|i| {
        let app = &app;
        async move { app.login(&format!("crowd{i}@example.com"), PASSWORD).await }
    });
    let results = futures_util::future::join_all(logins).await;
    for body in &results {
        assert!(body["data"]["login"]["accessToken"].is_string(), "{body}");
    }
}
