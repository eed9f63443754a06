//! The fields of `Media`.

use async_graphql::{Context, Object, Result, ID};
use chrono::{DateTime, Utc};

use super::{Media, MediaVisibility};
use crate::{
    schema::{context::ContextExt, ids, users::User},
    services::media,
};

#[Object]
impl Media {
    async fn id(&self) -> ID {
        ids::to_id(self.0.id)
    }

    async fn owner(&self) -> User {
        User::new(self.0.owner)
    }

    /// The name it was uploaded under, without any directory; for display only.
    async fn filename(&self) -> &str {
        &self.0.filename
    }

    /// Decided by the file's bytes, never by its name or the type the client declared.
    async fn content_type(&self) -> &str {
        &self.0.content_type
    }

    /// Bytes stored (after identifying metadata was removed).
    async fn size(&self) -> i32 {
        i32::try_from(self.0.size).unwrap_or(i32::MAX)
    }

    async fn visibility(&self) -> MediaVisibility {
        if self.0.visibility == media::PUBLIC {
            MediaVisibility::Public
        } else {
            MediaVisibility::Private
        }
    }

    /// `/media/public/{id}` for a public file; for a private one `/media/{id}?exp=…&sig=…`,
    /// signed for ten minutes, so it works as an `<img src>` without headers.
    async fn url(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(media::url(ctx.services()?, &self.0))
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}
