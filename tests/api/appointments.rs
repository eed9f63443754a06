//! Availability, slots, bookings and booking events, on both backends; the events across
//! two server instances and across a dropped LISTEN connection on PostgreSQL.

use std::time::Duration;

use chrono::{DateTime, Duration as Span, DurationRound, Utc};
use futures_util::future::join_all;
use jolmood::config::Database;
use sea_orm::{
    sea_query::{Alias, Expr, Query},
    ConnectionTrait,
};
use serde_json::{json, Value};

use crate::helpers::{code, eventually, test_config, ws::WsClient, Account, Backend, TestApp};

const ADMIN_EMAIL: &str = "root@jolmood.test";
const ADMIN_PASSWORD: &str = "admin password 123";

const UPSERT: &str = "mutation Coach($h: String!, $s: [String!]!, $m: Int, $tz: String, $a: Boolean, $b: String) {
  upsertCoachProfile(headline: $h, specialtySlugs: $s, sessionMinutes: $m, timezone: $tz, requiresApproval: $a, bio: $b) { id }
}";
const SET_AVAILABILITY: &str = "mutation Rules($rules: [AvailabilityRuleInput!]!) {
  setAvailability(rules: $rules) { id weekday startTime endTime }
}";
const SLOTS: &str = "query Slots($coach: ID!, $from: DateTime!, $to: DateTime!) {
  availableSlots(coachId: $coach, from: $from, to: $to) { startsAt endsAt }
}";
const BOOK: &str = "mutation Book($coach: ID!, $at: DateTime!, $notes: String) {
  bookAppointment(coachId: $coach, startsAt: $at, notes: $notes) { id status startsAt endsAt notes cancelReason coach { id } client { id } }
}";
const CONFIRM: &str = "mutation Confirm($id: ID!) { confirmAppointment(id: $id) { id status } }";
const CANCEL: &str = "mutation Cancel($id: ID!, $reason: String) {
  cancelAppointment(id: $id, reason: $reason) { id status cancelReason cancelledBy { id } }
}";
const COMPLETE: &str = "mutation Complete($id: ID!) { completeAppointment(id: $id) { id status } }";
const ONE: &str = "query One($id: ID!) {
  appointment(id: $id) { id status cancelReason startsAt coach { id } client { id } cancelledBy { id } }
}";
const MINE: &str = "query Mine($status: AppointmentStatus, $from: DateTime, $to: DateTime, $first: Int, $after: String) {
  myAppointments(status: $status, from: $from, to: $to, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } nodes { id status startsAt }
  }
}";
const EVENTS: &str = "subscription Events { bookingEvents { type at appointment { id status cancelReason coach { id } client { id } } } }";

async fn spawn_with_admin(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |c| {
        c.admin_email = Some(ADMIN_EMAIL.into());
        c.admin_password = Some(ADMIN_PASSWORD.into());
    })
    .await
}

on_both_backends!(
    spawn = super::spawn_with_admin;
    a_rate_limited_answer_leaves_the_subscriptions_open,
    twenty_concurrent_bookings_of_one_slot_make_one,
    sessions_of_different_lengths_never_overlap,
    one_client_cannot_hold_two_coaches_at_once,
    status_rules_hold,
    unconfirmed_appointments_expire_at_their_start,
    slots_follow_rules_time_off_notice_and_horizon,
    availability_input_is_checked,
    my_appointments_filter_and_page,
    an_appointment_is_visible_to_its_parties_and_admins_only,
    suspending_a_coach_cancels_their_future_appointments,
    booking_events_reach_both_parties_and_nobody_else,
    a_page_of_appointments_loads_its_people_in_one_batch,
    slots_are_computed_in_the_coach_timezone,
    a_coach_who_books_another_coach_keeps_one_calendar,
    a_booking_racing_its_coach_suspension_does_not_survive,
    expiries_found_by_a_booking_are_audited_once,
);

