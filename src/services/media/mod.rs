//! The media domain (GridFS, or local files when embedded): profile pictures, post photos
//! and PDF documents. Private by default; a file used as an avatar or in a post becomes
//! public. Only this module talks to the media store.
//!
//! An upload is checked (size, type by its bytes), cleaned of identifying metadata and
//! written into the store while its request body is still arriving ([`receive`]); it
//! becomes a file when `uploadMedia` takes it. A refused or abandoned upload leaves
//! nothing: what was written is removed, and no temp file is involved.

pub(crate) mod clean;
pub(crate) mod receive;

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::{
    db::media::{ByteStream, StoredMedia},
    error::{Error, Result},
    services::{
        auth::Viewer,
        page::{Cursor, Page},
        posts, users, SharedServices,
    },
};

/// The largest file accepted: 10 MiB, exactly.
pub(crate) const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// Files one request may carry.
pub(crate) const MAX_FILES: usize = 5;
/// Files one process receives at once; more get `RATE_LIMITED` (retry in a second).
pub(crate) const MAX_CONCURRENT_UPLOADS: usize = 64;
/// How long a signed private URL stays valid.
pub(crate) const SIGNED_URL_TTL: Duration = Duration::from_secs(600);
/// Interrupted uploads older than this are swept.
pub(crate) const ORPHAN_AGE: Duration = Duration::from_secs(3600);

pub(crate) const PUBLIC: &str = "PUBLIC";
pub(crate) const PRIVATE: &str = "PRIVATE";

/// A display name: no directories, no control characters, at most 255 bytes (cut at a
/// character boundary); `file` when nothing is left.
pub(crate) fn sanitize_filename(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '\u{202e}' | '\u{202d}'))
        .collect();
    let clean = clean.trim().trim_start_matches('.').to_string();
    let mut out = String::new();
    for c in clean.chars() {
        if out.len() + c.len_utf8() > 255 {
            break;
        }
        out.push(c);
    }
    if out.is_empty() {
        "file".into()
    } else {
        out
    }
}

/// Whether `viewer` may see `meta`: anyone a public file, the owner and admins a private one.
pub(crate) fn may_see(viewer: Option<&Viewer>, meta: &StoredMedia) -> bool {
    meta.visibility == PUBLIC || viewer.is_some_and(|v| v.user_id == meta.owner || v.is_admin())
}

/// A file `viewer` may see; `None` for one that does not exist and for one they may not see
/// alike, so ids of private files cannot be probed.
pub(crate) async fn visible(
    services: &SharedServices,
    viewer: Option<&Viewer>,
    id: Uuid,
) -> Result<Option<StoredMedia>> {
    let found = find(services, id).await?;
    Ok(found.filter(|m| may_see(viewer, m)))
}

/// A file whatever its visibility, for the download routes (which decide who may read it).
pub(crate) async fn find(services: &SharedServices, id: Uuid) -> Result<Option<StoredMedia>> {
    services.stores.media.get(id).await.map_err(Error::internal)
}

