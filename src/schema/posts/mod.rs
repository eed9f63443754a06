//! The posts domain's types: `Post` and `Comment`, their connections, and the loading of
//! a page of posts with everything its cards show.
//!
//! A page (the feed, a user's posts) is preloaded: [`load`] looks at what the query
//! selects and answers it with a fixed number of statements whatever the page size: the
//! posts with their counts, `likedByMe`, their images' ids and their first comments in
//! one post_db statement (see `services::posts::read`), the authors of posts and comments
//! in one load per database (`User::load_page`), and the images and the authors' avatars
//! in one media store round trip. A single post (a mutation's answer, `post(id)`) goes the
//! same way. The resolvers that read a page answer it through `schema::plain::Fast`: the
//! preloaded cards are walked (`cards.rs`) rather than resolved field by field.

mod cards;
mod fields;
mod loaders;

use std::{collections::HashMap, sync::Arc};

use async_graphql::{dataloader::DataLoader, Context, Lookahead, Result, Value};
use uuid::Uuid;

pub(crate) use loaders::register as register_loaders;
use loaders::{AuthorPageKey, AuthorPagesLoader};

use crate::{
    db::{
        media::StoredMedia,
        posts::{comment, post},
    },
    schema::{
        connection::{connection as make_connection, Conn},
        context::ContextExt,
        media::MediaLoader,
        users::User,
    },
    services::{
        page::{Cursor, Page, DEFAULT_FIRST, MAX_FIRST},
        posts::read::{self, PostRow, Reader, Scope},
    },
};

/// A post, with whatever parts were loaded with it.
#[derive(Clone)]
pub(crate) struct Post {
    pub(crate) row: post::Model,
    pub(crate) liked: bool,
    /// Its images' ids, in order.
    pub(crate) media_ids: Vec<Uuid>,
    /// Its images, when preloaded (files deleted meanwhile left out).
    pub(crate) media: Option<Vec<StoredMedia>>,
    /// Its author, when preloaded.
    pub(crate) author: Option<Arc<User>>,
    /// Its first comments when preloaded: how many rows were read (one more than the
    /// largest page asked for) and the rows.
    pub(crate) comments: Option<(u64, Vec<Comment>)>,
}

/// A comment, with its author and its post when preloaded.
#[derive(Clone)]
pub(crate) struct Comment {
    pub(crate) row: comment::Model,
    pub(crate) author: Option<Arc<User>>,
    pub(crate) post: Option<Arc<Post>>,
}

impl Post {
    fn cursor(&self) -> Cursor {
        Cursor {
            at: self.row.created_at,
            id: self.row.id,
        }
    }
}

impl Comment {
    pub(crate) fn new(row: comment::Model) -> Comment {
        Comment {
            row,
            author: None,
            post: None,
        }
    }

    fn cursor(&self) -> Cursor {
        Cursor {
            at: self.row.created_at,
            id: self.row.id,
        }
    }
}

/// The reader of this request.
pub(crate) fn reader(ctx: &Context<'_>) -> Result<Reader> {
    let viewer = ctx.optional_viewer()?;
    Ok(Reader {
        viewer: viewer.map(|v| v.user_id),
        admin: viewer.is_some_and(|v| v.is_admin()),
    })
}

/// The largest first page of comments the selections ask for, when every `comments`
/// selection starts at the beginning with a valid `first`: those are read with the posts.
fn comments_wanted(selections: &[Lookahead<'_>]) -> Option<u64> {
    let mut wanted: Option<u64> = None;
    for sel in selections {
        for field in sel.field("comments").selection_fields() {
            let args = field.arguments().ok()?;
            let mut first = DEFAULT_FIRST;
            for (name, value) in args {
                match (name.as_str(), value) {
                    ("after", Value::Null) | ("first", Value::Null) => {}
                    ("after", _) => return None,
                    ("first", Value::Number(n)) => {
                        first = n.as_u64().filter(|n| *n <= MAX_FIRST)?;
                    }
                    ("first", _) => return None,
                    _ => {}
                }
            }
            wanted = Some(wanted.unwrap_or(0).max(first));
        }
    }
    wanted
}

/// The selections of the comments' nodes within `selections` (of posts).
fn comment_nodes<'a>(selections: &[Lookahead<'a>]) -> Vec<Lookahead<'a>> {
    selections
        .iter()
        .flat_map(|s| {
            let c = s.field("comments");
            [c.field("nodes"), c.field("edges").field("node")]
        })
        .collect()
}

