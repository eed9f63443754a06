//! GraphQL multipart requests (the GraphQL multipart request spec, as apollo-upload-client
//! sends them): an `operations` part, a `map` part, then the files.
//!
//! Our own reader over multer rather than async-graphql's: that one writes every file part
//! to a temp file before anything can look at the request (2 KiB at a time), sets no
//! limits in the axum integration, and does not enforce the part order. Here each file
//! part streams into the media store as it arrives (`services::media::receive`), the
//! order is enforced (a file before its map could not be checked), and the limits are
//! ours: at most [`MAX_FILES`] files, 10 MiB each, counted while the body streams.

use std::{
    collections::HashMap,
    io,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use std::time::Duration;

use async_graphql::{BatchRequest, Request, UploadValue};
use axum::body::Body;
use futures_util::{Stream, StreamExt, TryStreamExt};
use uuid::Uuid;

use super::json::{parse_json, MAX_JSON_BODY};
use crate::{
    error::Error,
    services::{
        media::{
            receive::{self, Arrival, Inbox, ReceiveError},
            MAX_FILES,
        },
        SharedServices,
    },
};

/// How long a multipart body may take in all, and how long it may pause between two
/// chunks. Far below the hour after which the sweeper removes the chunks of unfinished
/// uploads, so an upload is never swept while it is still arriving; a client trickling a
/// body cannot hold its upload slot (and the store's bytes) for long.
const BODY_DEADLINE: Duration = Duration::from_secs(600);
const BODY_IDLE: Duration = Duration::from_secs(30);

/// What multer lets one part hold: above the 10 MiB a file may have, which is enforced
/// exactly while it streams (so the answer is `PAYLOAD_TOO_LARGE`, not a parse error).
const MAX_PART: u64 = 11 * 1024 * 1024;

/// Why a multipart request is refused as a whole.
pub(super) enum Refusal {
    /// One of the server's errors (its code and status).
    Error(Error),
    /// A body that is not a well-formed GraphQL multipart request (`BAD_REQUEST`).
    Malformed(String),
}

/// A parsed multipart request and the files it carries. The caller discards the files
/// no operation took once the operations have run ([`receive::discard`]).
pub(super) struct Parsed {
    pub(super) batch: BatchRequest,
    pub(super) arrivals: Vec<Arc<Arrival>>,
}

/// Reads a multipart body whose content type is `content_type` (as sent: boundaries are
/// case-sensitive). `cut` reads true when the body hit the server's size limit.
///
/// Files are stored only for `uploader`, a caller whose token holds: anybody else's file
/// parts are skipped unread, and the operations that would take them answer
/// `UNAUTHENTICATED` as they would anyway.
pub(super) async fn receive(
    services: &SharedServices,
    content_type: &str,
    body: Body,
    cut: Arc<AtomicBool>,
    uploader: Option<Uuid>,
) -> Result<Parsed, Refusal> {
    let boundary = multer::parse_boundary(content_type)
        .ok()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| Refusal::Malformed("a multipart request needs a boundary".into()))?;
    let stream = within_deadline(body.into_data_stream().map_err(io::Error::other));
    let limits = multer::SizeLimit::new()
        .for_field("operations", MAX_JSON_BODY as u64)
        .for_field("map", MAX_JSON_BODY as u64)
        .per_field(MAX_PART);
    let mut multipart = multer::Multipart::with_constraints(
        stream,
        boundary,
        multer::Constraints::new().size_limit(limits),
    );
    let mut batch: Option<BatchRequest> = None;
    let mut map: Option<HashMap<String, Vec<String>>> = None;
    let mut arrivals: HashMap<String, Arc<Arrival>> = HashMap::new();
    let outcome = async {
        while let Some(field) = multipart
            .next_field()
            .await
            .map_err(|e| multer_refusal(e, &cut))?
        {
            let name = field.name().unwrap_or_default().to_string();
            match (name.as_str(), &batch, &map) {
                ("operations", None, _) => {
                    let bytes = field.bytes().await.map_err(|e| multer_refusal(e, &cut))?;
                    batch = Some(parse_json(&bytes).map_err(|(_, m)| {
                        Refusal::Malformed(format!("the operations part: {m}"))
                    })?);
                }
                ("map", Some(_), None) => {
                    let bytes = field.bytes().await.map_err(|e| multer_refusal(e, &cut))?;
                    map = Some(serde_json::from_slice(&bytes).map_err(|e| {
                        Refusal::Malformed(format!(
                            "the map part must be a JSON object of arrays of paths: {e}"
                        ))
                    })?);
                }
                (_, Some(_), Some(map)) => {
                    // A part the map does not name is nobody's: skipped unread.
                    if !map.contains_key(&name) {
                        continue;
                    }
                    if arrivals.contains_key(&name) {
                        return Err(Refusal::Malformed(format!(
                            "the file part `{name}` comes twice"
                        )));
                    }
                    if arrivals.len() >= MAX_FILES {
                        return Err(Refusal::Error(Error::bad_input(
                            "file",
                            format!("a request carries at most {MAX_FILES} files"),
                        )));
                    }
                    let filename = field.file_name().unwrap_or_default().to_string();
                    if uploader.is_none() {
                        let refused = Error::Unauthenticated("sign in to upload files".into());
                        arrivals.insert(name, Arrival::new(filename, Err(refused)));
                        continue;
                    }
                    // One upload slot per file being received, so a crowd of slow
                    // uploads cannot take every blocking thread and all the memory.
                    let Ok(_slot) = services.upload_slots.try_acquire() else {
                        let busy = Error::RateLimited { retry_after: 1 };
                        arrivals.insert(name, Arrival::new(filename, Err(busy)));
                        continue;
                    };
                    let bytes = field.map_err(io::Error::other);
                    let received = match receive::receive(services, bytes).await {
                        Ok(r) => Ok(r),
                        Err(ReceiveError::Body(e)) => {
                            tracing::debug!(error = %e, "an upload's body broke off");
                            return Err(cut_refusal(&cut));
                        }
                        Err(ReceiveError::Refused(e @ Error::PayloadTooLarge(_))) => {
                            return Err(Refusal::Error(e))
                        }
                        Err(ReceiveError::Refused(e)) => Err(e),
                    };
                    arrivals.insert(name, Arrival::new(filename, received));
                }
                _ => {
                    return Err(Refusal::Malformed(
                        "the parts must come in order: operations, map, then the files".into(),
                    ))
                }
            }
        }
        Ok(())
    }
    .await;
    let all: Vec<Arc<Arrival>> = arrivals.values().cloned().collect();
    if let Err(refusal) = outcome {
        receive::discard(&all).await;
        return Err(refusal);
    }
    let (Some(batch), Some(map)) = (batch, map) else {
        return Err(Refusal::Malformed(
            "a multipart request needs an operations part and a map part".into(),
        ));
    };
    if let Some(missing) = map.keys().find(|k| !arrivals.contains_key(*k)) {
        receive::discard(&all).await;
        return Err(Refusal::Malformed(format!(
            "the map names a file part `{missing}` that the request does not carry"
        )));
    }
    Ok(Parsed {
        batch: attach(batch, map, &arrivals),
        arrivals: all,
    })
}

