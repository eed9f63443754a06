//! Hostile input of every kind, made from the schema's own operations: whatever a client
//! sends, the server answers below 500, every error carries an `extensions.code` that is
//! not `INTERNAL_SERVER_ERROR`, it logs nothing at ERROR, and `/health` still answers.
//!
//! The seed operations are read from the running server by introspection (one per root
//! field, every argument a declared variable), so each new operation joins the fuzzing
//! without touching this file. Requests come from a deterministic seed: `FUZZ_SEED=<n>`
//! replays a run (the seed is printed on failure), `FUZZ_REQUESTS=<n>` changes its length,
//! `FUZZ_FULL=1` prints failing requests whole.

use std::time::Duration;

use futures_util::StreamExt;
use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::helpers::{process::ServerProcess, Backend, TestApp, PASSWORD};

const DEFAULT_SEED: u64 = 20_261_201;
const DEFAULT_REQUESTS: usize = 2_000;
const CONCURRENCY: usize = 8;
const ADMIN_EMAIL: &str = "fuzz-admin@example.com";
const ADMIN_PASSWORD: &str = "fuzz admin password";
/// Stands for a lone UTF-16 surrogate, which no Rust string can hold: replaced by the
/// JSON escape `\ud800` in the serialized body.
const LONE_SURROGATE: &str = "\u{e000}lone\u{e000}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded() {
    fuzz(Backend::Embedded).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    fuzz(Backend::Postgres).await
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn fuzz(backend: Backend) {
    let seed = env_number("FUZZ_SEED", DEFAULT_SEED);
    let count = env_number("FUZZ_REQUESTS", DEFAULT_REQUESTS);
    let Some((server, app)) = ServerProcess::start(
        backend,
        &[
            ("ADMIN_EMAIL", ADMIN_EMAIL),
            ("ADMIN_PASSWORD", ADMIN_PASSWORD),
        ],
    )
    .await
    else {
        return;
    };
    let world = World::new(&app).await;
    let seeds = seed_operations(&app).await;
    assert!(
        seeds.len() >= 10,
        "introspection found only {} operations",
        seeds.len()
    );

    let mut rng = StdRng::seed_from_u64(seed);
    let requests: Vec<Fuzzed> = (0..count)
        .map(|_| Fuzzed::make(&mut rng, &seeds, &world))
        .collect();
    let outcomes: Vec<Result<Vec<String>, String>> =
        futures_util::stream::iter(requests.into_iter().enumerate())
            .map(|(i, request)| {
                let app = &app;
                async move {
                    request
                        .send(app)
                        .await
                        .map_err(|e| format!("request {i}: {e}"))
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
    let mut tally = std::collections::BTreeMap::<String, usize>::new();
    let mut failures = Vec::new();
    for outcome in outcomes {
        match outcome {
            Ok(seen) => seen
                .into_iter()
                .for_each(|s| *tally.entry(s).or_default() += 1),
            Err(e) => failures.push(e),
        }
    }
    // What the run reached: answers with data, and each error code, counted.
    eprintln!("fuzz ({backend:?}, seed {seed}): {tally:?}");

    let health = app.http.get(app.url("/health")).send().await;
    let health = health.map(|r| r.status());
    let errors = server.stop().errors();
    let replay = format!("FUZZ_SEED={seed} FUZZ_REQUESTS={count} ({backend:?})");
    assert!(
        failures.is_empty(),
        "{} of {count} requests broke the rules; replay with {replay}:\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        matches!(health, Ok(StatusCode::OK)),
        "/health after fuzzing: {health:?}; replay with {replay}"
    );
    assert!(
        errors.is_empty(),
        "the server logged {} ERROR lines; replay with {replay}:\n{}",
        errors.len(),
        errors
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Accounts and ids that make generated variables plausible, so that mutations get past
/// argument checks and reach the rules behind them.
struct World {
    tokens: Vec<Option<String>>,
    ids: Vec<String>,
    refresh: Vec<String>,
}

impl World {
    async fn new(app: &TestApp) -> World {
        let user = app.register("fuzz-user@example.com", "USER").await;
        let coach = app.register("fuzz-coach@example.com", "COACH").await;
        let admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let admin_token = admin["data"]["login"]["accessToken"]
            .as_str()
            .expect("the admin logs in")
            .to_string();
        let admin_id = admin["data"]["login"]["user"]["id"]
            .as_str()
            .expect("admin id")
            .to_string();
        World {
            tokens: vec![
                None,
                Some(user.token.clone()),
                Some(coach.token.clone()),
                Some(admin_token),
                Some("not-a-token".into()),
                Some("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".into()),
            ],
            ids: vec![
                user.id,
                coach.id,
                admin_id,
                uuid::Uuid::now_v7().to_string(),
            ],
            refresh: vec![user.refresh, coach.refresh],
        }
    }
}

/// A type reference from introspection: `NON_NULL`/`LIST` wrappers around a named type.
#[derive(Clone, Debug)]
enum TypeRef {
    NonNull(Box<TypeRef>),
    List(Box<TypeRef>),
    Named(String),
}

impl TypeRef {
    fn from(v: &Value) -> TypeRef {
        match v["kind"].as_str() {
            Some("NON_NULL") => TypeRef::NonNull(Box::new(TypeRef::from(&v["ofType"]))),
            Some("LIST") => TypeRef::List(Box::new(TypeRef::from(&v["ofType"]))),
            _ => TypeRef::Named(v["name"].as_str().unwrap_or("String").to_string()),
        }
    }

    fn sdl(&self) -> String {
        match self {
            TypeRef::NonNull(t) => format!("{}!", t.sdl()),
            TypeRef::List(t) => format!("[{}]", t.sdl()),
            TypeRef::Named(n) => n.clone(),
        }
    }

    fn named(&self) -> &str {
        match self {
            TypeRef::NonNull(t) | TypeRef::List(t) => t.named(),
            TypeRef::Named(n) => n,
        }
    }
}

#[derive(Clone, Debug)]
struct Arg {
    name: String,
    ty: TypeRef,
}

/// One operation per root field, every argument bound to a declared variable.
#[derive(Clone, Debug)]
struct SeedOperation {
    name: String,
    document: String,
    args: Vec<Arg>,
    schema: std::sync::Arc<Types>,
}

/// The schema's types as introspection answers them, by name.
#[derive(Debug, Default)]
struct Types(std::collections::HashMap<String, Value>);

const INTROSPECTION: &str = "query Introspect {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { kind name enumValues { name } inputFields { name type { ...T } }
      fields { name args { name defaultValue type { ...T } } type { ...T } } }
  }
}
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";

async fn seed_operations(app: &TestApp) -> Vec<SeedOperation> {
    let body = app.gql(INTROSPECTION, json!({})).await;
    let schema = &body["data"]["__schema"];
    let types = std::sync::Arc::new(Types(
        schema["types"]
            .as_array()
            .expect("introspection lists the types")
            .iter()
            .map(|t| (t["name"].as_str().unwrap_or("").to_string(), t.clone()))
            .collect(),
    ));
    let mut seeds = Vec::new();
    for (kind, root) in [
        ("query", &schema["queryType"]["name"]),
        ("mutation", &schema["mutationType"]["name"]),
        ("subscription", &schema["subscriptionType"]["name"]),
    ] {
        let Some(root) = root.as_str() else { continue };
        for field in types.0[root]["fields"].as_array().into_iter().flatten() {
            let name = field["name"].as_str().unwrap_or("").to_string();
            let args: Vec<Arg> = field["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| Arg {
                    name: a["name"].as_str().unwrap_or("").to_string(),
                    ty: TypeRef::from(&a["type"]),
                })
                .collect();
            let declared: Vec<String> = args
                .iter()
                .map(|a| format!("${}: {}", a.name, a.ty.sdl()))
                .collect();
            let bound: Vec<String> = args.iter().map(|a| format!("{0}: ${0}", a.name)).collect();
            let selection = selection(&types, &TypeRef::from(&field["type"]), 2);
            let document = format!(
                "{kind} Op{}{} {{ {name}{}{selection} }}",
                capitalised(&name),
                parenthesised(&declared),
                parenthesised(&bound),
            );
            seeds.push(SeedOperation {
                name: format!("Op{}", capitalised(&name)),
                document,
                args,
                schema: types.clone(),
            });
        }
    }
    seeds
}

fn capitalised(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn parenthesised(items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        format!("({})", items.join(", "))
    }
}

/// A selection of the fields of `ty` that take no required argument, `depth` levels deep.
fn selection(types: &Types, ty: &TypeRef, depth: usize) -> String {
    let Some(t) = types.0.get(ty.named()) else {
        return String::new();
    };
    match t["kind"].as_str() {
        Some("OBJECT") => {}
        Some("INTERFACE") | Some("UNION") => return " { __typename }".into(),
        _ => return String::new(),
    }
    let mut parts = vec!["__typename".to_string()];
    for f in t["fields"].as_array().into_iter().flatten() {
        let required = f["args"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["type"]["kind"] == "NON_NULL" && a["defaultValue"].is_null());
        if required {
            continue;
        }
        let fty = TypeRef::from(&f["type"]);
        let name = f["name"].as_str().unwrap_or("");
        match types.0.get(fty.named()).and_then(|t| t["kind"].as_str()) {
            Some("OBJECT") | Some("INTERFACE") | Some("UNION") if depth > 0 => {
                parts.push(format!("{name}{}", selection(types, &fty, depth - 1)))
            }
            Some("OBJECT") | Some("INTERFACE") | Some("UNION") => {}
            _ => parts.push(name.to_string()),
        }
    }
    format!(" {{ {} }}", parts.join(" "))
}

/// A plausible value of `ty` for the argument `name`.
fn plausible(rng: &mut StdRng, types: &Types, world: &World, name: &str, ty: &TypeRef) -> Value {
    match ty {
        TypeRef::NonNull(t) => plausible(rng, types, world, name, t),
        TypeRef::List(t) => {
            let n = rng.gen_range(0..3);
            Value::Array(
                (0..n)
                    .map(|_| plausible(rng, types, world, name, t))
                    .collect(),
            )
        }
        TypeRef::Named(n) => match n.as_str() {
            "Int" => json!(*[0, 1, 5, 20, 30, 60, 100].choose(rng).unwrap_or(&1)),
            "Float" => json!(1.5),
            "Boolean" => json!(rng.gen_bool(0.5)),
            "ID" => json!(world.ids.choose(rng).cloned().unwrap_or_default()),
            "DateTime" => {
                let hours = rng.gen_range(-48..24 * 40);
                json!((chrono::Utc::now() + chrono::Duration::hours(hours)).to_rfc3339())
            }
            "Upload" => Value::Null,
            "String" => json!(plausible_string(rng, world, name)),
            other => match types.0.get(other) {
                Some(t) if t["kind"] == "ENUM" => {
                    let values: Vec<&Value> =
                        t["enumValues"].as_array().into_iter().flatten().collect();
                    values
                        .choose(rng)
                        .map(|v| v["name"].clone())
                        .unwrap_or(Value::Null)
                }
                Some(t) if t["kind"] == "INPUT_OBJECT" => {
                    let mut obj = Map::new();
                    for f in t["inputFields"].as_array().into_iter().flatten() {
                        let fname = f["name"].as_str().unwrap_or("");
                        let fty = TypeRef::from(&f["type"]);
                        obj.insert(fname.into(), plausible(rng, types, world, fname, &fty));
                    }
                    Value::Object(obj)
                }
                _ => json!("x"),
            },
        },
    }
}

fn plausible_string(rng: &mut StdRng, world: &World, name: &str) -> String {
    let lower = name.to_lowercase();
    if lower.contains("email") {
        format!("fuzz{}@example.com", rng.gen_range(0..50))
    } else if lower.contains("password") {
        PASSWORD.into()
    } else if lower.contains("refresh") {
        world.refresh.choose(rng).cloned().unwrap_or_default()
    } else if lower.contains("timezone") {
        ["Europe/Paris", "UTC", "America/New_York", "Mars/Olympus"]
            .choose(rng)
            .map(|s| s.to_string())
            .unwrap_or_default()
    } else if lower.contains("currency") {
        "EUR".into()
    } else if lower.contains("slug") || lower.contains("specialty") {
        ["yoga", "nutrition", "meditation", "nope"]
            .choose(rng)
            .map(|s| s.to_string())
            .unwrap_or_default()
    } else if lower.contains("time") {
        ["09:00", "17:30", "25:00"]
            .choose(rng)
            .map(|s| s.to_string())
            .unwrap_or_default()
    } else {
        ["Ana", "  spaced  ", "a body of text", ""]
            .choose(rng)
            .map(|s| s.to_string())
            .unwrap_or_default()
    }
}

/// A value of the wrong kind, or of the right kind at an extreme.
fn hostile(rng: &mut StdRng) -> Value {
    let deep_list = (0..rng.gen_range(20..200)).fold(json!(1), |v, _| json!([v]));
    let deep_object = (0..rng.gen_range(20..200)).fold(json!(1), |v, _| json!({ "a": v }));
    let choices = [
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(2_147_483_648_i64),
        json!(-2_147_483_649_i64),
        json!(1e308),
        json!(-0.5),
        json!(9_007_199_254_740_993_u64),
        json!(""),
        json!("x".repeat(rng.gen_range(1_000..20_000))),
        json!("nul\u{0}byte"),
        json!(LONE_SURROGATE),
        json!("\u{202e}\u{feff}'; DROP TABLE users; --"),
        json!("0197a0b2-0000-7000-8000-000000000000"),
        json!("not-a-uuid"),
        json!("2026-13-45T99:99:99Z"),
        json!({}),
        json!([]),
        json!([null, 1, "a"]),
        deep_list,
        deep_object,
    ];
    choices.choose(rng).cloned().unwrap_or(Value::Null)
}

/// GraphQL tokens, roughly: enough to delete and insert whole ones.
fn tokens(document: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = document.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() || c == ',' {
            chars.next();
        } else if c.is_alphanumeric() || c == '_' || c == '-' || c == '$' {
            let mut word = String::new();
            if c == '$' {
                word.push(c);
                chars.next();
            }
            while let Some(&c) = chars.peek() {
                if c.is_alphanumeric() || c == '_' || c == '-' || c == '.' {
                    word.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(word);
        } else if c == '"' {
            let mut s = String::from(c);
            chars.next();
            for c in chars.by_ref() {
                s.push(c);
                if c == '"' {
                    break;
                }
            }
            out.push(s);
        } else if c == '.' {
            let mut dots = String::new();
            while chars.peek() == Some(&'.') {
                dots.push('.');
                chars.next();
            }
            out.push(dots);
        } else {
            out.push(c.to_string());
            chars.next();
        }
    }
    out
}

const INSERTABLE: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ":",
    "$",
    "!",
    "=",
    "@",
    "...",
    "|",
    "&",
    "null",
    "true",
    "0",
    "-1",
    "1e999",
    "\"x\"",
    "\"\"\"block\"\"\"",
    "query",
    "mutation",
    "subscription",
    "fragment",
    "on",
    "__typename",
    "__schema",
    "me",
    "id",
    "@include(if: true)",
    "@skip(if: $x)",
    "$undeclared",
    "#",
    "\"\\u0000\"",
    "99999999999999999999999",
];

fn mutate_document(rng: &mut StdRng, document: &str) -> String {
    let mut toks = tokens(document);
    for _ in 0..rng.gen_range(1..4) {
        if toks.is_empty() {
            break;
        }
        let at = rng.gen_range(0..toks.len());
        match rng.gen_range(0..4) {
            0 => {
                toks.remove(at);
            }
            1 => toks.insert(at, INSERTABLE.choose(rng).unwrap_or(&"{").to_string()),
            2 => {
                let other = toks[rng.gen_range(0..toks.len())].clone();
                toks[at] = other;
            }
            _ => {
                let end = (at + rng.gen_range(1..6)).min(toks.len());
                let copy: Vec<String> = toks[at..end].to_vec();
                toks.splice(at..at, copy);
            }
        }
    }
    toks.join(" ")
}

/// A document nested far deeper than any limit, of one of several shapes.
fn deep_document(rng: &mut StdRng) -> String {
    let n = *[100, 1_000, 10_000, 50_000].choose(rng).unwrap_or(&100);
    match rng.gen_range(0..4) {
        0 => format!("{{{}{}", "me {".repeat(n), "}".repeat(n + 1)),
        1 => format!(
            "{{ user(id: {}1{}) {{ id }} }}",
            "[".repeat(n),
            "]".repeat(n)
        ),
        2 => format!(
            "{{ user(id: {}) {{ id }} }}",
            "{a: ".repeat(n) + "1" + &"}".repeat(n)
        ),
        _ => "{".repeat(n),
    }
}

/// One request, decided entirely by the seed.
struct Fuzzed {
    method: Method,
    content_type: Option<String>,
    token: Option<String>,
    preflight: bool,
    /// The body of a POST, or the query string of a GET.
    payload: String,
}

impl Fuzzed {
    fn make(rng: &mut StdRng, seeds: &[SeedOperation], world: &World) -> Fuzzed {
        // Mostly valid credentials of each role, so that operations reach their rules.
        let token = world.tokens[[0, 0, 1, 1, 1, 2, 2, 3, 3, 4, 5]
            .choose(rng)
            .copied()
            .unwrap_or(0)]
        .clone();
        let shape = rng.gen_range(0..100);
        if shape < 8 {
            return Fuzzed::raw(rng, token);
        }
        if shape < 18 {
            let ops: Vec<Value> = (0..rng.gen_range(0..=12))
                .map(|_| operation(rng, seeds, world))
                .collect();
            return Fuzzed::json(token, Value::Array(ops));
        }
        let op = operation(rng, seeds, world);
        // A URL stays within what proxies and browsers pass (8 KiB); longer documents go
        // by POST.
        let long = op.to_string().len() > 6_000;
        if shape < 30 && !long {
            let mut query = vec![("query", op["query"].as_str().unwrap_or("").to_string())];
            if let Some(v) = op.get("variables") {
                query.push((
                    "variables",
                    v.to_string().replace(LONE_SURROGATE, "\\ud800"),
                ));
            }
            if let Some(n) = op.get("operationName").and_then(Value::as_str) {
                query.push(("operationName", n.to_string()));
            }
            let payload = serde_urlencoded_pairs(&query);
            return Fuzzed {
                method: Method::GET,
                content_type: None,
                token,
                preflight: false,
                payload,
            };
        }
        Fuzzed::json(token, op)
    }

    fn json(token: Option<String>, body: Value) -> Fuzzed {
        Fuzzed {
            method: Method::POST,
            content_type: Some("application/json".into()),
            token,
            preflight: false,
            payload: body.to_string().replace(LONE_SURROGATE, "\\ud800"),
        }
    }

    /// A body that is not a GraphQL request, or not JSON at all.
    fn raw(rng: &mut StdRng, token: Option<String>) -> Fuzzed {
        let bytes: String = (0..rng.gen_range(0..64))
            .map(|_| char::from(rng.gen_range(0x20..0x7f_u8)))
            .collect();
        let bodies = [
            bytes,
            "{".into(),
            "null".into(),
            "[]".into(),
            "[[]]".into(),
            "[null]".into(),
            r#"{"query": 5}"#.into(),
            r#"{"query": "{ me { id } }", "variables": [1]}"#.into(),
            r#"{"query": "{ me { id } }", "operationName": 7}"#.into(),
            r#"{"query": "{ me { id } }", "extensions": "x"}"#.into(),
            r#"{"query": "\ud800"}"#.into(),
            "[".repeat(5_000),
            "--x\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{}\r\n--x--\r\n"
                .into(),
        ];
        let content_types = [
            "application/json",
            "application/json; charset=utf-16",
            "application/graphql-response+json",
            "text/plain",
            "multipart/form-data; boundary=x",
            "multipart/form-data",
            "application/x-www-form-urlencoded",
        ];
        Fuzzed {
            method: Method::POST,
            content_type: content_types.choose(rng).map(|s| s.to_string()),
            token,
            preflight: rng.gen_bool(0.5),
            payload: bodies.choose(rng).cloned().unwrap_or_default(),
        }
    }

    /// Sends the request and checks the answer; returns what it answered (the codes of its
    /// errors, or `data`), for the run's tally.
    async fn send(self, app: &TestApp) -> Result<Vec<String>, String> {
        let mut request = if self.method == Method::GET {
            app.http
                .get(format!("{}?{}", app.url("/graphql"), self.payload))
        } else {
            app.http
                .post(app.url("/graphql"))
                .body(self.payload.clone())
        };
        if let Some(ct) = &self.content_type {
            request = request.header("content-type", ct);
        }
        if let Some(t) = &self.token {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        if self.preflight {
            request = request.header("apollo-require-preflight", "true");
        }
        let response = request
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .map_err(|e| format!("no answer ({}) to {}", e.without_url(), self.shown()))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_server_error() {
            return Err(format!("HTTP {status} for {}: {text:.300}", self.shown()));
        }
        let body: Value = serde_json::from_str(&text)
            .map_err(|_| format!("HTTP {status}, not JSON: {text:.300} for {}", self.shown()))?;
        let answers = match &body {
            Value::Array(items) => items.iter().collect(),
            one => vec![one],
        };
        let mut seen = Vec::new();
        for answer in answers {
            if !answer["data"].is_null() {
                seen.push("data".to_string());
            }
            for error in answer["errors"].as_array().into_iter().flatten() {
                match error["extensions"]["code"].as_str() {
                    None => {
                        return Err(format!(
                            "an error without a code: {error:.300} for {}",
                            self.shown()
                        ))
                    }
                    Some("INTERNAL_SERVER_ERROR") => {
                        return Err(format!(
                            "INTERNAL_SERVER_ERROR: {error:.300} for {}",
                            self.shown()
                        ))
                    }
                    Some(code) => seen.push(code.to_string()),
                }
                if let Some(locations) = error["locations"].as_array() {
                    if locations.iter().any(|l| l["line"].as_u64() == Some(0)) {
                        return Err(format!(
                            "a location at line 0: {error:.300} for {}",
                            self.shown()
                        ));
                    }
                }
            }
        }
        Ok(seen)
    }

    /// The request for a failure message: its start, or all of it with `FUZZ_FULL=1`.
    fn shown(&self) -> String {
        let full = std::env::var("FUZZ_FULL").is_ok_and(|v| v == "1");
        let payload = if full {
            self.payload.clone()
        } else {
            self.payload.chars().take(400).collect()
        };
        format!(
            "{} {:?} token={} {payload}",
            self.method,
            self.content_type,
            self.token.is_some(),
        )
    }
}

/// One operation object: a seed operation, its document or its variables (or both)
/// mutated, or a document nested beyond every limit.
fn operation(rng: &mut StdRng, seeds: &[SeedOperation], world: &World) -> Value {
    let Some(seed) = seeds.choose(rng) else {
        return json!({"query": "{ __typename }"});
    };
    let mut variables = Map::new();
    for arg in &seed.args {
        // Front ends leave unset variables out: about a third of them here.
        if rng.gen_bool(0.3) {
            continue;
        }
        let value = plausible(rng, &seed.schema, world, &arg.name, &arg.ty);
        variables.insert(arg.name.clone(), value);
    }
    let mut document = seed.document.clone();
    match rng.gen_range(0..10) {
        0..=2 => {}
        3..=5 => {
            for _ in 0..rng.gen_range(1..3) {
                if seed.args.is_empty() {
                    break;
                }
                let arg = &seed.args[rng.gen_range(0..seed.args.len())];
                variables.insert(arg.name.clone(), hostile(rng));
            }
        }
        6..=7 => document = mutate_document(rng, &document),
        8 => {
            document = mutate_document(rng, &document);
            if let Some(arg) = seed.args.choose(rng) {
                variables.insert(arg.name.clone(), hostile(rng));
            }
        }
        _ => document = deep_document(rng),
    }
    let mut op = json!({"query": document, "variables": variables});
    if rng.gen_bool(0.7) {
        op["operationName"] = json!(seed.name);
    } else if rng.gen_bool(0.1) {
        op["operationName"] = json!("Nope");
    }
    if rng.gen_bool(0.05) {
        op["variables"] = hostile(rng);
    }
    op
}

fn serde_urlencoded_pairs(pairs: &[(&str, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        .finish()
}