/// Midnight UTC `days` from today, plus `minutes`.
fn day_at(days: i64, minutes: i64) -> DateTime<Utc> {
    Utc::now().duration_trunc(Span::days(1)).unwrap() + Span::days(days) + Span::minutes(minutes)
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn parse(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("a DateTime"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

async fn admin_token(app: &TestApp) -> String {
    let body = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    body["data"]["login"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("admin login: {body}"))
        .to_string()
}

/// A coach in UTC with `minutes`-long sessions, available all day every day.
async fn coach(app: &TestApp, email: &str, minutes: i32, approval: bool) -> Account {
    let c = app.register(email, "COACH").await;
    let body = app
        .gql_as(
            &c.token,
            UPSERT,
            json!({"h": "Coach", "s": ["yoga"], "m": minutes, "tz": "UTC", "a": approval}),
        )
        .await;
    assert!(body["data"]["upsertCoachProfile"].is_object(), "{body}");
    let rules: Vec<Value> = (1..=7)
        .map(|d| json!({"weekday": d, "startTime": "00:00", "endTime": "24:00"}))
        .collect();
    let body = app
        .gql_as(&c.token, SET_AVAILABILITY, json!({"rules": rules}))
        .await;
    assert_eq!(
        body["data"]["setAvailability"].as_array().map(Vec::len),
        Some(7),
        "{body}"
    );
    c
}

async fn book(app: &TestApp, token: &str, coach: &Account, at: DateTime<Utc>) -> Value {
    app.gql_as(token, BOOK, json!({"coach": coach.id, "at": rfc(at)}))
        .await
}

async fn booked(app: &TestApp, token: &str, coach: &Account, at: DateTime<Utc>) -> String {
    let body = book(app, token, coach, at).await;
    body["data"]["bookAppointment"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("booking failed: {body}"))
        .to_string()
}

async fn slot_starts(
    app: &TestApp,
    coach: &Account,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let body = app
        .gql(
            SLOTS,
            json!({"coach": coach.id, "from": rfc(from), "to": rfc(to)}),
        )
        .await;
    body["data"]["availableSlots"]
        .as_array()
        .unwrap_or_else(|| panic!("availableSlots: {body}"))
        .iter()
        .map(|s| parse(&s["startsAt"]))
        .collect()
}

/// Moves an appointment in time, as the clock would: the API never books the past.
async fn move_appointment(app: &TestApp, id: &str, starts: DateTime<Utc>, ends: DateTime<Utc>) {
    let db = app.db(Database::Appointments).await;
    let id = uuid::Uuid::parse_str(id).unwrap();
    let stmt = Query::update()
        .table(Alias::new("appointments"))
        .value(Alias::new("starts_at"), starts)
        .value(Alias::new("ends_at"), ends)
        .and_where(Expr::col(Alias::new("id")).eq(id))
        .to_owned();
    let done = db
        .execute(db.get_database_backend().build(&stmt))
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
    let _ = db.close().await;
}

async fn count_rows(app: &TestApp) -> i64 {
    let db = app.db(Database::Appointments).await;
    let row = db
        .query_one(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM appointments",
        ))
        .await
        .unwrap()
        .unwrap();
    let n: i64 = row.try_get("", "n").unwrap();
    let _ = db.close().await;
    n
}

async fn twenty_concurrent_bookings_of_one_slot_make_one(app: TestApp) {
    let c = coach(&app, "race-coach@example.com", 60, false).await;
    let emails: Vec<String> = (0..20).map(|i| format!("racer{i}@example.com")).collect();
    let clients = join_all(emails.iter().map(|e| app.register(e, "USER"))).await;
    let at = day_at(3, 10 * 60);
    let results = join_all(clients.iter().map(|cl| book(&app, &cl.token, &c, at))).await;
    let wins = results
        .iter()
        .filter(|b| b["data"]["bookAppointment"]["id"].is_string())
        .count();
    let conflicts = results.iter().filter(|b| code(b) == "CONFLICT").count();
    assert_eq!((wins, conflicts), (1, 19), "{results:?}");
    assert_eq!(count_rows(&app).await, 1);
    let slots = slot_starts(&app, &c, at, at + Span::hours(2)).await;
    assert_eq!(
        slots,
        vec![at + Span::hours(1)],
        "the taken slot is no longer offered"
    );
}

async fn sessions_of_different_lengths_never_overlap(app: TestApp) {
    let c = coach(&app, "len-coach@example.com", 45, false).await;
    let a = app.register("len-a@example.com", "USER").await;
    let b = app.register("len-b@example.com", "USER").await;
    // 45-minute grid from midnight: 10:30-11:15 is a slot.
    let first = day_at(4, 10 * 60 + 30);
    let body = book(&app, &a.token, &c, first).await;
    assert_eq!(
        body["data"]["bookAppointment"]["status"], "CONFIRMED",
        "{body}"
    );
    assert_eq!(
        parse(&body["data"]["bookAppointment"]["endsAt"]),
        first + Span::minutes(45)
    );

    // The coach moves to 60-minute sessions: 10:00-11:00 and 11:00-12:00 overlap it.
    let body = app
        .gql_as(&c.token, UPSERT, json!({"h": "Coach", "s": [], "m": 60}))
        .await;
    assert!(body["data"]["upsertCoachProfile"].is_object(), "{body}");
    let slots = slot_starts(&app, &c, day_at(4, 9 * 60), day_at(4, 13 * 60)).await;
    assert_eq!(
        slots,
        vec![day_at(4, 9 * 60), day_at(4, 12 * 60)],
        "{slots:?}"
    );
    for at in [day_at(4, 10 * 60), day_at(4, 11 * 60)] {
        let body = book(&app, &b.token, &c, at).await;
        assert_eq!(code(&body), "CONFLICT", "{body}");
    }
    let body = book(&app, &b.token, &c, day_at(4, 12 * 60)).await;
    assert_eq!(
        body["data"]["bookAppointment"]["status"], "CONFIRMED",
        "{body}"
    );
    assert_eq!(count_rows(&app).await, 2);
}

async fn one_client_cannot_hold_two_coaches_at_once(app: TestApp) {
    let c1 = coach(&app, "two-1@example.com", 60, false).await;
    let c2 = coach(&app, "two-2@example.com", 30, false).await;
    let cl = app.register("two-client@example.com", "USER").await;
    // At the same moment, concurrently: exactly one of them.
    let at = day_at(5, 14 * 60);
    let both = join_all([
        book(&app, &cl.token, &c1, at),
        book(&app, &cl.token, &c2, at),
    ])
    .await;
    let wins = both
        .iter()
        .filter(|b| b["data"]["bookAppointment"]["id"].is_string())
        .count();
    assert_eq!(wins, 1, "{both:?}");
    assert!(both.iter().any(|b| code(b) == "CONFLICT"), "{both:?}");
    // An overlap that is not the same start: 15:00-16:00 with c1, then 15:30 with c2.
    booked(&app, &cl.token, &c1, day_at(5, 15 * 60)).await;
    let body = book(&app, &cl.token, &c2, day_at(5, 15 * 60 + 30)).await;
    assert_eq!(code(&body), "CONFLICT", "{body}");
    // Back to back is fine.
    booked(&app, &cl.token, &c2, day_at(5, 16 * 60)).await;
}

async fn status_rules_hold(app: TestApp) {
    let c = coach(&app, "st-coach@example.com", 60, true).await;
    let cl = app.register("st-client@example.com", "USER").await;
    let other = app.register("st-other@example.com", "USER").await;

    let body = book(&app, &c.token, &c, day_at(3, 9 * 60)).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "not oneself: {body}");
    let body = app
        .gql_as(
            &cl.token,
            BOOK,
            json!({"coach": c.id, "at": rfc(day_at(3, 9 * 60)), "notes": "x".repeat(1001)}),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "notes");
    let body = book(&app, &cl.token, &c, day_at(3, 9 * 60 + 30)).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "off the grid: {body}");
    let body = book(&app, &cl.token, &c, Utc::now() + Span::minutes(30)).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "too soon: {body}");
    let body = book(&app, &cl.token, &c, day_at(95, 9 * 60)).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "too far: {body}");
    let body = app
        .gql(BOOK, json!({"coach": c.id, "at": rfc(day_at(3, 9 * 60))}))
        .await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");

    let body = app
        .gql_as(
            &cl.token,
            BOOK,
            json!({"coach": c.id, "at": rfc(day_at(3, 9 * 60)), "notes": "  first session "}),
        )
        .await;
    let appt = &body["data"]["bookAppointment"];
    assert_eq!(appt["status"], "PENDING", "{body}");
    assert_eq!(appt["notes"], "first session");
    assert_eq!(appt["coach"]["id"], c.id.as_str());
    assert_eq!(appt["client"]["id"], cl.id.as_str());
    let id = appt["id"].as_str().unwrap().to_string();

    let body = app.gql_as(&cl.token, CONFIRM, json!({"id": id})).await;
    assert_eq!(
        code(&body),
        "FORBIDDEN",
        "the client does not confirm: {body}"
    );
    let body = app.gql_as(&other.token, CONFIRM, json!({"id": id})).await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let body = app.gql_as(&other.token, CANCEL, json!({"id": id})).await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let body = app.gql_as(&c.token, COMPLETE, json!({"id": id})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "not from PENDING: {body}");
    let body = app.gql_as(&c.token, CONFIRM, json!({"id": "nope"})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["field"], "id");

    let body = app.gql_as(&c.token, CONFIRM, json!({"id": id})).await;
    assert_eq!(
        body["data"]["confirmAppointment"]["status"], "CONFIRMED",
        "{body}"
    );
    let body = app.gql_as(&c.token, CONFIRM, json!({"id": id})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "confirmed once: {body}");
    let body = app.gql_as(&c.token, COMPLETE, json!({"id": id})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "not before its end: {body}");

    let body = app
        .gql_as(
            &cl.token,
            CANCEL,
            json!({"id": id, "reason": "x".repeat(501)}),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let body = app.gql_as(&cl.token, ONE, json!({"id": id})).await;
    assert_eq!(
        body["data"]["appointment"]["status"], "CONFIRMED",
        "unchanged: {body}"
    );
    let body = app
        .gql_as(&cl.token, CANCEL, json!({"id": id, "reason": "sick"}))
        .await;
    let cancelled = &body["data"]["cancelAppointment"];
    assert_eq!(cancelled["status"], "CANCELLED", "{body}");
    assert_eq!(cancelled["cancelReason"], "sick");
    assert_eq!(cancelled["cancelledBy"]["id"], cl.id.as_str());
    let body = app.gql_as(&c.token, CANCEL, json!({"id": id})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "cancelled once: {body}");
    let body = app.gql_as(&c.token, CONFIRM, json!({"id": id})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    // Its slot is free again.
    booked(&app, &other.token, &c, day_at(3, 9 * 60)).await;

    // Completed by its coach once it has ended; not cancelled after its start.
    let id = booked(&app, &cl.token, &c, day_at(3, 11 * 60)).await;
    app.gql_as(&c.token, CONFIRM, json!({"id": id})).await;
    move_appointment(
        &app,
        &id,
        Utc::now() - Span::hours(2),
        Utc::now() - Span::hours(1),
    )
    .await;
    let body = app.gql_as(&cl.token, CANCEL, json!({"id": id})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "not after the start: {body}");
    let body = app.gql_as(&cl.token, COMPLETE, json!({"id": id})).await;
    assert_eq!(code(&body), "FORBIDDEN", "its coach only: {body}");
    let body = app.gql_as(&c.token, COMPLETE, json!({"id": id})).await;
    assert_eq!(
        body["data"]["completeAppointment"]["status"], "COMPLETED",
        "{body}"
    );
    let body = app.gql_as(&c.token, COMPLETE, json!({"id": id})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
}

async fn unconfirmed_appointments_expire_at_their_start(app: TestApp) {
    let c = coach(&app, "exp-coach@example.com", 60, true).await;
    let cl = app.register("exp-client@example.com", "USER").await;
    let id = booked(&app, &cl.token, &c, day_at(6, 8 * 60)).await;
    // It started ten minutes ago, unconfirmed, and would last five hours.
    move_appointment(
        &app,
        &id,
        Utc::now() - Span::minutes(10),
        Utc::now() + Span::hours(5),
    )
    .await;
    let body = app.gql_as(&c.token, ONE, json!({"id": id})).await;
    let a = &body["data"]["appointment"];
    assert_eq!(a["status"], "CANCELLED", "{body}");
    assert_eq!(a["cancelReason"], "not confirmed");
    let body = app.gql_as(&c.token, CONFIRM, json!({"id": id})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "too late to confirm: {body}");
    let body = app
        .gql_as(&cl.token, MINE, json!({"status": "CANCELLED"}))
        .await;
    assert_eq!(body["data"]["myAppointments"]["totalCount"], 1, "{body}");
    let body = app
        .gql_as(&cl.token, MINE, json!({"status": "PENDING"}))
        .await;
    assert_eq!(body["data"]["myAppointments"]["totalCount"], 0, "{body}");
    // It no longer blocks: the client can hold another appointment over that time.
    let other = coach(&app, "exp-coach2@example.com", 60, false).await;
    let soon = (Utc::now() + Span::hours(2))
        .duration_trunc(Span::hours(1))
        .unwrap()
        + Span::hours(1);
    booked(&app, &cl.token, &other, soon).await;
    let body = app.gql_as(&cl.token, ONE, json!({"id": id})).await;
    assert_eq!(body["data"]["appointment"]["status"], "CANCELLED", "{body}");
}

async fn slots_follow_rules_time_off_notice_and_horizon(app: TestApp) {
    let c = app.register("slots-coach@example.com", "COACH").await;
    app.gql_as(
        &c.token,
        UPSERT,
        json!({"h": "Coach", "s": [], "tz": "UTC"}),
    )
    .await;
    let rules: Vec<Value> = (1..=7)
        .map(|d| json!({"weekday": d, "startTime": "09:00", "endTime": "12:00"}))
        .collect();
    let body = app
        .gql_as(&c.token, SET_AVAILABILITY, json!({"rules": rules}))
        .await;
    assert_eq!(
        body["data"]["setAvailability"][0]["startTime"], "09:00",
        "{body}"
    );

    let now = Utc::now();
    let slots = slot_starts(&app, &c, now - Span::days(1), now + Span::days(5)).await;
    assert!(!slots.is_empty());
    for s in &slots {
        assert!(*s >= now + Span::hours(2), "{s} is too soon");
        assert!(
            [9, 10, 11].contains(&s.format("%H").to_string().parse::<u32>().unwrap()),
            "{s}"
        );
    }
    let far = slot_starts(&app, &c, day_at(85, 0), day_at(100, 0)).await;
    assert!(
        far.iter()
            .all(|s| *s <= now + Span::days(90) + Span::seconds(5)),
        "{far:?}"
    );
    assert!(!far.is_empty());

    let body = app
        .gql(
            SLOTS,
            json!({"coach": c.id, "from": rfc(day_at(2, 0)), "to": rfc(day_at(34, 0))}),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "over 31 days: {body}");
    let body = app
        .gql(
            SLOTS,
            json!({"coach": c.id, "from": rfc(day_at(3, 0)), "to": rfc(day_at(2, 0))}),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "to before from: {body}");

    // Time off removes every slot it touches, and only the coach reads its reason.
    let add = "mutation Off($s: DateTime!, $e: DateTime!, $r: String) { addTimeOff(startsAt: $s, endsAt: $e, reason: $r) { id startsAt endsAt reason } }";
    let body = app
        .gql_as(&c.token, add, json!({"s": rfc(day_at(3, 10 * 60 + 30)), "e": rfc(day_at(3, 11 * 60 + 10)), "r": "dentist"}))
        .await;
    let off_id = body["data"]["addTimeOff"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_string();
    let day = slot_starts(&app, &c, day_at(3, 0), day_at(4, 0)).await;
    assert_eq!(day, vec![day_at(3, 9 * 60)], "{day:?}");
    let body = book(
        &app,
        &app.register("slots-cl@example.com", "USER").await.token,
        &c,
        day_at(3, 10 * 60),
    )
    .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "in time off: {body}");
    let body = app
        .gql_as(
            &c.token,
            add,
            json!({"s": rfc(day_at(3, 0)), "e": rfc(day_at(2, 0))}),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let user = app.register("slots-user@example.com", "USER").await;
    let body = app
        .gql_as(
            &user.token,
            add,
            json!({"s": rfc(day_at(3, 0)), "e": rfc(day_at(4, 0))}),
        )
        .await;
    assert_eq!(code(&body), "FORBIDDEN", "coaches only: {body}");

    let profile = "query P($id: ID!) { user(id: $id) { coachProfile { availability { weekday startTime endTime } timeOff { id reason startsAt } } } }";
    let body = app.gql_as(&c.token, profile, json!({"id": c.id})).await;
    let p = &body["data"]["user"]["coachProfile"];
    assert_eq!(p["availability"].as_array().unwrap().len(), 7, "{body}");
    assert_eq!(p["timeOff"][0]["reason"], "dentist", "{body}");
    let body = app.gql(profile, json!({"id": c.id})).await;
    let p = &body["data"]["user"]["coachProfile"];
    assert_eq!(p["timeOff"][0]["id"], off_id.as_str(), "{body}");
    assert!(p["timeOff"][0]["reason"].is_null(), "{body}");

    let remove = "mutation Rm($id: ID!) { removeTimeOff(id: $id) }";
    let other = coach(&app, "slots-other@example.com", 60, false).await;
    let body = app
        .gql_as(&other.token, remove, json!({"id": off_id}))
        .await;
    assert_eq!(code(&body), "NOT_FOUND", "not their own: {body}");
    let body = app.gql_as(&c.token, remove, json!({"id": off_id})).await;
    assert_eq!(body["data"]["removeTimeOff"], off_id.as_str(), "{body}");
    let day = slot_starts(&app, &c, day_at(3, 0), day_at(4, 0)).await;
    assert_eq!(day.len(), 3, "{day:?}");

    // No coach profile, or a USER: no slots.
    let body = app
        .gql(
            SLOTS,
            json!({"coach": user.id, "from": rfc(day_at(3, 0)), "to": rfc(day_at(4, 0))}),
        )
        .await;
    assert_eq!(body["data"]["availableSlots"], json!([]), "{body}");
}

async fn availability_input_is_checked(app: TestApp) {
    let c = app.register("rules-coach@example.com", "COACH").await;
    app.gql_as(&c.token, UPSERT, json!({"h": "Coach", "s": []}))
        .await;
    let cases = [
        (
            json!([{"weekday": 1, "startTime": "22:00", "endTime": "02:00"}]),
            "endTime",
        ),
        (
            json!([{"weekday": 8, "startTime": "09:00", "endTime": "10:00"}]),
            "weekday",
        ),
        (
            json!([{"weekday": 1, "startTime": "9:00", "endTime": "10:00"}]),
            "startTime",
        ),
        (
            json!([{"weekday": 1, "startTime": "09:00", "endTime": "24:30"}]),
            "endTime",
        ),
        (
            json!([
                {"weekday": 2, "startTime": "09:00", "endTime": "12:00"},
                {"weekday": 2, "startTime": "11:00", "endTime": "13:00"}
            ]),
            "rules",
        ),
    ];
    for (rules, field) in cases {
        let body = app
            .gql_as(&c.token, SET_AVAILABILITY, json!({"rules": rules}))
            .await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{rules}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    let many: Vec<Value> = (0..51)
        .map(|i| json!({"weekday": 1 + i % 7, "startTime": format!("{:02}:00", i / 7), "endTime": format!("{:02}:30", i / 7)}))
        .collect();
    let body = app
        .gql_as(&c.token, SET_AVAILABILITY, json!({"rules": many}))
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    // A valid set replaces the previous one; an empty one clears it.
    let body = app
        .gql_as(
            &c.token,
            SET_AVAILABILITY,
            json!({"rules": [{"weekday": 3, "startTime": "14:00", "endTime": "18:00"}, {"weekday": 1, "startTime": "08:00", "endTime": "24:00"}]}),
        )
        .await;
    let rules = body["data"]["setAvailability"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0]["weekday"], 1, "sorted by weekday");
    assert_eq!(rules[0]["endTime"], "24:00");
    let body = app
        .gql_as(&c.token, SET_AVAILABILITY, json!({"rules": []}))
        .await;
    assert_eq!(body["data"]["setAvailability"], json!([]), "{body}");
    let user = app.register("rules-user@example.com", "USER").await;
    let body = app
        .gql_as(&user.token, SET_AVAILABILITY, json!({"rules": []}))
        .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
}

async fn my_appointments_filter_and_page(app: TestApp) {
    let c = coach(&app, "mine-coach@example.com", 60, false).await;
    let cl = app.register("mine-client@example.com", "USER").await;
    let stranger = app.register("mine-stranger@example.com", "USER").await;
    let mut ids = Vec::new();
    // Booked out of order; listed by start.
    for h in [15, 9, 13, 11, 17] {
        ids.push((h, booked(&app, &cl.token, &c, day_at(7, h * 60)).await));
    }
    ids.sort();
    let cancelled = &ids[2].1; // 13:00
    app.gql_as(&c.token, CANCEL, json!({"id": cancelled})).await;

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let body = app
            .gql_as(&cl.token, MINE, json!({"first": 2, "after": after}))
            .await;
        let conn = &body["data"]["myAppointments"];
        assert_eq!(conn["totalCount"], 5, "{body}");
        for n in conn["nodes"].as_array().unwrap() {
            seen.push(n["id"].as_str().unwrap().to_string());
        }
        if conn["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = conn["pageInfo"]["endCursor"].as_str().map(str::to_string);
    }
    let want: Vec<String> = ids.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(seen, want, "soonest first, every one once");

    let body = app
        .gql_as(&c.token, MINE, json!({"status": "CONFIRMED"}))
        .await;
    assert_eq!(
        body["data"]["myAppointments"]["totalCount"], 4,
        "as coach: {body}"
    );
    let body = app
        .gql_as(&cl.token, MINE, json!({"status": "CANCELLED"}))
        .await;
    assert_eq!(
        body["data"]["myAppointments"]["nodes"][0]["id"],
        cancelled.as_str(),
        "{body}"
    );
    let body = app
        .gql_as(
            &cl.token,
            MINE,
            json!({"from": rfc(day_at(7, 11 * 60)), "to": rfc(day_at(7, 15 * 60))}),
        )
        .await;
    let nodes: Vec<&str> = body["data"]["myAppointments"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        nodes,
        vec![ids[1].1.as_str(), ids[2].1.as_str()],
        "[from, to): {body}"
    );
    let body = app.gql_as(&stranger.token, MINE, json!({})).await;
    assert_eq!(body["data"]["myAppointments"]["totalCount"], 0, "{body}");
    let body = app.gql(MINE, json!({})).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    let body = app
        .gql_as(&cl.token, MINE, json!({"after": "garbage"}))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "after", "{body}");
}

async fn an_appointment_is_visible_to_its_parties_and_admins_only(app: TestApp) {
    let c = coach(&app, "vis-coach@example.com", 60, false).await;
    let cl = app.register("vis-client@example.com", "USER").await;
    let stranger = app.register("vis-stranger@example.com", "USER").await;
    let id = booked(&app, &cl.token, &c, day_at(8, 10 * 60)).await;
    let admin = admin_token(&app).await;
    for token in [&c.token, &cl.token, &admin] {
        let body = app.gql_as(token, ONE, json!({"id": id})).await;
        assert_eq!(body["data"]["appointment"]["id"], id.as_str(), "{body}");
    }
    let body = app.gql_as(&stranger.token, ONE, json!({"id": id})).await;
    assert!(body["data"]["appointment"].is_null(), "{body}");
    assert!(body["errors"].is_null(), "{body}");
    let body = app.gql(ONE, json!({"id": id})).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
}

async fn suspending_a_coach_cancels_their_future_appointments(app: TestApp) {
    let c = coach(&app, "sus-coach@example.com", 60, false).await;
    let cl = app.register("sus-client@example.com", "USER").await;
    let base = app.base.clone();
    let mut client_ws = subscribe(&app.ws_url, &app, &base, "graphql-ws", &cl.token, 1).await;
    let mut coach_ws = subscribe(
        &app.ws_url,
        &app,
        &base,
        "graphql-transport-ws",
        &c.token,
        2,
    )
    .await;
    let first = booked(&app, &cl.token, &c, day_at(9, 10 * 60)).await;
    let second = booked(&app, &cl.token, &c, day_at(10, 10 * 60)).await;
    for _ in 0..2 {
        assert_eq!(next_event(&mut client_ws).await["type"], "BOOKED");
    }
    let admin = admin_token(&app).await;
    let body = app
        .gql_as(
            &admin,
            "mutation S($u: ID!, $s: Boolean!) { suspendUser(userId: $u, suspended: $s) { id } }",
            json!({"u": c.id, "s": true}),
        )
        .await;
    assert!(body["data"]["suspendUser"].is_object(), "{body}");
    for id in [&first, &second] {
        let body = app.gql_as(&cl.token, ONE, json!({"id": id})).await;
        assert_eq!(body["data"]["appointment"]["status"], "CANCELLED", "{body}");
    }
    // The client hears of both cancellations; the coach's subscription ends with 4403,
    // as every subscription of a suspended user does.
    let mut heard = Vec::new();
    for _ in 0..2 {
        let e = next_event(&mut client_ws).await;
        assert_eq!(e["type"], "CANCELLED", "{e}");
        assert_eq!(e["appointment"]["cancelReason"], "coach suspended", "{e}");
        heard.push(e["appointment"]["id"].as_str().unwrap().to_string());
    }
    heard.sort();
    let mut want = vec![first.clone(), second.clone()];
    want.sort();
    assert_eq!(heard, want);
    let closed = loop {
        match coach_ws.next(Duration::from_secs(10)).await {
            crate::helpers::ws::Event::Closed(code, _) => break code,
            crate::helpers::ws::Event::Message(m) => {
                let kind = &m["payload"]["data"]["bookingEvents"]["type"];
                assert!(kind == "BOOKED" || kind == "CANCELLED", "{m}")
            }
        }
    };
    assert_eq!(closed, Some(4403));
    let slots = slot_starts(&app, &c, day_at(9, 0), day_at(10, 0)).await;
    assert!(
        slots.is_empty(),
        "a suspended coach offers nothing: {slots:?}"
    );
    let body = book(&app, &cl.token, &c, day_at(11, 10 * 60)).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
}

/// Opens a subscription to booking events as `token` over `protocol`, and waits until
/// the server at `metrics_base` counts `subscribers` of them.
async fn subscribe(
    ws_url: &str,
    metrics: &TestApp,
    metrics_base: &str,
    protocol: &str,
    token: &str,
    subscribers: usize,
) -> WsClient {
    let mut ws = WsClient::connect(ws_url, protocol).await;
    ws.init(json!({"Authorization": format!("Bearer {token}")}))
        .await;
    let ack = ws.message(Duration::from_secs(5)).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    let start = if protocol == "graphql-ws" {
        "start"
    } else {
        "subscribe"
    };
    ws.send(json!({"id": "1", "type": start, "payload": {"query": EVENTS}}))
        .await;
    let url = format!("{metrics_base}/metrics");
    let live = eventually(Duration::from_secs(10), || async {
        let text = metrics
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
            .is_some_and(|n| n >= subscribers)
    })
    .await;
    assert!(live, "the subscription did not start");
    ws
}

/// The next booking event on `ws`.
async fn next_event(ws: &mut WsClient) -> Value {
    let m = ws.message(Duration::from_secs(10)).await;
    assert!(m["type"] == "next" || m["type"] == "data", "{m}");
    assert!(m["payload"]["errors"].is_null(), "{m}");
    m["payload"]["data"]["bookingEvents"].clone()
}

async fn booking_events_reach_both_parties_and_nobody_else(app: TestApp) {
    let c = coach(&app, "ev-coach@example.com", 60, true).await;
    let other = coach(&app, "ev-other@example.com", 60, false).await;
    let cl = app.register("ev-client@example.com", "USER").await;
    let outsider = app.register("ev-outsider@example.com", "USER").await;
    let base = app.base.clone();
    let mut coach_ws = subscribe(
        &app.ws_url,
        &app,
        &base,
        "graphql-transport-ws",
        &c.token,
        1,
    )
    .await;
    let mut client_ws = subscribe(&app.ws_url, &app, &base, "graphql-ws", &cl.token, 2).await;
    let mut outsider_ws = subscribe(
        &app.ws_url,
        &app,
        &base,
        "graphql-transport-ws",
        &outsider.token,
        3,
    )
    .await;

    let id = booked(&app, &cl.token, &c, day_at(12, 10 * 60)).await;
    for ws in [&mut coach_ws, &mut client_ws] {
        let e = next_event(ws).await;
        assert_eq!(e["type"], "BOOKED", "{e}");
        assert_eq!(e["appointment"]["id"], id.as_str());
        assert_eq!(e["appointment"]["status"], "PENDING");
        assert_eq!(e["appointment"]["coach"]["id"], c.id.as_str());
    }
    app.gql_as(&c.token, CONFIRM, json!({"id": id})).await;
    app.gql_as(&cl.token, CANCEL, json!({"id": id, "reason": "moved"}))
        .await;
    for ws in [&mut coach_ws, &mut client_ws] {
        assert_eq!(next_event(ws).await["type"], "CONFIRMED");
        let e = next_event(ws).await;
        assert_eq!(e["type"], "CANCELLED");
        assert_eq!(e["appointment"]["status"], "CANCELLED");
    }
    // A booking with another coach reaches that client only, never the first coach.
    let other_client = app.register("ev-client2@example.com", "USER").await;
    booked(&app, &other_client.token, &other, day_at(12, 10 * 60)).await;
    assert!(
        outsider_ws
            .try_next(Duration::from_millis(1500))
            .await
            .is_none(),
        "an outsider hears nothing"
    );
    assert!(
        coach_ws
            .try_next(Duration::from_millis(200))
            .await
            .is_none(),
        "a coach hears nothing of another coach's bookings"
    );
}

mod postgres_only {
    use super::*;

    /// Two server instances over the same databases.
    async fn two_instances() -> Option<(TestApp, String, String)> {
        let (config, dbs) = test_config(Backend::Postgres).await?;
        let (a, _) = jolmood::spawn(config.clone()).await.expect("first server");
        let (b, _) = jolmood::spawn(config).await.expect("second server");
        let app = TestApp::at(a, Backend::Postgres, dbs);
        Some((app, format!("ws://{b}/graphql"), format!("http://{b}")))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_booking_on_one_instance_reaches_subscribers_on_another() {
        let Some((app, b_ws, b_base)) = two_instances().await else {
            return;
        };
        let c = coach(&app, "x-coach@example.com", 60, false).await;
        let cl = app.register("x-client@example.com", "USER").await;
        let outsider = app.register("x-outsider@example.com", "USER").await;
        let mut over_new =
            subscribe(&b_ws, &app, &b_base, "graphql-transport-ws", &c.token, 1).await;
        let mut over_legacy = subscribe(&b_ws, &app, &b_base, "graphql-ws", &c.token, 2).await;
        let mut outsider_ws =
            subscribe(&b_ws, &app, &b_base, "graphql-ws", &outsider.token, 3).await;
        let id = booked(&app, &cl.token, &c, day_at(4, 9 * 60)).await;
        for ws in [&mut over_new, &mut over_legacy] {
            let e = next_event(ws).await;
            assert_eq!(e["type"], "BOOKED", "{e}");
            assert_eq!(e["appointment"]["id"], id.as_str());
            assert_eq!(e["appointment"]["client"]["id"], cl.id.as_str());
        }
        assert!(outsider_ws
            .try_next(Duration::from_millis(1000))
            .await
            .is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_survive_a_dropped_listen_connection() {
        let Some(app) = TestApp::spawn(Backend::Postgres).await else {
            return;
        };
        let c = coach(&app, "drop-coach@example.com", 60, false).await;
        let cl = app.register("drop-client@example.com", "USER").await;
        let base = app.base.clone();
        let mut ws = subscribe(
            &app.ws_url,
            &app,
            &base,
            "graphql-transport-ws",
            &c.token,
            1,
        )
        .await;
        let first = booked(&app, &cl.token, &c, day_at(4, 9 * 60)).await;
        assert_eq!(
            next_event(&mut ws).await["appointment"]["id"],
            first.as_str()
        );

        let db = app.db(Database::Appointments).await;
        let killed = db
            .query_all(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity \
                 WHERE application_name = 'jolmood-booking-listener' AND datname = current_database()",
            ))
            .await
            .unwrap();
        assert_eq!(killed.len(), 1, "one LISTEN connection per process");
        let second = booked(&app, &cl.token, &c, day_at(4, 10 * 60)).await;
        assert_eq!(
            next_event(&mut ws).await["appointment"]["id"],
            second.as_str()
        );
        let _ = db.close().await;
    }
}

mod in_flight {
    use sea_orm::{DatabaseBackend, Statement, TransactionTrait};

    use super::*;

    /// A change whose event was numbered before a server started but committed after
    /// reaches that server's subscribers (numbers are taken at insert, not at commit).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_change_in_flight_when_an_instance_starts_reaches_it() {
        let Some((config, dbs)) = test_config(Backend::Postgres).await else {
            return;
        };
        let (a, _) = jolmood::spawn(config.clone()).await.expect("first server");
        let app = TestApp::at(a, Backend::Postgres, dbs);
        let c = coach(&app, "fl-coach@example.com", 60, false).await;
        let cl = app.register("fl-client@example.com", "USER").await;
        let id = booked(&app, &cl.token, &c, day_at(4, 9 * 60)).await;
        // A change of that appointment has numbered its event and not committed yet...
        let db = app.db(Database::Appointments).await;
        let txn = db.begin().await.unwrap();
        let uuid = |s: &str| uuid::Uuid::parse_str(s).unwrap();
        let row = txn
            .query_one(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "INSERT INTO booking_events (appointment_id, kind, coach_id, client_id, at) \
                 VALUES ($1, 'CONFIRMED', $2, $3, now()) RETURNING seq",
                [uuid(&id).into(), uuid(&c.id).into(), uuid(&cl.id).into()],
            ))
            .await
            .unwrap()
            .unwrap();
        let seq: i64 = row.try_get("", "seq").unwrap();
        // ...while a later one commits; then the second server starts and listens.
        booked(&app, &cl.token, &c, day_at(4, 10 * 60)).await;
        let (b, _) = jolmood::spawn(config).await.expect("second server");
        let (b_ws, b_base) = (format!("ws://{b}/graphql"), format!("http://{b}"));
        let mut ws = subscribe(&b_ws, &app, &b_base, "graphql-transport-ws", &cl.token, 1).await;
        let third = booked(&app, &cl.token, &c, day_at(4, 11 * 60)).await;
        assert_eq!(
            next_event(&mut ws).await["appointment"]["id"],
            third.as_str()
        );
        // The first change commits now, with its notification.
        let payload = json!({
            "seq": seq, "kind": "Confirmed", "appointment_id": id,
            "coach_id": c.id, "client_id": cl.id, "at": Utc::now(),
        });
        txn.execute(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_notify('jolmood_booking_events', $1)",
            [payload.to_string().into()],
        ))
        .await
        .unwrap();
        txn.commit().await.unwrap();
        let e = next_event(&mut ws).await;
        assert_eq!(e["type"], "CONFIRMED", "{e}");
        assert_eq!(e["appointment"]["id"], id.as_str(), "{e}");
        let _ = db.close().await;
    }
}

/// Statements each database ran so far (from `/metrics`).
async fn statements(app: &TestApp, db: &str) -> u64 {
    let text = app.get_text("/metrics").await;
    let prefix = format!("jolmood_db_statements_total{{database=\"{db}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {db} counter in {text}"))
}

