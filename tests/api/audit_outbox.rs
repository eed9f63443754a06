//! The audit outbox: mutations made while admin_db is unreachable keep their audit
//! entries in auth_db, and housekeeping moves each of them to the trail exactly once when
//! admin_db is back (PostgreSQL: an outage of one database is made there by refusing new
//! connections to it and ending the open ones), and on both backends an entry that
//! another replica already moved is not moved twice, and an entry waiting in the outbox
//! of any database (auth_db, user_db, post_db, appointment_db) reaches the trail once.

use std::time::Duration;

use chrono::Utc;
use jolmood::config::Database;
use sea_orm::{
    sea_query::{Alias, Expr, Query},
    ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement,
};
use serde_json::json;

use crate::helpers::{eventually, Backend, TestApp};

/// The databases that hold an outbox.
const OUTBOXES: [Database; 4] = [
    Database::Auth,
    Database::Users,
    Database::Posts,
    Database::Appointments,
];

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

/// One audit row as a table holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Row {
    id: uuid::Uuid,
    action: String,
    target_type: String,
    target_id: Option<String>,
    outcome: String,
    actor_id: Option<uuid::Uuid>,
}

/// Every row of `table` (`audit_outbox`, `audit_trail`), oldest first.
async fn rows(db: &DatabaseConnection, table: &str) -> Vec<Row> {
    let stmt = Query::select()
        .columns(
            [
                "id",
                "action",
                "target_type",
                "target_id",
                "outcome",
                "actor_id",
            ]
            .map(Alias::new),
        )
        .from(Alias::new(table))
        .order_by(Alias::new("at"), sea_orm::Order::Asc)
        .order_by(Alias::new("id"), sea_orm::Order::Asc)
        .to_owned();
    db.query_all(db.get_database_backend().build(&stmt))
        .await
        .expect("read audit rows")
        .iter()
        .map(|r| Row {
            id: r.try_get("", "id").expect("id"),
            action: r.try_get("", "action").expect("action"),
            target_type: r.try_get("", "target_type").expect("target_type"),
            target_id: r.try_get("", "target_id").expect("target_id"),
            outcome: r.try_get("", "outcome").expect("outcome"),
            actor_id: r.try_get("", "actor_id").expect("actor_id"),
        })
        .collect()
}

/// The outbox rows of each database that holds one.
async fn outboxes(app: &TestApp) -> Vec<(Database, Vec<Row>)> {
    let mut out = Vec::new();
    for db in OUTBOXES {
        let conn = app.db(db).await;
        out.push((db, rows(&conn, "audit_outbox").await));
        let _ = conn.close().await;
    }
    out
}

/// How many entries wait in the outboxes, all databases together.
async fn waiting(app: &TestApp) -> usize {
    outboxes(app).await.iter().map(|(_, r)| r.len()).sum()
}

on_both_backends!(
    spawn = super::spawn_draining;
    entries_staged_by_a_request_that_died_reach_the_trail_once,
);

/// A server whose housekeeping moves waiting audit entries every second.
async fn spawn_draining(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |c| {
        c.audit_drain_interval = Duration::from_secs(1);
    })
    .await
}

/// Writes a staged entry into `table` of `db`, as a change's transaction does.
async fn insert_staged(
    db: &DatabaseConnection,
    table: &str,
    id: uuid::Uuid,
    action: &str,
    outcome: &str,
) {
    let stmt = Query::insert()
        .into_table(Alias::new(table))
        .columns(["id", "action", "target_type", "target_id", "outcome", "at"].map(Alias::new))
        .values_panic([
            id.into(),
            action.into(),
            "Post".into(),
            id.to_string().into(),
            outcome.into(),
            Utc::now().into(),
        ])
        .to_owned();
    db.execute(db.get_database_backend().build(&stmt))
        .await
        .expect("insert an audit row");
}

/// The window the outbox closes: a change committed with its staged entry, and the
/// process died before its request moved the entry to admin_db. Whatever database the
/// change was in, housekeeping moves the entry to the trail exactly once; and an entry
/// whose request had already written its final outcome (then died before forgetting the
/// staged row) keeps that outcome.
async fn entries_staged_by_a_request_that_died_reach_the_trail_once(app: TestApp) {
    let admin_db = app.db(Database::Admin).await;
    let mut staged = Vec::new();
    for db in OUTBOXES {
        let conn = app.db(db).await;
        let id = uuid::Uuid::now_v7();
        insert_staged(&conn, "audit_outbox", id, "createPost", "success").await;
        staged.push((conn, id));
    }
    // The request settled this one (its resolver failed after the commit), then died.
    let settled = uuid::Uuid::now_v7();
    insert_staged(
        &admin_db,
        "audit_trail",
        settled,
        "createPost",
        "INTERNAL_SERVER_ERROR",
    )
    .await;
    insert_staged(
        &staged[2].0,
        "audit_outbox",
        settled,
        "createPost",
        "success",
    )
    .await;

    let drained = eventually(Duration::from_secs(20), || async {
        waiting(&app).await == 0
    })
    .await;
    assert!(drained, "every outbox is drained");
    for (_, id) in &staged {
        assert_eq!(rows_with_id(&admin_db, "audit_trail", *id).await, 1, "{id}");
    }
    let trail = rows(&admin_db, "audit_trail").await;
    let kept: Vec<&Row> = trail.iter().filter(|r| r.id == settled).collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        kept[0].outcome, "INTERNAL_SERVER_ERROR",
        "the final outcome stays"
    );
    for (conn, _) in staged {
        let _ = conn.close().await;
    }
    let _ = admin_db.close().await;
}
