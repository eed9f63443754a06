//! `AuditEntry`: one row of the audit trail. Its actor is read through the account
//! loader, so a page of entries costs one auth_db statement for all its actors.

use async_graphql::{dataloader::DataLoader, Context, Object, Result, ID};
use chrono::{DateTime, Utc};

use crate::{
    db::admin::audit_entry,
    schema::{auth::AccountLoader, ids, users::User},
};

pub(crate) struct AuditEntry(pub(crate) audit_entry::Model);

#[Object]
impl AuditEntry {
    async fn id(&self) -> ID {
        ids::to_id(self.0.id)
    }

    /// Who did it; null for anonymous calls (`register`, a failed `login`) and once the
    /// account is gone.
    async fn actor(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(actor) = self.0.actor_id else {
            return Ok(None);
        };
        let account = ctx
            .data::<DataLoader<AccountLoader>>()?
            .load_one(actor)
            .await?;
        Ok(account.map(User::from_account))
    }

    /// The mutation's field name (`createPost`, `login`, …).
    async fn action(&self) -> &str {
        &self.0.action
    }

    /// The GraphQL type name of what it acted on.
    async fn target_type(&self) -> &str {
        &self.0.target_type
    }

    async fn target_id(&self) -> Option<&str> {
        self.0.target_id.as_deref()
    }

    /// `success`, or the error code it was refused with.
    async fn outcome(&self) -> &str {
        &self.0.outcome
    }

    /// The client address.
    async fn ip(&self) -> Option<&str> {
        self.0.ip.as_deref()
    }

    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }

    /// A short description of the change, without secrets.
    async fn details(&self) -> Option<&str> {
        self.0.details.as_deref()
    }
}
