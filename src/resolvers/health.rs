//! Service health as GraphQL, for signed-in clients: the same report as `GET /health`
//! (which stays public for load balancers), and a subscription that streams it.

use std::time::Duration;

use async_graphql::{Context, Object, Result, Subscription};
use futures_util::Stream;

use crate::{
    error::Error,
    schema::{context::ContextExt, guards::LoggedIn, health::Health},
    services::SharedServices,
};

const INTERVAL_SECONDS: std::ops::RangeInclusive<i32> = 5..=3600;

#[derive(Default)]
pub(crate) struct HealthQuery;

#[Object]
impl HealthQuery {
    /// The state of every store, as `GET /health` reports it (at most 2 seconds old).
    #[graphql(guard = "LoggedIn")]
    async fn health(&self, ctx: &Context<'_>) -> Result<Health> {
        Ok(Health::recent(&ctx.services()?.stores).await)
    }

    /// The server's version.
    #[graphql(guard = "LoggedIn")]
    async fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
}

#[derive(Default)]
pub(crate) struct HealthSubscription;

#[Subscription]
impl HealthSubscription {
    /// The health report now, then every `intervalSeconds` (5 to 3600, default 30).
    #[graphql(guard = "LoggedIn")]
    async fn health(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 30)] interval_seconds: i32,
    ) -> Result<impl Stream<Item = Health>> {
        if !INTERVAL_SECONDS.contains(&interval_seconds) {
            return Err(Error::bad_input(
                "intervalSeconds",
                "intervalSeconds must be between 5 and 3600",
            )
            .into());
        }
        let services = ctx.data::<SharedServices>()?.clone();
        let every = Duration::from_secs(interval_seconds as u64);
        Ok(futures_util::stream::unfold(
            (services, true),
            move |(services, first)| async move {
                if !first {
                    tokio::time::sleep(every).await;
                }
                let report = Health::recent(&services.stores).await;
                Some((report, (services, false)))
            },
        ))
    }
}
