//! Profiles and coach profiles: their batch reads (for the DataLoaders), the profile that
//! registration creates, and the two update mutations.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use super::{listing, rules};
use crate::{
    config::Database,
    db::users::{coach_profile, coach_specialty, profile, specialty},
    error::{Error, Result},
    services::{
        audit_outbox::{self, Target},
        media, now,
        patch::Patch,
        text, SharedServices,
    },
};

/// Profiles by user id, in one statement.
pub(crate) async fn by_ids(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, profile::Model>> {
    let rows = profile::Entity::find()
        .filter(profile::Column::UserId.is_in(ids.iter().copied()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.user_id, r)).collect())
}

/// Coach profiles by user id, in one statement.
pub(crate) async fn coaches_by_ids(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, coach_profile::Model>> {
    let rows = coach_profile::Entity::find()
        .filter(coach_profile::Column::UserId.is_in(ids.iter().copied()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.user_id, r)).collect())
}

/// The specialties of each coach, sorted by name: two statements per batch (the links,
/// then the specialties they name). Every id gets an entry, empty when it has none.
pub(crate) async fn specialties_by_coach(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<specialty::Model>>> {
    let links = coach_specialty::Entity::find()
        .filter(coach_specialty::Column::CoachId.is_in(ids.iter().copied()))
        .all(db)
        .await?;
    let mut wanted: Vec<Uuid> = links.iter().map(|l| l.specialty_id).collect();
    wanted.sort();
    wanted.dedup();
    let specialties: HashMap<Uuid, specialty::Model> = if wanted.is_empty() {
        HashMap::new()
    } else {
        specialty::Entity::find()
            .filter(specialty::Column::Id.is_in(wanted))
            .all(db)
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect()
    };
    let mut out: HashMap<Uuid, Vec<specialty::Model>> =
        ids.iter().map(|k| (*k, Vec::new())).collect();
    for link in links {
        if let (Some(list), Some(s)) = (
            out.get_mut(&link.coach_id),
            specialties.get(&link.specialty_id),
        ) {
            list.push(s.clone());
        }
    }
    for list in out.values_mut() {
        list.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(out)
}

/// Writes the profile of a new account (registration's second write).
pub(crate) async fn create(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    display_name: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    let display_name = text::bounded("displayName", display_name, 1, rules::DISPLAY_NAME_MAX)?;
    profile::ActiveModel {
        user_id: Set(user_id),
        search_text: Set(text::search_text(&[&display_name])),
        display_name: Set(display_name),
        bio: Set(None),
        avatar_media_id: Set(None),
        timezone: Set(rules::DEFAULT_TIMEZONE.into()),
        created_at: Set(at),
        updated_at: Set(at),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// What `updateProfile` changes.
#[derive(Debug, Default)]
pub(crate) struct ProfileUpdate {
    pub(crate) display_name: Patch<String>,
    pub(crate) bio: Patch<String>,
    pub(crate) avatar_media_id: Patch<Uuid>,
    pub(crate) timezone: Patch<String>,
}

/// Updates `user_id`'s own profile: every argument is checked before anything is
/// written, then the profile row is changed under its lock.
pub(crate) async fn update(
    services: &SharedServices,
    user_id: Uuid,
    update: ProfileUpdate,
) -> Result<()> {
    let display_name = update
        .display_name
        .check(|v| text::bounded("displayName", &v, 1, rules::DISPLAY_NAME_MAX))?
        .required("displayName")?;
    let bio = update
        .bio
        .check(|v| text::optional("bio", Some(&v), rules::BIO_MAX))?
        .clearable()
        .map(Option::flatten);
    let avatar = update.avatar_media_id.clearable();
    let timezone = update
        .timezone
        .check(|v| rules::timezone("timezone", &v))?
        .required("timezone")?;

    // The image is checked (the caller's own, an image) and made public first: it is
    // what the profile is about to show to everyone.
    if let Some(Some(id)) = avatar {
        media::claim_image(services, user_id, id, "avatarMediaId").await?;
    }

    let txn = services.stores.users.begin().await?;
    let current = locked_profile(&txn, user_id).await?;
    let mut row: profile::ActiveModel = current.into();
    if let Some(name) = &display_name {
        row.display_name = Set(name.clone());
        row.search_text = Set(text::search_text(&[name]));
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
    row.update(&txn).await?;
    if let Some(name) = &display_name {
        if let Some(coach) = coach_profile::Entity::find_by_id(user_id).one(&txn).await? {
            let headline = coach.headline.clone();
            let mut c: coach_profile::ActiveModel = coach.into();
            c.search_text = Set(text::search_text(&[name, &headline]));
            c.update(&txn).await?;
        }
    }
    audit_outbox::stage(&txn, Database::Users, Target::new("User", user_id)).await?;
    txn.commit().await?;
    Ok(())
}

/// Takes `media_id` off every profile that shows it as its avatar (before the file goes).
pub(crate) async fn detach_avatar(db: &impl ConnectionTrait, media_id: Uuid) -> Result<()> {
    profile::Entity::update_many()
        .col_expr(
            profile::Column::AvatarMediaId,
            sea_orm::sea_query::Expr::value(Option::<Uuid>::None),
        )
        .filter(profile::Column::AvatarMediaId.eq(media_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The users domain's part of an account erasure: the profile, the coach profile and its
/// specialty links, in one transaction.
pub(crate) async fn erase(db: &impl TransactionTrait, user_id: Uuid) -> Result<()> {
    let txn = db.begin().await?;
    coach_specialty::Entity::delete_many()
        .filter(coach_specialty::Column::CoachId.eq(user_id))
        .exec(&txn)
        .await?;
    coach_profile::Entity::delete_by_id(user_id)
        .exec(&txn)
        .await?;
    profile::Entity::delete_by_id(user_id).exec(&txn).await?;
    txn.commit().await?;
    Ok(())
}

/// What `upsertCoachProfile` sets.
#[derive(Debug, Default)]
pub(crate) struct CoachProfileInput {
    pub(crate) headline: String,
    pub(crate) specialty_slugs: Vec<String>,
    pub(crate) bio: Patch<String>,
    pub(crate) session_minutes: Patch<i32>,
    pub(crate) price_cents: Patch<i32>,
    pub(crate) currency: Patch<String>,
    pub(crate) timezone: Patch<String>,
    pub(crate) requires_approval: Patch<bool>,
}

/// Creates or updates `user_id`'s coach profile. An omitted field keeps its value (or
/// takes its default on creation: 60-minute sessions, no approval needed); an explicit
/// null clears `bio`, `priceCents`, `currency` and `timezone` (slots then use the user
/// profile's timezone). The specialties are replaced.
pub(crate) async fn upsert_coach(
    services: &SharedServices,
    user_id: Uuid,
    input: CoachProfileInput,
) -> Result<()> {
    let headline = text::bounded("headline", &input.headline, 1, rules::HEADLINE_MAX)?;
    let bio = input
        .bio
        .check(|v| text::optional("bio", Some(&v), rules::BIO_MAX))?
        .clearable()
        .map(Option::flatten);
    let session_minutes = input
        .session_minutes
        .check(rules::session_minutes)?
        .required("sessionMinutes")?;
    let price = input.price_cents.check(rules::price_cents)?.clearable();
    let currency = input.currency.check(|v| rules::currency(&v))?.clearable();
    let timezone = input
        .timezone
        .check(|v| rules::timezone("timezone", &v))?
        .clearable();
    let requires_approval = input.requires_approval.required("requiresApproval")?;
    let mut slugs: Vec<String> = input
        .specialty_slugs
        .iter()
        .map(|s| s.trim().to_lowercase())
        .collect();
    slugs.sort();
    slugs.dedup();
    if slugs.len() > rules::MAX_SPECIALTIES {
        return Err(Error::bad_input(
            "specialtySlugs",
            format!("at most {} specialties", rules::MAX_SPECIALTIES),
        ));
    }

    let txn = services.stores.users.begin().await?;
    let found = if slugs.is_empty() {
        Vec::new()
    } else {
        specialty::Entity::find()
            .filter(specialty::Column::Slug.is_in(slugs.iter().map(String::as_str)))
            .all(&txn)
            .await?
    };
    if let Some(unknown) = slugs.iter().find(|s| !found.iter().any(|f| &f.slug == *s)) {
        return Err(Error::bad_input(
            "specialtySlugs",
            format!("unknown specialty: {unknown}"),
        ));
    }
    let user_profile = locked_profile(&txn, user_id).await?;
    let existing = coach_profile::Entity::find_by_id(user_id).one(&txn).await?;
    let is_new = existing.is_none();
    let stamp = now();
    let mut row: coach_profile::ActiveModel = match existing {
        Some(c) => c.into(),
        None => coach_profile::ActiveModel {
            user_id: Set(user_id),
            bio: Set(None),
            session_minutes: Set(rules::DEFAULT_SESSION_MINUTES),
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
    row.search_text = Set(text::search_text(&[&user_profile.display_name, &headline]));
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
    if holds(&row.price_cents) && !holds(&row.currency) {
        return Err(Error::bad_input("currency", "a price needs a currency"));
    }
    if is_new {
        row.insert(&txn).await?;
    } else {
        row.update(&txn).await?;
    }
    coach_specialty::Entity::delete_many()
        .filter(coach_specialty::Column::CoachId.eq(user_id))
        .exec(&txn)
        .await?;
    if !found.is_empty() {
        coach_specialty::Entity::insert_many(found.iter().map(|s| coach_specialty::ActiveModel {
            coach_id: Set(user_id),
            specialty_id: Set(s.id),
        }))
        .exec_without_returning(&txn)
        .await?;
    }
    audit_outbox::stage(&txn, Database::Users, Target::new("CoachProfile", user_id)).await?;
    txn.commit().await?;
    // Read after the write: a suspension or demotion that raced with this upsert is seen
    // here if its own sync ran before the profile existed.
    listing::sync(services.clone(), user_id).await
}

/// The user's profile, locked for the rest of `txn`: profile writes of one user apply
/// one after the other (PostgreSQL; the embedded database serialises writes anyway).
async fn locked_profile(txn: &DatabaseTransaction, user_id: Uuid) -> Result<profile::Model> {
    profile::Entity::find_by_id(user_id)
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| Error::NotFound("profile not found".into()))
}

/// True when the column will hold a value (set now, or kept as it was).
fn holds<T>(v: &sea_orm::ActiveValue<Option<T>>) -> bool
where
    Option<T>: Into<sea_orm::Value>,
{
    matches!(
        v,
        sea_orm::ActiveValue::Set(Some(_)) | sea_orm::ActiveValue::Unchanged(Some(_))
    )
}
