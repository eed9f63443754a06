//! Profiles, coaches and specialties across databases, on both backends.

use std::collections::HashMap;

use crate::helpers::{code, Account, Backend, TestApp};
use serde_json::{json, Value};

const UPSERT: &str = "mutation($h: String!, $s: [String!]!, $m: Int, $p: Int, $c: String, $tz: String, $a: Boolean, $b: String) {
  upsertCoachProfile(headline: $h, specialtySlugs: $s, sessionMinutes: $m, priceCents: $p, currency: $c, timezone: $tz, requiresApproval: $a, bio: $b) {
    id coachProfile { headline bio sessionMinutes priceCents currency timezone requiresApproval specialties { slug name } user { id } }
  }
}";

const COACH_FIELDS: &str = "id role createdAt email suspended profile { displayName bio timezone } coachProfile { headline sessionMinutes timezone specialties { slug } user { id } }";

async fn coach(app: &TestApp, email: &str, name: &str, headline: &str, slugs: &[&str]) -> Account {
    let a = app.register(email, "COACH").await;
    app.gql_as(
        &a.token,
        "mutation($n: String) { updateProfile(displayName: $n) { id } }",
        json!({"n": name}),
    )
    .await;
    let body = app
        .gql_as(&a.token, UPSERT, json!({"h": headline, "s": slugs}))
        .await;
    assert!(body["data"]["upsertCoachProfile"].is_object(), "{body}");
    a
}

async fn statements(app: &TestApp) -> HashMap<String, u64> {
    let text = app.get_text("/metrics").await;
    text.lines()
        .filter_map(|l| l.strip_prefix("jolmood_db_statements_total{database=\""))
        .filter_map(|l| l.split_once("\"} "))
        .map(|(db, n)| (db.to_string(), n.trim().parse().unwrap()))
        .collect()
}

on_both_backends!(
    specialties_are_seeded,
    coach_profiles_are_upserted,
    coach_profile_input_is_checked,
    profiles_update_with_keep_and_clear,
    private_fields_are_private,
    the_directory_filters_searches_and_pages,
    a_page_costs_the_same_statements_whatever_its_size,
);