async fn a_page_of_appointments_loads_its_people_in_one_batch(app: TestApp) {
    let cl = app.register("batch-client@example.com", "USER").await;
    for i in 0..6 {
        let c = coach(&app, &format!("batch-coach{i}@example.com"), 60, false).await;
        booked(&app, &cl.token, &c, day_at(13, (8 + i) * 60)).await;
    }
    let query = "query Page($first: Int) { myAppointments(first: $first) { nodes {
        coach { profile { displayName } coachProfile { headline sessionMinutes } }
        client { profile { displayName } } } } }";
    let mut costs = Vec::new();
    for first in [2, 6] {
        let before = statements(&app, "users").await;
        let body = app.gql_as(&cl.token, query, json!({"first": first})).await;
        let after = statements(&app, "users").await;
        let nodes = body["data"]["myAppointments"]["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), first as usize, "{body}");
        assert!(nodes
            .iter()
            .all(|n| n["coach"]["coachProfile"]["headline"] == "Coach"));
        costs.push(after - before);
    }
    assert_eq!(
        costs[0], costs[1],
        "a page of 6 costs what a page of 2 does"
    );
    assert!(
        costs[1] <= 2,
        "profiles and coach profiles in one batch each: {costs:?}"
    );
}

async fn slots_are_computed_in_the_coach_timezone(app: TestApp) {
    let rules: Vec<Value> = (1..=7)
        .map(|d| json!({"weekday": d, "startTime": "09:00", "endTime": "11:00"}))
        .collect();
    // The coach profile's own timezone: Kolkata is UTC+05:30, no DST.
    let india = app.register("tz-india@example.com", "COACH").await;
    app.gql_as(
        &india.token,
        UPSERT,
        json!({"h": "Coach", "s": [], "tz": "Asia/Kolkata"}),
    )
    .await;
    app.gql_as(&india.token, SET_AVAILABILITY, json!({"rules": rules}))
        .await;
    let slots = slot_starts(&app, &india, day_at(4, 0), day_at(5, 0)).await;
    assert_eq!(slots, vec![day_at(4, 3 * 60 + 30), day_at(4, 4 * 60 + 30)]);
    // Without one, the user profile's: Tokyo is UTC+9, so 09:00 is midnight UTC.
    let japan = app.register("tz-japan@example.com", "COACH").await;
    app.gql_as(
        &japan.token,
        "mutation Tz($tz: String) { updateProfile(timezone: $tz) { id } }",
        json!({"tz": "Asia/Tokyo"}),
    )
    .await;
    app.gql_as(&japan.token, UPSERT, json!({"h": "Coach", "s": []}))
        .await;
    app.gql_as(&japan.token, SET_AVAILABILITY, json!({"rules": rules}))
        .await;
    let slots = slot_starts(&app, &japan, day_at(4, 0), day_at(5, 0)).await;
    assert_eq!(slots, vec![day_at(4, 0), day_at(4, 60)]);
    let body = book(&app, &india.token, &japan, day_at(4, 60)).await;
    assert_eq!(
        parse(&body["data"]["bookAppointment"]["endsAt"]),
        day_at(4, 120),
        "{body}"
    );
}

