//! Settings, read once from the environment (and a `.env` file when present).
//!
//! One variable per concern, as the services this server replaces had them, so an
//! operator's existing deployment files keep their meaning. An unset database URL means the
//! embedded default (a SQLite file under `DATA_DIR`), so `cargo run` works on a bare machine.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
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

#[derive(Clone, Debug)]
pub struct Config {
    pub bind_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub auth_db: DbLocation,
    pub user_db: DbLocation,
    pub post_db: DbLocation,
    pub appointment_db: DbLocation,
    pub admin_db: DbLocation,
    pub media: MediaLocation,
    /// `None` in embedded mode means "generate one and keep it under `DATA_DIR`".
    pub jwt_secret: Option<String>,
    pub cors_origins: Vec<String>,
    pub admin_email: Option<String>,
    pub admin_password: Option<String>,
    pub log_format: LogFormat,
    /// Lifetime of access tokens (`ACCESS_TOKEN_TTL_SECONDS`, default 15 minutes).
    pub access_token_ttl: Duration,
    /// Lifetime of refresh tokens (`REFRESH_TOKEN_TTL_DAYS`, default 30 days).
    pub refresh_token_ttl: Duration,
    /// How long a checked session stays trusted before it is read again
    /// (`SESSION_CACHE_SECONDS`, default 10, at most 60 so revocations land within a minute).
    pub session_cache_ttl: Duration,
    /// Pool size per relational database (`DATABASE_MAX_CONNECTIONS`, default 10).
    pub max_connections: u32,
    /// Take the client address from `X-Real-IP`/`X-Forwarded-For` (`TRUST_PROXY_HEADERS`,
    /// default false): only behind a proxy that sets them, like the bundled nginx.
    pub trust_proxy_headers: bool,
    /// How long a websocket may stay open before `connection_init`
    /// (`WS_INIT_TIMEOUT_SECONDS`, default 10); past it the socket closes with 4408.
    pub ws_init_timeout: Duration,
    /// How long after its first use a refresh token's reuse counts as a race (answered
    /// `UNAUTHENTICATED`) rather than a theft (which revokes the session)
    /// (`REFRESH_REUSE_GRACE_SECONDS`, default 2).
    pub refresh_reuse_grace: Duration,
    /// Registrations allowed per client address in 15 minutes
    /// (`REGISTRATIONS_PER_ADDRESS`, default 10).
    pub registrations_per_address: u64,
    /// How long a DataLoader batch waits for more keys (`DATALOADER_DELAY_MICROS`,
    /// default 100; see BENCHMARKS.md).
    pub loader_delay: Duration,
}

/// A configuration mistake, named by the variable at fault.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn parse_var<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(raw) => raw.parse().map_err(|e| ConfigError {
            var: name,
            message: format!("cannot parse {raw:?}: {e}"),
        }),
    }
}

fn db_location(db: Database) -> Result<DbLocation, ConfigError> {
    match var(db.env_var()) {
        None => Ok(DbLocation::Embedded),
        Some(url)
            if url.starts_with("postgres://")
                || url.starts_with("postgresql://")
                || url.starts_with("sqlite:") =>
        {
            Ok(DbLocation::Url(url))
        }
        Some(_) => Err(ConfigError {
            var: db.env_var(),
            message: "expected a postgres:// (or sqlite:) URL".into(),
        }),
    }
}

