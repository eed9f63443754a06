//! The black-box harness: every test gets a fresh server on port 0 over fresh databases
//! and talks to it as a client does, over HTTP and websocket.
//!
//! `on_both_backends!(name, …)` runs each `async fn name(app: TestApp)` twice: on the
//! embedded backend (SQLite files and local media in a temp dir) and on PostgreSQL
//! (five uniquely named databases created through `TEST_POSTGRES_URL`) + MongoDB GridFS
//! (a unique database through `TEST_MONGODB_URL`). Both are dropped afterwards.

pub mod process;
pub mod ws;

use std::{collections::HashMap, time::Duration};

use jolmood::config::{Config, Database};
use reqwest::{header, StatusCode};
use serde_json::{json, Value};

pub const JWT_SECRET: &str = "test-secret-that-is-long-enough-0123456789";
pub const PASSWORD: &str = "correct horse battery";

/// The upload document a front end sends.
pub const UPLOAD: &str = "mutation Upload($file: Upload!, $visibility: MediaVisibility) {
  uploadMedia(file: $file, visibility: $visibility) { id filename contentType size visibility url createdAt owner { id } }
}";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Postgres,
}

/// Runs each named test on both backends.
#[macro_export]
macro_rules! on_both_backends {
    // `spawn = path;` first: each test gets its app from that function (a module's own
    // configuration, say a first admin) instead of `TestApp::spawn`.
    (spawn = $spawn:path; $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn embedded() {
                    if let Some(app) = $spawn($crate::helpers::Backend::Embedded).await {
                        super::$name(app).await
                    }
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(app) = $spawn($crate::helpers::Backend::Postgres).await {
                        super::$name(app).await
                    }
                }
            }
        )*
    };
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn embedded() {
                    if let Some(app) = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Embedded).await {
                        super::$name(app).await
                    }
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(app) = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres).await {
                        super::$name(app).await
                    }
                }
            }
        )*
    };
}

fn require_services() -> bool {
    std::env::var("JOLMOOD_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Where a test's databases live, kept to drop them afterwards and to let a test break
/// one on purpose (fault injection).
pub struct Databases {
    pub backend: Backend,
    pub urls: HashMap<Database, String>,
    pub mongo: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Databases {
    /// The embedded backend's `DATA_DIR` (SQLite files, `media/`).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// What the media store holds: files and their stored pieces (GridFS `fs.files` and
    /// `fs.chunks`, or the local store's metadata files and byte files plus uploads in
    /// progress).
    pub async fn media_counts(&self) -> (u64, u64) {
        match &self.mongo {
            Some((url, name)) => {
                let client = mongodb::Client::with_uri_str(url).await.expect("mongo");
                let db = client.database(name);
                let files = db.collection::<mongodb::bson::Document>("fs.files");
                let chunks = db.collection::<mongodb::bson::Document>("fs.chunks");
                let empty = mongodb::bson::doc! {};
                (
                    files.count_documents(empty.clone()).await.expect("count"),
                    chunks.count_documents(empty).await.expect("count"),
                )
            }
            None => {
                let dir = self.data_dir().join("media");
                let count = |d: &str| {
                    std::fs::read_dir(dir.join(d))
                        .map(|r| r.count() as u64)
                        .unwrap_or(0)
                };
                (count("meta"), count("files") + count("tmp"))
            }
        }
    }
}

impl Drop for Databases {
    fn drop(&mut self) {
        if self.backend != Backend::Postgres {
            return;
        }
        let names: Vec<String> = self
            .urls
            .values()
            .filter_map(|u| u.rsplit('/').next().map(str::to_string))
            .collect();
        let mongo = self.mongo.clone();
        // Dropping happens outside the test's runtime, which may be shutting down.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                use sea_orm::ConnectionTrait;
                // Concurrent drops share the checkpoint each one asks for.
                let drops = names.into_iter().map(|name| async move {
                    if let Ok(db) = sea_orm::Database::connect(postgres_admin_url()).await {
                        let _ = db
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await;
                        let _ = db.close().await;
                    }
                });
                futures_util::future::join_all(drops).await;
                if let Some((url, name)) = mongo {
                    if let Ok(client) = mongodb::Client::with_uri_str(&url).await {
                        let _ = client.database(&name).drop().await;
                    }
                }
            });
        })
        .join();
    }
}

