//! The audit outbox: mutations made while admin_db is unreachable keep their audit
//! entries in auth_db, and housekeeping moves each of them to the trail exactly once when
//! admin_db is back (PostgreSQL: an outage of one database is made there by refusing new
//! connections to it and ending the open ones), and on both backends an entry that
//! another replica already moved is not moved twice.

use std::time::Duration;

use chrono::Utc;
use jolmood::config::Database;
use sea_orm::{
    sea_query::{Alias, Expr, Query},
    ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement,
};
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

/// Writes an audit row with this id into `table` of `db`, as `record` would.
async fn insert_entry(db: &DatabaseConnection, table: &str, id: uuid::Uuid) {
    let stmt = Query::insert()
        .into_table(Alias::new(table))
        .columns(["id", "action", "target_type", "target_id", "outcome", "at"].map(Alias::new))
        .values_panic([
            id.into(),
            "updateProfile".into(),
            "User".into(),
            id.to_string().into(),
            "success".into(),
            Utc::now().into(),
        ])
        .to_owned();
    db.execute(db.get_database_backend().build(&stmt))
        .await
        .expect("insert an audit row");
}

async fn rows_with_id(db: &DatabaseConnection, table: &str, id: uuid::Uuid) -> i64 {
    let stmt = Query::select()
        .expr(Expr::col(Alias::new("id")).count())
        .from(Alias::new(table))
        .and_where(Expr::col(Alias::new("id")).eq(id))
        .to_owned();
    let row = db
        .query_one(db.get_database_backend().build(&stmt))
        .await
        .expect("count rows")
        .expect("one row");
    row.try_get_by_index::<i64>(0).expect("a count")
}

/// One waiting entry is already in the trail (another replica moved it and has not
/// deleted it from the outbox yet), one is not: the drain leaves each in the trail once.
async fn an_entry_already_moved_is_not_duplicated(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |c| {
        c.audit_drain_interval = Duration::from_secs(1);
    })
    .await
    else {
        return;
    };
    let auth = app.db(Database::Auth).await;
    let admin_db = app.db(Database::Admin).await;
    let (moved, waiting) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    insert_entry(&admin_db, "audit_trail", moved).await;
    insert_entry(&auth, "audit_outbox", moved).await;
    insert_entry(&auth, "audit_outbox", waiting).await;
    let drained = eventually(Duration::from_secs(20), || {
        let auth = &auth;
        async move {
            rows_with_id(auth, "audit_outbox", moved).await
                + rows_with_id(auth, "audit_outbox", waiting).await
                == 0
        }
    })
    .await;
    assert!(drained, "the outbox is drained");
    assert_eq!(rows_with_id(&admin_db, "audit_trail", moved).await, 1);
    assert_eq!(rows_with_id(&admin_db, "audit_trail", waiting).await, 1);
    let _ = admin_db.close().await;
    let _ = auth.close().await;
}

mod already_moved {
    use crate::helpers::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded() {
        super::an_entry_already_moved_is_not_duplicated(Backend::Embedded).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::an_entry_already_moved_is_not_duplicated(Backend::Postgres).await;
    }
}
