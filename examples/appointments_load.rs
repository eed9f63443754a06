//! The load driver of `scripts/bench booking` and `scripts/bench subscriptions`: it talks
//! to a running server as the front ends do (GraphQL over HTTP, subscriptions over both
//! websocket sub-protocols) and prints what it measured.
//!
//! Usage:
//!   appointments_load booking <http base> <clients> <slots>
//!     One coach, `slots` hourly slots, `clients` clients racing to book them all; prints
//!     bookings/s and the overlaps found afterwards among the coach's appointments.
//!   appointments_load subscriptions <http base> <server pid> <connections> <users> <bookings/s> <seconds>
//!     `users` accounts (one in five a coach) hold `connections` bookingEvents
//!     subscriptions between them; bookings are made at a steady rate between those
//!     coaches and clients; prints the delay from each change (the event's `at`) to its
//!     arrival at every subscriber (p50, p99), deliveries, and the server's RSS.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use chrono::{DateTime, DurationRound, Utc};
use futures_util::{future::join_all, SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue, Message};

const PASSWORD: &str = "bench password 123";
const BOOK: &str = "mutation Book($coach: ID!, $at: DateTime!) { bookAppointment(coachId: $coach, startsAt: $at) { id } }";
const EVENTS: &str = "subscription { bookingEvents { type at appointment { id } } }";

struct Api {
    base: String,
    http: reqwest::Client,
}

struct Account {
    id: String,
    token: String,
}

