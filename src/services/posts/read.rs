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
    let Some(first) = rows.first() else {
        return Ok(out);
    };
    let at = Columns::of(first, comments.is_some())?;
    for row in &rows {
        let id: Uuid = row.try_get_by_index(at.id)?;
        push_row(&mut out, row, &at, id)?;
    }
    Ok(out)
}

/// Where the columns of a post row sit: looked up by name once per statement, then
/// read by position (a lookup by name per row and column was a third of the rows'
/// decoding).
struct Columns {
    id: usize,
    author_id: usize,
    body: usize,
    like_count: usize,
    comment_count: usize,
    author_hidden: usize,
    created_at: usize,
    updated_at: usize,
    liked: usize,
    media: usize,
    /// The comment's columns, when comments were read.
    comment: Option<[usize; 4]>,
}

impl Columns {
    fn of(row: &QueryResult, comments: bool) -> Result<Self> {
        let names = row.column_names();
        let at = |name: &str| {
            names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| Error::internal(anyhow::anyhow!("no column {name} in a post row")))
        };
        Ok(Columns {
            id: at("id")?,
            author_id: at("author_id")?,
            body: at("body")?,
            like_count: at("like_count")?,
            comment_count: at("comment_count")?,
            author_hidden: at("author_hidden")?,
            created_at: at("created_at")?,
            updated_at: at("updated_at")?,
            liked: at("liked")?,
            media: at("media")?,
            comment: if comments {
                Some([
                    at("c_id")?,
                    at("c_author_id")?,
                    at("c_body")?,
                    at("c_created_at")?,
                ])
            } else {
                None
            },
        })
    }
}

/// Adds one result row (post `id`, with at most one of its comments) to `out`, whose
/// rows come grouped by post.
fn push_row(out: &mut Vec<PostRow>, row: &QueryResult, at: &Columns, id: Uuid) -> Result<()> {
    if out.last().map(|p| p.post.id) != Some(id) {
        out.push(PostRow {
            post: post::Model {
                id,
                author_id: row.try_get_by_index(at.author_id)?,
                body: row.try_get_by_index(at.body)?,
                like_count: row.try_get_by_index(at.like_count)?,
                comment_count: row.try_get_by_index(at.comment_count)?,
                author_hidden: row.try_get_by_index(at.author_hidden)?,
                created_at: row.try_get_by_index(at.created_at)?,
                updated_at: row.try_get_by_index(at.updated_at)?,
            },
            liked: row.try_get_by_index(at.liked)?,
            media: media_list(row.try_get_by_index(at.media)?)?,
            comments: at.comment.map(|_| Vec::new()),
        });
    }
    if let Some([c_id, c_author_id, c_body, c_created_at]) = at.comment {
        let c_id: Option<Uuid> = row.try_get_by_index(c_id)?;
        if let (Some(c_id), Some(last)) = (c_id, out.last_mut()) {
            let c = comment::Model {
                id: c_id,
                post_id: id,
                author_id: row.try_get_by_index(c_author_id)?,
                body: row.try_get_by_index(c_body)?,
                created_at: row.try_get_by_index(c_created_at)?,
            };
            if let Some(list) = last.comments.as_mut() {
                list.push(c);
            }
        }
    }
    Ok(())
}

/// One page of each author's posts, as `User.posts` below a list of users asks.
#[derive(Clone, Debug, Default)]
pub(crate) struct AuthorPage {
    /// `page.limit()` rows at most, newest first.
    pub(crate) rows: Vec<PostRow>,
    /// How many posts of the author the reader may see, when asked.
    pub(crate) total: Option<i64>,
}

