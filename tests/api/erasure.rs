//! `deleteUser`: an account erased from every store on both backends (its rows counted in
//! each database, its files in the media store), the other party's appointments and the
//! counts of others' posts, its tokens; who may erase whom; and an erasure interrupted by
//! a failing store, resumed by the next call (or, on PostgreSQL, by the next server that
//! starts), that erases everything exactly once.

use std::time::Duration;

use chrono::{DateTime, Duration as Span, DurationRound, Utc};
use jolmood::config::Database;
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, Value as SqlValue};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{code, eventually, ws::WsClient, Account, Backend, TestApp, PASSWORD};

const ADMIN_EMAIL: &str = "root@erasure.test";
const ADMIN_PASSWORD: &str = "admin password 123";

on_both_backends!(
    spawn = super::spawn;
    erasing_a_coach_leaves_nothing_of_them,
    who_may_erase_whom,
    an_interrupted_erasure_resumes_and_erases_once,
);

async fn spawn(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |c| {
        c.admin_email = Some(ADMIN_EMAIL.into());
        c.admin_password = Some(ADMIN_PASSWORD.into());
    })
    .await
}

const DELETE_USER: &str = "mutation Erase($u: ID!) { deleteUser(userId: $u) }";
const ME: &str = "query Me { me { id } }";
const UPSERT: &str = "mutation Coach($h: String!, $s: [String!]!, $m: Int, $tz: String, $a: Boolean) {
  upsertCoachProfile(headline: $h, specialtySlugs: $s, sessionMinutes: $m, timezone: $tz, requiresApproval: $a) { id }
}";
const SET_AVAILABILITY: &str = "mutation Rules($rules: [AvailabilityRuleInput!]!) {
  setAvailability(rules: $rules) { id }
}";
const TIME_OFF: &str = "mutation Off($s: DateTime!, $e: DateTime!, $r: String) {
  addTimeOff(startsAt: $s, endsAt: $e, reason: $r) { id }
}";
const BOOK: &str = "mutation Book($coach: ID!, $at: DateTime!, $notes: String) {
  bookAppointment(coachId: $coach, startsAt: $at, notes: $notes) { id }
}";
const ONE: &str = "query One($id: ID!) {
  appointment(id: $id) { id status cancelReason coach { id } client { id } }
}";
const AVATAR: &str =
    "mutation Profile($a: ID, $b: String) { updateProfile(avatarMediaId: $a, bio: $b) { id } }";
const CREATE_POST: &str =
    "mutation Post($b: String!, $m: [ID!]) { createPost(body: $b, mediaIds: $m) { id } }";
const LIKE: &str = "mutation Like($p: ID!) { likePost(postId: $p) { id } }";
const COMMENT: &str =
    "mutation Comment($p: ID!, $b: String!) { addComment(postId: $p, body: $b) { id } }";
const POST: &str = "query Post($id: ID!) { post(id: $id) { id likeCount commentCount } }";
const EVENTS: &str = "subscription Events { bookingEvents { type appointment { id status cancelReason coach { id } client { id } } } }";

async fn admin_token(app: &TestApp) -> (String, String) {
    let body = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let login = &body["data"]["login"];
    (
        login["accessToken"]
            .as_str()
            .unwrap_or_else(|| panic!("admin login: {body}"))
            .to_string(),
        login["user"]["id"].as_str().unwrap().to_string(),
    )
}

/// Midnight UTC `days` from today, plus `minutes`.
fn day_at(days: i64, minutes: i64) -> DateTime<Utc> {
    Utc::now().duration_trunc(Span::days(1)).unwrap() + Span::days(days) + Span::minutes(minutes)
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn png() -> Vec<u8> {
    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        c.extend_from_slice(&[0, 0, 0, 0]);
        c
    }
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    out.extend(chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]));
    out.extend(chunk(b"IDAT", &[0x78, 0x9C, 1, 2, 3]));
    out.extend(chunk(b"IEND", &[]));
    out
}

/// Runs `query` and returns the id of its `field`, failing with the body.
async fn data_id(app: &TestApp, token: &str, query: &str, vars: Value, field: &str) -> String {
    let body = app.gql_as(token, query, vars).await;
    body["data"][field]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{field}: {body}"))
        .to_string()
}

async fn upload(app: &TestApp, who: &Account) -> String {
    let r = app
        .upload(&who.token, "p.png", "image/png", png(), None)
        .await;
    r["data"]["uploadMedia"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("upload: {r}"))
        .to_string()
}

