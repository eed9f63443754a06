//! The fields of `Post` and `Comment`.

use async_graphql::{dataloader::DataLoader, Context, Object, Result, ID};
use chrono::{DateTime, Utc};

use super::{
    loaders::{FirstCommentsLoader, PostKey, PostLoader},
    reader, Comment, Post,
};
use crate::{
    error::Error,
    schema::{
        connection::{connection, Conn},
        context::ContextExt,
        ids,
        media::{Media, MediaLoader},
        users::User,
    },
    services::{page::Page, posts::read},
};

#[Object]
impl Post {
    async fn id(&self) -> ID {
        ids::to_id(self.row.id)
    }

    async fn author(&self) -> User {
        self.author
            .as_deref()
            .cloned()
            .unwrap_or_else(|| User::new(self.row.author_id))
    }

    async fn body(&self) -> &str {
        &self.row.body
    }

    /// Up to four public images of the author's, in order.
    async fn media(&self, ctx: &Context<'_>) -> Result<Vec<Media>> {
        if let Some(known) = &self.media {
            return Ok(known.iter().cloned().map(Media).collect());
        }
        if self.media_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut found = ctx
            .data::<DataLoader<MediaLoader>>()?
            .load_many(self.media_ids.iter().copied())
            .await?;
        Ok(self
            .media_ids
            .iter()
            .filter_map(|id| found.remove(id))
            .map(Media)
            .collect())
    }

    async fn like_count(&self) -> i32 {
        self.row.like_count
    }

    /// Whether the caller likes this post; false for anonymous readers.
    async fn liked_by_me(&self) -> bool {
        self.liked
    }

    async fn comment_count(&self) -> i32 {
        self.row.comment_count
    }

    /// Oldest first.
    #[graphql(complexity = "first.unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn comments(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<Comment>> {
        let page = Page::new(first, after.as_deref())?;
        let total = i64::from(self.row.comment_count);
        if let Some((read_rows, known)) = &self.comments {
            if page.after.is_none() && page.limit() <= *read_rows {
                let rows = known
                    .iter()
                    .take(page.limit() as usize)
                    .map(|c| (c.cursor(), c.clone()))
                    .collect();
                return Ok(connection(&page, rows, total));
            }
        }
        // A first page of posts not read with their page (a comment's post) comes
        // through the loader: one statement for all of them.
        let rows = if page.after.is_none() {
            ctx.data::<DataLoader<FirstCommentsLoader>>()?
                .load_one((self.row.id, page.limit()))
                .await?
                .unwrap_or_default()
        } else {
            read::comments(&ctx.services()?.stores.posts, self.row.id, &page).await?
        };
        let rows = rows
            .into_iter()
            .map(Comment::new)
            .map(|c| (c.cursor(), c))
            .collect();
        Ok(connection(&page, rows, total))
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.row.updated_at
    }
}

#[Object]
impl Comment {
    async fn id(&self) -> ID {
        ids::to_id(self.row.id)
    }

    async fn post(&self, ctx: &Context<'_>) -> Result<Post> {
        if let Some(known) = &self.post {
            return Ok(Post::clone(known));
        }
        let key = PostKey {
            id: self.row.post_id,
            reader: reader(ctx)?,
        };
        let row = ctx
            .data::<DataLoader<PostLoader>>()?
            .load_one(key)
            .await?
            .ok_or_else(|| Error::NotFound("post not found".into()))?;
        Ok(Post {
            row: row.post,
            liked: row.liked,
            media_ids: row.media,
            media: None,
            author: None,
            comments: None,
        })
    }

    async fn author(&self) -> User {
        self.author
            .as_deref()
            .cloned()
            .unwrap_or_else(|| User::new(self.row.author_id))
    }

    async fn body(&self) -> &str {
        &self.row.body
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }
}
