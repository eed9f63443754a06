//! Reading posts: a page of the feed or of one author's posts, or posts by id, each with
//! what its card shows, in ONE statement whatever the page size: the post and its counts
//! (kept on the row), whether the reader liked it, its images in order, and optionally
//! its first comments. PostgreSQL reads the first comments of each post with a LATERAL
//! subquery (an index seek per post after the LIMIT, never a scan of all comments);
//! SQLite numbers the page's comments with a window function instead.

use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QueryResult, QuerySelect, Statement, Value,
};
use uuid::Uuid;

use super::MAX_MEDIA;
use crate::{
    db::posts::{comment, post},
    error::{Error, Result},
    services::page::Page,
};

/// Who reads: decides `likedByMe` and whether posts of hidden authors are shown (to
/// admins and to the author themself only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Reader {
    pub(crate) viewer: Option<Uuid>,
    pub(crate) admin: bool,
}

/// Which posts.
#[derive(Clone, Debug)]
pub(crate) enum Scope {
    /// Every visible post, newest first.
    Feed,
    /// One author's posts, newest first.
    Author(Uuid),
    /// These posts (in no particular order).
    Ids(Vec<Uuid>),
}

/// A post with what its card shows.
#[derive(Clone, Debug)]
pub(crate) struct PostRow {
    pub(crate) post: post::Model,
    pub(crate) liked: bool,
    /// Its images, in their order.
    pub(crate) media: Vec<Uuid>,
    /// Its oldest comments, up to the number asked for, when asked for.
    pub(crate) comments: Option<Vec<comment::Model>>,
}

/// A statement being written, with its values in order and the backend's placeholders.
struct Sql {
    backend: DbBackend,
    text: String,
    values: Vec<Value>,
}

impl Sql {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    fn bind(&mut self, v: impl Into<Value>) {
        self.values.push(v.into());
        match self.backend {
            DbBackend::Postgres => {
                let n = self.values.len();
                self.text.push_str(&format!("${n}"));
            }
            _ => self.text.push('?'),
        }
    }
}

const COMMENT_COLUMNS: &str =
    ", c.id AS c_id, c.author_id AS c_author_id, c.body AS c_body, c.created_at AS c_created_at";

const POST_COLUMNS: &str =
    "id, author_id, body, like_count, comment_count, author_hidden, created_at, updated_at";

