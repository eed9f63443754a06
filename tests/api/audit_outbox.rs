//! The audit outbox: a change writes its audit entry into the `audit_outbox` of its own
//! database, in its own transaction, and the entry reaches admin_db's trail exactly once:
//! at once when admin_db takes it, else by housekeeping once admin_db is back, even when
//! the request that staged it never got to move it (the process died). Mutations made
//! while admin_db is unreachable keep their entries in the outboxes (PostgreSQL: an
//! outage of one database is made there by refusing new connections to it and ending the
//! open ones; on both backends admin_db refuses entries while its `audit_trail` table is
//! renamed away); a change that rolls back takes its staged entry with it and leaves its
//! refused entry only; an entry another replica already moved is not moved twice.

use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use jolmood::config::Database;
use sea_orm::{
    sea_query::{Alias, Expr, Query},
    ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement,
};
use serde_json::{json, Value};

use crate::helpers::{code, eventually, Account, Backend, TestApp, PASSWORD};

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
    let stmt = Query::select()
        .expr(Expr::col(Alias::new("id")).count())
        .from(Alias::new(table))
        .and_where(Expr::col(Alias::new("action")).eq(action))
        .and_where(Expr::col(Alias::new("target_id")).eq(target))
        .to_owned();
    let row = db
        .query_one(db.get_database_backend().build(&stmt))
        .await
        .expect("count audit rows")
        .expect("one row");
    row.try_get_by_index::<i64>(0).expect("a count")
}

