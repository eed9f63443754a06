//! Service health as GraphQL: the same report as `GET /health`, and a subscription that
//! streams it, for dashboards that already hold a websocket.

use std::time::Duration;

use async_graphql::{Context, Object, Result, Subscription};
use futures_util::Stream;

use crate::schema::{context::ContextExt, guards::LoggedIn, health::Health};

#[derive(Default)]
pub struct HealthQuery;

#[Object]
impl HealthQuery {
    /// The state of every store, as `GET /health` reports it.
    async fn health(&self, ctx: &Context<'_>) -> Result<Health> {
        Ok(Health::check(&ctx.services()?.stores).await)
    }

    /// The server's version.
    async fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
}

#[derive(Default)]
pub struct HealthSubscription;

#[Subscription]
impl HealthSubscription {
    /// The health report now, then every `intervalSeconds` (5 to 3600, default 30).
    #[graphql(guard = "LoggedIn")]
    async fn health(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 30, validator(minimum = 5, maximum = 3600))] interval_seconds: i32,
    ) -> Result<impl Stream<Item = Health>> {
        let services = ctx.data::<crate::services::SharedServices>()?.clone();
        let every = Duration::from_secs(interval_seconds as u64);
        Ok(async_stream_health(services, every))
    }
}

fn async_stream_health(
    services: crate::services::SharedServices,
    every: Duration,
) -> impl Stream<Item = Health> {
    futures_util::stream::unfold((services, true), move |(services, first)| async move {
        if !first {
            tokio::time::sleep(every).await;
        }
        let report = Health::check(&services.stores).await;
        Some((report, (services, false)))
    })
}
