//! The stores: five relational connections and the media store, chosen by configuration.
//!
//! Each domain owns one database and only its own code writes it; a field that needs data
//! from two databases goes through a DataLoader, never a cross-database join.

pub(crate) mod admin;
pub(crate) mod appointments;
pub(crate) mod audit_outbox;
pub(crate) mod auth;
pub(crate) mod media;
pub(crate) mod posts;
pub(crate) mod users;

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use anyhow::Context;
use migration::MigratorTrait;
use sea_orm::{ConnectOptions, ConnectionTrait, Database as SeaDatabase, DatabaseConnection};

use self::media::{GridFsStore, LocalStore, MediaStore};
use crate::config::{Config, Database, DbLocation, MediaLocation};

/// How long `/health` waits for one store before calling it disconnected.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) struct Stores {
    pub(crate) auth: DatabaseConnection,
    pub(crate) users: DatabaseConnection,
    pub(crate) posts: DatabaseConnection,
    pub(crate) appointments: DatabaseConnection,
    pub(crate) admin: DatabaseConnection,
    pub(crate) media: Arc<dyn MediaStore>,
    /// Statements sent to each database since start, for `/metrics`.
    pub(crate) statements: Arc<StatementCounters>,
    /// The last ping results, for callers that may reuse a recent answer.
    last_pings: std::sync::Mutex<Option<(std::time::Instant, BTreeMap<&'static str, bool>)>>,
}

/// Counts the SQL statements each database runs, so operators (and tests) can see the
/// cost of a query instead of guessing it.
#[derive(Default)]
pub(crate) struct StatementCounters([AtomicU64; 5]);

impl StatementCounters {
    fn slot(db: Database) -> usize {
        Database::ALL.iter().position(|d| *d == db).unwrap_or(0)
    }

    pub(crate) fn get(&self, db: Database) -> u64 {
        self.0[Self::slot(db)].load(Ordering::Relaxed)
    }
}

impl Stores {
    /// Connects every store and fails fast, naming the variable of the store that failed.
    pub(crate) async fn connect(config: &Config) -> anyhow::Result<Stores> {
        let statements = Arc::new(StatementCounters::default());
        let mut conns = Vec::with_capacity(5);
        for db in Database::ALL {
            let conn = connect_one(config, db, statements.clone())
                .await
                .with_context(|| match config.db(db) {
                    DbLocation::Url(_) => format!("{}: cannot connect", db.env_var()),
                    DbLocation::Embedded => format!(
                        "cannot open the embedded {} database under DATA_DIR ({})",
                        db.file_stem(),
                        config.data_dir.display()
                    ),
                })?;
            conns.push(conn);
        }
        let media: Arc<dyn MediaStore> = match config.media() {
            MediaLocation::Mongo { url, database } => Arc::new(
                GridFsStore::connect(&url, &database)
                    .await
                    .context("MONGODB_URL: cannot connect")?,
            ),
            MediaLocation::Local => Arc::new(
                LocalStore::open(config.data_dir.join("media"))
                    .await
                    .context("cannot open the media folder under DATA_DIR")?,
            ),
        };
        let mut conns = conns.into_iter();
        let mut next = || {
            conns
                .next()
                .context("connection list shorter than the database list")
        };
        Ok(Stores {
            auth: next()?,
            users: next()?,
            posts: next()?,
            appointments: next()?,
            admin: next()?,
            media,
            statements,
            last_pings: std::sync::Mutex::new(None),
        })
    }

    pub(crate) fn db(&self, db: Database) -> &DatabaseConnection {
        match db {
            Database::Auth => &self.auth,
            Database::Users => &self.users,
            Database::Posts => &self.posts,
            Database::Appointments => &self.appointments,
            Database::Admin => &self.admin,
        }
    }