/// The posts of `scope` that `reader` may see, newest first, one page of them when `page`
/// is given (`page.limit()` rows: one more than the page), with their first `comments`
/// comments (oldest first) when asked.
pub(crate) async fn posts(
    db: &impl ConnectionTrait,
    scope: &Scope,
    reader: Reader,
    page: Option<&Page>,
    comments: Option<u64>,
) -> Result<Vec<PostRow>> {
    if matches!(scope, Scope::Ids(ids) if ids.is_empty()) || page.is_some_and(|p| p.first == 0) {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let mut q = Sql {
        backend,
        text: String::with_capacity(1024),
        values: Vec::new(),
    };
    let postgres = backend == DbBackend::Postgres;
    let comments = comments.filter(|k| *k > 0);

    // Values are bound in textual order (SQLite's `?`), so the statement is written
    // front to back: PostgreSQL selects from the page with a LATERAL join; SQLite names
    // the page and the numbered comments first.
    if postgres {
        q.push("SELECT p.*, ");
        liked_and_media(&mut q, reader.viewer);
        if comments.is_some() {
            q.push(COMMENT_COLUMNS);
        }
        q.push(" FROM (");
        page_select(&mut q, scope, reader, page);
        q.push(") p");
        if let Some(k) = comments {
            q.push(" LEFT JOIN LATERAL (SELECT id, author_id, body, created_at FROM comments WHERE post_id = p.id ORDER BY created_at, id LIMIT ");
            q.bind(k as i64);
            q.push(") c ON TRUE");
        }
    } else {
        q.push("WITH p AS (");
        page_select(&mut q, scope, reader, page);
        q.push(")");
        if let Some(k) = comments {
            q.push(", c AS (SELECT id, post_id, author_id, body, created_at FROM (SELECT id, post_id, author_id, body, created_at, ROW_NUMBER() OVER (PARTITION BY post_id ORDER BY created_at, id) AS rn FROM comments WHERE post_id IN (SELECT id FROM p)) WHERE rn <= ");
            q.bind(k as i64);
            q.push(")");
        }
        q.push(" SELECT p.*, ");
        liked_and_media(&mut q, reader.viewer);
        if comments.is_some() {
            q.push(COMMENT_COLUMNS);
            q.push(" FROM p LEFT JOIN c ON c.post_id = p.id");
        } else {
            q.push(" FROM p");
        }
    }
    q.push(" ORDER BY p.created_at DESC, p.id DESC");
    if comments.is_some() {
        q.push(", c.created_at, c.id");
    }

    let rows = db
        .query_all(Statement::from_sql_and_values(backend, q.text, q.values))
        .await?;
    let mut out: Vec<PostRow> = Vec::new();
    for row in rows {
        let id: Uuid = row.try_get("", "id")?;
        if out.last().map(|p| p.post.id) != Some(id) {
            out.push(PostRow {
                post: post::Model {
                    id,
                    author_id: row.try_get("", "author_id")?,
                    body: row.try_get("", "body")?,
                    like_count: row.try_get("", "like_count")?,
                    comment_count: row.try_get("", "comment_count")?,
                    author_hidden: row.try_get("", "author_hidden")?,
                    created_at: row.try_get("", "created_at")?,
                    updated_at: row.try_get("", "updated_at")?,
                },
                liked: row.try_get("", "liked")?,
                media: media_list(&row)?,
                comments: comments.map(|_| Vec::new()),
            });
        }
        if comments.is_some() {
            let c_id: Option<Uuid> = row.try_get("", "c_id")?;
            if let (Some(c_id), Some(last)) = (c_id, out.last_mut()) {
                let c = comment::Model {
                    id: c_id,
                    post_id: id,
                    author_id: row.try_get("", "c_author_id")?,
                    body: row.try_get("", "c_body")?,
                    created_at: row.try_get("", "c_created_at")?,
                };
                if let Some(list) = last.comments.as_mut() {
                    list.push(c);
                }
            }
        }
    }
    Ok(out)
}

/// `liked` and `media` of the row `p`.
fn liked_and_media(q: &mut Sql, viewer: Option<Uuid>) {
    match viewer {
        Some(v) => {
            q.push("EXISTS (SELECT 1 FROM likes l WHERE l.post_id = p.id AND l.user_id = ");
            q.bind(v);
            q.push(") AS liked");
        }
        None => q.push("FALSE AS liked"),
    }
    if q.backend == DbBackend::Postgres {
        q.push(", (SELECT string_agg(pm.position::text || ':' || pm.media_id::text, ',') FROM post_media pm WHERE pm.post_id = p.id) AS media");
    } else {
        // UUIDs are stored as blobs by the embedded database.
        q.push(", (SELECT group_concat(pm.position || ':' || CASE typeof(pm.media_id) WHEN 'blob' THEN hex(pm.media_id) ELSE pm.media_id END, ',') FROM post_media pm WHERE pm.post_id = p.id) AS media");
    }
}

/// The SELECT of the posts themselves: the scope, what the reader may see, the page.
fn page_select(q: &mut Sql, scope: &Scope, reader: Reader, page: Option<&Page>) {
    q.push("SELECT ");
    q.push(POST_COLUMNS);
    q.push(" FROM posts WHERE ");
    match scope {
        Scope::Feed => {
            // Compared to a value (not `NOT author_hidden`), so both backends seek the
            // feed's index on (author_hidden, created_at, id).
            q.push("author_hidden = ");
            q.bind(false);
        }
        Scope::Author(author) => {
            q.push("author_id = ");
            q.bind(*author);
            if !(reader.admin || reader.viewer == Some(*author)) {
                q.push(" AND author_hidden = ");
                q.bind(false);
            }
        }
        Scope::Ids(ids) => {
            q.push("id IN (");
            for (i, id) in ids.iter().enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                q.bind(*id);
            }
            q.push(")");
            if !reader.admin {
                match reader.viewer {
                    Some(v) => {
                        q.push(" AND (NOT author_hidden OR author_id = ");
                        q.bind(v);
                        q.push(")");
                    }
                    None => q.push(" AND NOT author_hidden"),
                }
            }
        }
    }
    if let Some(page) = page {
        if let Some(c) = page.after {
            q.push(" AND (created_at < ");
            q.bind(c.at);
            q.push(" OR (created_at = ");
            q.bind(c.at);
            q.push(" AND id < ");
            q.bind(c.id);
            q.push("))");
        }
        q.push(" ORDER BY created_at DESC, id DESC LIMIT ");
        q.bind(page.limit() as i64);
    }
}

