//! Media downloads: `GET /media/{id}` (the owner's or an admin's bearer token, or the
//! signed query that `Media.url` carries) and `GET /media/public/{id}` (public files, no
//! token). Whoever may not read a file gets the same 404 as for an id that does not exist.
//!
//! Bytes stream from the store (never whole in memory) with what browsers and caches
//! need: `ETag` (the SHA-256 of the stored bytes) and `If-None-Match`, single `Range`s
//! (206, 416), `Cache-Control` (a day for public files, nothing kept for private ones),
//! and the headers that stop a browser from running an upload as a page.

use axum::{
    body::Body,
    extract::{Path, Query, State},
    response::{IntoResponse, Response},
};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;

use super::AppState;
use crate::{
    db::media::StoredMedia,
    services::{
        auth::{authenticate_header, Auth},
        media,
    },
};

#[derive(Deserialize)]
pub(crate) struct Signed {
    exp: Option<i64>,
    sig: Option<String>,
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"errors": [{"message": "no such media", "extensions": {"code": "NOT_FOUND"}}]})),
    )
        .into_response()
}

/// `GET /media/{id}`.
pub(crate) async fn private(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(signed): Query<Signed>,
    headers: HeaderMap,
) -> Response {
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return not_found();
    };
    let services = &state.services;
    let by_signature = match (signed.exp, signed.sig.as_deref()) {
        (Some(exp), Some(sig)) => media::signed(services, id, exp, sig),
        _ => false,
    };
    let meta = match media::find(services, id).await {
        Ok(Some(meta)) => meta,
        Ok(None) => return not_found(),
        Err(e) => return e.into_response(),
    };
    if !by_signature {
        let header = headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or("\u{0}"));
        let allowed = match authenticate_header(services, header).await {
            Ok(Auth::User(viewer)) => viewer.user_id == meta.owner || viewer.is_admin(),
            Ok(_) => false,
            Err(e) => return e.into_response(),
        };
        if !allowed {
            return not_found();
        }
    }
    serve(&state, meta, &headers).await
}

/// `GET /media/public/{id}`.
pub(crate) async fn public(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return not_found();
    };
    match media::find(&state.services, id).await {
        Ok(Some(meta)) if meta.visibility == media::PUBLIC => serve(&state, meta, &headers).await,
        Ok(_) => not_found(),
        Err(e) => e.into_response(),
    }
}

/// The byte range a `Range` header asks for, as `[start, end)`: `Ok(None)` for the whole
/// file (no header, or one this server does not split: several ranges, other units),
/// `Err` when it cannot be satisfied.
fn range(header: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    // A header that does not parse is ignored (RFC 9110): the whole file is served.
    let Some((first, last)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| s.parse::<u64>().ok();
    let (start, end) = if first.is_empty() {
        // The last N bytes.
        let Some(n) = number(last) else {
            return Ok(None);
        };
        if n == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size)
    } else {
        let Some(start) = number(first) else {
            return Ok(None);
        };
        let end = if last.is_empty() {
            size
        } else {
            let Some(last) = number(last) else {
                return Ok(None);
            };
            if last < start {
                return Ok(None);
            }
            last.saturating_add(1).min(size)
        };
        (start, end)
    };
    if start >= size {
        return Err(());
    }
    Ok(Some((start, end)))
}

fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

/// `inline` for pictures, `attachment` for documents, with the sanitised name (an ASCII
/// fallback and the UTF-8 name, as RFC 6266 says).
fn disposition(meta: &StoredMedia) -> String {
    let kind = if meta.content_type.starts_with("image/") {
        "inline"
    } else {
        "attachment"
    };
    let ascii: String = meta
        .filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = url::form_urlencoded::byte_serialize(meta.filename.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

async fn serve(state: &AppState, meta: StoredMedia, headers: &HeaderMap) -> Response {
    let etag = format!("\"{}\"", meta.sha256);
    let mut out = HeaderMap::new();
    let set = |out: &mut HeaderMap, name: header::HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            out.insert(name, v);
        }
    };
    set(&mut out, header::ETAG, &etag);
    set(
        &mut out,
        header::CACHE_CONTROL,
        if meta.visibility == media::PUBLIC {
            "public, max-age=86400"
        } else {
            "private, no-store"
        },
    );
    set(&mut out, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(&mut out, header::CONTENT_SECURITY_POLICY, "sandbox");
    set(&mut out, header::ACCEPT_RANGES, "bytes");
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| etag_matches(v, &etag))
    {
        return (StatusCode::NOT_MODIFIED, out).into_response();
    }
    let size = meta.size;
    let wanted = range(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        size,
    );
    let (status, start, end) = match wanted {
        Ok(None) => (StatusCode::OK, 0, size),
        Ok(Some((start, end))) => {
            set(
                &mut out,
                header::CONTENT_RANGE,
                &format!("bytes {start}-{}/{size}", end.saturating_sub(1)),
            );
            (StatusCode::PARTIAL_CONTENT, start, end)
        }
        Err(()) => {
            set(&mut out, header::CONTENT_RANGE, &format!("bytes */{size}"));
            return (StatusCode::RANGE_NOT_SATISFIABLE, out).into_response();
        }
    };
    set(&mut out, header::CONTENT_TYPE, &meta.content_type);
    set(&mut out, header::CONTENT_DISPOSITION, &disposition(&meta));
    set(&mut out, header::CONTENT_LENGTH, &(end - start).to_string());
    match media::read(&state.services, &meta, start, end).await {
        Ok(stream) => (status, out, Body::from_stream(stream)).into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(range(None, 10), Ok(None));
        assert_eq!(range(Some("bytes=0-3"), 10), Ok(Some((0, 4))));
        assert_eq!(range(Some("bytes=5-"), 10), Ok(Some((5, 10))));
        assert_eq!(range(Some("bytes=-3"), 10), Ok(Some((7, 10))));
        assert_eq!(range(Some("bytes=8-100"), 10), Ok(Some((8, 10))));
        assert_eq!(range(Some("bytes=10-"), 10), Err(()));
        assert_eq!(range(Some("bytes=5-2"), 10), Ok(None), "invalid: ignored");
        assert_eq!(range(Some("bytes=abc"), 10), Ok(None), "invalid: ignored");
        assert_eq!(range(Some("bytes=-0"), 10), Err(()));
        assert_eq!(range(Some("bytes=0-1,4-5"), 10), Ok(None));
        assert_eq!(range(Some("items=0-1"), 10), Ok(None));
    }

    #[test]
    fn etags_match_weakly_and_by_star() {
        assert!(etag_matches("\"abc\"", "\"abc\""));
        assert!(etag_matches("W/\"abc\", \"x\"", "\"abc\""));
        assert!(etag_matches("*", "\"abc\""));
        assert!(!etag_matches("\"abd\"", "\"abc\""));
    }
}
