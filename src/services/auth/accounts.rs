//! Creating an account spans two databases: credentials in auth_db, the profile in
//! user_db, under one UUID. The profile is written second; if that fails, the credentials
//! are deleted again, so a failure never leaves half an account (and the email can
//! register again at once). The registration's audit entry is staged with the
//! credentials and withdrawn with them.

use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use super::Role;
use crate::{
    config::Database,
    db::auth::user,
    error::{Error, Result},
    services::{
        audit_outbox::{self, Target},
        text, users, Services,
    },
};

/// Trims and lower-cases an email and checks its shape (one `@`, a dotted domain, no
/// spaces or control characters, at most 254 characters). Deliverability is not this
/// API's to judge.
pub(crate) fn normalize_email(raw: &str) -> Result<String> {
    let email = raw.trim().to_lowercase();
    let bad = || Error::bad_input("email", "email is not a valid address");
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
    {
        return Err(bad());
    }
    Ok(email)
}

/// Writes a new account (credentials + profile). `password_hash` is already hashed.
pub(crate) async fn create(
    services: &Services,
    email: &str,
    password_hash: String,
    role: Role,
    display_name: &str,
) -> Result<user::Model> {
    let display_name = text::bounded("displayName", display_name, 1, 80)?;
    let now = crate::services::now();
    let id = Uuid::now_v7();
    let txn = services.stores.auth.begin().await?;
    let account = user::ActiveModel {
        id: Set(id),
        email: Set(email.to_string()),
        password_hash: Set(password_hash),
        role: Set(role.as_str().to_string()),
        suspended: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|e| match Error::from(e) {
        Error::Conflict(_) => Error::Conflict("an account with this email already exists".into()),
        other => other,
    })?;
    audit_outbox::stage(&txn, Database::Auth, Target::new("User", id).by(id)).await?;
    txn.commit().await?;
    let written = users::profiles::create(&services.stores.users, id, &display_name, now).await;
    if let Err(err) = written {
        tracing::error!(user = %id, error = %err, "profile write failed; removing the credentials");
        if let Err(undo) = undo_credentials(services, id).await {
            tracing::error!(user = %id, error = %undo, "could not remove credentials of a failed registration");
        }
        return Err(Error::internal(err));
    }
    Ok(account)
}

/// Deletes the credentials of a registration whose profile could not be written, and
/// its staged audit entry with them.
async fn undo_credentials(services: &Services, id: Uuid) -> Result<()> {
    let txn = services.stores.auth.begin().await?;
    user::Entity::delete_by_id(id).exec(&txn).await?;
    audit_outbox::unstage(&txn, Database::Auth).await?;
    txn.commit().await?;
    Ok(())
}

/// Locks the active admins (in id order) for the rest of `txn`, so two changes that
/// could each take the last admin away run one after the other.
pub(super) async fn lock_active_admins(txn: &DatabaseTransaction) -> Result<Vec<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::Role.eq(Role::Admin.as_str()))
        .filter(user::Column::Suspended.eq(false))
        .order_by_asc(user::Column::Id)
        .lock_exclusive()
        .all(txn)
        .await?)
}

/// The account of `id`, if there is one.
pub(crate) async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<user::Model>> {
    Ok(user::Entity::find_by_id(id).one(db).await?)
}

/// Accounts by id, in one statement (the DataLoader's batch).
pub(crate) async fn by_ids(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, user::Model>> {
    let rows = user::Entity::find()
        .filter(user::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.id, r)).collect())
}

/// Replaces the stored password hash of `id`.
pub(crate) async fn set_password_hash(
    db: &impl ConnectionTrait,
    id: Uuid,
    hash: String,
) -> Result<()> {
    user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, Expr::value(hash))
        .col_expr(user::Column::UpdatedAt, Expr::value(crate::services::now()))
        .filter(user::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

pub(crate) async fn find_by_email(services: &Services, email: &str) -> Result<Option<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .one(&services.stores.auth)
        .await?)
}

/// Creates the first admin from `ADMIN_EMAIL`/`ADMIN_PASSWORD` when that account does
/// not exist yet. An existing account of that email is left as it is.
pub(crate) async fn ensure_admin(services: &Services) -> anyhow::Result<()> {
    let (Some(email), Some(password)) = (
        &services.config.admin_email,
        services.config.admin_password.as_ref().map(|p| p.expose()),
    ) else {
        return Ok(());
    };
    let email = normalize_email(email)
        .map_err(|_| anyhow::anyhow!("ADMIN_EMAIL: not a valid email address"))?;
    super::passwords::Hasher::check_policy("ADMIN_PASSWORD", password)
        .map_err(|_| anyhow::anyhow!("ADMIN_PASSWORD: must be 8 to 128 characters"))?;
    if find_by_email(services, &email).await?.is_some() {
        return Ok(());
    }
    let hash = services.passwords.hash(password).await?;
    match create(services, &email, hash, Role::Admin, "Administrator").await {
        Ok(_) | Err(Error::Conflict(_)) => Ok(()),
        Err(e) => Err(anyhow::anyhow!("creating the first admin: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalize_email("  Ana@Example.COM ").unwrap(),
            "ana@example.com"
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@x.io",
            "a b@x.io",
            "ana@localhost",
            "a@b@c.io",
            "ana@x.",
            "a\0b@x.io",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
