//! Settings: each one declared once, below, with its environment variable, its default
//! and its doc (`jolmood --help` prints them; every one is also a flag). A `.env` file is
//! read first when present.
//!
//! One variable per concern, as the services this server replaces had them, so an
//! operator's existing deployment files keep their meaning. An unset database URL means
//! the embedded default (a SQLite file under `DATA_DIR`), so `cargo run` works on a bare
//! machine.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use clap::{builder::TypedValueParser, ArgAction, Args, FromArgMatches};

/// Where a relational store lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbLocation {
    /// A database URL given by the operator (`postgres://…`, or `sqlite://…`).
    Url(String),
    /// The embedded default: `<DATA_DIR>/<name>.sqlite`.
    Embedded,
}

/// Where media files live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaLocation {
    /// GridFS in the named MongoDB database.
    Mongo { url: String, database: String },
    /// Plain files under `<DATA_DIR>/media`.
    Local,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (production).
    Json,
    /// Human-readable lines (development).
    Pretty,
}

/// A secret setting. Its `Debug` shows nothing of the value, so a logged or printed
/// configuration cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_string())
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

/// The five relational databases, named as the old services named them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Database {
    Auth,
    Users,
    Posts,
    Appointments,
    Admin,
}

impl Database {
    pub const ALL: [Database; 5] = [
        Database::Auth,
        Database::Users,
        Database::Posts,
        Database::Appointments,
        Database::Admin,
    ];

    /// The environment variable that configures this database.
    pub fn env_var(self) -> &'static str {
        match self {
            Database::Auth => "AUTH_DATABASE_URL",
            Database::Users => "USER_DATABASE_URL",
            Database::Posts => "POST_DATABASE_URL",
            Database::Appointments => "APPOINTMENT_DATABASE_URL",
            Database::Admin => "ADMIN_DATABASE_URL",
        }
    }

    /// The key `/health` reports it under.
    pub fn health_key(self) -> &'static str {
        match self {
            Database::Auth => "auth",
            Database::Users => "users",
            Database::Posts => "posts",
            Database::Appointments => "appointments",
            Database::Admin => "admin",
        }
    }

    /// The file name of its embedded SQLite database (the old PostgreSQL database's name).
    pub fn file_stem(self) -> &'static str {
        match self {
            Database::Auth => "auth_db",
            Database::Users => "user_db",
            Database::Posts => "post_db",
            Database::Appointments => "appointment_db",
            Database::Admin => "admin_db",
        }
    }
}

/// Every setting of the server.
#[derive(Args, Clone, Debug)]
pub struct Config {
    /// Listen address.
    #[arg(long, env = "BIND_ADDR", default_value = "0.0.0.0:8080")]
    pub bind_addr: SocketAddr,

    /// Embedded databases, local media and the generated JWT secret.
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// auth_db: a postgres:// URL (or sqlite:); unset means embedded SQLite under DATA_DIR.
    #[arg(long, env = "AUTH_DATABASE_URL", value_parser = database_url, hide_env_values = true)]
    pub auth_database_url: Option<String>,

    /// user_db: a postgres:// URL (or sqlite:); unset means embedded SQLite under DATA_DIR.
    #[arg(long, env = "USER_DATABASE_URL", value_parser = database_url, hide_env_values = true)]
    pub user_database_url: Option<String>,

    /// post_db: a postgres:// URL (or sqlite:); unset means embedded SQLite under DATA_DIR.
    #[arg(long, env = "POST_DATABASE_URL", value_parser = database_url, hide_env_values = true)]
    pub post_database_url: Option<String>,

    /// appointment_db: a postgres:// URL (or sqlite:); unset means embedded SQLite.
    #[arg(long, env = "APPOINTMENT_DATABASE_URL", value_parser = database_url, hide_env_values = true)]
    pub appointment_database_url: Option<String>,

    /// admin_db: a postgres:// URL (or sqlite:); unset means embedded SQLite under DATA_DIR.
    #[arg(long, env = "ADMIN_DATABASE_URL", value_parser = database_url, hide_env_values = true)]
    pub admin_database_url: Option<String>,

    /// MongoDB for media (GridFS); unset means local files under DATA_DIR/media.
    #[arg(long, env = "MONGODB_URL", value_parser = mongodb_url, hide_env_values = true)]
    pub mongodb_url: Option<String>,

    /// The MongoDB database that holds the GridFS bucket.
    #[arg(long, env = "MONGODB_DATABASE", default_value = "jolmood_media")]
    pub mongodb_database: String,

    /// HS256 key, at least 32 bytes; required as soon as an external store is configured
    /// (replicas must share it). Embedded: generated once into DATA_DIR/jwt_secret.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,

    /// Comma-separated origins of the web front end.
    #[arg(long, env = "CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// The first admin, created at start when that account does not exist.
    #[arg(long, env = "ADMIN_EMAIL")]
    pub admin_email: Option<String>,

