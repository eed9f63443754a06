//! The Jolmood API server: one GraphQL schema over five databases and a media store.
//!
//! [`build`] connects and migrates the stores and assembles the schema; [`serve`] runs the
//! HTTP server on a listener. `main` and the black-box tests both start the server through
//! these two functions, so tests exercise exactly what production runs.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod config;
pub(crate) mod db;
pub(crate) mod error;
pub(crate) mod http;
pub(crate) mod resolvers;
pub(crate) mod schema;
pub mod seed;
pub(crate) mod services;
pub mod telemetry;

pub use http::AppState;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use sea_orm::ConnectionTrait;
use tokio::net::TcpListener;

use async_graphql::{Schema, SchemaBuilder, ValidationMode};

use crate::{
    config::Config,
    db::Stores,
    resolvers::{AppSchema, MutationRoot, QueryRoot, SubscriptionRoot},
    schema::{limits, plain::WalkStats},
    services::{
        appointments,
        auth::{
            accounts,
            passwords::Hasher,
            ratelimit,
            sessions::{self, SessionCache},
            tokens,
        },
        Services, SharedServices,
    },
};

/// Connects every store (failing fast, naming the variable at fault), brings the schemas
/// up to date, creates the first admin when configured, and assembles the GraphQL schema.
pub async fn build(config: Config) -> anyhow::Result<AppState> {
    config.check()?;
    let stores = Stores::connect(&config).await?;
    stores.migrate().await?;
    let secret = tokens::load_secret(
        config.jwt_secret.as_ref().map(config::Secret::expose),
        &config.data_dir,
    )
    .await
    .context("JWT_SECRET")?;
    let (logs, log_records) = telemetry::LogTap::open(services::admin::logs::CHANNEL_CAPACITY);
    services::admin::logs::spawn_writer(stores.admin.clone(), log_records);
    let services = Arc::new(Services {
        tokens: tokens::TokenKeys::new(&secret, config.access_token_ttl),
        passwords: Hasher::new()?,
        sessions: SessionCache::new(config.session_cache_ttl),
        events: appointments::events::Bus::new(stores.appointments.get_database_backend()),
        upload_slots: tokio::sync::Semaphore::new(services::media::MAX_CONCURRENT_UPLOADS),
        logs,
        stores,
        config,
    });
    accounts::ensure_admin(&services).await?;
    spawn_housekeeping(services.clone());
    spawn_erasures(services.clone());
    spawn_audit_drain(services.clone());
    spawn_booking_events(services.clone());
    let walks = Arc::new(WalkStats::default());
    let (schema, reads, checked) = assemble(services.clone(), &walks);
    let sdl = schema.sdl().into();
    Ok(AppState {
        services,
        schema,
        reads,
        checked,
        validated: Arc::new(limits::Validated::default()),
        walks,
        sdl,
    })
}

/// The GraphQL schemas: the roots of every domain, the request-wide limits, and each
/// domain's DataLoaders. Loaders live in the schema (not per request) and keep no cache,
/// so concurrent requests share batches and nothing stale is ever served.
///
/// Two schemas with the same types: `gated` carries the [`schema::audit::AuthGateAndAudit`]
/// extension and runs every mutation and subscription, and every operation whose
/// credentials do not hold; `reads` has no extension and runs queries sent with valid or
/// no credentials, for which that extension has nothing to do. async-graphql calls an
/// extension's hook for every field it resolves (a feed page has about a thousand), so
/// leaving it out where it has no work was the largest single saving in the feed's CPU
/// (BENCHMARKS.md).
///
/// `checked` is `reads` again, with only the checks that do not depend on what was
/// already validated (fragment cycles, uploads, complexity, depth): it runs a (document,
/// operation, variables) that `reads` has fully validated before (`limits::Validated`);
/// validation is a function of those three and of the schema, so it would say the same.
fn assemble(services: SharedServices, walks: &Arc<WalkStats>) -> (AppSchema, AppSchema, AppSchema) {
    let gated = schema_of(&services, walks, true, ValidationMode::Strict);
    let reads = schema_of(&services, walks, false, ValidationMode::Strict);
    let checked = schema_of(&services, walks, false, ValidationMode::Fast);
    (gated, reads, checked)
}