async fn total(db: &DatabaseConnection, table: &str) -> i64 {
    let stmt = Query::select()
        .expr(Expr::col(Alias::new("id")).count())
        .from(Alias::new(table))
        .to_owned();
    let row = db
        .query_one(db.get_database_backend().build(&stmt))
        .await
        .expect("count rows")
        .expect("one row");
    row.try_get_by_index::<i64>(0).expect("a count")
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

/// The outbox rows of `db`, as (action, target id, outcome).
fn summary(all: &[(Database, Vec<Row>)], db: Database) -> Vec<(String, Option<String>, String)> {
    all.iter()
        .filter(|(d, _)| *d == db)
        .flat_map(|(_, rows)| rows.iter())
        .map(|r| (r.action.clone(), r.target_id.clone(), r.outcome.clone()))
        .collect()
}

/// Makes admin_db refuse audit entries (`false`) or take them again (`true`), on both
/// backends: its `audit_trail` table is renamed away and back.
async fn admin_takes_entries(app: &TestApp, takes: bool) {
    let db = app.db(Database::Admin).await;
    let (from, to) = if takes {
        ("audit_trail_away", "audit_trail")
    } else {
        ("audit_trail", "audit_trail_away")
    };
    db.execute_unprepared(&format!("ALTER TABLE {from} RENAME TO {to}"))
        .await
        .expect("rename the audit table");
    let _ = db.close().await;
}

/// The `id` a mutation answered at `path` (e.g. `createPost.id`).
fn answered(body: &Value, field: &str) -> String {
    body["data"][field]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{field}: {body}"))
        .to_string()
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
        posts.push(answered(&body, "createPost"));
    }
    for name in ["Outage One", "Outage Two"] {
        let body = app.gql_as(&user.token, PROFILE, json!({ "n": name })).await;
        assert_eq!(
            body["data"]["updateProfile"]["id"],
            user.id.as_str(),
            "updateProfile while admin_db is down: {body}"
        );
    }
    let body = app.login(&user.email, PASSWORD).await;
    assert!(body["data"]["login"].is_object(), "{body}");
    // Refused before any change: nothing staged, so its entry waits in auth_db.
    let missing = uuid::Uuid::now_v7().to_string();
    let body = app
        .gql_as(
            &coach.token,
            "mutation Del($id: ID!) { deletePost(id: $id) }",
            json!({ "id": missing }),
        )
        .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");

    // Each entry waits in the outbox of its change's database.
    let all = outboxes(&app).await;
    let success = |action: &str, target: &str| {
        (
            action.to_string(),
            Some(target.to_string()),
            "success".to_string(),
        )
    };
    assert_eq!(
        summary(&all, Database::Posts),
        posts
            .iter()
            .map(|id| success("createPost", id))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        summary(&all, Database::Users),
        vec![
            success("updateProfile", &user.id),
            success("updateProfile", &user.id)
        ]
    );
    assert_eq!(
        summary(&all, Database::Auth),
        vec![
            success("login", &user.id),
            (
                "deletePost".to_string(),
                Some(missing.clone()),
                "NOT_FOUND".to_string()
            ),
        ]
    );
    assert_eq!(summary(&all, Database::Appointments), vec![]);
    allow_connections(&admin_name, true).await;

    assert!(
        eventually(Duration::from_secs(20), || async {
            waiting(&app).await == 0
        })
        .await,
        "the outboxes are drained once admin_db is back"
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
    assert_eq!(count(&admin_db, "audit_trail", "login", &user.id).await, 1);
    assert_eq!(
        count(&admin_db, "audit_trail", "deletePost", &missing).await,
        1
    );
    let trail = rows(&admin_db, "audit_trail").await;
    for (_, waited) in &all {
        for row in waited {
            let kept: Vec<&Row> = trail.iter().filter(|r| r.id == row.id).collect();
            assert_eq!(
                kept,
                vec![row],
                "each entry reaches the trail once, as it waited"
            );
        }
    }
    let _ = admin_db.close().await;
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

on_both_backends!(
    spawn = super::spawn_draining;
    each_change_stages_its_entry_in_its_own_database,
    entries_staged_by_a_request_that_died_reach_the_trail_once,
    a_change_that_rolls_back_takes_its_staged_entry_with_it,
    changes_no_mutation_names_stage_their_entries_too,
);

const ADMIN_EMAIL: &str = "root@jolmood.test";
const ADMIN_PASSWORD: &str = "admin password 123";

/// A server whose housekeeping moves waiting audit entries every second, with a first
/// admin.
async fn spawn_draining(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |c| {
        c.audit_drain_interval = Duration::from_secs(1);
        c.admin_email = Some(ADMIN_EMAIL.into());
        c.admin_password = Some(ADMIN_PASSWORD.into());
    })
    .await
}

const COMMENT: &str =
    "mutation Comment($p: ID!, $b: String!) { addComment(postId: $p, body: $b) { id } }";
const TIME_OFF: &str = "mutation Off($s: DateTime!, $e: DateTime!) {
  addTimeOff(startsAt: $s, endsAt: $e) { id }
}";
const UPSERT: &str = "mutation Coach($h: String!, $s: [String!]!) {
  upsertCoachProfile(headline: $h, specialtySlugs: $s, sessionMinutes: 60, timezone: \"UTC\") { id }
}";
const RULES: &str = "mutation Rules($rules: [AvailabilityRuleInput!]!) {
  setAvailability(rules: $rules) { id }
}";
const BOOK: &str = "mutation Book($coach: ID!, $at: DateTime!) {
  bookAppointment(coachId: $coach, startsAt: $at) { id }
}";

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A coach in UTC with 60-minute sessions, available all day every day.
async fn bookable_coach(app: &TestApp, email: &str) -> Account {
    let coach = app.register(email, "COACH").await;
    let body = app
        .gql_as(&coach.token, UPSERT, json!({ "h": "Coach", "s": ["yoga"] }))
        .await;
    answered(&body, "upsertCoachProfile");
    let rules: Vec<Value> = (1..=7)
        .map(|d| json!({"weekday": d, "startTime": "00:00", "endTime": "24:00"}))
        .collect();
    let body = app
        .gql_as(&coach.token, RULES, json!({ "rules": rules }))
        .await;
    assert!(body["data"]["setAvailability"].is_array(), "{body}");
    coach
}

