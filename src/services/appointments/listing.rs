//! Reading appointments: the caller's own list, one appointment for those who may see
//! it, and batches by id for the loaders. Every row is answered as it reads now
//! ([`super::effective`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::{effective, reads_as};
use crate::{
    db::appointments::appointment,
    error::{Error, Result},
    services::{
        auth::Viewer,
        now,
        page::{Cursor, Page},
        SharedServices,
    },
};

/// What `myAppointments` filters on.
#[derive(Clone, Debug, Default)]
pub(crate) struct Filter {
    /// PENDING, CONFIRMED, CANCELLED or COMPLETED, as the rows read now.
    pub(crate) status: Option<&'static str>,
    /// Keeps appointments whose start lies in `[from, to)`.
    pub(crate) from: Option<DateTime<Utc>>,
    pub(crate) to: Option<DateTime<Utc>>,
}

/// The keyset position of an appointment in a list by start, soonest first.
pub(crate) fn cursor(row: &appointment::Model) -> Cursor {
    Cursor {
        at: row.starts_at,
        id: row.id,
    }
}

/// `user`'s appointments as coach or client, by start (soonest first), one page, with
/// the total the filter keeps.
pub(crate) async fn mine(
    services: &SharedServices,
    user: Uuid,
    filter: Filter,
    page: &Page,
) -> Result<(Vec<appointment::Model>, i64)> {
    if let (Some(from), Some(to)) = (filter.from, filter.to) {
        if to < from {
            return Err(Error::bad_input("to", "to must not be before from"));
        }
    }
    let at = now();
    let mut cond = Condition::all().add(
        Condition::any()
            .add(appointment::Column::CoachId.eq(user))
            .add(appointment::Column::ClientId.eq(user)),
    );
    if let Some(status) = filter.status {
        cond = cond.add(reads_as(status, at));
    }
    if let Some(from) = filter.from {
        cond = cond.add(appointment::Column::StartsAt.gte(from));
    }
    if let Some(to) = filter.to {
        cond = cond.add(appointment::Column::StartsAt.lt(to));
    }
    let db = &services.stores.appointments;
    let total = appointment::Entity::find()
        .filter(cond.clone())
        .count(db)
        .await?;
    let mut query = appointment::Entity::find().filter(cond);
    if let Some(c) = page.after {
        query = query.filter(
            Condition::any()
                .add(appointment::Column::StartsAt.gt(c.at))
                .add(
                    Condition::all()
                        .add(appointment::Column::StartsAt.eq(c.at))
                        .add(appointment::Column::Id.gt(c.id)),
                ),
        );
    }
    let rows = query
        .order_by_asc(appointment::Column::StartsAt)
        .order_by_asc(appointment::Column::Id)
        .limit(page.limit())
        .all(db)
        .await?;
    Ok((
        rows.into_iter().map(|r| effective(r, at)).collect(),
        i64::try_from(total).unwrap_or(i64::MAX),
    ))
}

/// Appointment `id` for its coach, its client and admins; `None` for anybody else (and
/// when there is none).
pub(crate) async fn visible(
    services: &SharedServices,
    viewer: &Viewer,
    id: Uuid,
) -> Result<Option<appointment::Model>> {
    let mut query = appointment::Entity::find_by_id(id);
    if !viewer.is_admin() {
        query = query.filter(
            Condition::any()
                .add(appointment::Column::CoachId.eq(viewer.user_id))
                .add(appointment::Column::ClientId.eq(viewer.user_id)),
        );
    }
    let row = query.one(&services.stores.appointments).await?;
    Ok(row.map(|r| effective(r, now())))
}

/// Appointments by id, in one statement, as they read now (for the loaders: callers
/// decide who may see them).
pub(crate) async fn by_ids(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, appointment::Model>> {
    let at = now();
    let rows = appointment::Entity::find()
        .filter(appointment::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.id, effective(r, at))).collect())
}