    /// The first admin's password (8 to 128 characters).
    #[arg(long, env = "ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<Secret>,

    /// Log lines as `json` (production) or `pretty`.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "pretty")]
    pub log_format: LogFormat,

    /// Access token lifetime, in seconds (60 to 86,400).
    #[arg(long = "access-token-ttl-seconds", env = "ACCESS_TOKEN_TTL_SECONDS", default_value = "900",
          value_parser = clap::value_parser!(u64).range(60..=86_400).map(Duration::from_secs))]
    pub access_token_ttl: Duration,

    /// Session (refresh token) lifetime, in days (1 to 365).
    #[arg(long = "refresh-token-ttl-days", env = "REFRESH_TOKEN_TTL_DAYS", default_value = "30",
          value_parser = clap::value_parser!(u64).range(1..=365).map(|d| Duration::from_secs(d * 86_400)))]
    pub refresh_token_ttl: Duration,

    /// How long a replica trusts a session check before reading auth_db again, in seconds
    /// (at most 60, so revocations take effect within a minute).
    #[arg(long = "session-cache-seconds", env = "SESSION_CACHE_SECONDS", default_value = "10",
          value_parser = clap::value_parser!(u64).range(0..=60).map(Duration::from_secs))]
    pub session_cache_ttl: Duration,

    /// How often each replica moves the audit entries waiting in the outboxes of auth_db,
    /// user_db, post_db and appointment_db (staged by a change whose request could not
    /// write them to admin_db: unreachable, or the process died) to admin_db, in seconds
    /// (1 to 300).
    #[arg(long = "audit-outbox-drain-seconds", env = "AUDIT_OUTBOX_DRAIN_SECONDS", default_value = "10",
          value_parser = clap::value_parser!(u64).range(1..=300).map(Duration::from_secs))]
    pub audit_drain_interval: Duration,

    /// Pool size per PostgreSQL database.
    #[arg(long = "database-max-connections", env = "DATABASE_MAX_CONNECTIONS", default_value = "10",
          value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub max_connections: u32,

    /// Take the client address from X-Real-IP/X-Forwarded-For: only behind a proxy that
    /// sets them (the bundled nginx does).
    #[arg(long, env = "TRUST_PROXY_HEADERS", default_value = "false", action = ArgAction::Set)]
    pub trust_proxy_headers: bool,

    /// A websocket without `connection_init` by then closes with 4408, in seconds (1 to 300).
    #[arg(long = "ws-init-timeout-seconds", env = "WS_INIT_TIMEOUT_SECONDS", default_value = "10",
          value_parser = clap::value_parser!(u64).range(1..=300).map(Duration::from_secs))]
    pub ws_init_timeout: Duration,

    /// A refresh token presented again within this time of its first use is refused (a
    /// race); later, the reuse revokes the session (a theft). Seconds, 0 to 60.
    #[arg(long = "refresh-reuse-grace-seconds", env = "REFRESH_REUSE_GRACE_SECONDS", default_value = "2",
          value_parser = clap::value_parser!(u64).range(0..=60).map(Duration::from_secs))]
    pub refresh_reuse_grace: Duration,

    /// Registrations one client address may make in 15 minutes.
    #[arg(long, env = "REGISTRATIONS_PER_ADDRESS", default_value = "10")]
    pub registrations_per_address: u64,

    /// How long a DataLoader batch waits for more keys, in microseconds (measured in
    /// BENCHMARKS.md).
    #[arg(long = "dataloader-delay-micros", env = "DATALOADER_DELAY_MICROS", default_value = "100",
          value_parser = clap::value_parser!(u64).range(0..=100_000).map(Duration::from_micros))]
    pub loader_delay: Duration,
}

/// A configuration mistake, named by the variable at fault.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

fn database_url(raw: &str) -> Result<String, String> {
    let url = raw.trim();
    if url.starts_with("postgres://")
        || url.starts_with("postgresql://")
        || url.starts_with("sqlite:")
    {
        Ok(url.to_string())
    } else {
        Err("expected a postgres:// (or sqlite:) URL".into())
    }
}

fn mongodb_url(raw: &str) -> Result<String, String> {
    let url = raw.trim();
    if url.starts_with("mongodb://") || url.starts_with("mongodb+srv://") {
        Ok(url.to_string())
    } else {
        Err("expected a mongodb:// URL".into())
    }
}

/// The `jolmood` command line with only the settings, for [`Config::defaults`].
#[derive(clap::Parser)]
struct Only {
    #[command(flatten)]
    config: Config,
}

/// Leaves out of `command` the environment variables that are set but empty, so that
/// `FOO=` in a `.env` file or a compose file means "unset", as operators expect, rather
/// than an invalid value.
pub fn ignoring_empty_env(command: clap::Command) -> clap::Command {
    command.mut_args(|arg| {
        let empty = arg
            .get_env()
            .and_then(std::env::var_os)
            .is_some_and(|v| v.to_string_lossy().trim().is_empty());
        if empty {
            arg.env(None)
        } else {
            arg
        }
    })
}