/// 10:00 UTC three days from now: a slot of every [`bookable_coach`].
fn slot() -> DateTime<Utc> {
    Utc::now().duration_trunc(TimeDelta::days(1)).unwrap()
        + TimeDelta::days(3)
        + TimeDelta::hours(10)
}

/// While admin_db refuses entries, each mutation's entry waits in the outbox of the
/// database its change was made in (written in the change's transaction), never in
/// auth_db's for the other domains; once admin_db takes entries again, each reaches the
/// trail once, with the id it waited under. An entry its request settled leaves nothing
/// in any outbox.
async fn each_change_stages_its_entry_in_its_own_database(app: TestApp) {
    let coach = app.register("stage-coach@example.com", "COACH").await;
    let user = app.register("stage-user@example.com", "USER").await;
    let body = app
        .gql_as(&coach.token, POST, json!({ "b": "settled" }))
        .await;
    answered(&body, "createPost");
    assert_eq!(
        waiting(&app).await,
        0,
        "settled entries leave no staged row"
    );

    admin_takes_entries(&app, false).await;
    let body = app
        .gql_as(&coach.token, POST, json!({ "b": "staged" }))
        .await;
    let post = answered(&body, "createPost");
    let body = app
        .gql_as(&user.token, COMMENT, json!({ "p": post, "b": "hello" }))
        .await;
    let comment = answered(&body, "addComment");
    let body = app
        .gql_as(&user.token, PROFILE, json!({ "b": "a bio" }))
        .await;
    answered(&body, "updateProfile");
    let start = Utc::now().duration_trunc(TimeDelta::days(1)).unwrap() + TimeDelta::days(3);
    let body = app
        .gql_as(
            &coach.token,
            TIME_OFF,
            json!({ "s": rfc(start), "e": rfc(start + TimeDelta::hours(2)) }),
        )
        .await;
    let time_off = answered(&body, "addTimeOff");
    let body = app
        .gql_as(
            &coach.token,
            "mutation { changePassword(currentPassword: \"correct horse battery\", newPassword: \"another horse battery\") }",
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["changePassword"], true, "{body}");

    let all = outboxes(&app).await;
    let success = |action: &str, target: &str| {
        (
            action.to_string(),
            Some(target.to_string()),
            "success".to_string(),
        )
    };
    assert_eq!(
        summary(&all, Database::Posts),
        vec![
            success("createPost", &post),
            success("addComment", &comment)
        ]
    );
    assert_eq!(
        summary(&all, Database::Users),
        vec![success("updateProfile", &user.id)]
    );
    assert_eq!(
        summary(&all, Database::Appointments),
        vec![success("addTimeOff", &time_off)]
    );
    assert_eq!(
        summary(&all, Database::Auth),
        vec![success("changePassword", &coach.id)]
    );
    let actors: Vec<Option<uuid::Uuid>> = all
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|r| r.actor_id))
        .collect();
    let (c, u) = (
        Some(coach.id.parse().unwrap()),
        Some(user.id.parse().unwrap()),
    );
    assert_eq!(
        actors,
        vec![c, u, c, u, c],
        "auth: changePassword; users: updateProfile; posts: createPost, addComment; \
         appointments: addTimeOff"
    );

    admin_takes_entries(&app, true).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            waiting(&app).await == 0
        })
        .await,
        "the outboxes are drained once admin_db takes entries again"
    );
    let admin_db = app.db(Database::Admin).await;
    let trail = rows(&admin_db, "audit_trail").await;
    for (_, waited) in &all {
        for row in waited {
            let kept: Vec<&Row> = trail.iter().filter(|r| r.id == row.id).collect();
            assert_eq!(
                kept,
                vec![row],
                "each entry reaches the trail once, as it waited"
            );
        }
    }
    for (action, target) in [
        ("createPost", post.as_str()),
        ("addComment", comment.as_str()),
        ("updateProfile", user.id.as_str()),
        ("addTimeOff", time_off.as_str()),
        ("changePassword", coach.id.as_str()),
    ] {
        assert_eq!(
            count(&admin_db, "audit_trail", action, target).await,
            1,
            "{action}"
        );
    }
    let _ = admin_db.close().await;
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