/// The configuration of a test server over fresh databases of `backend` (five uniquely
/// named PostgreSQL databases and a MongoDB database, or SQLite files in a temp dir), and
/// the handle that drops them. `None` when the backend's services are not reachable and
/// the run does not require them.
pub async fn test_config(backend: Backend) -> Option<(Config, Databases)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::embedded(dir.path());
    config.jwt_secret = Some(JWT_SECRET.into());
    config.session_cache_ttl = Duration::from_secs(1);
    config.ws_init_timeout = Duration::from_secs(1);
    // Tests register many accounts from one address; the limit has a test of its own.
    config.registrations_per_address = 10_000;
    let mut dbs = Databases {
        backend,
        urls: HashMap::new(),
        mongo: None,
        _dir: dir,
    };
    for db in Database::ALL {
        let path = dbs._dir.path().join(format!("{}.sqlite", db.file_stem()));
        dbs.urls
            .insert(db, format!("sqlite://{}?mode=rwc", path.display()));
    }
    if backend == Backend::Postgres {
        let Some(mongo_url) = std::env::var("TEST_MONGODB_URL").ok() else {
            assert!(
                !require_services(),
                "TEST_MONGODB_URL is not set (scripts/test sets it)"
            );
            eprintln!("skipped: TEST_MONGODB_URL not set; run scripts/test");
            return None;
        };
        let admin = match sea_orm::Database::connect(postgres_admin_url()).await {
            Ok(db) => db,
            Err(e) => {
                assert!(
                    !require_services(),
                    "PostgreSQL unreachable at TEST_POSTGRES_URL: {e}"
                );
                eprintln!("skipped: PostgreSQL unreachable: {e}");
                return None;
            }
        };
        let tag = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let base = url::Url::parse(&postgres_admin_url()).expect("TEST_POSTGRES_URL is a URL");
        use sea_orm::ConnectionTrait;
        for db in Database::ALL {
            let name = format!("jt_{tag}_{}", db.file_stem());
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .expect("CREATE DATABASE");
            let mut u = base.clone();
            u.set_path(&name);
            dbs.urls.insert(db, u.to_string());
            *config.database_url_mut(db) = Some(u.to_string());
        }
        let _ = admin.close().await;
        let media_db = format!("jt_{tag}_media");
        config.mongodb_url = Some(mongo_url.clone());
        config.mongodb_database = media_db.clone();
        dbs.mongo = Some((mongo_url, media_db));
    }
    Some((config, dbs))
}

pub struct TestApp {
    pub base: String,
    pub ws_url: String,
    pub http: reqwest::Client,
    pub backend: Backend,
    pub dbs: Databases,
}