impl Config {
    /// The defaults of every setting, reading neither the environment nor the command
    /// line: what tests and [`Config::embedded`] start from.
    pub fn defaults() -> Config {
        use clap::CommandFactory;
        let command = Only::command().mut_args(|a| a.env(None));
        let parsed = command
            .try_get_matches_from(["jolmood"])
            .map_err(|e| e.to_string())
            .and_then(|m| Only::from_arg_matches(&m).map_err(|e| e.to_string()));
        match parsed {
            Ok(only) => only.config,
            // The declarations above are static; a default that does not parse is a bug
            // that every test catches.
            Err(e) => panic!("the settings' defaults do not parse: {e}"),
        }
    }

    /// The embedded default under `data_dir`, listening on a free port of 127.0.0.1.
    pub fn embedded(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            bind_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            ..Config::defaults()
        }
    }

    pub fn db(&self, db: Database) -> DbLocation {
        match self.database_url(db) {
            Some(url) => DbLocation::Url(url.clone()),
            None => DbLocation::Embedded,
        }
    }

    fn database_url(&self, db: Database) -> &Option<String> {
        match db {
            Database::Auth => &self.auth_database_url,
            Database::Users => &self.user_database_url,
            Database::Posts => &self.post_database_url,
            Database::Appointments => &self.appointment_database_url,
            Database::Admin => &self.admin_database_url,
        }
    }

    /// The URL setting of `db` (`None`: embedded).
    pub fn database_url_mut(&mut self, db: Database) -> &mut Option<String> {
        match db {
            Database::Auth => &mut self.auth_database_url,
            Database::Users => &mut self.user_database_url,
            Database::Posts => &mut self.post_database_url,
            Database::Appointments => &mut self.appointment_database_url,
            Database::Admin => &mut self.admin_database_url,
        }
    }

    pub fn media(&self) -> MediaLocation {
        match &self.mongodb_url {
            Some(url) => MediaLocation::Mongo {
                url: url.clone(),
                database: self.mongodb_database.clone(),
            },
            None => MediaLocation::Local,
        }
    }

    /// Production is any configuration that names an external store: there a generated
    /// secret would differ between replicas, so `JWT_SECRET` is required.
    pub fn is_production(&self) -> bool {
        Database::ALL
            .iter()
            .any(|d| matches!(self.db(*d), DbLocation::Url(u) if u.starts_with("postgres")))
            || self.mongodb_url.is_some()
    }

    /// Checks what one setting alone cannot say, before connecting to anything.
    pub fn check(&self) -> Result<(), ConfigError> {
        match &self.jwt_secret {
            Some(s) if s.expose().len() < 32 => Err(ConfigError {
                var: "JWT_SECRET",
                message: "must be at least 32 bytes (e.g. `openssl rand -hex 32`)".into(),
            }),
            None if self.is_production() => Err(ConfigError {
                var: "JWT_SECRET",
                message: "is required when external databases are configured; set it to at least 32 random bytes (e.g. `openssl rand -hex 32`) and share it between replicas".into(),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser as _};

    #[test]
    fn defaults_parse_and_read_no_environment() {
        let c = Config::defaults();
        assert_eq!(c.bind_addr, SocketAddr::from(([0, 0, 0, 0], 8080)));
        assert_eq!(c.access_token_ttl, Duration::from_secs(900));
        assert_eq!(c.refresh_token_ttl, Duration::from_secs(30 * 86_400));
        assert_eq!(c.session_cache_ttl, Duration::from_secs(10));
        assert_eq!(c.loader_delay, Duration::from_micros(100));
        assert_eq!(c.media(), MediaLocation::Local);
        assert!(!c.trust_proxy_headers);
    }

    #[test]
    fn values_out_of_range_name_their_variable() {
        let err = Only::try_parse_from(["jolmood", "--session-cache-seconds", "61"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("session-cache-seconds"), "{err}");
        let err = Only::try_parse_from(["jolmood", "--auth-database-url", "mysql://x"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("postgres://"), "{err}");
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let mut c = Config::defaults();
        c.jwt_secret = Some(Secret::new("a-very-secret-key-that-is-long-enough"));
        assert!(!format!("{c:?}").contains("a-very-secret"));
    }

    /// The README's settings table lists every variable declared here.
    #[test]
    fn the_readme_lists_every_variable() {
        let readme = include_str!("../README.md");
        for arg in Only::command().get_arguments() {
            if let Some(env) = arg.get_env() {
                let env = env.to_string_lossy();
                assert!(
                    readme.contains(&format!("`{env}`")),
                    "README.md does not document {env}"
                );
            }
        }
    }
}