/// Reads the posts of `scope` (a page of them when `page` is given) with what
/// `selections` (the selections of the post nodes) ask for.
pub(crate) async fn load(
    ctx: &Context<'_>,
    scope: &Scope,
    page: Option<&Page>,
    selections: &[Lookahead<'_>],
) -> Result<Vec<Post>> {
    let services = ctx.services()?;
    let limit = comments_wanted(selections).map(|k| k + 1);
    let rows = read::posts(&services.stores.posts, scope, reader(ctx)?, page, limit).await?;
    complete(ctx, rows, selections, limit).await
}

/// Makes the posts of `rows` (read with `limit` first comments when asked) with the
/// authors and images `selections` ask for: one batch per part, through the loaders, so
/// the pages of many users' posts share them too.
async fn complete(
    ctx: &Context<'_>,
    rows: Vec<PostRow>,
    selections: &[Lookahead<'_>],
    limit: Option<u64>,
) -> Result<Vec<Post>> {
    // The authors of the posts and of their comments, in one batch per part.
    let comment_sels = comment_nodes(selections);
    let mut author_sels: Vec<Lookahead<'_>> =
        selections.iter().map(|s| s.field("author")).collect();
    author_sels.extend(comment_sels.iter().map(|s| s.field("author")));
    let wants_authors = author_sels.iter().any(|s| s.exists());
    // A copy of each post for its comments' `post` field, only when that is selected.
    let wants_parents = comment_sels.iter().any(|s| s.field("post").exists());
    let mut users: HashMap<Uuid, User> = HashMap::new();
    if wants_authors {
        let mut ids: Vec<Uuid> = Vec::new();
        for r in &rows {
            ids.push(r.post.author_id);
            for c in r.comments.iter().flatten() {
                ids.push(c.author_id);
            }
        }
        ids.sort();
        ids.dedup();
        users = User::load_page(ctx, &ids, &author_sels, None)
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
    }

    // The images of every post and the authors' avatars, in one store round trip.
    let wants_media = selections.iter().any(|s| s.field("media").exists());
    let wants_avatars = author_sels
        .iter()
        .any(|s| s.field("profile").field("avatar").exists());
    let avatar_of = |u: &User| u.profile.as_ref().and_then(|p| p.avatar_media_id);
    let mut ids: Vec<Uuid> = Vec::new();
    if wants_media {
        ids.extend(rows.iter().flat_map(|r| r.media.iter().copied()));
    }
    if wants_avatars {
        ids.extend(users.values().filter_map(avatar_of));
    }
    let loaded: Option<HashMap<Uuid, StoredMedia>> = if ids.is_empty() {
        Some(HashMap::new())
    } else {
        match ctx.data::<DataLoader<MediaLoader>>()?.load_many(ids).await {
            Ok(found) => Some(found),
            Err(err) if wants_media => return Err(err),
            // Avatars alone: left to `UserProfile.avatar`, which answers a failing store
            // with an error on that field only, as it did before they were preloaded.
            Err(_) => None,
        }
    };
    if let (true, Some(found)) = (wants_avatars, &loaded) {
        for user in users.values_mut() {
            if let Some(id) = avatar_of(user) {
                user.avatar = Some(found.get(&id).cloned());
            }
        }
    }
    let files = if wants_media { loaded } else { None };
    // Shared: one author may sign many posts and comments of the page.
    let users: HashMap<Uuid, Arc<User>> = users
        .into_iter()
        .map(|(id, user)| (id, Arc::new(user)))
        .collect();

    Ok(rows
        .into_iter()
        .map(|r| {
            let post = Post {
                media: files
                    .as_ref()
                    .map(|f| r.media.iter().filter_map(|id| f.get(id).cloned()).collect()),
                author: wants_authors
                    .then(|| users.get(&r.post.author_id).cloned())
                    .flatten(),
                comments: limit.zip(r.comments).map(|(limit, list)| {
                    (
                        limit,
                        list.into_iter()
                            .map(|row| Comment {
                                author: wants_authors
                                    .then(|| users.get(&row.author_id).cloned())
                                    .flatten(),
                                row,
                                post: None,
                            })
                            .collect(),
                    )
                }),
                liked: r.liked,
                media_ids: r.media,
                row: r.post,
            };
            if wants_parents {
                with_parent(post)
            } else {
                post
            }
        })
        .collect())
}

/// Gives each preloaded comment its post (as loaded, its comments without theirs), so
/// `Comment.post` below a page costs nothing.
fn with_parent(mut post: Post) -> Post {
    if post.comments.is_some() {
        let parent = Arc::new(post.clone());
        if let Some((_, list)) = post.comments.as_mut() {
            for c in list {
                c.post = Some(parent.clone());
            }
        }
    }
    post
}

/// One post the reader may see, loaded for what the current field selects; `None` when
/// there is none.
pub(crate) async fn load_one(ctx: &Context<'_>, id: Uuid) -> Result<Option<Post>> {
    let look = ctx.look_ahead();
    let mut found = load(ctx, &Scope::Ids(vec![id]), None, &[look]).await?;
    Ok(found.pop())
}

/// A connection of posts (the feed, a user's posts), newest first.
pub(crate) async fn connection(
    ctx: &Context<'_>,
    scope: Scope,
    first: Option<i32>,
    after: Option<&str>,
) -> Result<Conn<Post>> {
    let page = Page::new(first, after)?;
    let look = ctx.look_ahead();
    let selections = [look.field("nodes"), look.field("edges").field("node")];
    let total = async {
        if look.field("totalCount").exists() {
            let services = ctx.services()?;
            Ok::<_, async_graphql::Error>(
                read::count(&services.stores.posts, &scope, reader(ctx)?).await?,
            )
        } else {
            Ok(0)
        }
    };
    let (posts, total) =
        futures_util::try_join!(load(ctx, &scope, Some(&page), &selections), total)?;
    Ok(make_connection(
        &page,
        posts.into_iter().map(|p| (p.cursor(), p)).collect(),
        total,
    ))
}

/// `User.posts`: one author's posts, newest first. The page comes through a loader, so
/// below a list of users every user's page is read in one statement.
pub(crate) async fn author_connection(
    ctx: &Context<'_>,
    author: Uuid,
    first: Option<i32>,
    after: Option<&str>,
) -> Result<Conn<Post>> {
    let page = Page::new(first, after)?;
    let look = ctx.look_ahead();
    let selections = [look.field("nodes"), look.field("edges").field("node")];
    let limit = comments_wanted(&selections).map(|k| k + 1);
    let key = AuthorPageKey {
        author,
        first: page.first,
        after: page.after,
        reader: reader(ctx)?,
        comments: limit,
        total: look.field("totalCount").exists(),
    };
    let found = ctx
        .data::<DataLoader<AuthorPagesLoader>>()?
        .load_one(key)
        .await?
        .unwrap_or_default();
    let posts = complete(ctx, found.rows, &selections, limit).await?;
    Ok(make_connection(
        &page,
        posts.into_iter().map(|p| (p.cursor(), p)).collect(),
        found.total.unwrap_or(0),
    ))
}
