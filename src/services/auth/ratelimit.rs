//! Attempt limits, counted in auth_db (not in memory) so every replica sees the same count:
//!
//! - login: 5 failures in 15 minutes per (email, client address), 20 per client address;
//!   a wrong `currentPassword` in `changePassword` counts as a login failure;
//! - register: `REGISTRATIONS_PER_ADDRESS` (default 10) registrations in 15 minutes per
//!   client address, so one client cannot mint accounts (and Argon2 work) at will.
//!
//! An attempt is written down *before* the password is checked and the count read after:
//! of N concurrent attempts the k-th to commit sees at least k rows, so no burst gets more
//! through than the limit. A successful login removes its own row; an attempt refused by
//! the limit removes its own row too, so the window ends 15 minutes after the failures,
//! not after the last refused attempt. IPv6 clients are counted per /64, the block one
//! subscriber usually holds.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

use crate::{
    db::auth::login_failure,
    error::{Error, Result},
};

pub const WINDOW_MINUTES: i64 = 15;

/// What is counted, and how many are allowed in the window.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub kind: &'static str,
    /// Per (email, address); `None`: not counted per email.
    pub per_pair: Option<u64>,
    pub per_address: u64,
}

pub const LOGIN: Limit = Limit {
    kind: "login",
    per_pair: Some(5),
    per_address: 20,
};

pub fn register(per_address: u64) -> Limit {
    Limit {
        kind: "register",
        per_pair: None,
        per_address,
    }
}

/// A recorded attempt, to be cleared once it turns out not to count.
pub struct Attempt {
    id: Uuid,
}

/// The key an address is counted under: the address itself, or its /64 for IPv6.
pub fn address_key(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(IpAddr::V6(v6)) => v6
            .to_ipv4_mapped()
            .map(|v4| v4.to_string())
            .unwrap_or_default(),
        _ => ip.to_string(),
    }
}

/// Records an attempt and refuses it when the limits are reached.
pub async fn begin(
    db: &DatabaseConnection,
    limit: Limit,
    email: &str,
    ip: &str,
) -> Result<Attempt> {
    let now = crate::services::now();
    let ip = address_key(ip);
    let id = Uuid::now_v7();
    login_failure::Entity::insert(login_failure::ActiveModel {
        id: Set(id),
        email: Set(email.to_string()),
        ip: Set(ip.clone()),
        at: Set(now),
        kind: Set(limit.kind.to_string()),
    })
    .exec_without_returning(db)
    .await?;
    let since = now - Duration::minutes(WINDOW_MINUTES);
    let per_address = login_failure::Entity::find()
        .filter(login_failure::Column::Kind.eq(limit.kind))
        .filter(login_failure::Column::Ip.eq(ip.as_str()))
        .filter(login_failure::Column::At.gt(since));
    let pair = per_address
        .clone()
        .filter(login_failure::Column::Email.eq(email));
    let over = match limit.per_pair {
        Some(max) if pair.clone().count(db).await? > max => Some(oldest(db, pair).await?),
        _ if per_address.clone().count(db).await? > limit.per_address => {
            Some(oldest(db, per_address).await?)
        }
        _ => None,
    };
    let attempt = Attempt { id };
    if let Some(oldest) = over {
        clear(db, attempt).await?;
        let retry_after = (oldest + Duration::minutes(WINDOW_MINUTES) - now)
            .num_seconds()
            .max(1) as u64;
        return Err(Error::RateLimited { retry_after });
    }
    Ok(attempt)
}

async fn oldest(
    db: &DatabaseConnection,
    query: sea_orm::Select<login_failure::Entity>,
) -> Result<DateTime<Utc>> {
    let at: Option<DateTime<Utc>> = query
        .select_only()
        .column(login_failure::Column::At)
        .order_by_asc(login_failure::Column::At)
        .into_tuple()
        .one(db)
        .await?;
    Ok(at.unwrap_or_else(crate::services::now))
}

/// The attempt does not count (it succeeded, or was refused before counting).
pub async fn clear(db: &DatabaseConnection, attempt: Attempt) -> Result<()> {
    login_failure::Entity::delete_by_id(attempt.id)
        .exec(db)
        .await?;
    Ok(())
}

/// Drops rows older than the window; called now and then so the table stays small.
pub async fn prune(db: &DatabaseConnection) -> Result<u64> {
    let since = crate::services::now() - Duration::minutes(WINDOW_MINUTES);
    let res = login_failure::Entity::delete_many()
        .filter(login_failure::Column::At.lte(since))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

#[cfg(test)]
mod tests {
    use super::address_key;

    #[test]
    fn ipv6_is_counted_per_64() {
        assert_eq!(address_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(address_key("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64");
        assert_eq!(address_key("::ffff:10.0.0.1"), "10.0.0.1");
        assert_eq!(address_key("10.0.0.1"), "10.0.0.1");
        assert_eq!(address_key("unknown"), "unknown");
    }
}
