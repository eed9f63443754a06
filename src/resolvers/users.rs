//! Profiles, the coach directory and the specialty catalogue (user_db).

use async_graphql::{Context, MaybeUndefined, Object, Result, ID};
use sea_orm::{
    sea_query::{Expr, LikeExpr, Query},
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};

use crate::{
    db::users::{coach_profile, coach_specialty, profile, specialty},
    error::Error,
    schema::{
        coach::Specialty,
        connection::{Conn, Cursor, Page},
        context::ContextExt,
        guards::{LoggedIn, RoleGuard},
        ids,
        user::User,
    },
    services::{
        auth::{accounts::search_text, Role},
        now, profiles, text, SharedServices,
    },
};

/// Longest accepted `search` term.
const SEARCH_MAX: usize = 100;

/// `%term%` for LIKE, with the wildcards of the term itself escaped.
fn contains_pattern(term: &str) -> String {
    let escaped = term
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

#[derive(Default)]
pub struct UsersQuery;

#[Object]
impl UsersQuery {
    /// A user by id; null when there is none.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        let id = ids::parse("id", &id)?;
        let exists = ctx
            .data::<async_graphql::dataloader::DataLoader<crate::schema::loaders::AccountLoader>>()?
            .load_one(id)
            .await?;
        Ok(exists.map(User::from_account))
    }

    /// Every specialty, by name.
    async fn specialties(&self, ctx: &Context<'_>) -> Result<Vec<Specialty>> {
        let rows = specialty::Entity::find()
            .order_by_asc(specialty::Column::Name)
            .all(&ctx.services()?.stores.users)
            .await
            .map_err(Error::from)?;
        Ok(rows.into_iter().map(|row| Specialty { row }).collect())
    }

    /// Coaches with a profile who are not suspended, newest first; `specialty` is a slug,
    /// `search` matches display names and headlines (case and accents ignored).
    #[graphql(complexity = "first.unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn coaches(
        &self,
        ctx: &Context<'_>,
        specialty: Option<String>,
        search: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<User>> {
        let page = Page::new(first, after.as_deref())?;
        let db = &ctx.services()?.stores.users;
        let mut query =
            coach_profile::Entity::find().filter(coach_profile::Column::Listed.eq(true));
        if let Some(slug) = specialty {
            let slug = slug.trim().to_lowercase();
            let found = specialty::Entity::find()
                .filter(specialty::Column::Slug.eq(slug.as_str()))
                .one(db)
                .await
                .map_err(Error::from)?
                .ok_or_else(|| {
                    Error::bad_input("specialty", format!("unknown specialty: {slug}"))
                })?;
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
        if let Some(term) = search.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            let term = text::bounded("search", term, 1, SEARCH_MAX)?;
            let pattern = contains_pattern(&search_text(&[&term]));
            query = query.filter(
                Expr::col(coach_profile::Column::SearchText)
                    .like(LikeExpr::new(pattern).escape('\\')),
            );
        }
        let total = query.clone().count(db).await.map_err(Error::from)? as i64;
        if let Some(after) = page.after {
            query = query.filter(
                Condition::any()
                    .add(coach_profile::Column::CreatedAt.lt(after.at))
                    .add(
                        Condition::all()
                            .add(coach_profile::Column::CreatedAt.eq(after.at))
                            .add(coach_profile::Column::UserId.lt(after.id)),
                    ),
            );
        }
        let rows = query
            .order_by_desc(coach_profile::Column::CreatedAt)
            .order_by_desc(coach_profile::Column::UserId)
            .limit(page.limit())
            .all(db)
            .await
            .map_err(Error::from)?;
        let ids: Vec<_> = rows.iter().map(|c| c.user_id).collect();
        let look = ctx.look_ahead();
        let selections = [look.field("nodes"), look.field("edges").field("node")];
        let users = User::load_page(ctx, &ids, &selections, Some(rows.clone())).await?;
        let rows = rows
            .iter()
            .map(|c| Cursor {
                at: c.created_at,
                id: c.user_id,
            })
            .zip(users)
            .collect();
        Ok(page.finish(rows, total))
    }
}

/// The user's profile, locked for the rest of `txn`: profile writes of one user apply
/// one after the other (PostgreSQL; the embedded database serialises writes anyway).
async fn locked_profile(
    txn: &sea_orm::DatabaseTransaction,
    user_id: uuid::Uuid,
) -> Result<profile::Model, Error> {
    profile::Entity::find_by_id(user_id)
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| Error::NotFound("profile not found".into()))
}