async fn specialties_are_seeded(app: TestApp) {
    let body = app.gql("{ specialties { id slug name } }", json!({})).await;
    let list = body["data"]["specialties"].as_array().unwrap();
    let slugs: Vec<&str> = list.iter().map(|s| s["slug"].as_str().unwrap()).collect();
    for want in [
        "nutrition",
        "fitness",
        "yoga",
        "meditation",
        "sleep",
        "stress-management",
        "mental-health",
        "life-coaching",
        "running",
        "pilates",
    ] {
        assert!(slugs.contains(&want), "{want} missing from {slugs:?}");
    }
    let names: Vec<&str> = list.iter().map(|s| s["name"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "specialties come sorted by name");
}

async fn coach_profiles_are_upserted(app: TestApp) {
    let c = app.register("coach@example.com", "COACH").await;
    let body = app
        .gql_as(
            &c.token,
            UPSERT,
            json!({"h": "  Yoga for runners ", "s": ["yoga", "running", "yoga"], "m": 45, "p": 5000, "c": "eur", "tz": "Europe/Paris", "b": "Hi"}),
        )
        .await;
    let p = &body["data"]["upsertCoachProfile"]["coachProfile"];
    assert_eq!(p["headline"], "Yoga for runners", "{body}");
    assert_eq!(p["sessionMinutes"], 45);
    assert_eq!(
        (p["priceCents"].clone(), p["currency"].clone()),
        (json!(5000), json!("EUR"))
    );
    assert_eq!(p["timezone"], "Europe/Paris");
    assert_eq!(p["requiresApproval"], false);
    assert_eq!(
        p["specialties"],
        json!([{"slug": "running", "name": "Running"}, {"slug": "yoga", "name": "Yoga"}])
    );
    assert_eq!(p["user"]["id"], c.id.as_str());

    // Omitted arguments keep their values; explicit nulls clear price, currency, bio and
    // the coach timezone (which then follows the user profile's).
    let body = app
        .gql_as(
            &c.token,
            UPSERT,
            json!({"h": "Yoga", "s": ["yoga"], "a": true}),
        )
        .await;
    let p = &body["data"]["upsertCoachProfile"]["coachProfile"];
    assert_eq!(
        (
            p["sessionMinutes"].clone(),
            p["priceCents"].clone(),
            p["bio"].clone()
        ),
        (json!(45), json!(5000), json!("Hi"))
    );
    assert_eq!(p["requiresApproval"], true);
    let body = app
        .gql_as(
            &c.token,
            UPSERT,
            json!({"h": "Yoga", "s": [], "p": null, "c": null, "tz": null, "b": null}),
        )
        .await;
    let p = &body["data"]["upsertCoachProfile"]["coachProfile"];
    assert_eq!(
        (
            p["priceCents"].clone(),
            p["currency"].clone(),
            p["bio"].clone()
        ),
        (Value::Null, Value::Null, Value::Null),
        "{body}"
    );
    assert_eq!(p["timezone"], "UTC");
    assert_eq!(p["specialties"], json!([]));
    app.gql_as(
        &c.token,
        "mutation { updateProfile(timezone: \"America/New_York\") { id } }",
        json!({}),
    )
    .await;
    let body = app
        .gql(
            "query($id: ID!) { user(id: $id) { coachProfile { timezone } } }",
            json!({"id": c.id}),
        )
        .await;
    assert_eq!(
        body["data"]["user"]["coachProfile"]["timezone"],
        "America/New_York"
    );
}

async fn coach_profile_input_is_checked(app: TestApp) {
    let user = app.register("user@example.com", "USER").await;
    let body = app
        .gql_as(&user.token, UPSERT, json!({"h": "x", "s": []}))
        .await;
    assert_eq!(code(&body), "FORBIDDEN");
    assert_eq!(
        code(&app.gql(UPSERT, json!({"h": "x", "s": []})).await),
        "UNAUTHENTICATED"
    );

    let c = app.register("c@example.com", "COACH").await;
    let cases = [
        (
            json!({"h": "x", "s": ["yoga", "underwater-chess"]}),
            "specialtySlugs",
            Some("underwater-chess"),
        ),
        (
            json!({"h": "x", "s": [], "tz": "Mars/Olympus"}),
            "timezone",
            None,
        ),
        (json!({"h": "x", "s": [], "m": 10}), "sessionMinutes", None),
        (json!({"h": "x", "s": [], "m": 241}), "sessionMinutes", None),
        (
            json!({"h": "x", "s": [], "p": 100, "c": "EURO"}),
            "currency",
            None,
        ),
        (json!({"h": "x", "s": [], "p": 100}), "currency", None),
        (
            json!({"h": "x", "s": [], "p": -5, "c": "EUR"}),
            "priceCents",
            None,
        ),
        (json!({"h": "   ", "s": []}), "headline", None),
        (
            json!({"h": "x", "s": [], "b": "b".repeat(2001)}),
            "bio",
            None,
        ),
    ];
    for (vars, field, named) in cases {
        let body = app.gql_as(&c.token, UPSERT, vars.clone()).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{vars}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["field"], field,
            "{vars}: {body}"
        );
        if let Some(named) = named {
            assert!(
                body["errors"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains(named),
                "{body}"
            );
        }
    }
    // Nothing of those was stored.
    let body = app
        .gql(
            "query($id: ID!) { user(id: $id) { coachProfile { headline } } }",
            json!({"id": c.id}),
        )
        .await;
    assert_eq!(body["data"]["user"]["coachProfile"], Value::Null, "{body}");
    let body = app
        .gql_as(
            &c.token,
            UPSERT,
            json!({"h": "x", "s": [], "b": "b".repeat(2000)}),
        )
        .await;
    assert!(
        body["data"]["upsertCoachProfile"].is_object(),
        "2,000 characters is within the bound: {body}"
    );
}

async fn profiles_update_with_keep_and_clear(app: TestApp) {
    let u = app.register("p@example.com", "USER").await;
    let q = "mutation($n: String, $b: String, $a: ID, $t: String) { updateProfile(displayName: $n, bio: $b, avatarMediaId: $a, timezone: $t) { profile { displayName bio timezone } } }";
    let body = app
        .gql_as(
            &u.token,
            q,
            json!({"n": "  Ana  ", "b": " Runner ", "t": "Europe/Paris"}),
        )
        .await;
    assert_eq!(
        body["data"]["updateProfile"]["profile"],
        json!({"displayName": "Ana", "bio": "Runner", "timezone": "Europe/Paris"})
    );
    // An argument left out of the document: kept.
    let body = app.gql_as(&u.token, "mutation { updateProfile(displayName: \"Ana B\") { profile { displayName bio timezone } } }", json!({})).await;
    assert_eq!(
        body["data"]["updateProfile"]["profile"],
        json!({"displayName": "Ana B", "bio": "Runner", "timezone": "Europe/Paris"})
    );
    // Explicit null: cleared.
    let body = app
        .gql_as(
            &u.token,
            "mutation { updateProfile(bio: null, avatarMediaId: null) { profile { bio } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["updateProfile"]["profile"]["bio"],
        Value::Null,
        "{body}"
    );

    let bad = [
        (json!({"n": null}), "displayName"),
        (json!({"n": "n".repeat(81)}), "displayName"),
        (json!({"b": "b".repeat(2001)}), "bio"),
        (json!({"t": "Mars/Olympus"}), "timezone"),
        (json!({"a": "not-an-id"}), "avatarMediaId"),
        (
            json!({"a": uuid::Uuid::now_v7().to_string()}),
            "avatarMediaId",
        ),
    ];
    for (vars, field) in bad {
        // The whole form's document; the variables hold only the field at fault.
        let body = app.gql_as(&u.token, q, vars.clone()).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{vars}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["field"], field,
            "{vars}: {body}"
        );
    }
    let body = app
        .gql_as(
            &u.token,
            "{ me { profile { displayName bio timezone } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["me"]["profile"],
        json!({"displayName": "Ana B", "bio": null, "timezone": "Europe/Paris"})
    );
    assert_eq!(
        code(
            &app.gql("mutation { updateProfile(bio: \"x\") { id } }", json!({}))
                .await
        ),
        "UNAUTHENTICATED"
    );
}