fn schema_of(
    services: &SharedServices,
    walks: &Arc<WalkStats>,
    gated: bool,
    validation: ValidationMode,
) -> AppSchema {
    let delay = services.config.loader_delay;
    let mut builder = limited(Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    ))
    .validation_mode(validation);
    if gated {
        builder = builder.extension(schema::audit::AuthGateAndAudit);
    }
    let builder = schema::auth::register_loaders(builder, services, delay);
    let builder = schema::users::register_loaders(builder, services, delay);
    let builder = schema::media::register_loaders(builder, services, delay);
    let builder = schema::appointments::register_loaders(builder, services, delay);
    let builder = schema::posts::register_loaders(builder, services, delay);
    builder.data(services.clone()).data(walks.clone()).finish()
}

/// The document limits every request is held to (API.md's numbers).
fn limited(
    builder: SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot>,
) -> SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    builder
        .limit_depth(limits::MAX_DEPTH)
        .limit_complexity(limits::MAX_COMPLEXITY)
        .limit_recursive_depth(limits::MAX_RECURSIVE_DEPTH)
        .limit_directives(limits::MAX_DIRECTIVES)
}

/// The SDL without any services behind it: what `export-schema` prints.
pub fn sdl() -> String {
    limited(Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    ))
    .finish()
    .sdl()
}

/// Brings every database up to date and returns: `jolmood migrate`.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    config.check()?;
    let stores = Stores::connect(config).await?;
    stores.migrate().await
}

/// Periodic clean-up that keeps tables small (login failures, ended sessions, logs past
/// their 30 days) and removes what interrupted uploads left, at start and every five
/// minutes. Safe to run on every replica at once.
fn spawn_housekeeping(services: Arc<Services>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(300));
        loop {
            every.tick().await;
            if let Err(e) = ratelimit::prune(&services.stores.auth).await {
                tracing::warn!(error = %e, "pruning login failures failed");
            }
            if let Err(e) = sessions::prune(&services.stores.auth).await {
                tracing::warn!(error = %e, "pruning ended sessions failed");
            }
            if let Err(e) = services::admin::logs::prune(&services.stores.admin).await {
                tracing::warn!(error = %e, "pruning old admin logs failed");
            }
            match services::media::sweep(&services).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "swept what interrupted uploads left"),
                Err(e) => tracing::warn!(error = %e, "sweeping interrupted uploads failed"),
            }
        }
    });
}

/// Moves the audit entries waiting in the outboxes (staged by changes whose request did
/// not settle them, or made while admin_db was unreachable) into admin_db, every
/// `AUDIT_OUTBOX_DRAIN_SECONDS`. Safe on every replica at once (see
/// `services::admin::audit::drain`).
fn spawn_audit_drain(services: Arc<Services>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(services.config.audit_drain_interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let moved = services::admin::audit::drain(&services.stores).await;
            if moved > 0 {
                tracing::info!(moved, "moved waiting audit entries to admin_db");
            }
        }
    });
}

/// Finishes the account erasures a failure or a crash left half-way, at start and every
/// five minutes, off the request path. Safe on every replica at once.
fn spawn_erasures(services: Arc<Services>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(300));
        loop {
            every.tick().await;
            match services::admin::erasure::resume_pending(&services).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(finished = n, "finished interrupted erasures"),
                Err(e) => tracing::warn!(error = %e, "resuming interrupted erasures failed"),
            }
        }
    });
}

/// Unconfirmed appointments whose start passed read CANCELLED at once everywhere; this
/// writes it down (with the events their parties hear) every minute. Safe on every
/// replica at once.
fn spawn_booking_sweep(services: Arc<Services>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            if let Err(e) = appointments::booking::sweep_expired(&services).await {
                tracing::warn!(error = %e, "expiring unconfirmed appointments failed");
            }
        }
    });
}

/// With PostgreSQL, booking events reach this process through LISTEN on appointment_db
/// (one dedicated connection for the life of the process); embedded, changes publish to
/// the in-process bus directly.
fn spawn_booking_events(services: Arc<Services>) {
    spawn_booking_sweep(services.clone());
    if services.stores.appointments.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        tokio::spawn(appointments::events::listen(services));
    }
}

/// Serves HTTP on `listener` until `shutdown` resolves, then drains open requests.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = http::router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// Builds the app and serves it on `addr` in the background; returns the bound address.
/// Port 0 picks a free port: what tests use.
pub async fn spawn(config: Config) -> anyhow::Result<(SocketAddr, AppState)> {
    let listener = TcpListener::bind(config.bind_addr)
        .await
        .with_context(|| format!("BIND_ADDR: cannot listen on {}", config.bind_addr))?;
    let addr = listener.local_addr()?;
    let state = build(config).await?;
    let served = state.clone();
    tokio::spawn(async move {
        if let Err(e) = serve(served, listener, std::future::pending()).await {
            tracing::error!(error = %e, "server stopped");
        }
    });
    Ok((addr, state))
}
