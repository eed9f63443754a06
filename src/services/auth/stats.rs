//! What the admin statistics ask of auth_db: how many accounts, by role, and how many
//! were created lately. Answered here because only the auth domain names auth_db's tables.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    sea_query::Expr, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QuerySelect,
};

use super::Role;
use crate::{db::auth::user as account, error::Result};

/// Account counts, suspended accounts included.
#[derive(Clone, Debug, Default)]
pub(crate) struct AccountCounts {
    pub(crate) total: i64,
    /// Every role, in the enum's order, zero included.
    pub(crate) by_role: Vec<(Role, i64)>,
    pub(crate) created_last_7_days: i64,
}

pub(crate) async fn counts(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<AccountCounts> {
    let rows: Vec<(String, i64)> = account::Entity::find()
        .select_only()
        .column(account::Column::Role)
        .column_as(Expr::col(account::Column::Id).count(), "n")
        .group_by(account::Column::Role)
        .into_tuple()
        .all(db)
        .await?;
    let recent = account::Entity::find()
        .filter(account::Column::CreatedAt.gt(now - Duration::days(7)))
        .count(db)
        .await? as i64;
    let by_role: Vec<(Role, i64)> = [Role::User, Role::Coach, Role::Admin]
        .into_iter()
        .map(|role| {
            let n = rows
                .iter()
                .filter(|(r, _)| r == role.as_str())
                .map(|(_, n)| *n)
                .sum();
            (role, n)
        })
        .collect();
    Ok(AccountCounts {
        total: rows.iter().map(|(_, n)| *n).sum(),
        by_role,
        created_last_7_days: recent,
    })
}