/// The audit entries (target type, details) of `action` on appointment `id`, read from
/// admin_db.
async fn audit_entries(app: &TestApp, action: &str, id: &str) -> Vec<(String, Option<String>)> {
    let db = app.db(Database::Admin).await;
    let stmt = Query::select()
        .columns([Alias::new("target_type"), Alias::new("details")])
        .from(Alias::new("audit_trail"))
        .and_where(Expr::col(Alias::new("action")).eq(action))
        .and_where(Expr::col(Alias::new("target_id")).eq(id))
        .to_owned();
    let rows = db
        .query_all(db.get_database_backend().build(&stmt))
        .await
        .unwrap();
    let _ = db.close().await;
    rows.iter()
        .map(|r| {
            (
                r.try_get("", "target_type").unwrap(),
                r.try_get("", "details").unwrap(),
            )
        })
        .collect()
}

/// The caller's active appointments (both roles) as (start, end) spans.
async fn active_spans(app: &TestApp, token: &str) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let body = app
        .gql_as(
            token,
            "query Mine($status: AppointmentStatus, $first: Int) {
  myAppointments(status: $status, first: $first) { nodes { status startsAt endsAt } }
}",
            json!({"first": 100}),
        )
        .await;
    body["data"]["myAppointments"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("myAppointments: {body}"))
        .iter()
        .filter(|a| a["status"] == "CONFIRMED" || a["status"] == "PENDING")
        .map(|a| (parse(&a["startsAt"]), parse(&a["endsAt"])))
        .collect()
}