impl Config {
    /// Reads the environment. A `.env` file in the working directory is loaded first when
    /// present; variables already set win over it.
    pub fn from_env() -> Result<Config, ConfigError> {
        let _ = dotenvy::dotenv();
        let media = match var("MONGODB_URL") {
            Some(url) => {
                if !(url.starts_with("mongodb://") || url.starts_with("mongodb+srv://")) {
                    return Err(ConfigError {
                        var: "MONGODB_URL",
                        message: "expected a mongodb:// URL".into(),
                    });
                }
                MediaLocation::Mongo {
                    url,
                    database: var("MONGODB_DATABASE").unwrap_or_else(|| "jolmood_media".into()),
                }
            }
            None => MediaLocation::Local,
        };
        let log_format = match var("LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError {
                    var: "LOG_FORMAT",
                    message: format!("expected json or pretty, got {other:?}"),
                })
            }
        };
        let session_cache_secs: u64 = parse_var("SESSION_CACHE_SECONDS", 10)?;
        if session_cache_secs > 60 {
            return Err(ConfigError {
                var: "SESSION_CACHE_SECONDS",
                message: "at most 60: revocations must take effect within a minute".into(),
            });
        }
        let config = Config {
            bind_addr: parse_var("BIND_ADDR", SocketAddr::from(([0, 0, 0, 0], 8080)))?,
            data_dir: PathBuf::from(var("DATA_DIR").unwrap_or_else(|| "./data".into())),
            auth_db: db_location(Database::Auth)?,
            user_db: db_location(Database::Users)?,
            post_db: db_location(Database::Posts)?,
            appointment_db: db_location(Database::Appointments)?,
            admin_db: db_location(Database::Admin)?,
            media,
            jwt_secret: var("JWT_SECRET"),
            cors_origins: var("CORS_ORIGINS")
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            admin_email: var("ADMIN_EMAIL"),
            admin_password: var("ADMIN_PASSWORD"),
            log_format,
            access_token_ttl: Duration::from_secs(parse_var("ACCESS_TOKEN_TTL_SECONDS", 900)?),
            refresh_token_ttl: Duration::from_secs(
                parse_var::<u64>("REFRESH_TOKEN_TTL_DAYS", 30)?.saturating_mul(86_400),
            ),
            session_cache_ttl: Duration::from_secs(session_cache_secs),
            max_connections: parse_var("DATABASE_MAX_CONNECTIONS", 10)?,
            trust_proxy_headers: parse_var("TRUST_PROXY_HEADERS", false)?,
            ws_init_timeout: Duration::from_secs(parse_var("WS_INIT_TIMEOUT_SECONDS", 10)?),
            refresh_reuse_grace: Duration::from_secs(parse_var("REFRESH_REUSE_GRACE_SECONDS", 2)?),
            registrations_per_address: parse_var("REGISTRATIONS_PER_ADDRESS", 10)?,
            loader_delay: Duration::from_micros(parse_var("DATALOADER_DELAY_MICROS", 100)?),
        };
        config.check()?;
        Ok(config)
    }

    /// A configuration for the embedded default under `data_dir`: what tests and
    /// `cargo run` start from.
    pub fn embedded(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            bind_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            auth_db: DbLocation::Embedded,
            user_db: DbLocation::Embedded,
            post_db: DbLocation::Embedded,
            appointment_db: DbLocation::Embedded,
            admin_db: DbLocation::Embedded,
            media: MediaLocation::Local,
            jwt_secret: None,
            cors_origins: Vec::new(),
            admin_email: None,
            admin_password: None,
            log_format: LogFormat::Pretty,
            access_token_ttl: Duration::from_secs(900),
            refresh_token_ttl: Duration::from_secs(30 * 86_400),
            session_cache_ttl: Duration::from_secs(10),
            max_connections: 10,
            trust_proxy_headers: false,
            ws_init_timeout: Duration::from_secs(10),
            refresh_reuse_grace: Duration::from_secs(2),
            registrations_per_address: 10,
            loader_delay: Duration::from_micros(100),
        }
    }

    pub fn db(&self, db: Database) -> &DbLocation {
        match db {
            Database::Auth => &self.auth_db,
            Database::Users => &self.user_db,
            Database::Posts => &self.post_db,
            Database::Appointments => &self.appointment_db,
            Database::Admin => &self.admin_db,
        }
    }

    pub fn db_mut(&mut self, db: Database) -> &mut DbLocation {
        match db {
            Database::Auth => &mut self.auth_db,
            Database::Users => &mut self.user_db,
            Database::Posts => &mut self.post_db,
            Database::Appointments => &mut self.appointment_db,
            Database::Admin => &mut self.admin_db,
        }
    }

    /// Production is any configuration that names an external store: there a generated
    /// secret would differ between replicas, so `JWT_SECRET` is required.
    pub fn is_production(&self) -> bool {
        Database::ALL
            .iter()
            .any(|d| matches!(self.db(*d), DbLocation::Url(u) if u.starts_with("postgres")))
            || matches!(self.media, MediaLocation::Mongo { .. })
    }

    /// Checks what can be checked before connecting to anything.
    pub fn check(&self) -> Result<(), ConfigError> {
        let in_range = |var: &'static str, value: Duration, min: u64, max: u64| {
            if (min..=max).contains(&value.as_secs()) {
                Ok(())
            } else {
                Err(ConfigError {
                    var,
                    message: format!("out of range ({min} to {max} seconds)"),
                })
            }
        };
        in_range(
            "ACCESS_TOKEN_TTL_SECONDS",
            self.access_token_ttl,
            60,
            86_400,
        )?;
        in_range(
            "REFRESH_TOKEN_TTL_DAYS",
            self.refresh_token_ttl,
            86_400,
            365 * 86_400,
        )?;
        in_range("WS_INIT_TIMEOUT_SECONDS", self.ws_init_timeout, 1, 300)?;
        in_range(
            "REFRESH_REUSE_GRACE_SECONDS",
            self.refresh_reuse_grace,
            0,
            60,
        )?;
        match &self.jwt_secret {
            Some(s) if s.len() < 32 => Err(ConfigError {
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
