//! `jolmood seed-demo`: demo accounts for trying the API in GraphiQL.
//!
//! The data goes in through the GraphQL schema itself, as a client would send it, so the
//! demo obeys every rule the API enforces and appears in the audit trail.

use async_graphql::Request;
use serde_json::{json, Value};

use crate::{
    http::AppState,
    schema::context::RequestContext,
    services::auth::{authenticate_token, sessions::ClientInfo, Auth},
};

/// The password of every demo account.
pub const DEMO_PASSWORD: &str = "jolmood-demo";

struct DemoCoach {
    email: &'static str,
    name: &'static str,
    headline: &'static str,
    specialties: &'static [&'static str],
    timezone: &'static str,
    price_cents: i32,
}

const COACHES: [DemoCoach; 3] = [
    DemoCoach {
        email: "elodie.coach@demo.jolmood.app",
        name: "Élodie Martin",
        headline: "Yoga and meditation for busy people",
        specialties: &["yoga", "meditation", "stress-management"],
        timezone: "Europe/Paris",
        price_cents: 4500,
    },
    DemoCoach {
        email: "bruno.coach@demo.jolmood.app",
        name: "Bruno Costa",
        headline: "From couch to marathon",
        specialties: &["running", "fitness"],
        timezone: "Europe/Lisbon",
        price_cents: 3500,
    },
    DemoCoach {
        email: "amara.coach@demo.jolmood.app",
        name: "Amara Okafor",
        headline: "Sleep better, eat better",
        specialties: &["sleep", "nutrition"],
        timezone: "America/New_York",
        price_cents: 6000,
    },
];

async fn run(state: &AppState, auth: Auth, query: &str, variables: Value) -> anyhow::Result<Value> {
    let request = Request::new(query)
        .variables(async_graphql::Variables::from_json(variables))
        .data(RequestContext::new(auth, ClientInfo::default()));
    let response = state.schema.execute(request).await;
    if let Some(err) = response.errors.first() {
        anyhow::bail!("{}", err.message);
    }
    Ok(response.data.into_json()?)
}

/// Registers an account, or logs into it when it exists; returns its access token.
async fn account(state: &AppState, email: &str, name: &str, role: &str) -> anyhow::Result<String> {
    let registered = run(
        state,
        Auth::Anonymous,
        "mutation($e: String!, $p: String!, $n: String!, $r: Role) { register(email: $e, password: $p, displayName: $n, role: $r) { accessToken } }",
        json!({"e": email, "p": DEMO_PASSWORD, "n": name, "r": role}),
    )
    .await;
    let data = match registered {
        Ok(data) => data["register"].clone(),
        Err(_) => run(
            state,
            Auth::Anonymous,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
            json!({"e": email, "p": DEMO_PASSWORD}),
        )
        .await?["login"]
            .clone(),
    };
    data["accessToken"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no access token for {email}"))
}

/// Creates (or refreshes) the demo accounts and prints how to use them.
pub async fn seed(state: &AppState) -> anyhow::Result<()> {
    for coach in &COACHES {
        let token = account(state, coach.email, coach.name, "COACH").await?;
        let auth = authenticate_token(&state.services, &token).await?;
        run(
            state,
            auth.clone(),
            "mutation($h: String!, $s: [String!]!, $tz: String, $p: Int) { upsertCoachProfile(headline: $h, specialtySlugs: $s, timezone: $tz, priceCents: $p, currency: \"EUR\") { id } }",
            json!({"h": coach.headline, "s": coach.specialties, "tz": coach.timezone, "p": coach.price_cents}),
        )
        .await?;
        // Weekday mornings and afternoons in the coach's timezone, so availableSlots
        // has something to show.
        let rules: Vec<Value> = (1..=5)
            .flat_map(|d| {
                [
                    json!({"weekday": d, "startTime": "09:00", "endTime": "12:00"}),
                    json!({"weekday": d, "startTime": "14:00", "endTime": "18:00"}),
                ]
            })
            .collect();
        run(
            state,
            auth,
            "mutation($r: [AvailabilityRuleInput!]!) { setAvailability(rules: $r) { id } }",
            json!({"r": rules}),
        )
        .await?;
        println!("coach  {}  /  {DEMO_PASSWORD}", coach.email);
    }
    account(state, "camille@demo.jolmood.app", "Camille Durand", "USER").await?;
    println!("user   camille@demo.jolmood.app  /  {DEMO_PASSWORD}");
    println!(
        "Log in with `login` in GraphiQL and put the accessToken in the Authorization header."
    );
    Ok(())
}