/// The images of a row, from `position:id` pairs, in position order.
fn media_list(row: &QueryResult) -> Result<Vec<Uuid>> {
    let raw: Option<String> = row.try_get("", "media")?;
    let mut pairs: Vec<(i64, Uuid)> = Vec::with_capacity(MAX_MEDIA);
    for part in raw
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
    {
        let parsed = part
            .split_once(':')
            .and_then(|(pos, id)| Some((pos.parse().ok()?, Uuid::parse_str(id).ok()?)));
        match parsed {
            Some(pair) => pairs.push(pair),
            None => {
                return Err(Error::internal(anyhow::anyhow!(
                    "unreadable post media entry {part:?}"
                )))
            }
        }
    }
    pairs.sort();
    Ok(pairs.into_iter().map(|(_, id)| id).collect())
}

/// How many posts `scope` holds for `reader` (the connection's `totalCount`).
pub(crate) async fn count(db: &impl ConnectionTrait, scope: &Scope, reader: Reader) -> Result<i64> {
    let mut query = post::Entity::find();
    match scope {
        Scope::Feed => query = query.filter(post::Column::AuthorHidden.eq(false)),
        Scope::Author(author) => {
            query = query.filter(post::Column::AuthorId.eq(*author));
            if !(reader.admin || reader.viewer == Some(*author)) {
                query = query.filter(post::Column::AuthorHidden.eq(false));
            }
        }
        Scope::Ids(ids) => query = query.filter(post::Column::Id.is_in(ids.iter().copied())),
    }
    Ok(query.count(db).await? as i64)
}

/// One page of a post's comments, oldest first (`page.limit()` rows).
pub(crate) async fn comments(
    db: &impl ConnectionTrait,
    post_id: Uuid,
    page: &Page,
) -> Result<Vec<comment::Model>> {
    if page.first == 0 {
        return Ok(Vec::new());
    }
    let mut query = comment::Entity::find().filter(comment::Column::PostId.eq(post_id));
    if let Some(c) = page.after {
        query = query.filter(
            sea_orm::Condition::any()
                .add(comment::Column::CreatedAt.gt(c.at))
                .add(
                    sea_orm::Condition::all()
                        .add(comment::Column::CreatedAt.eq(c.at))
                        .add(comment::Column::Id.gt(c.id)),
                ),
        );
    }
    Ok(query
        .order_by_asc(comment::Column::CreatedAt)
        .order_by_asc(comment::Column::Id)
        .limit(page.limit())
        .all(db)
        .await?)
}

/// The first `limit` comments (oldest first) of each of `post_ids`, in one statement: a
/// LATERAL subquery per post on PostgreSQL, numbered rows on SQLite.
pub(crate) async fn first_comments(
    db: &impl ConnectionTrait,
    post_ids: &[Uuid],
    limit: u64,
) -> Result<HashMap<Uuid, Vec<comment::Model>>> {
    let mut out: HashMap<Uuid, Vec<comment::Model>> = HashMap::new();
    if post_ids.is_empty() || limit == 0 {
        return Ok(out);
    }
    let backend = db.get_database_backend();
    let mut q = Sql {
        backend,
        text: String::with_capacity(512),
        values: Vec::new(),
    };
    let in_list = |q: &mut Sql| {
        for (i, id) in post_ids.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.bind(*id);
        }
    };
    if backend == DbBackend::Postgres {
        q.push("SELECT c.id, c.post_id, c.author_id, c.body, c.created_at FROM posts p CROSS JOIN LATERAL (SELECT id, post_id, author_id, body, created_at FROM comments WHERE post_id = p.id ORDER BY created_at, id LIMIT ");
        q.bind(limit as i64);
        q.push(") c WHERE p.id IN (");
        in_list(&mut q);
        q.push(")");
    } else {
        q.push("SELECT id, post_id, author_id, body, created_at FROM (SELECT id, post_id, author_id, body, created_at, ROW_NUMBER() OVER (PARTITION BY post_id ORDER BY created_at, id) AS rn FROM comments WHERE post_id IN (");
        in_list(&mut q);
        q.push(")) WHERE rn <= ");
        q.bind(limit as i64);
    }
    q.push(" ORDER BY post_id, created_at, id");
    let rows = comment::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(backend, q.text, q.values))
        .all(db)
        .await?;
    for row in rows {
        out.entry(row.post_id).or_default().push(row);
    }
    Ok(out)
}