async fn a_coach_who_books_another_coach_keeps_one_calendar(app: TestApp) {
    let a = coach(&app, "cal-a@example.com", 60, false).await;
    let b = coach(&app, "cal-b@example.com", 30, false).await;
    let cl = app.register("cal-client@example.com", "USER").await;
    // A coaches 10:00-11:00; A may not attend B's 10:00 or 10:30 session meanwhile.
    let at = day_at(13, 10 * 60);
    booked(&app, &cl.token, &a, at).await;
    for start in [at, at + Span::minutes(30)] {
        let body = book(&app, &a.token, &b, start).await;
        assert_eq!(code(&body), "CONFLICT", "{body}");
    }
    booked(&app, &a.token, &b, at + Span::hours(1)).await;
    // The other way round: A attends B at 11:00-11:30, so nobody books A at 11:00, and
    // A's own slots no longer offer it.
    let body = book(&app, &cl.token, &a, at + Span::hours(1)).await;
    assert_eq!(code(&body), "CONFLICT", "{body}");
    let offered = slot_starts(&app, &a, at, at + Span::hours(3)).await;
    assert_eq!(offered, vec![at + Span::hours(2)], "{offered:?}");

    // Concurrently, on several slots: A's client books A while A books B at that time;
    // exactly one of each pair wins.
    let starts: Vec<DateTime<Utc>> = (0..6).map(|h| day_at(14, (8 + h) * 60)).collect();
    let results = join_all(starts.iter().flat_map(|&t| {
        [
            book(&app, &cl.token, &a, t),
            book(&app, &a.token, &b, t + Span::minutes(30)),
        ]
    }))
    .await;
    for pair in results.chunks(2) {
        let wins = pair
            .iter()
            .filter(|r| r["data"]["bookAppointment"]["id"].is_string())
            .count();
        assert_eq!(wins, 1, "{pair:?}");
        assert!(pair.iter().any(|r| code(r) == "CONFLICT"), "{pair:?}");
    }
    let mut spans = active_spans(&app, &a.token).await;
    spans.sort();
    assert_eq!(spans.len(), 2 + starts.len(), "{spans:?}");
    for w in spans.windows(2) {
        assert!(w[0].1 <= w[1].0, "A's calendar overlaps: {spans:?}");
    }
}

