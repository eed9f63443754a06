//! Starting up: a store that cannot be reached stops the server at once, with a message
//! that names the variable to fix; an embedded start needs no configuration at all.

use jolmood::config::{Config, Database};

/// POSTs one operation to a server started here.
async fn post(addr: std::net::SocketAddr, token: Option<&str>, query: &str) -> serde_json::Value {
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .json(&serde_json::json!({ "query": query }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

async fn start_error(config: Config) -> String {
    match jolmood::build(config).await {
        Ok(_) => panic!("the server started over an unreachable store"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn unreachable_stores_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut pg = Config::embedded(dir.path().join("a"));
    pg.jwt_secret = Some(crate::helpers::JWT_SECRET.into());
    *pg.database_url_mut(Database::Posts) = Some("postgres://nobody@127.0.0.1:1/post_db".into());
    let mut mongo = Config::embedded(dir.path().join("b"));
    mongo.jwt_secret = Some(crate::helpers::JWT_SECRET.into());
    mongo.mongodb_url = Some("mongodb://127.0.0.1:1/?directConnection=true".into());
    let started = std::time::Instant::now();
    let (pg, mongo) = tokio::join!(start_error(pg), start_error(mongo));
    assert!(pg.starts_with("POST_DATABASE_URL: cannot connect"), "{pg}");
    assert!(mongo.starts_with("MONGODB_URL: cannot connect"), "{mongo}");
    assert!(
        started.elapsed().as_secs() < 15,
        "failing took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn production_needs_a_jwt_secret() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::embedded(dir.path());
    *config.database_url_mut(Database::Auth) =
        Some("postgres://postgres@127.0.0.1:5432/postgres".into());
    let err = start_error(config.clone()).await;
    assert!(err.starts_with("JWT_SECRET:"), "{err}");
    config.jwt_secret = Some("too short".into());
    let err = start_error(config).await;
    assert!(err.contains("JWT_SECRET") && err.contains("32"), "{err}");
}

#[tokio::test]
async fn embedded_start_keeps_its_secret_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, _state) = jolmood::spawn(Config::embedded(dir.path())).await.unwrap();
    let body = post(
        addr,
        None,
        "mutation { register(email: \"a@example.com\", password: \"long enough pw\", displayName: \"A\") { accessToken } }",
    )
    .await;
    let token = body["data"]["register"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = std::fs::read_to_string(dir.path().join("jwt_secret")).unwrap();
    assert!(secret.len() >= 32);
    // A second server over the same DATA_DIR accepts the first one's token.
    let (addr2, _state2) = jolmood::spawn(Config::embedded(dir.path())).await.unwrap();
    let me = post(addr2, Some(&token), "{ me { email } }").await;
    assert_eq!(me["data"]["me"]["email"], "a@example.com", "{me}");
}

#[tokio::test]
async fn demo_seed_fills_the_directory_and_can_run_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, state) = jolmood::spawn(Config::embedded(dir.path())).await.unwrap();
    jolmood::seed::seed(&state).await.unwrap();
    jolmood::seed::seed(&state).await.unwrap();
    let body = post(
        addr,
        None,
        "{ coaches(specialty: \"yoga\") { totalCount nodes { profile { displayName } coachProfile { timezone currency } } } }",
    )
    .await;
    assert_eq!(body["data"]["coaches"]["totalCount"], 1, "{body}");
    let coach = &body["data"]["coaches"]["nodes"][0];
    assert_eq!(coach["profile"]["displayName"], "Élodie Martin");
    assert_eq!(coach["coachProfile"]["timezone"], "Europe/Paris");
    assert_eq!(coach["coachProfile"]["currency"], "EUR");
}
