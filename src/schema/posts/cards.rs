//! Post cards answered from memory (see `schema::plain`): a page of posts is preloaded
//! with its authors, images and first comments, so every field a card shows is known
//! before the first one is resolved. What was not preloaded (a later page of comments,
//! a comment's post, an author's role…) makes the walk give way to the resolvers in
//! `fields.rs`, which answer it as before.

use std::borrow::Cow;

use super::{Comment, Post};
use crate::{
    schema::{
        connection::connection,
        plain::{self, Out, Plain, Sel, Walk},
    },
    services::page::Page,
};

impl Plain for Post {
    fn typename(&self) -> Cow<'static, str> {
        Cow::Borrowed("Post")
    }

    fn field(&self, walk: &Walk<'_>, field: Sel<'_>, out: &mut Out) -> Option<()> {
        match field.name() {
            "id" => out.id(self.row.id),
            "body" => out.str(&self.row.body),
            "likeCount" => out.int(self.row.like_count.into()),
            "likedByMe" => out.bool(self.liked),
            "commentCount" => out.int(self.row.comment_count.into()),
            "createdAt" => out.datetime(&self.row.created_at),
            "updatedAt" => out.datetime(&self.row.updated_at),
            "author" => plain::object(walk, self.author.as_deref()?, field, out)?,
            "media" => plain::list(walk, self.media.as_ref()?, field, out)?,
            "comments" => {
                // The first page only, within what was read with the post, as
                // `Post.comments` answers it from the same rows.
                let (first, after) = field.page_arguments()?;
                if after.is_some() {
                    return None;
                }
                let page = Page::new(first, None).ok()?;
                let (read_rows, known) = self.comments.as_ref()?;
                if page.limit() > *read_rows {
                    return None;
                }
                let rows = known
                    .iter()
                    .take(page.limit() as usize)
                    .map(|c| (c.cursor(), c))
                    .collect();
                let conn = connection(&page, rows, i64::from(self.row.comment_count));
                plain::object(walk, &conn, field, out)?
            }
            _ => return None,
        }
        Some(())
    }
}

impl Plain for Comment {
    fn typename(&self) -> Cow<'static, str> {
        Cow::Borrowed("Comment")
    }

    fn field(&self, walk: &Walk<'_>, field: Sel<'_>, out: &mut Out) -> Option<()> {
        match field.name() {
            "id" => out.id(self.row.id),
            "body" => out.str(&self.row.body),
            "createdAt" => out.datetime(&self.row.created_at),
            "author" => plain::object(walk, self.author.as_deref()?, field, out)?,
            _ => return None,
        }
        Some(())
    }
}
