//! The coach directory and the specialty catalogue: what anyone may browse.

use sea_orm::{
    sea_query::{Expr, LikeExpr, Query},
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::{
    db::users::{coach_profile, coach_specialty, profile, specialty},
    error::{Error, Result},
    services::{page::Page, text},
};

/// Longest accepted `search` term.
const SEARCH_MAX: usize = 100;

/// Every specialty, by name.
pub(crate) async fn specialties(db: &impl ConnectionTrait) -> Result<Vec<specialty::Model>> {
    Ok(specialty::Entity::find()
        .order_by_asc(specialty::Column::Name)
        .all(db)
        .await?)
}

/// What the directory is asked for.
#[derive(Clone, Debug, Default)]
pub(crate) struct CoachFilter {
    /// A specialty slug; an unknown one is `BAD_USER_INPUT`.
    pub(crate) specialty: Option<String>,
    /// Matched against display names and headlines, case and accents ignored.
    pub(crate) search: Option<String>,
}

/// One page of listed coaches (a profile, not suspended), newest first, and how many
/// the whole list holds.
pub(crate) async fn coaches(
    db: &impl ConnectionTrait,
    filter: CoachFilter,
    page: &Page,
) -> Result<(Vec<coach_profile::Model>, i64)> {
    let mut query = coach_profile::Entity::find().filter(coach_profile::Column::Listed.eq(true));
    if let Some(slug) = filter.specialty {
        let slug = slug.trim().to_lowercase();
        let found = specialty::Entity::find()
            .filter(specialty::Column::Slug.eq(slug.as_str()))
            .one(db)
            .await?
            .ok_or_else(|| Error::bad_input("specialty", format!("unknown specialty: {slug}")))?;
        query = query.filter(
            coach_profile::Column::UserId.in_subquery(
                Query::select()
                    .column(coach_specialty::Column::CoachId)
                    .from(coach_specialty::Entity)
                    .and_where(coach_specialty::Column::SpecialtyId.eq(found.id))
                    .to_owned(),
            ),
        );
    }
    if let Some(term) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let term = text::bounded("search", term, 1, SEARCH_MAX)?;
        let pattern = text::contains_pattern(&text::search_text(&[&term]));
        query = query.filter(
            Expr::col(coach_profile::Column::SearchText).like(LikeExpr::new(pattern).escape('\\')),
        );
    }
    let total = query.clone().count(db).await? as i64;
    let rows = query
        .filter(page.after_desc(
            coach_profile::Column::CreatedAt,
            coach_profile::Column::UserId,
        ))
        .order_by_desc(coach_profile::Column::CreatedAt)
        .order_by_desc(coach_profile::Column::UserId)
        .limit(page.limit())
        .all(db)
        .await?;
    Ok((rows, total))
}

/// Ids of the users whose display name contains `folded` (already accent-folded and
/// lower-cased, see [`text::search_text`]), at most `cap` of them: the account list
/// matches names this way without joining user_db to auth_db.
pub(crate) async fn ids_matching_name(
    db: &impl ConnectionTrait,
    folded: &str,
    cap: u64,
) -> Result<Vec<uuid::Uuid>> {
    Ok(profile::Entity::find()
        .select_only()
        .column(profile::Column::UserId)
        .filter(
            Expr::col(profile::Column::SearchText)
                .like(LikeExpr::new(text::contains_pattern(folded)).escape('\\')),
        )
        .limit(cap)
        .into_tuple()
        .all(db)
        .await?)
}