/// Several files by id, in one store round trip (the avatars of a page of users).
pub(crate) async fn many(
    services: &SharedServices,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, StoredMedia>> {
    services
        .stores
        .media
        .get_many(ids)
        .await
        .map_err(Error::internal)
}

/// One page of `owner`'s files, newest first (ids are time-ordered), and their count.
pub(crate) async fn mine(
    services: &SharedServices,
    owner: Uuid,
    page: &Page,
) -> Result<(Vec<StoredMedia>, i64)> {
    let (rows, total) = services
        .stores
        .media
        .list_owner(owner, page.after.map(|c| c.id), page.limit())
        .await
        .map_err(Error::internal)?;
    Ok((rows, i64::try_from(total).unwrap_or(i64::MAX)))
}

/// Where a file sits in `myMedia`.
pub(crate) fn cursor(meta: &StoredMedia) -> Cursor {
    Cursor {
        at: meta.created_at,
        id: meta.id,
    }
}

/// Deletes a file: its owner or an admin may. One the caller may not even see is
/// `NOT_FOUND`, like one that does not exist; a public file of someone else's is
/// `FORBIDDEN`. It is taken off any profile and any post that shows it first.
pub(crate) async fn delete(services: &SharedServices, viewer: &Viewer, id: Uuid) -> Result<()> {
    let meta = find(services, id)
        .await?
        .filter(|m| may_see(Some(viewer), m))
        .ok_or_else(|| Error::NotFound("no such media".into()))?;
    if meta.owner != viewer.user_id && !viewer.is_admin() {
        return Err(Error::Forbidden(
            "only its owner or an admin may delete a file".into(),
        ));
    }
    users::profiles::detach_avatar(&services.stores.users, id).await?;
    posts::write::detach_media(&services.stores.posts, id).await?;
    services
        .stores
        .media
        .delete(id)
        .await
        .map_err(Error::internal)?;
    Ok(())
}

/// The media domain's part of an account erasure: every file of `owner`'s with its bytes
/// (GridFS chunks, local files), each first taken off the profiles and posts that show it,
/// as [`delete`] does. Safe to run again: what is gone is not listed.
pub(crate) async fn erase_owner(services: &SharedServices, owner: Uuid) -> Result<u64> {
    let mut erased = 0;
    // The first file of a page that deleted nothing (another run of this erasure may
    // have deleted it meanwhile); listed again after that, it cannot be deleted.
    let mut stuck: Option<Uuid> = None;
    loop {
        let (files, _) = services
            .stores
            .media
            .list_owner(owner, None, 100)
            .await
            .map_err(Error::internal)?;
        let Some(first) = files.first().map(|m| m.id) else {
            break;
        };
        let mut removed = 0;
        for meta in files {
            users::profiles::detach_avatar(&services.stores.users, meta.id).await?;
            posts::write::detach_media(&services.stores.posts, meta.id).await?;
            if services
                .stores
                .media
                .delete(meta.id)
                .await
                .map_err(Error::internal)?
            {
                removed += 1;
            }
        }
        if removed == 0 {
            if stuck == Some(first) {
                return Err(Error::internal(anyhow::anyhow!(
                    "media of an erased owner could not be deleted"
                )));
            }
            stuck = Some(first);
        }
        erased += removed;
    }
    services
        .stores
        .media
        .forget_owner(owner)
        .await
        .map_err(Error::internal)?;
    Ok(erased)
}

/// Checks that `id` is an image of `owner`'s and makes it public, for use as an avatar or
/// in a post (`field` names the argument in the error).
pub(crate) async fn claim_image(
    services: &SharedServices,
    owner: Uuid,
    id: Uuid,
    field: &str,
) -> Result<()> {
    let meta = find(services, id)
        .await?
        .filter(|m| m.owner == owner)
        .ok_or_else(|| {
            Error::bad_input(field, format!("{field} must name one of your own media"))
        })?;
    if !meta.content_type.starts_with("image/") {
        return Err(Error::bad_input(
            field,
            format!("{field} must name an image"),
        ));
    }
    if meta.visibility != PUBLIC {
        services
            .stores
            .media
            .set_visibility(id, PUBLIC)
            .await
            .map_err(Error::internal)?;
    }
    Ok(())
}

type HmacSha256 = Hmac<Sha256>;

fn signature(key: &[u8], id: Uuid, exp: i64) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(format!("{id}|{exp}").as_bytes());
    Some(mac)
}

/// The URL a client fetches `meta` from: the public route, or the private one signed for
/// ten minutes (so an `<img src>` works without headers).
pub(crate) fn url(services: &SharedServices, meta: &StoredMedia) -> String {
    if meta.visibility == PUBLIC {
        return format!("/media/public/{}", meta.id);
    }
    let exp = chrono::Utc::now().timestamp() + SIGNED_URL_TTL.as_secs() as i64;
    let sig = signature(services.tokens.media_key(), meta.id, exp)
        .map(|m| hex::encode(m.finalize().into_bytes()))
        .unwrap_or_default();
    format!("/media/{}?exp={exp}&sig={sig}", meta.id)
}

/// True for a signature `url` made for `id` that has not expired.
pub(crate) fn signed(services: &SharedServices, id: Uuid, exp: i64, sig: &str) -> bool {
    if exp < chrono::Utc::now().timestamp() {
        return false;
    }
    let Ok(sig) = hex::decode(sig) else {
        return false;
    };
    signature(services.tokens.media_key(), id, exp).is_some_and(|m| m.verify_slice(&sig).is_ok())
}

/// The bytes of `meta`'s file in `[start, end)`.
pub(crate) async fn read(
    services: &SharedServices,
    meta: &StoredMedia,
    start: u64,
    end: u64,
) -> Result<ByteStream> {
    services
        .stores
        .media
        .read(meta, start, end)
        .await
        .map_err(Error::internal)
}

/// Removes what interrupted uploads left behind; safe on every replica at once.
pub(crate) async fn sweep(services: &SharedServices) -> Result<u64> {
    services
        .stores
        .media
        .sweep(ORPHAN_AGE)
        .await
        .map_err(Error::internal)
}

/// How many files the store holds and their stored bytes, for the admin statistics.
pub(crate) async fn totals(services: &SharedServices) -> Result<(u64, u64)> {
    services
        .stores
        .media
        .totals()
        .await
        .map_err(Error::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_are_for_display_only() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename("C:\\Users\\ana\\photo.jpg"), "photo.jpg");
        assert_eq!(sanitize_filename("a\u{0}b\nc.png"), "abc.png");
        assert_eq!(sanitize_filename(".hidden"), "hidden");
        assert_eq!(sanitize_filename(""), "file");
        assert_eq!(sanitize_filename("evil\u{202e}gpj.exe"), "evilgpj.exe");
        let long = "é".repeat(200);
        let cut = sanitize_filename(&long);
        assert!(cut.len() <= 255 && cut.chars().all(|c| c == 'é'));
    }
}