/// An update argument that may be cleared: `None` keeps the value (omitted),
/// `Some(None)` clears it (explicit null), `Some(Some(v))` sets the checked value.
fn clearable<T, U>(
    arg: MaybeUndefined<T>,
    check: impl FnOnce(T) -> Result<U, Error>,
) -> Result<Option<Option<U>>, Error> {
    match arg {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Ok(Some(None)),
        MaybeUndefined::Value(v) => check(v).map(|v| Some(Some(v))),
    }
}

/// An update argument that may be omitted but not cleared.
fn required<T, U>(
    field: &str,
    arg: MaybeUndefined<T>,
    check: impl FnOnce(T) -> Result<U, Error>,
) -> Result<Option<U>, Error> {
    match arg {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Err(Error::bad_input(
            field,
            format!("{field} cannot be cleared"),
        )),
        MaybeUndefined::Value(v) => check(v).map(Some),
    }
}

#[derive(Default)]
pub struct UsersMutation;

#[Object]
impl UsersMutation {
    /// Updates the caller's profile. An omitted argument keeps its value; an explicit
    /// null clears `bio` and `avatarMediaId`.
    #[graphql(guard = "LoggedIn")]
    async fn update_profile(
        &self,
        ctx: &Context<'_>,
        display_name: MaybeUndefined<String>,
        bio: MaybeUndefined<String>,
        avatar_media_id: MaybeUndefined<ID>,
        timezone: MaybeUndefined<String>,
    ) -> Result<User> {
        let services = ctx.services()?;
        let viewer = ctx.viewer()?;
        ctx.audit_target("User", viewer.user_id);
        let display_name = required("displayName", display_name, |v| {
            text::bounded("displayName", &v, 1, profiles::DISPLAY_NAME_MAX)
        })?;
        let bio = clearable(bio, |v| text::optional("bio", Some(&v), profiles::BIO_MAX))?
            .map(Option::flatten);
        let avatar = clearable(avatar_media_id, |id| {
            ids::parse("avatarMediaId", &id)?;
            // Media ownership is checked against the media store once uploads exist;
            // until then no id can name a file of the caller's.
            Err::<uuid::Uuid, _>(Error::bad_input(
                "avatarMediaId",
                "avatarMediaId must name one of your own media",
            ))
        })?;
        let timezone = required("timezone", timezone, |v| profiles::timezone("timezone", &v))?;

        let txn = services.stores.users.begin().await.map_err(Error::from)?;
        let current = locked_profile(&txn, viewer.user_id).await?;
        let mut row: profile::ActiveModel = current.clone().into();
        if let Some(name) = &display_name {
            row.display_name = Set(name.clone());
            row.search_text = Set(search_text(&[name]));
        }
        if let Some(bio) = bio {
            row.bio = Set(bio);
        }
        if let Some(avatar) = avatar {
            row.avatar_media_id = Set(avatar);
        }
        if let Some(tz) = timezone {
            row.timezone = Set(tz);
        }
        row.updated_at = Set(now());
        row.update(&txn).await.map_err(Error::from)?;
        if let Some(name) = &display_name {
            if let Some(coach) = coach_profile::Entity::find_by_id(viewer.user_id)
                .one(&txn)
                .await
                .map_err(Error::from)?
            {
                let headline = coach.headline.clone();
                let mut c: coach_profile::ActiveModel = coach.into();
                c.search_text = Set(search_text(&[name, &headline]));
                c.update(&txn).await.map_err(Error::from)?;
            }
        }
        txn.commit().await.map_err(Error::from)?;
        Ok(User::new(viewer.user_id))
    }