/// Makes every transaction that inserts a post fail at its commit, after the entry was
/// staged: a deferred constraint trigger (PostgreSQL), a deferred foreign key (SQLite).
async fn posts_fail_at_commit(app: &TestApp) {
    let db = app.db(Database::Posts).await;
    let statements: &[&str] = match app.backend {
        Backend::Postgres => &[
            "CREATE FUNCTION refuse_post() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$",
            "CREATE CONSTRAINT TRIGGER refuse_post AFTER INSERT ON posts \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_post()",
        ],
        Backend::Embedded => &[
            "CREATE TABLE refusal_parent (id INTEGER PRIMARY KEY)",
            "CREATE TABLE refusal (parent INTEGER REFERENCES refusal_parent (id) \
             DEFERRABLE INITIALLY DEFERRED)",
            "CREATE TRIGGER refuse_post AFTER INSERT ON posts \
             BEGIN INSERT INTO refusal (parent) VALUES (1); END",
        ],
    };
    for sql in statements {
        db.execute_unprepared(sql).await.expect(sql);
    }
    let _ = db.close().await;
}

async fn posts_commit_again(app: &TestApp) {
    let db = app.db(Database::Posts).await;
    db.execute_unprepared("DROP TRIGGER refuse_post ON posts")
        .await
        .or(db.execute_unprepared("DROP TRIGGER refuse_post").await)
        .expect("drop the trigger");
    let _ = db.close().await;
}

/// The trail's entries of `action` by `actor`, as (outcome, target id).
fn entries_of(trail: &[Row], action: &str, actor: &Account) -> Vec<(String, Option<String>)> {
    trail
        .iter()
        .filter(|r| {
            r.action == action && r.actor_id.map(|a| a.to_string()) == Some(actor.id.clone())
        })
        .map(|r| (r.outcome.clone(), r.target_id.clone()))
        .collect()
}