impl Api {
    async fn gql(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .post(format!("{}/graphql", self.base))
            .json(&json!({"query": query, "variables": variables}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Ok(req.send().await?.json().await?)
    }

    /// Registers an account; when the server's password-hashing queue is full it answers
    /// `RATE_LIMITED` with `retryAfter`, and this waits that long and tries again, as a
    /// polite client does.
    async fn register(&self, email: &str, role: &str) -> anyhow::Result<Account> {
        let mut attempts = 0;
        let body = loop {
            let body = self
                .gql(
                    None,
                    "mutation R($e: String!, $p: String!, $r: Role) { register(email: $e, password: $p, displayName: \"Bench\", role: $r) { accessToken user { id } } }",
                    json!({"e": email, "p": PASSWORD, "r": role}),
                )
                .await?;
            let limited = &body["errors"][0]["extensions"];
            attempts += 1;
            if limited["code"] == "RATE_LIMITED" && attempts < 100 {
                let wait = limited["retryAfter"].as_u64().unwrap_or(1).max(1);
                tokio::time::sleep(Duration::from_secs(wait)).await;
                continue;
            }
            break body;
        };
        let p = &body["data"]["register"];
        Ok(Account {
            id: p["user"]["id"]
                .as_str()
                .context(format!("register: {body}"))?
                .into(),
            token: p["accessToken"].as_str().context("token")?.into(),
        })
    }

    /// A coach in UTC with 60-minute sessions, available all day every day.
    async fn coach(&self, email: &str) -> anyhow::Result<Account> {
        let c = self.register(email, "COACH").await?;
        let body = self
            .gql(
                Some(&c.token),
                "mutation { upsertCoachProfile(headline: \"Bench\", specialtySlugs: [], sessionMinutes: 60, timezone: \"UTC\") { id } }",
                json!({}),
            )
            .await?;
        if !body["data"]["upsertCoachProfile"].is_object() {
            bail!("upsertCoachProfile: {body}");
        }
        let rules: Vec<Value> = (1..=7)
            .map(|d| json!({"weekday": d, "startTime": "00:00", "endTime": "24:00"}))
            .collect();
        let body = self
            .gql(
                Some(&c.token),
                "mutation S($r: [AvailabilityRuleInput!]!) { setAvailability(rules: $r) { id } }",
                json!({"r": rules}),
            )
            .await?;
        if !body["data"]["setAvailability"].is_array() {
            bail!("setAvailability: {body}");
        }
        Ok(c)
    }

    async fn book(
        &self,
        client: &Account,
        coach: &Account,
        at: DateTime<Utc>,
    ) -> anyhow::Result<Value> {
        self.gql(
            Some(&client.token),
            BOOK,
            json!({"coach": coach.id, "at": at.to_rfc3339()}),
        )
        .await
    }

    async fn subscribers(&self) -> anyhow::Result<usize> {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .text()
            .await?;
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix("jolmood_booking_subscribers "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0))
    }
}

/// The first hourly slot used: midnight UTC three days from now (well past the notice).
fn first_slot() -> anyhow::Result<DateTime<Utc>> {
    Ok(Utc::now().duration_trunc(chrono::Duration::days(1))? + chrono::Duration::days(3))
}

fn tag() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

async fn booking(api: Api, clients: usize, slots: usize) -> anyhow::Result<()> {
    let run = tag();
    let coach = api.coach(&format!("coach-{run}@bench.test")).await?;
    let accounts = join_all((0..clients).map(|i| {
        let api = &api;
        let run = &run;
        async move {
            api.register(&format!("client-{run}-{i}@bench.test"), "USER")
                .await
        }
    }))
    .await
    .into_iter()
    .collect::<anyhow::Result<Vec<_>>>()?;
    let start = first_slot()?;
    let times: Vec<DateTime<Utc>> = (0..slots)
        .map(|i| start + chrono::Duration::hours(i as i64))
        .collect();
    let began = Instant::now();
    let outcomes = join_all(accounts.iter().enumerate().map(|(k, client)| {
        let (api, coach, times) = (&api, &coach, &times);
        async move {
            let mut out: HashMap<String, usize> = HashMap::new();
            for i in 0..times.len() {
                // Each client walks the slots from its own offset, so they collide.
                let at = times[(i + k * times.len() / clients.max(1)) % times.len()];
                let body = api.book(client, coach, at).await;
                let key = match body {
                    Ok(b) if b["data"]["bookAppointment"]["id"].is_string() => "booked".to_string(),
                    Ok(b) => b["errors"][0]["extensions"]["code"]
                        .as_str()
                        .unwrap_or("unknown")
                        .to_string(),
                    Err(_) => "transport".to_string(),
                };
                *out.entry(key).or_default() += 1;
            }
            out
        }
    }))
    .await;
    let elapsed = began.elapsed().as_secs_f64();
    let mut totals: HashMap<String, usize> = HashMap::new();
    for o in outcomes {
        for (k, v) in o {
            *totals.entry(k).or_default() += v;
        }
    }
    let booked = totals.get("booked").copied().unwrap_or(0);
    let attempts: usize = totals.values().sum();

    // Afterwards: every active appointment of the coach, checked pairwise by start.
    let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let body = api
            .gql(
                Some(&coach.token),
                "query M($a: String) { myAppointments(status: CONFIRMED, first: 100, after: $a) { pageInfo { hasNextPage endCursor } nodes { startsAt endsAt } } }",
                json!({"a": after}),
            )
            .await?;
        let conn = &body["data"]["myAppointments"];
        for n in conn["nodes"]
            .as_array()
            .context(format!("myAppointments: {body}"))?
        {
            let parse = |v: &Value| -> anyhow::Result<DateTime<Utc>> {
                Ok(DateTime::parse_from_rfc3339(v.as_str().context("time")?)?.with_timezone(&Utc))
            };
            spans.push((parse(&n["startsAt"])?, parse(&n["endsAt"])?));
        }
        if conn["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = conn["pageInfo"]["endCursor"].as_str().map(str::to_string);
    }
    spans.sort();
    let overlaps = spans.windows(2).filter(|w| w[1].0 < w[0].1).count();
    println!(
        "{clients} clients racing for {slots} slots: {booked} booked of {attempts} attempts in {elapsed:.2} s \
         ({:.0} bookings/s, {:.0} attempts/s); outcomes {totals:?}; {} appointments held, {overlaps} overlaps",
        booked as f64 / elapsed,
        attempts as f64 / elapsed,
        spans.len()
    );
    Ok(())
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

async fn subscriptions(
    api: Api,
    pid: u32,
    connections: usize,
    users: usize,
    rate: f64,
    seconds: u64,
) -> anyhow::Result<()> {
    let run = tag();
    let coaches_n = (users / 5).max(1);
    let clients_n = (users - coaches_n.min(users)).max(coaches_n);
    eprintln!("setting up {coaches_n} coaches and {clients_n} clients");
    let coaches = join_all((0..coaches_n).map(|i| {
        let (api, run) = (&api, &run);
        async move { api.coach(&format!("coach-{run}-{i}@bench.test")).await }
    }))
    .await
    .into_iter()
    .collect::<anyhow::Result<Vec<_>>>()?;
    let clients = join_all((0..clients_n).map(|i| {
        let (api, run) = (&api, &run);
        async move {
            api.register(&format!("client-{run}-{i}@bench.test"), "USER")
                .await
        }
    }))
    .await
    .into_iter()
    .collect::<anyhow::Result<Vec<_>>>()?;
    let everyone: Vec<&Account> = coaches.iter().chain(clients.iter()).collect();
    let mut per_user: HashMap<String, usize> = HashMap::new();

    let ws_url = format!("{}/graphql", api.base.replacen("http", "ws", 1));
    let delays: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::new()));
    eprintln!("opening {connections} subscriptions");
    let mut readers = Vec::with_capacity(connections);
    for i in 0..connections {
        let user = everyone[i % everyone.len()];
        *per_user.entry(user.id.clone()).or_default() += 1;
        let legacy = i % 2 == 1;
        let mut req = ws_url.as_str().into_client_request()?;
        req.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(if legacy {
                "graphql-ws"
            } else {
                "graphql-transport-ws"
            }),
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
        let init = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", user.token)}});
        ws.send(Message::Text(init.to_string().into())).await?;
        let start = json!({"id": "1", "type": if legacy { "start" } else { "subscribe" }, "payload": {"query": EVENTS}});
        ws.send(Message::Text(start.to_string().into())).await?;
        let delays = delays.clone();
        readers.push(tokio::spawn(async move {
            while let Some(Ok(msg)) = ws.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                let at = &v["payload"]["data"]["bookingEvents"]["at"];
                if let Some(at) = at
                    .as_str()
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                {
                    let ms = (Utc::now() - at.with_timezone(&Utc))
                        .num_microseconds()
                        .unwrap_or(0) as f64
                        / 1000.0;
                    if let Ok(mut d) = delays.lock() {
                        d.push(ms);
                    }
                }
            }
        }));
    }
    let ready = Instant::now();
    while api.subscribers().await? < connections {
        if ready.elapsed() > Duration::from_secs(120) {
            bail!(
                "only {} of {connections} subscriptions started",
                api.subscribers().await?
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rss_before = rss_kib(pid, "VmRSS:");
    eprintln!("{connections} subscribed; booking {rate}/s for {seconds} s");

    let start = first_slot()?;
    let total = (rate * seconds as f64).round() as usize;
    let mut expected = 0usize;
    let mut every = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.001)));
    let api = Arc::new(api);
    let mut bookings = Vec::with_capacity(total);
    for b in 0..total {
        every.tick().await;
        let slot = b / coaches.len();
        let coach = &coaches[b % coaches.len()];
        let client = &clients[(b % coaches.len() + slot) % clients.len()];
        expected += per_user.get(&coach.id).copied().unwrap_or(0)
            + per_user.get(&client.id).copied().unwrap_or(0);
        let at = start + chrono::Duration::hours(slot as i64);
        let (api, client, coach) = (
            api.clone(),
            Account {
                id: client.id.clone(),
                token: client.token.clone(),
            },
            Account {
                id: coach.id.clone(),
                token: coach.token.clone(),
            },
        );
        bookings.push(tokio::spawn(
            async move { api.book(&client, &coach, at).await },
        ));
    }
    let mut failed = 0;
    for b in bookings {
        match b.await {
            Ok(Ok(v)) if v["data"]["bookAppointment"]["id"].is_string() => {}
            _ => failed += 1,
        }
    }
    let settle = Instant::now();
    while delays.lock().map(|d| d.len()).unwrap_or(0) < expected
        && settle.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rss = rss_kib(pid, "VmRSS:");
    let peak = rss_kib(pid, "VmHWM:");
    let mut d = delays.lock().map(|d| d.clone()).unwrap_or_default();
    d.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| {
        d.get(((d.len() as f64 * p) as usize).min(d.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "{connections} subscriptions ({} users), {total} bookings at {rate}/s ({failed} failed): \
         {} of {expected} deliveries, delay p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
         server RSS {:.1} MiB (before booking {:.1} MiB, peak {:.1} MiB)",
        everyone.len(),
        d.len(),
        q(0.5),
        q(0.99),
        d.last().copied().unwrap_or(f64::NAN),
        rss as f64 / 1024.0,
        rss_before as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    for r in readers {
        r.abort();
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [_, "booking", base, clients, slots] => {
            booking(Api { base: base.to_string(), http }, clients.parse()?, slots.parse()?).await
        }
        [_, "subscriptions", base, pid, connections, users, rate, seconds] => {
            subscriptions(
                Api { base: base.to_string(), http },
                pid.parse()?,
                connections.parse()?,
                users.parse()?,
                rate.parse()?,
                seconds.parse()?,
            )
            .await
        }
        _ => bail!(
            "usage: appointments_load booking <http base> <clients> <slots>\n       \
             appointments_load subscriptions <http base> <server pid> <connections> <users> <bookings/s> <seconds>"
        ),
    }
}