/// A registered, logged-in user.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub token: String,
    pub refresh: String,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Starts a server; `tweak` adjusts the configuration first. `None` when the
    /// backend's services are not reachable and the run does not require them.
    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Option<TestApp> {
        // As the server binary's subscriber: the output, plus the copy of WARN and ERROR
        // events that `adminLogs` reads.
        {
            use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, Layer};
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn".into());
            let _ = tracing_subscriber::registry()
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_test_writer()
                        .with_filter(filter),
                )
                .with(jolmood::telemetry::admin_log_layer())
                .try_init();
        }
        let (mut config, dbs) = test_config(backend).await?;
        tweak(&mut config);
        let (addr, _state) = jolmood::spawn(config).await.expect("server starts");
        Some(TestApp::at(addr, backend, dbs))
    }

    /// A client of the server listening on `addr`.
    pub fn at(addr: std::net::SocketAddr, backend: Backend, dbs: Databases) -> TestApp {
        TestApp {
            base: format!("http://{addr}"),
            ws_url: format!("ws://{addr}/graphql"),
            http: reqwest::Client::builder().build().expect("http client"),
            backend,
            dbs,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// GETs a plain-text route (`/metrics`, `/schema.graphql`).
    pub async fn get_text(&self, path: &str) -> String {
        let resp = self.http.get(self.url(path)).send().await.expect("request");
        resp.text().await.expect("body")
    }

    /// POSTs a raw JSON body to /graphql; returns status, content type and body.
    pub async fn post_raw(
        &self,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, String, Value) {
        let mut req = self.http.post(self.url("/graphql")).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, ct, body)
    }

    /// Runs one operation, anonymously or with a token; expects HTTP 200.
    pub async fn gql_with(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a.as_str()));
        }
        let body = json!({"query": query, "variables": variables}).to_string();
        let (status, _, body) = self.post_raw(&headers, body).await;
        assert_eq!(status, StatusCode::OK, "unexpected status; body: {body}");
        body
    }

    /// POSTs a whole JSON body (an operation with `operationName`, a batch…) with a token;
    /// expects HTTP 200.
    pub async fn post_as(&self, token: &str, body: Value) -> Value {
        let auth = format!("Bearer {token}");
        let headers = [
            ("content-type", "application/json"),
            ("authorization", auth.as_str()),
        ];
        let (status, _, body) = self.post_raw(&headers, body.to_string()).await;
        assert_eq!(status, StatusCode::OK, "unexpected status; body: {body}");
        body
    }

    /// Uploads one file as apollo-upload-client does: `operations` (the file variable
    /// null), `map`, then the file part; `Authorization` doubles as the CSRF preflight.
    pub async fn upload(
        &self,
        token: &str,
        filename: &str,
        declared_type: &str,
        bytes: Vec<u8>,
        visibility: Option<&str>,
    ) -> Value {
        let operations = json!({
            "query": UPLOAD,
            "operationName": "Upload",
            "variables": {"file": null, "visibility": visibility},
        });
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(filename.to_string())
            .mime_str(declared_type)
            .expect("mime");
        let form = reqwest::multipart::Form::new()
            .text("operations", operations.to_string())
            .text("map", r#"{"0":["variables.file"]}"#)
            .part("0", part);
        let resp = self
            .http
            .post(self.url("/graphql"))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .expect("upload request");
        let text = resp.text().await.expect("body");
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        self.gql_with(None, query, variables).await
    }

    pub async fn gql_as(&self, token: &str, query: &str, variables: Value) -> Value {
        self.gql_with(Some(token), query, variables).await
    }

    /// Registers an account and returns its tokens.
    pub async fn register(&self, email: &str, role: &str) -> Account {
        let body = self
            .gql(
                "mutation($e: String!, $p: String!, $r: Role) { register(email: $e, password: $p, displayName: \"Test User\", role: $r) { accessToken refreshToken user { id email } } }",
                json!({"e": email, "p": PASSWORD, "r": role}),
            )
            .await;
        let p = &body["data"]["register"];
        assert!(p.is_object(), "register failed: {body}");
        Account {
            id: p["user"]["id"].as_str().unwrap().to_string(),
            email: p["user"]["email"].as_str().unwrap().to_string(),
            token: p["accessToken"].as_str().unwrap().to_string(),
            refresh: p["refreshToken"].as_str().unwrap().to_string(),
        }
    }

    pub async fn login(&self, email: &str, password: &str) -> Value {
        self.gql(
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken user { id role } } }",
            json!({"e": email, "p": password}),
        )
        .await
    }

    /// Opens a connection to one of this test's databases (to inspect or break it).
    pub async fn db(&self, db: Database) -> sea_orm::DatabaseConnection {
        sea_orm::Database::connect(self.dbs.urls[&db].as_str())
            .await
            .expect("connect to test database")
    }
}

/// The `extensions.code` of the first error.
pub fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
}

/// Polls `probe` until it returns true, for at most `within`; a wait for a condition,
/// not a fixed sleep.
pub async fn eventually<F, Fut>(within: Duration, mut probe: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if probe().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