/// A change whose transaction rolls back after its entry was staged (here: at its
/// commit) takes the staged entry with it: the refusal is the mutation's one entry, in
/// the trail, or in auth_db's outbox while admin_db refuses (never a staged `success` in
/// the change's database). A booking refused with CONFLICT stages nothing either.
async fn a_change_that_rolls_back_takes_its_staged_entry_with_it(app: TestApp) {
    let coach = bookable_coach(&app, "rollback-coach@example.com").await;
    let client = app.register("rollback-client@example.com", "USER").await;
    let other = app.register("rollback-other@example.com", "USER").await;
    posts_fail_at_commit(&app).await;

    let body = app
        .gql_as(&coach.token, POST, json!({ "b": "doomed" }))
        .await;
    let refused = code(&body).to_string();
    assert!(body["errors"].is_array() && refused != "<none>", "{body}");
    let posts_db = app.db(Database::Posts).await;
    assert_eq!(total(&posts_db, "posts").await, 0, "the post rolled back");
    assert_eq!(
        waiting(&app).await,
        0,
        "the staged entry rolled back with it"
    );
    let admin_db = app.db(Database::Admin).await;
    let trail = rows(&admin_db, "audit_trail").await;
    let first = entries_of(&trail, "createPost", &coach);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].0, refused);
    // The id the post would have had: the entry named it when it was staged, so the
    // failure came after the staging.
    assert!(first[0].1.is_some(), "{first:?}");

    // While admin_db refuses entries too, the refusal waits in auth_db's outbox.
    admin_takes_entries(&app, false).await;
    let body = app
        .gql_as(&coach.token, POST, json!({ "b": "doomed again" }))
        .await;
    assert_eq!(code(&body), refused, "{body}");
    let all = outboxes(&app).await;
    assert_eq!(summary(&all, Database::Posts), vec![]);
    let auth = summary(&all, Database::Auth);
    assert_eq!(auth.len(), 1, "{auth:?}");
    assert_eq!(
        (auth[0].0.as_str(), auth[0].2.as_str()),
        ("createPost", refused.as_str())
    );
    admin_takes_entries(&app, true).await;
    posts_commit_again(&app).await;
    let body = app.gql_as(&coach.token, POST, json!({ "b": "fine" })).await;
    let post = answered(&body, "createPost");

    // Two clients want the same slot: the second is refused with CONFLICT.
    let at = slot();
    let vars = json!({ "coach": coach.id, "at": rfc(at) });
    let booking = answered(
        &app.gql_as(&client.token, BOOK, vars.clone()).await,
        "bookAppointment",
    );
    let body = app.gql_as(&other.token, BOOK, vars).await;
    assert_eq!(code(&body), "CONFLICT", "{body}");

    assert!(
        eventually(Duration::from_secs(20), || async {
            waiting(&app).await == 0
        })
        .await,
        "nothing is left waiting"
    );
    let trail = rows(&admin_db, "audit_trail").await;
    let created = entries_of(&trail, "createPost", &coach);
    let outcomes: Vec<&str> = created.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(outcomes, [refused.as_str(), refused.as_str(), "success"]);
    assert_eq!(created[2].1, Some(post));
    assert_eq!(
        entries_of(&trail, "bookAppointment", &client),
        vec![("success".to_string(), Some(booking))]
    );
    assert_eq!(
        entries_of(&trail, "bookAppointment", &other),
        vec![("CONFLICT".to_string(), None)]
    );
    let _ = posts_db.close().await;
    let _ = admin_db.close().await;
}

/// Changes that a service makes and no mutation names stage entries of their own in
/// their transaction too: the cancellation of a suspended coach's booking waits in
/// appointment_db's outbox while admin_db refuses entries (beside the suspension's own
/// entry in auth_db's), and reaches the trail once.
async fn changes_no_mutation_names_stage_their_entries_too(app: TestApp) {
    let coach = bookable_coach(&app, "side-coach@example.com").await;
    let client = app.register("side-client@example.com", "USER").await;
    let body = app
        .gql_as(
            &client.token,
            BOOK,
            json!({ "coach": coach.id, "at": rfc(slot()) }),
        )
        .await;
    let booking = answered(&body, "bookAppointment");
    let body = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let admin = body["data"]["login"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("admin login: {body}"))
        .to_string();
    assert_eq!(waiting(&app).await, 0);

    admin_takes_entries(&app, false).await;
    let body = app
        .gql_as(
            &admin,
            "mutation S($u: ID!) { suspendUser(userId: $u, suspended: true) { id } }",
            json!({ "u": coach.id }),
        )
        .await;
    answered(&body, "suspendUser");
    let all = outboxes(&app).await;
    assert_eq!(
        summary(&all, Database::Appointments),
        vec![(
            "cancelAppointment".to_string(),
            Some(booking.clone()),
            "success".to_string()
        )]
    );
    assert_eq!(
        summary(&all, Database::Auth),
        vec![(
            "suspendUser".to_string(),
            Some(coach.id.clone()),
            "success".to_string()
        )]
    );
    admin_takes_entries(&app, true).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            waiting(&app).await == 0
        })
        .await,
        "the outboxes are drained"
    );
    let admin_db = app.db(Database::Admin).await;
    assert_eq!(
        count(&admin_db, "audit_trail", "cancelAppointment", &booking).await,
        1
    );
    assert_eq!(
        count(&admin_db, "audit_trail", "suspendUser", &coach.id).await,
        1
    );
    let _ = admin_db.close().await;
}
