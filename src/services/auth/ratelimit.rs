//! Login rate limits: 5 failures in 15 minutes per (email, client address), 20 per client
//! address. Counted in auth_db, not in memory, so every replica sees the same count.
//!
//! An attempt is written down *before* the password is checked and the count read after:
//! of N concurrent attempts the k-th to commit sees at least k rows, so no burst can get
//! more than 5 guesses through. A successful login removes its own row; an attempt
//! refused by the limit removes its own row too, so the window ends 15 minutes after the
//! failures, not after the last refused attempt.

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
pub const PER_EMAIL_AND_ADDRESS: u64 = 5;
pub const PER_ADDRESS: u64 = 20;

/// A recorded attempt, to be cleared once it turns out not to be a failure.
pub struct Attempt {
    id: Uuid,
}

/// Records an attempt and refuses it when the limits are reached.
pub async fn begin(db: &DatabaseConnection, email: &str, ip: &str) -> Result<Attempt> {
    let now = crate::services::now();
    let id = Uuid::now_v7();
    login_failure::Entity::insert(login_failure::ActiveModel {
        id: Set(id),
        email: Set(email.to_string()),
        ip: Set(ip.to_string()),
        at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    let since = now - Duration::minutes(WINDOW_MINUTES);
    let pair = login_failure::Entity::find()
        .filter(login_failure::Column::Email.eq(email))
        .filter(login_failure::Column::Ip.eq(ip))
        .filter(login_failure::Column::At.gt(since));
    let per_address = login_failure::Entity::find()
        .filter(login_failure::Column::Ip.eq(ip))
        .filter(login_failure::Column::At.gt(since));
    let over = if pair.clone().count(db).await? > PER_EMAIL_AND_ADDRESS {
        Some(oldest(db, pair).await?)
    } else if per_address.clone().count(db).await? > PER_ADDRESS {
        Some(oldest(db, per_address).await?)
    } else {
        None
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
    Ok(at.unwrap_or_else(Utc::now))
}

/// The attempt was not a failure (it succeeded, or was refused before counting).
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
