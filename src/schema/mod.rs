//! The GraphQL object types of each domain, with their field resolvers and DataLoaders,
//! and what every request shares: its context, guards, ids, connections, error labels,
//! document limits and variables. The roots live in [`crate::resolvers`]; the schema is
//! assembled where the app is built (`crate::build`).

pub(crate) mod admin;
pub(crate) mod appointments;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod connection;
pub(crate) mod context;
pub(crate) mod errors;
pub(crate) mod guards;
pub(crate) mod health;
pub(crate) mod ids;
pub(crate) mod limits;
pub(crate) mod media;
pub(crate) mod patch;
pub(crate) mod plain;
pub(crate) mod posts;
pub(crate) mod users;
pub(crate) mod variables;

use async_graphql::dataloader::DataLoader;

/// A loader shared by every request. Each batch waits `delay` for more keys, so the
/// loads of one level of a query (and of concurrent queries) share a statement. Lists
/// preload their rows' parts (see `User::load_page`), so the delay only decides how
/// single-object loads of concurrent requests share statements. No cache: nothing stale,
/// and nothing one viewer may see reaches another.
pub(crate) fn loader<L: Send + Sync + 'static>(l: L, delay: std::time::Duration) -> DataLoader<L> {
    DataLoader::new(l, tokio::spawn).delay(delay)
}