/// A coach in UTC, available all day every day, with one specialty.
async fn coach(app: &TestApp, email: &str) -> Account {
    let c = app.register(email, "COACH").await;
    data_id(
        app,
        &c.token,
        UPSERT,
        json!({"h": "Coach", "s": ["yoga"], "m": 60, "tz": "UTC", "a": false}),
        "upsertCoachProfile",
    )
    .await;
    let rules: Vec<Value> = (1..=7)
        .map(|d| json!({"weekday": d, "startTime": "00:00", "endTime": "24:00"}))
        .collect();
    let body = app
        .gql_as(&c.token, SET_AVAILABILITY, json!({"rules": rules}))
        .await;
    assert!(body["data"]["setAvailability"].is_array(), "{body}");
    c
}

/// Rows of `db` that `sql` counts, with `$1` bound to `id` (`?1` on SQLite).
async fn count(app: &TestApp, db: Database, sql: &str, id: &str) -> i64 {
    let conn = app.db(db).await;
    let backend = conn.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Postgres => sql.to_string(),
        _ => sql.replace("$1", "?1"),
    };
    let id = Uuid::parse_str(id).unwrap();
    let row = conn
        .query_one(Statement::from_sql_and_values(
            backend,
            format!("SELECT COUNT(*) AS n FROM {sql}"),
            [SqlValue::from(id)],
        ))
        .await
        .unwrap()
        .unwrap();
    let n: i64 = row.try_get("", "n").unwrap();
    let _ = conn.close().await;
    n
}

/// Every row any database holds of `id`, by table (only the audit trail may keep some).
async fn traces(app: &TestApp, id: &str) -> Vec<(&'static str, i64)> {
    let probes: [(&str, Database, &str); 14] = [
        ("users", Database::Auth, "users WHERE id = $1"),
        ("sessions", Database::Auth, "sessions WHERE user_id = $1"),
        (
            "refresh_tokens",
            Database::Auth,
            "refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE s.user_id = $1",
        ),
        (
            "user_profiles",
            Database::Users,
            "user_profiles WHERE user_id = $1",
        ),
        (
            "coach_profiles",
            Database::Users,
            "coach_profiles WHERE user_id = $1",
        ),
        (
            "coach_specialties",
            Database::Users,
            "coach_specialties WHERE coach_id = $1",
        ),
        ("posts", Database::Posts, "posts WHERE author_id = $1"),
        ("likes", Database::Posts, "likes WHERE user_id = $1"),
        ("comments", Database::Posts, "comments WHERE author_id = $1"),
        (
            "appointments",
            Database::Appointments,
            "appointments WHERE coach_id = $1 OR client_id = $1 OR cancelled_by = $1",
        ),
        (
            "booking_events",
            Database::Appointments,
            "booking_events WHERE coach_id = $1 OR client_id = $1",
        ),
        (
            "availability_rules",
            Database::Appointments,
            "availability_rules WHERE coach_id = $1",
        ),
        (
            "time_off",
            Database::Appointments,
            "time_off WHERE coach_id = $1",
        ),
        (
            "erasures unfinished",
            Database::Auth,
            "erasures WHERE user_id = $1 AND finished_at IS NULL",
        ),
    ];
    let mut found = Vec::new();
    for (name, db, sql) in probes {
        found.push((name, count(app, db, sql, id).await));
    }
    if app.backend == Backend::Postgres {
        let n = count(
            app,
            Database::Appointments,
            "appointment_participants WHERE person_id = $1",
            id,
        )
        .await;
        found.push(("appointment_participants", n));
    }
    found.retain(|(_, n)| *n > 0);
    found
}

async fn assert_gone(app: &TestApp, id: &str) {
    let left = traces(app, id).await;
    assert!(
        left.is_empty(),
        "rows of the erased account remain: {left:?}"
    );
}

/// What a coach builds up before being erased, and the people around them.
struct World {
    admin: String,
    coach: Account,
    client: Account,
    other: Account,
    /// The other coach's post the erased coach liked and commented on (the client too).
    others_post: String,
    future: String,
    past: String,
}

