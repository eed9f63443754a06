//! Attempt limits, counted in auth_db (not in memory) so every replica sees the same count:
//!
//! - login: 5 failures in 15 minutes per (email, client address), 20 per client address;
//!   a wrong `currentPassword` in `changePassword` counts as a login failure;
//! - register: `REGISTRATIONS_PER_ADDRESS` (default 10) registrations in 15 minutes per
//!   client address, so one client cannot mint accounts (and Argon2 work) at will.
//!
//! A login attempt is written down *before* the password is checked, as pending, and the
//! count read after: of N concurrent guesses the k-th to commit sees at least k rows, so
//! no burst gets more than 5 guesses at one email, or 20 from one address, checked. A
//! wrong password turns the row into a failure; a right one deletes it, so people signing
//! in successfully behind one address (an office, a campus NAT) only meet the limit when
//! more than 20 of them are being checked at the same instant. An attempt that could not
//! be checked (a database error, a full hashing queue) and one refused by the limit
//! remove their row, so the window ends 15 minutes after the failures. [`guarded`] runs
//! the whole sequence in a task of its own: a client that disconnects mid-check cannot
//! leave a pending row behind. IPv6 clients are counted per /64, the block one
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

pub(crate) const WINDOW_MINUTES: i64 = 15;

/// What is counted, and how many are allowed in the window.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limit {
    /// The kind of a counted row.
    pub(crate) kind: &'static str,
    /// The kind of a row still being decided (`None`: rows count as soon as written).
    pub(crate) pending: Option<&'static str>,
    /// Per (email, address); `None`: not counted per email.
    pub(crate) per_pair: Option<u64>,
    pub(crate) per_address: u64,
}

pub(crate) const LOGIN: Limit = Limit {
    kind: "login",
    pending: Some("login-pending"),
    per_pair: Some(5),
    per_address: 20,
};

pub(crate) fn register(per_address: u64) -> Limit {
    Limit {
        kind: "register",
        pending: None,
        per_pair: None,
        per_address,
    }
}

/// A recorded attempt: [`fail`] makes it count, [`clear`] forgets it.
pub(crate) struct Attempt {
    id: Uuid,
    limit: Limit,
}

/// The key an address is counted under: the address itself, or its /64 for IPv6.
pub(crate) fn address_key(ip: &str) -> String {
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
pub(crate) async fn begin(
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
        kind: Set(limit.pending.unwrap_or(limit.kind).to_string()),
    })
    .exec_without_returning(db)
    .await?;
    let since = now - Duration::minutes(WINDOW_MINUTES);
    let kinds: Vec<&str> = [Some(limit.kind), limit.pending]
        .into_iter()
        .flatten()
        .collect();
    let recent = login_failure::Entity::find()
        .filter(login_failure::Column::Ip.eq(ip.as_str()))
        .filter(login_failure::Column::At.gt(since));
    let per_address = recent
        .clone()
        .filter(login_failure::Column::Kind.is_in(kinds.clone()));
    let pair = recent
        .filter(login_failure::Column::Kind.is_in(kinds))
        .filter(login_failure::Column::Email.eq(email));
    // Both counts include this attempt: the (max + 1)-th is refused.
    let over = match limit.per_pair {
        Some(max) if pair.clone().count(db).await? > max => Some(oldest(db, pair).await?),
        _ if per_address.clone().count(db).await? > limit.per_address => {
            Some(oldest(db, per_address).await?)
        }
        _ => None,
    };
    let attempt = Attempt { id, limit };
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

/// Runs a password check under `limit`, to completion even if the caller goes away.
/// `check` answers `Some` for the right password, `None` for a wrong one (the attempt
/// then counts as a failure), or an error when it could not check (it does not count).
pub(crate) async fn guarded<T, Fut>(
    db: DatabaseConnection,
    limit: Limit,
    email: String,
    ip: String,
    check: Fut,
) -> Result<Option<T>>
where
    T: Send + 'static,
    Fut: std::future::Future<Output = Result<Option<T>>> + Send + 'static,
{
    crate::telemetry::spawn(async move {
        let attempt = begin(&db, limit, &email, &ip).await?;
        match check.await {
            Ok(Some(value)) => {
                clear(&db, attempt).await?;
                Ok(Some(value))
            }
            Ok(None) => {
                fail(&db, attempt).await?;
                Ok(None)
            }
            Err(e) => {
                clear(&db, attempt).await?;
                Err(e)
            }
        }
    })
    .await
    .map_err(Error::internal)?
}

/// The attempt failed: it counts from now on, per pair and per address.
pub(crate) async fn fail(db: &DatabaseConnection, attempt: Attempt) -> Result<()> {
    if attempt.limit.pending.is_some() {
        login_failure::Entity::update_many()
            .col_expr(
                login_failure::Column::Kind,
                sea_orm::sea_query::Expr::value(attempt.limit.kind),
            )
            .filter(login_failure::Column::Id.eq(attempt.id))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// The attempt does not count (it succeeded, or was refused before counting).
pub(crate) async fn clear(db: &DatabaseConnection, attempt: Attempt) -> Result<()> {
    login_failure::Entity::delete_by_id(attempt.id)
        .exec(db)
        .await?;
    Ok(())
}

/// Drops rows older than the window; called now and then so the table stays small.
pub(crate) async fn prune(db: &DatabaseConnection) -> Result<u64> {
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