async fn private_fields_are_private(app: TestApp) {
    let Some(app) = TestApp::spawn_with(app.backend, |c| {
        c.admin_email = Some("admin@example.com".into());
        c.admin_password = Some("admin password 1".into());
    })
    .await
    else {
        return;
    };
    let ana = app.register("ana@example.com", "USER").await;
    let bob = app.register("bob@example.com", "USER").await;
    let admin = app.login("admin@example.com", "admin password 1").await["data"]["login"]
        ["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let q = "query($id: ID!) { user(id: $id) { id email suspended profile { displayName } } }";
    let vars = json!({"id": ana.id});
    let as_bob = app.gql_as(&bob.token, q, vars.clone()).await;
    assert_eq!(
        (
            as_bob["data"]["user"]["email"].clone(),
            as_bob["data"]["user"]["suspended"].clone()
        ),
        (Value::Null, Value::Null)
    );
    let anonymous = app.gql(q, vars.clone()).await;
    assert_eq!(anonymous["data"]["user"]["email"], Value::Null);
    assert_eq!(
        anonymous["data"]["user"]["profile"]["displayName"],
        "Test User"
    );
    let as_ana = app.gql_as(&ana.token, q, vars.clone()).await;
    assert_eq!(as_ana["data"]["user"]["email"], "ana@example.com");
    let as_admin = app.gql_as(&admin, q, vars).await;
    assert_eq!(
        (
            as_admin["data"]["user"]["email"].clone(),
            as_admin["data"]["user"]["suspended"].clone()
        ),
        (json!("ana@example.com"), json!(false))
    );

    let missing = app
        .gql(
            "query($id: ID!) { user(id: $id) { id } }",
            json!({"id": uuid::Uuid::now_v7().to_string()}),
        )
        .await;
    assert_eq!(missing["data"]["user"], Value::Null);
    let malformed = app.gql("{ user(id: \"42\") { id } }", json!({})).await;
    assert_eq!(
        (
            code(&malformed),
            &malformed["errors"][0]["extensions"]["field"]
        ),
        ("BAD_USER_INPUT", &json!("id"))
    );

    // Suspension hides a coach from the directory; reinstating shows them again.
    let c = coach(&app, "c@example.com", "Coach C", "Sleep better", &["sleep"]).await;
    assert_eq!(listed(&app).await, 1);
    let suspend =
        "mutation($u: ID!, $s: Boolean!) { suspendUser(userId: $u, suspended: $s) { id } }";
    app.gql_as(&admin, suspend, json!({"u": c.id, "s": true}))
        .await;
    assert_eq!(listed(&app).await, 0);
    app.gql_as(&admin, suspend, json!({"u": c.id, "s": false}))
        .await;
    assert_eq!(listed(&app).await, 1);
    // A coach made a plain user leaves the directory too.
    app.gql_as(
        &admin,
        "mutation($u: ID!) { setUserRole(userId: $u, role: USER) { id } }",
        json!({"u": c.id}),
    )
    .await;
    assert_eq!(listed(&app).await, 0);
}

async fn the_directory_filters_searches_and_pages(app: TestApp) {
    let a = coach(
        &app,
        "a@example.com",
        "Élodie Martin",
        "Yoga et méditation",
        &["yoga", "meditation"],
    )
    .await;
    let b = coach(
        &app,
        "b@example.com",
        "Bruno",
        "Marathon training",
        &["running", "fitness"],
    )
    .await;
    let c = coach(
        &app,
        "c@example.com",
        "Chloé",
        "Sleep & stress",
        &["sleep", "stress-management"],
    )
    .await;
    app.register("nocoach@example.com", "COACH").await; // no profile: not listed
    app.register("user@example.com", "USER").await;

    let q = "query($s: String, $q: String, $f: Int, $a: String) { coaches(specialty: $s, search: $q, first: $f, after: $a) {
        totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id } } nodes { id profile { displayName } } } }";
    let ids = |body: &Value| -> Vec<String> {
        body["data"]["coaches"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap().to_string())
            .collect()
    };
    let all = app.gql(q, json!({})).await;
    assert_eq!(
        ids(&all),
        vec![c.id.clone(), b.id.clone(), a.id.clone()],
        "newest first: {all}"
    );
    assert_eq!(all["data"]["coaches"]["totalCount"], 3);

    assert_eq!(
        ids(&app.gql(q, json!({"s": "yoga"})).await),
        vec![a.id.clone()]
    );
    assert_eq!(
        ids(&app.gql(q, json!({"s": "running"})).await),
        vec![b.id.clone()]
    );
    assert_eq!(
        ids(&app.gql(q, json!({"q": "elodie"})).await),
        vec![a.id.clone()],
        "accents folded"
    );
    assert_eq!(
        ids(&app.gql(q, json!({"q": "MEDITATION"})).await),
        vec![a.id.clone()],
        "headline, case-insensitive"
    );
    assert_eq!(
        ids(&app.gql(q, json!({"q": "chloe"})).await),
        vec![c.id.clone()]
    );
    assert_eq!(
        ids(&app.gql(q, json!({"q": "%"})).await),
        Vec::<String>::new(),
        "wildcards are literal"
    );
    assert_eq!(
        ids(&app.gql(q, json!({"s": "yoga", "q": "bruno"})).await),
        Vec::<String>::new()
    );
    let bad = app.gql(q, json!({"s": "underwater-chess"})).await;
    assert_eq!(
        (code(&bad), &bad["errors"][0]["extensions"]["field"]),
        ("BAD_USER_INPUT", &json!("specialty"))
    );
    assert!(bad["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("underwater-chess"));

    // Keyset pages.
    let p1 = app.gql(q, json!({"f": 2})).await;
    assert_eq!(ids(&p1), vec![c.id.clone(), b.id.clone()]);
    assert_eq!(p1["data"]["coaches"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(p1["data"]["coaches"]["totalCount"], 3);
    let end = p1["data"]["coaches"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap();
    assert_eq!(p1["data"]["coaches"]["edges"][1]["cursor"], end);
    let p2 = app.gql(q, json!({"f": 2, "a": end})).await;
    assert_eq!(ids(&p2), vec![a.id.clone()]);
    assert_eq!(p2["data"]["coaches"]["pageInfo"]["hasNextPage"], false);
    // A coach added meanwhile does not shift the next page.
    coach(&app, "d@example.com", "Dan", "Pilates", &["pilates"]).await;
    let p2_again = app.gql(q, json!({"f": 2, "a": end})).await;
    assert_eq!(ids(&p2_again), vec![a.id.clone()]);
    assert_eq!(
        ids(&app.gql(q, json!({"f": 0})).await),
        Vec::<String>::new()
    );

    for (vars, field) in [
        (json!({"f": 101}), "first"),
        (json!({"f": -1}), "first"),
        (json!({"a": "garbage"}), "after"),
    ] {
        let body = app.gql(q, vars.clone()).await;
        assert_eq!(
            (code(&body), &body["errors"][0]["extensions"]["field"]),
            ("BAD_USER_INPUT", &json!(field)),
            "{vars}"
        );
    }
}

async fn a_page_costs_the_same_statements_whatever_its_size(app: TestApp) {
    // 100 coaches, registered through the API like any others.
    let slugs = ["yoga", "running", "sleep", "nutrition"];
    for chunk in (0..100).collect::<Vec<_>>().chunks(10) {
        let jobs = chunk.iter().map(|i| {
            let app = &app;
            let email = format!("coach{i}@example.com");
            async move {
                coach(
                    app,
                    &email,
                    &format!("Coach {i}"),
                    &format!("Headline {i}"),
                    &[slugs[i % 4], slugs[(i + 1) % 4]],
                )
                .await
            }
        });
        futures_util::future::join_all(jobs).await;
    }
    let query = format!(
        "query($f: Int) {{ coaches(first: $f) {{ totalCount nodes {{ {COACH_FIELDS} }} }} }}"
    );
    let mut costs = Vec::new();
    for first in [10, 100] {
        let before = statements(&app).await;
        let body = app.gql(&query, json!({"f": first})).await;
        let after = statements(&app).await;
        let nodes = body["data"]["coaches"]["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), first, "{body}");
        assert!(nodes
            .iter()
            .all(|n| n["coachProfile"]["specialties"].as_array().unwrap().len() == 2));
        let cost: HashMap<String, u64> = after
            .iter()
            .map(|(db, n)| (db.clone(), n - before.get(db).copied().unwrap_or(0)))
            .collect();
        costs.push(cost);
    }
    assert_eq!(
        costs[0], costs[1],
        "a page of 100 must cost what a page of 10 costs"
    );
    let total: u64 = costs[1].values().sum();
    assert!(
        total <= 8,
        "{total} statements for one page: {:?}",
        costs[1]
    );
    assert_eq!(
        costs[1]["auth"], 1,
        "accounts come in one batch: {:?}",
        costs[1]
    );
    if app.backend == Backend::Postgres {
        eprintln!("statements per page on PostgreSQL: {:?}", costs[1]);
    } else {
        eprintln!("statements per page on SQLite: {:?}", costs[1]);
    }
}

async fn listed(app: &TestApp) -> i64 {
    app.gql("{ coaches { totalCount nodes { id } } }", json!({}))
        .await["data"]["coaches"]["totalCount"]
        .as_i64()
        .unwrap()
}
