//! The GraphQL schema: object types per domain, assembled with the per-domain roots of
//! [`crate::resolvers`]. `schema.graphql` at the repository root is generated from here
//! (`jolmood export-schema`) and a test fails when the two drift apart.

pub mod audit;
pub mod coach;
pub mod connection;
pub mod context;
pub mod errors;
pub mod guards;
pub mod health;
pub mod ids;
pub mod limits;
pub mod loaders;
pub mod session;
pub mod user;
pub mod variables;

use async_graphql::{dataloader::DataLoader, Schema};

use crate::{
    resolvers::{MutationRoot, QueryRoot, SubscriptionRoot},
    services::SharedServices,
};

pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Query depth, complexity and document limits (API.md's numbers).
pub const MAX_DEPTH: usize = 15;
pub const MAX_COMPLEXITY: usize = 5_000;
pub const MAX_ALIASES: usize = 30;
pub const MAX_BATCH: usize = 10;
/// Nesting of fragments and lists that the parser follows before refusing a document.
pub const MAX_RECURSIVE_DEPTH: usize = 32;
/// Directives on one field.
pub const MAX_DIRECTIVES: usize = 5;

/// Builds the schema over the shared services. Loaders live in the schema (not per
/// request) and keep no cache, so concurrent requests share batches and nothing stale is
/// ever served.
pub fn build(services: SharedServices) -> AppSchema {
    let delay = services.config.loader_delay;
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    .limit_depth(MAX_DEPTH)
    .limit_complexity(MAX_COMPLEXITY)
    .limit_recursive_depth(MAX_RECURSIVE_DEPTH)
    .limit_directives(MAX_DIRECTIVES)
    .extension(audit::AuthGateAndAudit)
    .data(loader(loaders::AccountLoader(services.clone()), delay))
    .data(loader(loaders::ProfileLoader(services.clone()), delay))
    .data(loader(loaders::CoachProfileLoader(services.clone()), delay))
    .data(loader(
        loaders::CoachSpecialtiesLoader(services.clone()),
        delay,
    ))
    .data(services)
    .finish()
}

/// A loader shared by every request. Each batch waits `delay` for more keys, so the
/// loads of one level of a query (and of concurrent queries) share a statement. Lists
/// preload their rows' parts (see `User::load_page`), so the delay only decides how
/// single-object loads of concurrent requests share statements.
fn loader<L: Send + Sync + 'static>(l: L, delay: std::time::Duration) -> DataLoader<L> {
    DataLoader::new(l, tokio::spawn).delay(delay)
}

/// The SDL without any services behind it: what `export-schema` prints.
pub fn sdl() -> String {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    .finish()
    .sdl()
}
