//! The audit outbox: mutations made while admin_db is unreachable keep their audit
//! entries in auth_db, and housekeeping moves each of them to the trail exactly once when
//! admin_db is back. PostgreSQL only: an outage of one database is made there by refusing
//! new connections to it and ending the open ones.

use std::time::Duration;

use jolmood::config::Database;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};
use serde_json::json;

use crate::helpers::{eventually, Backend, TestApp};

const PROFILE: &str = "mutation Profile($n: String, $b: String, $t: String) {
  updateProfile(displayName: $n, bio: $b, timezone: $t) { id }
}";
const POST: &str =
    "mutation Post($b: String!, $m: [ID!]) { createPost(body: $b, mediaIds: $m) { id } }";

fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Refuses (`false`) or allows again (`true`) connections to database `name`, ending the
/// open ones when refusing.
async fn allow_connections(name: &str, allow: bool) {
    let server = sea_orm::Database::connect(postgres_admin_url())
        .await
        .expect("connect to the PostgreSQL server");
    server
        .execute_unprepared(&format!(
            "ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS {allow}"
        ))
        .await
        .expect("alter database");
    if !allow {
        server
            .execute(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                [name.into()],
            ))
            .await
            .expect("end the open connections");
    }
    let _ = server.close().await;
}

/// How many rows of `table` have this action and target.
async fn count(db: &DatabaseConnection, table: &str, action: &str, target: &str) -> i64 {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            format!("SELECT COUNT(*) AS n FROM {table} WHERE action = $1 AND target_id = $2"),
            [action.into(), target.into()],
        ))
        .await
        .expect("count audit rows")
        .expect("one row");
    row.try_get::<i64>("", "n").expect("a count")
}

async fn total(db: &DatabaseConnection, table: &str) -> i64 {
    let row = db
        .query_one(Statement::from_string(
            DatabaseBackend::Postgres,
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .expect("count rows")
        .expect("one row");
    row.try_get::<i64>("", "n").expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_made_while_admin_db_is_down_reach_the_trail_once() {
    let Some(app) = TestApp::spawn_with(Backend::Postgres, |c| {
        c.audit_drain_interval = Duration::from_secs(1);
    })
    .await
    else {
        return;
    };
    let coach = app.register("outbox-coach@example.com", "COACH").await;
    let user = app.register("outbox-user@example.com", "USER").await;
    let admin_name = app.dbs.urls[&Database::Admin]
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();

    allow_connections(&admin_name, false).await;
    let mut posts = Vec::new();
    for i in 0..3 {
        let body = app
            .gql_as(
                &coach.token,
                POST,
                json!({ "b": format!("outage post {i}") }),
            )
            .await;
        let id = body["data"]["createPost"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("createPost while admin_db is down: {body}"));
        posts.push(id.to_string());
    }
    for name in ["Outage One", "Outage Two"] {
        let body = app.gql_as(&user.token, PROFILE, json!({ "n": name })).await;
        assert_eq!(
            body["data"]["updateProfile"]["id"],
            user.id.as_str(),
            "updateProfile while admin_db is down: {body}"
        );
    }
    let auth = app.db(Database::Auth).await;
    assert_eq!(
        total(&auth, "audit_outbox").await,
        5,
        "every entry waits in the outbox while admin_db is down"
    );
    allow_connections(&admin_name, true).await;

    assert!(
        eventually(Duration::from_secs(20), || {
            let auth = &auth;
            async move { total(auth, "audit_outbox").await == 0 }
        })
        .await,
        "the outbox is drained once admin_db is back"
    );
    let admin_db = app.db(Database::Admin).await;
    for id in &posts {
        assert_eq!(
            count(&admin_db, "audit_trail", "createPost", id).await,
            1,
            "{id}"
        );
    }
    assert_eq!(
        count(&admin_db, "audit_trail", "updateProfile", &user.id).await,
        2
    );
    let _ = admin_db.close().await;
    let _ = auth.close().await;
}