    /// Creates or updates the caller's coach profile. An omitted argument keeps its value
    /// (or takes its default on creation: 60-minute sessions, no approval needed); an
    /// explicit null clears `bio`, `priceCents`, `currency` and `timezone` (slots then use
    /// the user profile's timezone).
    #[graphql(guard = "RoleGuard::any(&[Role::Coach])")]
    #[allow(clippy::too_many_arguments)]
    async fn upsert_coach_profile(
        &self,
        ctx: &Context<'_>,
        headline: String,
        bio: MaybeUndefined<String>,
        specialty_slugs: Vec<String>,
        session_minutes: MaybeUndefined<i32>,
        price_cents: MaybeUndefined<i32>,
        currency: MaybeUndefined<String>,
        timezone: MaybeUndefined<String>,
        requires_approval: MaybeUndefined<bool>,
    ) -> Result<User> {
        let services = ctx.services()?;
        let viewer = ctx.viewer()?;
        ctx.audit_target("CoachProfile", viewer.user_id);
        let headline = text::bounded("headline", &headline, 1, profiles::HEADLINE_MAX)?;
        let bio = clearable(bio, |v| text::optional("bio", Some(&v), profiles::BIO_MAX))?
            .map(Option::flatten);
        let session_minutes =
            required("sessionMinutes", session_minutes, profiles::session_minutes)?;
        let price = clearable(price_cents, profiles::price_cents)?;
        let currency = clearable(currency, |v| profiles::currency(&v))?;
        let timezone = clearable(timezone, |v| profiles::timezone("timezone", &v))?;
        let requires_approval = required("requiresApproval", requires_approval, Ok)?;
        let mut slugs: Vec<String> = specialty_slugs
            .iter()
            .map(|s| s.trim().to_lowercase())
            .collect();
        slugs.sort();
        slugs.dedup();
        if slugs.len() > profiles::MAX_SPECIALTIES {
            return Err(Error::bad_input(
                "specialtySlugs",
                format!("at most {} specialties", profiles::MAX_SPECIALTIES),
            )
            .into());
        }

        let txn = services.stores.users.begin().await.map_err(Error::from)?;
        let found = if slugs.is_empty() {
            Vec::new()
        } else {
            specialty::Entity::find()
                .filter(specialty::Column::Slug.is_in(slugs.iter().map(String::as_str)))
                .all(&txn)
                .await
                .map_err(Error::from)?
        };
        if let Some(unknown) = slugs.iter().find(|s| !found.iter().any(|f| &f.slug == *s)) {
            return Err(Error::bad_input(
                "specialtySlugs",
                format!("unknown specialty: {unknown}"),
            )
            .into());
        }
        let user_profile = locked_profile(&txn, viewer.user_id).await?;
        let existing = coach_profile::Entity::find_by_id(viewer.user_id)
            .one(&txn)
            .await
            .map_err(Error::from)?;
        let is_new = existing.is_none();
        let stamp = now();
        let mut row: coach_profile::ActiveModel = match existing {
            Some(c) => c.into(),
            None => coach_profile::ActiveModel {
                user_id: Set(viewer.user_id),
                bio: Set(None),
                session_minutes: Set(profiles::DEFAULT_SESSION_MINUTES),
                price_cents: Set(None),
                currency: Set(None),
                timezone: Set(None),
                requires_approval: Set(false),
                // Set from the account right after the commit.
                listed: Set(false),
                created_at: Set(stamp),
                ..Default::default()
            },
        };
        row.headline = Set(headline.clone());
        row.search_text = Set(search_text(&[&user_profile.display_name, &headline]));
        if let Some(bio) = bio {
            row.bio = Set(bio);
        }
        if let Some(m) = session_minutes {
            row.session_minutes = Set(m);
        }
        if let Some(p) = price {
            row.price_cents = Set(p);
        }
        if let Some(c) = currency {
            row.currency = Set(c);
        }
        if let Some(tz) = timezone {
            row.timezone = Set(tz);
        }
        if let Some(r) = requires_approval {
            row.requires_approval = Set(r);
        }
        row.updated_at = Set(stamp);
        let price_set = matches!(
            &row.price_cents,
            sea_orm::ActiveValue::Set(Some(_)) | sea_orm::ActiveValue::Unchanged(Some(_))
        );
        let currency_set = matches!(
            &row.currency,
            sea_orm::ActiveValue::Set(Some(_)) | sea_orm::ActiveValue::Unchanged(Some(_))
        );
        if price_set && !currency_set {
            return Err(Error::bad_input("currency", "a price needs a currency").into());
        }
        if is_new {
            row.insert(&txn).await.map_err(Error::from)?;
        } else {
            row.update(&txn).await.map_err(Error::from)?;
        }
        coach_specialty::Entity::delete_many()
            .filter(coach_specialty::Column::CoachId.eq(viewer.user_id))
            .exec(&txn)
            .await
            .map_err(Error::from)?;
        if !found.is_empty() {
            coach_specialty::Entity::insert_many(found.iter().map(|s| {
                coach_specialty::ActiveModel {
                    coach_id: Set(viewer.user_id),
                    specialty_id: Set(s.id),
                }
            }))
            .exec_without_returning(&txn)
            .await
            .map_err(Error::from)?;
        }
        txn.commit().await.map_err(Error::from)?;
        // Read after the write: a suspension or demotion that raced with this upsert is
        // seen here if its own sync ran before the profile existed.
        profiles::sync_listing(ctx.data::<SharedServices>()?.clone(), viewer.user_id).await?;
        Ok(User::new(viewer.user_id))
    }
}
