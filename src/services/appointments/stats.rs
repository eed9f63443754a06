//! What the admin statistics ask of appointment_db: appointments by status as clients
//! read them, so a PENDING appointment whose start has passed counts as CANCELLED (see
//! [`super::effective`]) even before the sweep writes it down.

use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::Expr, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QuerySelect,
};

use super::{CANCELLED, COMPLETED, CONFIRMED, PENDING};
use crate::{db::appointments::appointment, error::Result};

/// Every status, in the enum's order, with its count at `now` (zero included).
pub(crate) async fn by_status(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
) -> Result<Vec<(&'static str, i64)>> {
    let stored = appointment::Entity::find()
        .select_only()
        .column(appointment::Column::Status)
        .column_as(Expr::col(appointment::Column::Id).count(), "n")
        .group_by(appointment::Column::Status)
        .into_tuple::<(String, i64)>()
        .all(db);
    let expired = appointment::Entity::find()
        .filter(appointment::Column::Status.eq(PENDING))
        .filter(appointment::Column::StartsAt.lte(now))
        .count(db);
    let (stored, expired) = futures_util::try_join!(stored, expired)?;
    let expired = expired as i64;
    let stored_count = |status: &str| -> i64 {
        stored
            .iter()
            .filter(|(s, _)| s == status)
            .map(|(_, n)| *n)
            .sum()
    };
    Ok([PENDING, CONFIRMED, CANCELLED, COMPLETED]
        .into_iter()
        .map(|status| {
            let n = match status {
                PENDING => stored_count(PENDING) - expired,
                CANCELLED => stored_count(CANCELLED) + expired,
                other => stored_count(other),
            };
            (status, n)
        })
        .collect())
}