async fn world(app: &TestApp) -> World {
    let (admin, _) = admin_token(app).await;
    let c = coach(app, "erased@example.com").await;
    let other = coach(app, "other-coach@example.com").await;
    let client = app.register("client@example.com", "USER").await;
    // A failed sign-in, counted against the coach's email.
    assert_eq!(
        code(&app.login("erased@example.com", "not the password").await),
        "UNAUTHENTICATED"
    );
    // A second open session.
    let again = app.login("erased@example.com", PASSWORD).await;
    assert!(again["data"]["login"]["accessToken"].is_string(), "{again}");
    data_id(
        app,
        &c.token,
        TIME_OFF,
        json!({"s": rfc(day_at(20, 0)), "e": rfc(day_at(21, 0)), "r": "holiday"}),
        "addTimeOff",
    )
    .await;
    let avatar = upload(app, &c).await;
    let body = app
        .gql_as(&c.token, AVATAR, json!({"a": avatar, "b": "about me"}))
        .await;
    assert!(body["data"]["updateProfile"].is_object(), "{body}");
    let image = upload(app, &c).await;
    let own_post = data_id(
        app,
        &c.token,
        CREATE_POST,
        json!({"b": "with a picture", "m": [image]}),
        "createPost",
    )
    .await;
    data_id(
        app,
        &c.token,
        CREATE_POST,
        json!({"b": "plain"}),
        "createPost",
    )
    .await;
    data_id(app, &client.token, LIKE, json!({"p": own_post}), "likePost").await;
    data_id(
        app,
        &client.token,
        COMMENT,
        json!({"p": own_post, "b": "nice"}),
        "addComment",
    )
    .await;
    let others_post = data_id(
        app,
        &other.token,
        CREATE_POST,
        json!({"b": "other's"}),
        "createPost",
    )
    .await;
    for who in [&c, &client] {
        data_id(app, &who.token, LIKE, json!({"p": others_post}), "likePost").await;
        data_id(
            app,
            &who.token,
            COMMENT,
            json!({"p": others_post, "b": "hello"}),
            "addComment",
        )
        .await;
    }
    data_id(
        app,
        &c.token,
        COMMENT,
        json!({"p": others_post, "b": "again"}),
        "addComment",
    )
    .await;
    let future = data_id(
        app,
        &client.token,
        BOOK,
        json!({"coach": c.id, "at": rfc(day_at(9, 10 * 60))}),
        "bookAppointment",
    )
    .await;
    let past = data_id(
        app,
        &client.token,
        BOOK,
        json!({"coach": c.id, "at": rfc(day_at(10, 10 * 60))}),
        "bookAppointment",
    )
    .await;
    // The erased coach is also a client of the other coach.
    data_id(
        app,
        &c.token,
        BOOK,
        json!({"coach": other.id, "at": rfc(day_at(11, 10 * 60))}),
        "bookAppointment",
    )
    .await;
    // The clock moves on: the second appointment is over.
    let db = app.db(Database::Appointments).await;
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Postgres => {
            "UPDATE appointments SET starts_at = $1, ends_at = $2 WHERE id = $3"
        }
        _ => "UPDATE appointments SET starts_at = ?1, ends_at = ?2 WHERE id = ?3",
    };
    db.execute(Statement::from_sql_and_values(
        backend,
        sql,
        [
            SqlValue::from(day_at(-3, 10 * 60)),
            SqlValue::from(day_at(-3, 11 * 60)),
            SqlValue::from(Uuid::parse_str(&past).unwrap()),
        ],
    ))
    .await
    .unwrap();
    let _ = db.close().await;
    World {
        admin,
        coach: c,
        client,
        other,
        others_post,
        future,
        past,
    }
}

async fn subscribe(app: &TestApp, token: &str) -> WsClient {
    let mut ws = WsClient::connect(&app.ws_url, "graphql-transport-ws").await;
    ws.init(json!({"Authorization": format!("Bearer {token}")}))
        .await;
    let ack = ws.message(Duration::from_secs(5)).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws.send(json!({"id": "1", "type": "subscribe", "payload": {"query": EVENTS}}))
        .await;
    let url = app.url("/metrics");
    let live = eventually(Duration::from_secs(10), || async {
        let text = app
            .http
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("jolmood_booking_subscribers "))
            .and_then(|n| n.trim().parse::<usize>().ok())
            .is_some_and(|n| n >= 1)
    })
    .await;
    assert!(live, "the subscription did not start");
    ws
}

