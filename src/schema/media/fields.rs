//! The fields of `Media`.

use std::borrow::Cow;

use async_graphql::{Context, InputType, Object, Result, Value, ID};
use chrono::{DateTime, Utc};

use super::{Media, MediaVisibility};
use crate::{
    db::media::StoredMedia,
    schema::{
        context::ContextExt,
        ids,
        plain::{Out, Plain, Sel, Walk},
        users::User,
    },
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
        size(&self.0)
    }

    async fn visibility(&self) -> MediaVisibility {
        visibility(&self.0)
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

fn visibility(file: &StoredMedia) -> MediaVisibility {
    if file.visibility == media::PUBLIC {
        MediaVisibility::Public
    } else {
        MediaVisibility::Private
    }
}

fn size(file: &StoredMedia) -> i32 {
    i32::try_from(file.size).unwrap_or(i32::MAX)
}

/// A preloaded file answers every field but `owner` (a user to load) from memory.
impl Plain for StoredMedia {
    fn typename(&self) -> Cow<'static, str> {
        Cow::Borrowed("Media")
    }

    fn field(&self, walk: &Walk<'_>, field: Sel<'_>, out: &mut Out) -> Option<()> {
        match field.name() {
            "id" => out.id(self.id),
            "filename" => out.str(&self.filename),
            "contentType" => out.str(&self.content_type),
            "size" => out.int(size(self).into()),
            "visibility" => match InputType::to_value(&visibility(self)) {
                Value::Enum(name) => out.str(&name),
                _ => return None,
            },
            "url" => out.str(&media::url(walk.services, self)),
            "createdAt" => out.datetime(&self.created_at),
            _ => return None,
        }
        Some(())
    }
}
