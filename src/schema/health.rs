//! The health report, shared by `GET /health` and the `health` query.

use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::Stores;

pub(crate) const SERVICE: &str = "jolmood-api";

#[derive(Enum, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum HealthStatus {
    Healthy,
    Degraded,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum StoreStatus {
    Connected,
    Disconnected,
}

#[derive(SimpleObject, Clone)]
pub(crate) struct StoreHealth {
    /// `auth`, `users`, `posts`, `appointments`, `admin` or `media`.
    pub(crate) name: String,
    pub(crate) status: StoreStatus,
}

#[derive(SimpleObject, Clone)]
pub(crate) struct Health {
    pub(crate) status: HealthStatus,
    pub(crate) service: String,
    pub(crate) version: String,
    pub(crate) databases: Vec<StoreHealth>,
    pub(crate) timestamp: DateTime<Utc>,
}

impl Health {
    /// Pings every store now.
    pub(crate) async fn check(stores: &Stores) -> Health {
        Self::from_pings(stores.ping_all().await)
    }

    /// Reuses pings up to two seconds old: what the GraphQL fields answer, so that
    /// aliases, batches and subscribers cannot multiply database round trips.
    pub(crate) async fn recent(stores: &Stores) -> Health {
        Self::from_pings(
            stores
                .ping_all_recent(std::time::Duration::from_secs(2))
                .await,
        )
    }

    fn from_pings(pings: std::collections::BTreeMap<&'static str, bool>) -> Health {
        let healthy = pings.values().all(|ok| *ok);
        Health {
            status: if healthy {
                HealthStatus::Healthy
            } else {
                HealthStatus::Degraded
            },
            service: SERVICE.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            databases: pings
                .into_iter()
                .map(|(name, ok)| StoreHealth {
                    name: name.into(),
                    status: if ok {
                        StoreStatus::Connected
                    } else {
                        StoreStatus::Disconnected
                    },
                })
                .collect(),
            timestamp: Utc::now(),
        }
    }

    /// The JSON body of `GET /health`, in the format the old services answered with.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let databases: serde_json::Map<String, serde_json::Value> = self
            .databases
            .iter()
            .map(|d| {
                (
                    d.name.clone(),
                    serde_json::to_value(d.status).unwrap_or_default(),
                )
            })
            .collect();
        serde_json::json!({
            "status": self.status,
            "service": self.service,
            "version": self.version,
            "databases": databases,
            "timestamp": self.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })
    }
}
