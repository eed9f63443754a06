//! Posts, likes, comments and the feed (post_db).

use async_graphql::{Context, MaybeUndefined, Object, Result, ID};

use crate::{
    error::Error,
    schema::{
        connection::Conn,
        context::ContextExt,
        guards::{LoggedIn, RoleGuard},
        ids,
        plain::Fast,
        posts::{self, Comment, Post},
    },
    services::{
        auth::Role,
        patch::Patch,
        posts::{comments, likes, read::Scope, write},
    },
};

/// The answer of a mutation that acted on post `id`.
async fn answer(ctx: &Context<'_>, id: uuid::Uuid) -> Result<Post> {
    posts::load_one(ctx, id)
        .await?
        .ok_or_else(|| Error::NotFound("post not found".into()).into())
}

fn parse_media(ids_in: Vec<ID>) -> Result<Vec<uuid::Uuid>> {
    Ok(ids_in
        .iter()
        .map(|id| ids::parse("mediaIds", id))
        .collect::<Result<_, Error>>()?)
}

#[derive(Default)]
pub(crate) struct PostsQuery;

#[Object]
impl PostsQuery {
    /// A post by id; null when there is none (or its author is suspended).
    async fn post(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Fast<Post>>> {
        let id = ids::parse("id", &id)?;
        Ok(posts::load_one(ctx, id).await?.map(Fast))
    }

    /// Every post, newest first (suspended authors' posts left out).
    #[graphql(complexity = "first.unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn feed(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Fast<Conn<Post>>> {
        posts::connection(ctx, Scope::Feed, first, after.as_deref())
            .await
            .map(Fast)
    }
}

#[derive(Default)]
pub(crate) struct PostsMutation;

#[Object]
impl PostsMutation {
    /// Publishes a post with up to four of the caller's own images (they become public).
    #[graphql(guard = "RoleGuard::any(&[Role::Coach, Role::Admin])")]
    async fn create_post(
        &self,
        ctx: &Context<'_>,
        body: String,
        media_ids: Option<Vec<ID>>,
    ) -> Result<Post> {
        let viewer = ctx.viewer()?;
        let media = parse_media(media_ids.unwrap_or_default())?;
        let id = write::create(ctx.services()?, viewer.user_id, &body, media).await?;
        ctx.audit_target("Post", id);
        answer(ctx, id).await
    }

    /// Edits a post (its author or an admin). An omitted argument keeps its value;
    /// `mediaIds` replaces the images (`[]` or null removes them).
    #[graphql(guard = "LoggedIn")]
    async fn update_post(
        &self,
        ctx: &Context<'_>,
        id: ID,
        body: MaybeUndefined<String>,
        media_ids: MaybeUndefined<Vec<ID>>,
    ) -> Result<Post> {
        let id = ids::parse("id", &id)?;
        ctx.audit_target("Post", id);
        let media: Patch<Vec<uuid::Uuid>> = match media_ids {
            MaybeUndefined::Undefined => Patch::Keep,
            MaybeUndefined::Null => Patch::Clear,
            MaybeUndefined::Value(v) => Patch::Set(parse_media(v)?),
        };
        write::update(ctx.services()?, ctx.viewer()?, id, body.into(), media).await?;
        answer(ctx, id).await
    }

    /// Deletes a post (its author or an admin) with its likes and comments; answers its id
    /// as the API writes it (whatever spelling of the UUID was sent), for caches to evict.
    #[graphql(guard = "LoggedIn")]
    async fn delete_post(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let post_id = ids::parse("id", &id)?;
        ctx.audit_target("Post", post_id);
        write::delete(ctx.services()?, ctx.viewer()?, post_id).await?;
        Ok(ids::to_id(post_id))
    }

    /// Likes a post; liking it again changes nothing.
    #[graphql(guard = "LoggedIn")]
    async fn like_post(&self, ctx: &Context<'_>, post_id: ID) -> Result<Post> {
        let id = ids::parse("postId", &post_id)?;
        ctx.audit_target("Post", id);
        likes::like(ctx.services()?, ctx.viewer()?, id).await?;
        answer(ctx, id).await
    }

    /// Takes the caller's like off a post; unliking it again changes nothing.
    #[graphql(guard = "LoggedIn")]
    async fn unlike_post(&self, ctx: &Context<'_>, post_id: ID) -> Result<Post> {
        let id = ids::parse("postId", &post_id)?;
        ctx.audit_target("Post", id);
        likes::unlike(ctx.services()?, ctx.viewer()?, id).await?;
        answer(ctx, id).await
    }

    /// Comments on a post.
    #[graphql(guard = "LoggedIn")]
    async fn add_comment(&self, ctx: &Context<'_>, post_id: ID, body: String) -> Result<Comment> {
        let id = ids::parse("postId", &post_id)?;
        let row = comments::add(ctx.services()?, ctx.viewer()?, id, &body).await?;
        ctx.audit_target("Comment", row.id);
        Ok(Comment::new(row))
    }

    /// Deletes a comment (its author, the post's author or an admin); answers its id.
    #[graphql(guard = "LoggedIn")]
    async fn delete_comment(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let comment_id = ids::parse("id", &id)?;
        ctx.audit_target("Comment", comment_id);
        comments::delete(ctx.services()?, ctx.viewer()?, comment_id).await?;
        Ok(ids::to_id(comment_id))
    }
}
