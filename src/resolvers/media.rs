//! Uploads and the caller's files (GridFS, or local files when embedded).

use async_graphql::{Context, Object, Result, Upload, ID};

use crate::{
    error::Error,
    schema::{
        connection::{connection, Conn},
        context::ContextExt,
        guards::LoggedIn,
        ids,
        media::{Media, MediaVisibility},
    },
    services::{
        media::{
            self,
            receive::{self, Inbox},
        },
        page::Page,
    },
};

#[derive(Default)]
pub(crate) struct MediaQuery;

#[Object]
impl MediaQuery {
    /// A file, or null when there is none or the caller may not see it (a private file is
    /// its owner's and the admins').
    async fn media(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Media>> {
        let id = ids::parse("id", &id)?;
        let found = media::visible(ctx.services()?, ctx.optional_viewer()?, id).await?;
        Ok(found.map(Media))
    }

    /// The caller's files, newest first.
    #[graphql(
        guard = "LoggedIn",
        complexity = "first.unwrap_or(20).clamp(0, 100) as usize * child_complexity"
    )]
    async fn my_media(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<Media>> {
        let page = Page::new(first, after.as_deref())?;
        let (rows, total) = media::mine(ctx.services()?, ctx.viewer()?.user_id, &page).await?;
        let rows = rows
            .into_iter()
            .map(|m| (media::cursor(&m), Media(m)))
            .collect();
        Ok(connection(&page, rows, total))
    }
}

#[derive(Default)]
pub(crate) struct MediaMutation;

#[Object]
impl MediaMutation {
    /// Stores a JPEG, PNG, GIF or PDF of at most 10 MiB (the type is read from the bytes;
    /// identifying image metadata is removed first). Private unless asked otherwise (an
    /// explicit null reads as the default).
    #[graphql(guard = "LoggedIn")]
    async fn upload_media(
        &self,
        ctx: &Context<'_>,
        file: Upload,
        #[graphql(default_with = "Some(MediaVisibility::Private)")] visibility: Option<
            MediaVisibility,
        >,
    ) -> Result<Media> {
        let viewer = ctx.viewer()?;
        let arrival = ctx
            .data_opt::<Inbox>()
            .and_then(|inbox| inbox.get(file.0))
            .ok_or_else(|| Error::bad_input("file", "no such file part in this request"))?;
        let stored = receive::store(
            ctx.services()?,
            viewer.user_id,
            &arrival,
            visibility.unwrap_or(MediaVisibility::Private).as_str(),
        )
        .await?;
        ctx.audit_target("Media", stored.id);
        ctx.audit_details(serde_json::json!({
            "contentType": stored.content_type,
            "size": stored.size,
        }));
        Ok(Media(stored))
    }

    /// Deletes a file (its owner or an admin); a profile showing it loses its avatar.
    #[graphql(guard = "LoggedIn")]
    async fn delete_media(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let media_id = ids::parse("id", &id)?;
        ctx.audit_target("Media", media_id);
        media::delete(ctx.services()?, ctx.viewer()?, media_id).await?;
        Ok(id)
    }
}