/// A page of posts of each of `authors` (the same `page` for each) that `reader` may see,
/// with their first `comments` comments and, when `with_total`, each author's count, in
/// ONE statement whatever the number of authors: PostgreSQL reads each author's page with
/// a LATERAL subquery (an index seek per author, after the keyset filter and the LIMIT);
/// SQLite numbers each author's posts with a window function.
pub(crate) async fn author_pages(
    db: &impl ConnectionTrait,
    authors: &[Uuid],
    reader: Reader,
    page: &Page,
    comments: Option<u64>,
    with_total: bool,
) -> Result<HashMap<Uuid, AuthorPage>> {
    let mut out: HashMap<Uuid, AuthorPage> = HashMap::new();
    if authors.is_empty() || (page.first == 0 && !with_total) {
        return Ok(out);
    }
    let backend = db.get_database_backend();
    let mut q = Sql {
        backend,
        text: String::with_capacity(2048),
        values: Vec::new(),
    };
    let postgres = backend == DbBackend::Postgres;
    let comments = comments.filter(|k| *k > 0);
    // An empty page still answers the totals: no post row is read then.
    let limit = if page.first == 0 { 0 } else { page.limit() };

    q.push("WITH a(author_id) AS (VALUES ");
    for (i, id) in authors.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push("(");
        q.bind(*id);
        q.push(")");
    }
    q.push(")");
    if !postgres {
        q.push(", p AS (SELECT ");
        q.push(POST_COLUMNS);
        q.push(" FROM (SELECT ");
        q.push(POST_COLUMNS);
        q.push(", ROW_NUMBER() OVER (PARTITION BY author_id ORDER BY created_at DESC, id DESC) AS prn FROM posts WHERE author_id IN (SELECT author_id FROM a)");
        author_filter(&mut q, reader, "");
        keyset_after(&mut q, page);
        q.push(") WHERE prn <= ");
        q.bind(limit as i64);
        q.push(")");
        if let Some(k) = comments {
            q.push(", c AS (SELECT id, post_id, author_id, body, created_at FROM (SELECT id, post_id, author_id, body, created_at, ROW_NUMBER() OVER (PARTITION BY post_id ORDER BY created_at, id) AS rn FROM comments WHERE post_id IN (SELECT id FROM p)) WHERE rn <= ");
            q.bind(k as i64);
            q.push(")");
        }
    }
    q.push(" SELECT a.author_id AS a_author, ");
    if with_total {
        q.push("(SELECT count(*) FROM posts t WHERE t.author_id = a.author_id");
        author_filter(&mut q, reader, "t.");
        q.push(") AS total, ");
    }
    q.push("p.*, ");
    liked_and_media(&mut q, reader.viewer);
    if comments.is_some() {
        q.push(COMMENT_COLUMNS);
    }
    if postgres {
        q.push(" FROM a LEFT JOIN LATERAL (SELECT ");
        q.push(POST_COLUMNS);
        q.push(" FROM posts WHERE author_id = a.author_id");
        author_filter(&mut q, reader, "");
        keyset_after(&mut q, page);
        q.push(" ORDER BY created_at DESC, id DESC LIMIT ");
        q.bind(limit as i64);
        q.push(") p ON TRUE");
        if let Some(k) = comments {
            q.push(" LEFT JOIN LATERAL (SELECT id, author_id, body, created_at FROM comments WHERE post_id = p.id ORDER BY created_at, id LIMIT ");
            q.bind(k as i64);
            q.push(") c ON TRUE");
        }
    } else {
        q.push(" FROM a LEFT JOIN p ON p.author_id = a.author_id");
        if comments.is_some() {
            q.push(" LEFT JOIN c ON c.post_id = p.id");
        }
    }
    q.push(" ORDER BY a.author_id, p.created_at DESC, p.id DESC");
    if comments.is_some() {
        q.push(", c.created_at, c.id");
    }

    let rows = db
        .query_all(Statement::from_sql_and_values(backend, q.text, q.values))
        .await?;
    let mut at = None;
    for row in rows {
        let author: Uuid = row.try_get("", "a_author")?;
        let entry = out.entry(author).or_default();
        if with_total && entry.total.is_none() {
            entry.total = Some(row.try_get("", "total")?);
        }
        let id: Option<Uuid> = row.try_get("", "id")?;
        if let Some(id) = id {
            let at = match &at {
                Some(at) => at,
                None => at.insert(Columns::of(&row, comments.is_some())?),
            };
            push_row(&mut entry.rows, &row, at, id)?;
        }
    }
    Ok(out)
}

/// What of an author's posts `reader` may see: all of them for admins, their own for
/// the author, the others only while the author is not hidden. `prefix` names the table.
fn author_filter(q: &mut Sql, reader: Reader, prefix: &str) {
    if reader.admin {
        return;
    }
    q.push(&format!(" AND ({prefix}author_hidden = "));
    q.bind(false);
    if let Some(v) = reader.viewer {
        q.push(&format!(" OR {prefix}author_id = "));
        q.bind(v);
    }
    q.push(")");
}

/// Rows after the page's cursor, newest first.
fn keyset_after(q: &mut Sql, page: &Page) {
    if let Some(c) = page.after {
        q.push(" AND (created_at < ");
        q.bind(c.at);
        q.push(" OR (created_at = ");
        q.bind(c.at);
        q.push(" AND id < ");
        q.bind(c.id);
        q.push("))");
    }
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
        keyset_after(q, page);
        q.push(" ORDER BY created_at DESC, id DESC LIMIT ");
        q.bind(page.limit() as i64);
    }
}

/// The images of a row, from `position:id` pairs, in position order.
fn media_list(raw: Option<String>) -> Result<Vec<Uuid>> {
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
        Scope::Ids(ids) => {
            query = query.filter(post::Column::Id.is_in(ids.iter().copied()));
            if !reader.admin {
                let mut visible =
                    sea_orm::Condition::any().add(post::Column::AuthorHidden.eq(false));
                if let Some(v) = reader.viewer {
                    visible = visible.add(post::Column::AuthorId.eq(v));
                }
                query = query.filter(visible);
            }
        }
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