async fn a_booking_racing_its_coach_suspension_does_not_survive(app: TestApp) {
    let admin = admin_token(&app).await;
    let emails: Vec<String> = (0..4).map(|i| format!("srace{i}@example.com")).collect();
    let clients = join_all(emails.iter().map(|e| app.register(e, "USER"))).await;
    for round in 0..3 {
        let c = coach(&app, &format!("srace-coach{round}@example.com"), 60, false).await;
        // Bookings of distinct slots race the suspension.
        let bookings = (0..16).map(|i| {
            let cl = &clients[i % clients.len()];
            let at = day_at(20 + round, i64::try_from(i).unwrap() * 60);
            let (app, c) = (&app, &c);
            async move { book(app, &cl.token, c, at).await }
        });
        let suspend = app.gql_as(
            &admin,
            "mutation S($u: ID!, $s: Boolean!) { suspendUser(userId: $u, suspended: $s) { id } }",
            json!({"u": c.id, "s": true}),
        );
        let (results, suspended) = tokio::join!(join_all(bookings), suspend);
        assert!(suspended["data"]["suspendUser"].is_object(), "{suspended}");
        for r in &results {
            let Some(id) = r["data"]["bookAppointment"]["id"].as_str() else {
                assert_eq!(code(r), "BAD_USER_INPUT", "{r}");
                continue;
            };
            let body = app.gql_as(&admin, ONE, json!({"id": id})).await;
            let a = &body["data"]["appointment"];
            assert_eq!(a["status"], "CANCELLED", "survived the suspension: {body}");
            assert_eq!(a["cancelReason"], "coach suspended", "{body}");
            let audited = audit_entries(&app, "cancelAppointment", id).await;
            assert_eq!(
                audited,
                vec![(
                    "Appointment".into(),
                    Some(r#"{"reason":"coach suspended"}"#.into())
                )]
            );
        }
    }
}

async fn expiries_found_by_a_booking_are_audited_once(app: TestApp) {
    let c = coach(&app, "aud-coach@example.com", 60, true).await;
    let other = coach(&app, "aud-other@example.com", 60, false).await;
    let cl = app.register("aud-client@example.com", "USER").await;
    let id = booked(&app, &cl.token, &c, day_at(6, 8 * 60)).await;
    move_appointment(
        &app,
        &id,
        Utc::now() - Span::minutes(10),
        Utc::now() + Span::hours(5),
    )
    .await;
    // The client's next booking writes the expiry down (with its event).
    booked(&app, &cl.token, &other, day_at(6, 9 * 60)).await;
    let audited = audit_entries(&app, "expireAppointment", &id).await;
    assert_eq!(
        audited,
        vec![(
            "Appointment".into(),
            Some(r#"{"reason":"not confirmed"}"#.into())
        )]
    );
    // Once written down it is not expired (nor audited) again.
    booked(&app, &cl.token, &other, day_at(6, 10 * 60)).await;
    assert_eq!(audit_entries(&app, "expireAppointment", &id).await.len(), 1);
}

/// Only a subscriber that fell behind its events is dropped with its connection: an
/// ordinary `RATE_LIMITED` answer on the same socket (here the sixth failed login) leaves
/// the connection and its `bookingEvents` subscription open.
async fn a_rate_limited_answer_leaves_the_subscriptions_open(app: TestApp) {
    let user = app.register("ws-limits@example.com", "USER").await;
    let mut ws = WsClient::connect(&app.ws_url, "graphql-transport-ws").await;
    ws.init(json!({"Authorization": format!("Bearer {}", user.token)}))
        .await;
    assert_eq!(
        ws.message(Duration::from_secs(5)).await["type"],
        "connection_ack"
    );
    ws.send(json!({"id": "events", "type": "subscribe", "payload": {"query": "subscription { bookingEvents { type } }"}}))
        .await;
    let login =
        "mutation L($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }";
    let mut last = Value::Null;
    for i in 0..6 {
        let id = format!("login{i}");
        ws.send(json!({"id": id, "type": "subscribe", "payload": {"query": login, "variables": {"e": "ws-limits@example.com", "p": "not the password"}}}))
            .await;
        loop {
            let m = ws.message(Duration::from_secs(10)).await;
            if m["id"] == id.as_str() && m["type"] == "next" {
                last = m;
                break;
            }
        }
    }
    assert_eq!(
        last["payload"]["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{last}"
    );
    ws.send(json!({"id": "after", "type": "subscribe", "payload": {"query": "{ me { id } }"}}))
        .await;
    loop {
        let m = ws.message(Duration::from_secs(10)).await;
        if m["id"] == "after" && m["type"] == "next" {
            assert_eq!(m["payload"]["data"]["me"]["id"], user.id.as_str(), "{m}");
            break;
        }
        assert_ne!(m["id"], "events", "the subscription is still running: {m}");
    }
}
