//! `adminStats`: counts from every store, computed when asked. Each domain's service
//! answers its own counts; this asks them all at once, so the answer takes as long as
//! the slowest store, not their sum. A store that fails (or does not answer within
//! [`STORE_TIMEOUT`]) fails the whole call with an error naming it: a statistic read as
//! zero because its store was down would be a wrong answer an admin could act on.

use std::{future::Future, time::Duration};

use chrono::{DateTime, Utc};

use crate::{
    error::{Error, Result},
    services::{
        appointments, auth, auth::stats::AccountCounts, media, now, posts,
        posts::stats::PostCounts, SharedServices,
    },
};

/// How long one store may take before the statistics give up on it.
const STORE_TIMEOUT: Duration = Duration::from_secs(5);

/// What `adminStats` answers.
#[derive(Clone, Debug)]
pub(crate) struct Stats {
    pub(crate) accounts: AccountCounts,
    pub(crate) posts: PostCounts,
    pub(crate) appointments_by_status: Vec<(&'static str, i64)>,
    pub(crate) media_files: u64,
    pub(crate) media_bytes: u64,
    pub(crate) generated_at: DateTime<Utc>,
}

/// Runs one store's part, turning its failure or its silence into an error naming it
/// (`store` as `/health` names it).
async fn from_store<T>(store: &'static str, part: impl Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(STORE_TIMEOUT, part).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(Error::StoreUnavailable {
            store,
            cause: err.into(),
        }),
        Err(_) => Err(Error::StoreUnavailable {
            store,
            cause: anyhow::anyhow!("no answer within {STORE_TIMEOUT:?}"),
        }),
    }
}

pub(crate) async fn compute(services: &SharedServices) -> Result<Stats> {
    let at = now();
    let stores = &services.stores;
    let (accounts, posts, appointments_by_status, (media_files, media_bytes)) = futures_util::try_join!(
        from_store("auth", auth::stats::counts(&stores.auth, at)),
        from_store("posts", posts::stats::counts(&stores.posts)),
        from_store(
            "appointments",
            appointments::stats::by_status(&stores.appointments, at)
        ),
        from_store("media", media::totals(services)),
    )?;
    Ok(Stats {
        accounts,
        posts,
        appointments_by_status,
        media_files,
        media_bytes,
        generated_at: at,
    })
}