/// Puts each file where the map says: the library's upload marker into the variable, and
/// the arrival into the request's [`Inbox`] under the marker's index.
fn attach(
    batch: BatchRequest,
    map: HashMap<String, Vec<String>>,
    arrivals: &HashMap<String, Arc<Arrival>>,
) -> BatchRequest {
    fn set(request: &mut Request, inbox: &mut Inbox, path: &str, arrival: &Arc<Arrival>) {
        let index = request.uploads.len();
        request.set_upload(
            path,
            UploadValue {
                filename: arrival.filename().to_string(),
                content_type: None,
                // The bytes are in the store already; the library only carries the marker.
                content: bytes::Bytes::new(),
            },
        );
        if request.uploads.len() > index {
            inbox.insert(index, arrival.clone());
        }
    }
    let placed = map
        .into_iter()
        .filter_map(|(name, paths)| Some((arrivals.get(&name)?, paths)));
    match batch {
        BatchRequest::Single(mut request) => {
            let mut inbox = Inbox::default();
            for (arrival, paths) in placed {
                for path in paths {
                    set(&mut request, &mut inbox, &path, arrival);
                }
            }
            BatchRequest::Single(request.data(inbox))
        }
        BatchRequest::Batch(mut requests) => {
            let mut inboxes: Vec<Inbox> = requests.iter().map(|_| Inbox::default()).collect();
            for (arrival, paths) in placed {
                for path in paths {
                    let Some((index, rest)) = path.split_once('.') else {
                        continue;
                    };
                    let Ok(index) = index.parse::<usize>() else {
                        continue;
                    };
                    if let (Some(request), Some(inbox)) =
                        (requests.get_mut(index), inboxes.get_mut(index))
                    {
                        set(request, inbox, rest, arrival);
                    }
                }
            }
            BatchRequest::Batch(
                requests
                    .into_iter()
                    .zip(inboxes)
                    .map(|(r, inbox)| r.data(inbox))
                    .collect(),
            )
        }
    }
}

/// A body that broke off: over the server's limit, or the client went away.
fn cut_refusal(cut: &AtomicBool) -> Refusal {
    if cut.load(Ordering::Relaxed) {
        Refusal::Error(Error::PayloadTooLarge(super::max_body_words()))
    } else {
        Refusal::Malformed("the request body broke off".into())
    }
}

fn multer_refusal(e: multer::Error, cut: &AtomicBool) -> Refusal {
    match e {
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
            Refusal::Error(Error::PayloadTooLarge(
                "a part of the request is over its limit (1 MiB for operations and map, 10 MiB for a file)".into(),
            ))
        }
        multer::Error::StreamReadFailed(_) => cut_refusal(cut),
        e => Refusal::Malformed(format!("invalid multipart request: {e}")),
    }
}

/// The body's chunks, cut off with an error once the body has taken [`BODY_DEADLINE`] or
/// paused for [`BODY_IDLE`].
fn within_deadline<S>(body: S) -> impl Stream<Item = io::Result<bytes::Bytes>> + Send
where
    S: Stream<Item = io::Result<bytes::Bytes>> + Send + Unpin,
{
    let deadline = tokio::time::Instant::now() + BODY_DEADLINE;
    futures_util::stream::unfold(Some(body), move |body| async move {
        let mut body = body?;
        let wait = BODY_IDLE.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        match tokio::time::timeout(wait, body.next()).await {
            Ok(Some(item)) => Some((item, Some(body))),
            Ok(None) => None,
            Err(_) => Some((
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the request body stalled or took too long",
                )),
                None,
            )),
        }
    })
}
