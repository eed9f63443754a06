//! Creating, editing and deleting posts, and the images they carry.

use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use super::{hiding, BODY_MAX, MAX_MEDIA};
use crate::{
    config::Database,
    db::posts::{comment, like, post, post_media},
    error::{Error, Result},
    services::{
        audit_outbox::{self, Target},
        auth::Viewer,
        media, now,
        patch::Patch,
        text, SharedServices,
    },
};

/// The images asked for, without repeats (first place kept), at most [`MAX_MEDIA`].
fn checked_media(ids: Vec<Uuid>) -> Result<Vec<Uuid>> {
    let mut out: Vec<Uuid> = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    if out.len() > MAX_MEDIA {
        return Err(Error::bad_input(
            "mediaIds",
            format!("a post carries at most {MAX_MEDIA} images"),
        ));
    }
    Ok(out)
}

/// Checks that every id is an image of `owner`'s and makes it public: the post is about
/// to show it to everyone.
async fn claim(services: &SharedServices, owner: Uuid, ids: &[Uuid]) -> Result<()> {
    futures_util::future::try_join_all(
        ids.iter()
            .map(|id| media::claim_image(services, owner, *id, "mediaIds")),
    )
    .await?;
    Ok(())
}

async fn attach(txn: &DatabaseTransaction, post_id: Uuid, ids: &[Uuid]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    post_media::Entity::insert_many(ids.iter().enumerate().map(|(i, id)| {
        post_media::ActiveModel {
            post_id: Set(post_id),
            position: Set(i as i32),
            media_id: Set(*id),
        }
    }))
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// Creates a post of `author`'s with `media_ids` (their own images, made public).
/// Answers its id.
pub(crate) async fn create(
    services: &SharedServices,
    author: Uuid,
    body: &str,
    media_ids: Vec<Uuid>,
) -> Result<Uuid> {
    let body = text::bounded("body", body, 1, BODY_MAX)?;
    let media_ids = checked_media(media_ids)?;
    claim(services, author, &media_ids).await?;
    let id = Uuid::now_v7();
    let stamp = now();
    let txn = services.stores.posts.begin().await?;
    post::Entity::insert(post::ActiveModel {
        id: Set(id),
        author_id: Set(author),
        body: Set(body),
        like_count: Set(0),
        comment_count: Set(0),
        author_hidden: Set(false),
        created_at: Set(stamp),
        updated_at: Set(stamp),
    })
    .exec_without_returning(&txn)
    .await?;
    attach(&txn, id, &media_ids).await?;
    audit_outbox::stage(&txn, Database::Posts, Target::new("Post", id)).await?;
    txn.commit().await?;
    // A suspension that raced with this post is seen here: its own sync may have run
    // before the post existed.
    hiding::sync(services.clone(), author).await?;
    Ok(id)
}

/// The post, locked for the rest of `txn`, if `viewer` may change it (its author or an
/// admin): `NOT_FOUND` when there is none, `FORBIDDEN` for anyone else.
async fn editable(txn: &DatabaseTransaction, viewer: &Viewer, id: Uuid) -> Result<post::Model> {
    let row = post::Entity::find_by_id(id)
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| Error::NotFound("post not found".into()))?;
    if row.author_id != viewer.user_id && !viewer.is_admin() {
        return Err(Error::Forbidden(
            "only its author or an admin may change a post".into(),
        ));
    }
    Ok(row)
}

/// Edits a post (its author or an admin). An omitted argument keeps the value; `body`
/// cannot be cleared; `media_ids` replaces the images (`[]` or null removes them all):
/// those the post shows already may stay, and a new one must be an image of the caller's
/// who is also the post's author (the contract asks for the caller's own, the post shows
/// its author's). So an admin editing someone's post keeps or drops its images, and can
/// neither publish that person's private files nor put their own on the post.
pub(crate) async fn update(
    services: &SharedServices,
    viewer: &Viewer,
    id: Uuid,
    body: Patch<String>,
    media_ids: Patch<Vec<Uuid>>,
) -> Result<()> {
    let body = body
        .check(|b| text::bounded("body", &b, 1, BODY_MAX))?
        .required("body")?;
    let media_ids = match media_ids {
        Patch::Keep => None,
        Patch::Clear => Some(Vec::new()),
        Patch::Set(ids) => Some(checked_media(ids)?),
    };
    let txn = services.stores.posts.begin().await?;
    let row = editable(&txn, viewer, id).await?;
    if let Some(ids) = &media_ids {
        let shown: Vec<Uuid> = post_media::Entity::find()
            .filter(post_media::Column::PostId.eq(row.id))
            .all(&txn)
            .await?
            .into_iter()
            .map(|m| m.media_id)
            .collect();
        let added: Vec<Uuid> = ids.iter().copied().filter(|i| !shown.contains(i)).collect();
        if !added.is_empty() && row.author_id != viewer.user_id {
            return Err(Error::bad_input(
                "mediaIds",
                "only the post's author adds images; an admin may keep or remove them",
            ));
        }
        claim(services, viewer.user_id, &added).await?;
    }
    let mut update = post::Entity::update_many()
        .col_expr(post::Column::UpdatedAt, Expr::value(now()))
        .filter(post::Column::Id.eq(id));
    if let Some(body) = body {
        update = update.col_expr(post::Column::Body, Expr::value(body));
    }
    update.exec(&txn).await?;
    if let Some(ids) = media_ids {
        post_media::Entity::delete_many()
            .filter(post_media::Column::PostId.eq(id))
            .exec(&txn)
            .await?;
        attach(&txn, id, &ids).await?;
    }
    audit_outbox::stage(&txn, Database::Posts, Target::new("Post", id)).await?;
    txn.commit().await?;
    Ok(())
}

/// Deletes a post (its author or an admin) with its likes, comments and images list, in
/// one transaction.
pub(crate) async fn delete(services: &SharedServices, viewer: &Viewer, id: Uuid) -> Result<()> {
    let txn = services.stores.posts.begin().await?;
    editable(&txn, viewer, id).await?;
    like::Entity::delete_many()
        .filter(like::Column::PostId.eq(id))
        .exec(&txn)
        .await?;
    comment::Entity::delete_many()
        .filter(comment::Column::PostId.eq(id))
        .exec(&txn)
        .await?;
    post_media::Entity::delete_many()
        .filter(post_media::Column::PostId.eq(id))
        .exec(&txn)
        .await?;
    post::Entity::delete_by_id(id).exec(&txn).await?;
    audit_outbox::stage(&txn, Database::Posts, Target::new("Post", id)).await?;
    txn.commit().await?;
    Ok(())
}

/// Takes `media_id` off every post that shows it (before the file goes).
pub(crate) async fn detach_media(db: &impl ConnectionTrait, media_id: Uuid) -> Result<()> {
    post_media::Entity::delete_many()
        .filter(post_media::Column::MediaId.eq(media_id))
        .exec(db)
        .await?;
    Ok(())
}