    /// Brings every database to the latest schema. Idempotent; safe on every start.
    pub(crate) async fn migrate(&self) -> anyhow::Result<()> {
        migration::AuthMigrator::up(&self.auth, None)
            .await
            .context("migrating auth_db")?;
        migration::UserMigrator::up(&self.users, None)
            .await
            .context("migrating user_db")?;
        migration::PostMigrator::up(&self.posts, None)
            .await
            .context("migrating post_db")?;
        migration::AppointmentMigrator::up(&self.appointments, None)
            .await
            .context("migrating appointment_db")?;
        migration::AdminMigrator::up(&self.admin, None)
            .await
            .context("migrating admin_db")?;
        Ok(())
    }

    /// Like [`Stores::ping_all`], but answers from the last pings when they are younger
    /// than `max_age`: many subscribers watching health cost one round of pings.
    pub(crate) async fn ping_all_recent(&self, max_age: Duration) -> BTreeMap<&'static str, bool> {
        if let Ok(last) = self.last_pings.lock() {
            if let Some((_, pings)) = last.as_ref().filter(|(at, _)| at.elapsed() < max_age) {
                return pings.clone();
            }
        }
        let pings = self.ping_all().await;
        if let Ok(mut last) = self.last_pings.lock() {
            *last = Some((std::time::Instant::now(), pings.clone()));
        }
        pings
    }

    /// Pings every store at once, each with a short timeout so one dead store cannot hang
    /// the health check. `true` means connected.
    pub(crate) async fn ping_all(&self) -> BTreeMap<&'static str, bool> {
        let relational = Database::ALL.map(|db| async move {
            let conn = self.db(db);
            let ok = tokio::time::timeout(PING_TIMEOUT, conn.execute_unprepared("SELECT 1"))
                .await
                .map(|r| r.is_ok())
                .unwrap_or(false);
            (db.health_key(), ok)
        });
        let media = async {
            let ok = tokio::time::timeout(PING_TIMEOUT, self.media.ping())
                .await
                .map(|r| r.is_ok())
                .unwrap_or(false);
            ("media", ok)
        };
        let (mut rel, media) = tokio::join!(futures_util::future::join_all(relational), media);
        rel.push(media);
        rel.into_iter().collect()
    }
}

async fn connect_one(
    config: &Config,
    db: Database,
    counters: Arc<StatementCounters>,
) -> anyhow::Result<DatabaseConnection> {
    let (url, embedded) = match config.db(db) {
        DbLocation::Url(url) => {
            let embedded = url.starts_with("sqlite:");
            (url, embedded)
        }
        DbLocation::Embedded => {
            tokio::fs::create_dir_all(&config.data_dir).await?;
            let path = config.data_dir.join(format!("{}.sqlite", db.file_stem()));
            (format!("sqlite://{}?mode=rwc", path.display()), true)
        }
    };
    let mut opts = ConnectOptions::new(url);
    opts.connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    if embedded {
        // SQLite allows one writer; a single connection per file serialises writes in the
        // pool instead of failing them with "database is locked" when two deferred
        // transactions try to upgrade at once.
        opts.max_connections(1)
            .min_connections(1)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10))
            });
    } else {
        opts.max_connections(config.max_connections)
            .min_connections(1);
    }
    let mut conn = SeaDatabase::connect(opts).await?;
    let slot = StatementCounters::slot(db);
    conn.set_metric_callback(move |_info| {
        counters.0[slot].fetch_add(1, Ordering::Relaxed);
    });
    conn.execute_unprepared("SELECT 1").await?;
    Ok(conn)
}

/// PostgreSQL: a transaction-scoped advisory lock on `key` (a person, an author), so that
/// transactions about the same key run one after the other. Keyed by the id's low 64 bits
/// (random in a UUID v7); two ids that share them only queue behind each other.
pub(crate) async fn advisory_xact_lock(
    txn: &impl ConnectionTrait,
    key: uuid::Uuid,
) -> Result<(), sea_orm::DbErr> {
    txn.execute(sea_orm::Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [(key.as_u64_pair().1 as i64).into()],
    ))
    .await?;
    Ok(())
}