/// Checks that nothing of the erased coach is left and that the people around them see
/// what they should.
async fn check_erased(app: &TestApp, w: &World, ws: &mut WsClient) {
    assert_gone(app, &w.coach.id).await;
    let auth = app.db(Database::Auth).await;
    let row = auth
        .query_one(Statement::from_string(
            auth.get_database_backend(),
            "SELECT COUNT(*) AS n FROM login_failures WHERE email = 'erased@example.com'",
        ))
        .await
        .unwrap()
        .unwrap();
    let _ = auth.close().await;
    assert_eq!(
        row.try_get::<i64>("", "n").unwrap(),
        0,
        "failed sign-ins of the erased email remain"
    );
    assert_eq!(app.dbs.media_counts().await, (0, 0), "media left behind");
    if app.backend == Backend::Embedded {
        let owners = app.dbs.data_dir().join("media/owners").join(&w.coach.id);
        assert!(!owners.exists(), "the owner's folder remains");
    }
    // Its tokens stop at once, it cannot sign in, and it is nobody now.
    assert_eq!(
        code(&app.gql_as(&w.coach.token, ME, json!({})).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        code(&app.login("erased@example.com", PASSWORD).await),
        "UNAUTHENTICATED"
    );
    let body = app
        .gql(
            "query U($id: ID!) { user(id: $id) { id } }",
            json!({"id": w.coach.id}),
        )
        .await;
    assert!(body["data"]["user"].is_null(), "{body}");
    // The client keeps the past appointment without its coach; the future one is cancelled.
    let past = app
        .gql_as(&w.client.token, ONE, json!({"id": w.past}))
        .await;
    let past = &past["data"]["appointment"];
    assert_eq!(past["id"], w.past.as_str(), "{past}");
    assert!(past["coach"].is_null(), "{past}");
    assert_eq!(past["client"]["id"], w.client.id.as_str(), "{past}");
    assert_eq!(past["status"], "CONFIRMED", "{past}");
    let future = app
        .gql_as(&w.client.token, ONE, json!({"id": w.future}))
        .await;
    let future = &future["data"]["appointment"];
    assert_eq!(future["status"], "CANCELLED", "{future}");
    assert_eq!(future["cancelReason"], "account erased", "{future}");
    assert!(future["coach"].is_null(), "{future}");
    // The client heard of the cancellation, once.
    let m = ws.message(Duration::from_secs(10)).await;
    let e = &m["payload"]["data"]["bookingEvents"];
    assert_eq!(e["type"], "CANCELLED", "{m}");
    assert_eq!(e["appointment"]["id"], w.future.as_str(), "{m}");
    assert!(e["appointment"]["coach"].is_null(), "{m}");
    assert!(
        ws.try_next(Duration::from_millis(500)).await.is_none(),
        "one event only"
    );
    // The other coach's post lost the erased coach's like and two comments.
    let post = app
        .gql_as(&w.other.token, POST, json!({"id": w.others_post}))
        .await;
    assert_eq!(post["data"]["post"]["likeCount"], 1, "{post}");
    assert_eq!(post["data"]["post"]["commentCount"], 1, "{post}");
    // The other coach's appointment with the erased coach as client is cancelled too.
    let body = app
        .gql_as(
            &w.other.token,
            "query Mine { myAppointments(first: 10) { nodes { status cancelReason client { id } } } }",
            json!({}),
        )
        .await;
    let nodes = body["data"]["myAppointments"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(nodes.len(), 1, "{body}");
    assert_eq!(nodes[0]["status"], "CANCELLED", "{body}");
    assert!(nodes[0]["client"].is_null(), "{body}");
}

/// Audit entries of `action` whose target is `id`.
async fn audited(app: &TestApp, action: &str, id: &str) -> i64 {
    let conn = app.db(Database::Admin).await;
    let backend = conn.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Postgres => {
            "SELECT COUNT(*) AS n FROM audit_trail WHERE action = $1 AND target_id = $2"
        }
        _ => "SELECT COUNT(*) AS n FROM audit_trail WHERE action = ?1 AND target_id = ?2",
    };
    let row = conn
        .query_one(Statement::from_sql_and_values(
            backend,
            sql,
            [SqlValue::from(action), SqlValue::from(id)],
        ))
        .await
        .unwrap()
        .unwrap();
    let n: i64 = row.try_get("", "n").unwrap();
    let _ = conn.close().await;
    n
}

async fn erasing_a_coach_leaves_nothing_of_them(app: TestApp) {
    let w = world(&app).await;
    let mut ws = subscribe(&app, &w.client.token).await;
    assert!(!traces(&app, &w.coach.id).await.is_empty());
    let body = app
        .gql_as(&w.admin, DELETE_USER, json!({"u": w.coach.id}))
        .await;
    assert_eq!(body["data"]["deleteUser"], true, "{body}");
    check_erased(&app, &w, &mut ws).await;
    // The audit trail keeps the coach's own entries (their actor stays the erased id) and
    // one entry per deleteUser call; asking again answers true.
    assert!(
        count(
            &app,
            Database::Admin,
            "audit_trail WHERE actor_id = $1",
            &w.coach.id
        )
        .await
            > 0,
        "the erased account's audit entries are kept"
    );
    assert_eq!(audited(&app, "deleteUser", &w.coach.id).await, 1);
    let body = app
        .gql_as(&w.admin, DELETE_USER, json!({"u": w.coach.id}))
        .await;
    assert_eq!(body["data"]["deleteUser"], true, "{body}");
    assert_eq!(audited(&app, "deleteUser", &w.coach.id).await, 2);
    assert_gone(&app, &w.coach.id).await;
}

async fn who_may_erase_whom(app: TestApp) {
    let (admin, admin_id) = admin_token(&app).await;
    let a = app.register("a@example.com", "USER").await;
    let b = app.register("b@example.com", "USER").await;
    // Not someone else's account, and not without signing in.
    let body = app.gql_as(&a.token, DELETE_USER, json!({"u": b.id})).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    let body = app.gql(DELETE_USER, json!({"u": b.id})).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    // Nor an admin's, by a non-admin.
    let body = app
        .gql_as(&a.token, DELETE_USER, json!({"u": admin_id}))
        .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    // Unknown and malformed ids.
    let body = app
        .gql_as(
            &admin,
            DELETE_USER,
            json!({"u": Uuid::now_v7().to_string()}),
        )
        .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let body = app.gql_as(&admin, DELETE_USER, json!({"u": "nope"})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    // The last active admin stays, even by their own hand.
    let body = app
        .gql_as(&admin, DELETE_USER, json!({"u": admin_id}))
        .await;
    assert_eq!(code(&body), "CONFLICT", "{body}");
    assert!(app.gql_as(&admin, ME, json!({})).await["data"]["me"].is_object());
    // A user erases themself; their token stops at once.
    let body = app.gql_as(&b.token, DELETE_USER, json!({"u": b.id})).await;
    assert_eq!(body["data"]["deleteUser"], true, "{body}");
    assert_eq!(
        code(&app.gql_as(&b.token, ME, json!({})).await),
        "UNAUTHENTICATED"
    );
    assert_gone(&app, &b.id).await;
    // Their audit entry names them as the actor.
    assert_eq!(
        count(
            &app,
            Database::Admin,
            "audit_trail WHERE action = 'deleteUser' AND actor_id = $1",
            &b.id,
        )
        .await,
        1
    );
    // With a second admin, the first may go; an erased account cannot be reinstated.
    let body = app
        .gql_as(
            &admin,
            "mutation R($u: ID!) { setUserRole(userId: $u, role: ADMIN) { id } }",
            json!({"u": a.id}),
        )
        .await;
    assert!(body["data"]["setUserRole"].is_object(), "{body}");
    let body = app
        .gql_as(&admin, DELETE_USER, json!({"u": admin_id}))
        .await;
    assert_eq!(body["data"]["deleteUser"], true, "{body}");
    let a_token = app.login("a@example.com", PASSWORD).await["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let body = app
        .gql_as(
            &a_token,
            "mutation S($u: ID!) { suspendUser(userId: $u, suspended: false) { id } }",
            json!({"u": b.id}),
        )
        .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let body = app.gql_as(&a_token, DELETE_USER, json!({"u": a.id})).await;
    assert_eq!(code(&body), "CONFLICT", "{body}");
}

async fn an_interrupted_erasure_resumes_and_erases_once(app: TestApp) {
    let w = world(&app).await;
    let mut ws = subscribe(&app, &w.client.token).await;
    // Make post_db refuse to delete comments, as a failing database would.
    let posts = app.db(Database::Posts).await;
    let (fault, heal) = match app.backend {
        Backend::Postgres => (
            vec![
                "CREATE FUNCTION fail_delete() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER fail_delete BEFORE DELETE ON comments FOR EACH ROW EXECUTE FUNCTION fail_delete()",
            ],
            vec!["DROP TRIGGER fail_delete ON comments", "DROP FUNCTION fail_delete()"],
        ),
        Backend::Embedded => (
            vec!["CREATE TRIGGER fail_delete BEFORE DELETE ON comments BEGIN SELECT RAISE(ABORT, 'injected'); END"],
            vec!["DROP TRIGGER fail_delete"],
        ),
    };
    for sql in fault {
        posts.execute_unprepared(sql).await.unwrap();
    }
    let body = app
        .gql_as(&w.admin, DELETE_USER, json!({"u": w.coach.id}))
        .await;
    assert_eq!(code(&body), "INTERNAL_SERVER_ERROR", "{body}");
    assert!(!body.to_string().contains("injected"), "{body}");
    // Half-way: the account is already unusable (suspended, so a sign-in is FORBIDDEN),
    // its posts still there.
    assert_eq!(
        code(&app.gql_as(&w.coach.token, ME, json!({})).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        code(&app.login("erased@example.com", PASSWORD).await),
        "FORBIDDEN"
    );
    assert!(
        count(
            &app,
            Database::Posts,
            "posts WHERE author_id = $1",
            &w.coach.id
        )
        .await
            > 0,
        "the failing step changed nothing"
    );
    for sql in heal {
        posts.execute_unprepared(sql).await.unwrap();
    }
    let _ = posts.close().await;
    let body = app
        .gql_as(&w.admin, DELETE_USER, json!({"u": w.coach.id}))
        .await;
    assert_eq!(body["data"]["deleteUser"], true, "{body}");
    // Everything erased, the cancellation heard once, the counts dropped once.
    check_erased(&app, &w, &mut ws).await;
    assert_eq!(audited(&app, "cancelAppointment", &w.future).await, 1);
    assert_eq!(audited(&app, "deleteUser", &w.coach.id).await, 2);
}

mod postgres_only {
    use super::*;
    use crate::helpers::test_config;

    /// An erasure left half-way is finished by the next server that starts, with no call.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_next_start_finishes_an_interrupted_erasure() {
        let Some((mut config, dbs)) = test_config(Backend::Postgres).await else {
            return;
        };
        config.admin_email = Some(ADMIN_EMAIL.into());
        config.admin_password = Some(ADMIN_PASSWORD.into());
        let (first, _) = jolmood::spawn(config.clone()).await.expect("first server");
        let app = TestApp::at(first, Backend::Postgres, dbs);
        let w = world(&app).await;
        let posts = app.db(Database::Posts).await;
        posts
            .execute_unprepared(
                "CREATE FUNCTION fail_delete() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$ LANGUAGE plpgsql",
            )
            .await
            .unwrap();
        posts
            .execute_unprepared(
                "CREATE TRIGGER fail_delete BEFORE DELETE ON comments FOR EACH ROW EXECUTE FUNCTION fail_delete()",
            )
            .await
            .unwrap();
        let body = app
            .gql_as(&w.admin, DELETE_USER, json!({"u": w.coach.id}))
            .await;
        assert_eq!(code(&body), "INTERNAL_SERVER_ERROR", "{body}");
        assert!(
            count(
                &app,
                Database::Posts,
                "posts WHERE author_id = $1",
                &w.coach.id
            )
            .await
                > 0
        );
        posts
            .execute_unprepared("DROP TRIGGER fail_delete ON comments")
            .await
            .unwrap();
        let _ = posts.close().await;
        // A new server over the same stores: its start resumes the erasure.
        let (_second, _) = jolmood::spawn(config).await.expect("second server");
        let done = eventually(Duration::from_secs(20), || async {
            traces(&app, &w.coach.id).await.is_empty()
        })
        .await;
        assert!(done, "left: {:?}", traces(&app, &w.coach.id).await);
        assert_eq!(app.dbs.media_counts().await, (0, 0), "media left behind");
        assert_eq!(audited(&app, "cancelAppointment", &w.future).await, 1);
        let post = app
            .gql_as(&w.other.token, POST, json!({"id": w.others_post}))
            .await;
        assert_eq!(post["data"]["post"]["likeCount"], 1, "{post}");
        assert_eq!(post["data"]["post"]["commentCount"], 1, "{post}");
    }
}
