//! Receiving an upload while its request body is still coming in.
//!
//! The bytes of a file part flow through three stages at once: the request body (the
//! caller's stream), the checks and the metadata cleaner (a blocking thread, since the
//! cleaner is synchronous), and the store (pieces written as soon as they are cleaned).
//! Bounded channels join the stages, so an upload holds a few MiB at most whatever its
//! size, nothing waits for the whole body before writing, and no temp file is involved.
//!
//! What arrives is not a file yet: the store writes its metadata only when a resolver
//! takes it ([`store`]), with the owner and visibility the operation asks for. An arrival
//! that no resolver takes (a refused operation, a variable the document does not use, a
//! request cut short) is dropped, and the store removes its bytes.

use std::{
    collections::HashMap,
    io::{self, Read, Write},
    sync::Arc,
};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{clean, sanitize_filename, MAX_FILE_BYTES};
use crate::{
    db::media::{PendingWrite, StoredMedia},
    error::{Error, Result},
    services::{now, SharedServices},
};

/// Cleaned bytes handed to the store at a time: four GridFS chunks, one insert.
const PIECE_BYTES: usize = 4 * 255 * 1024;
/// Body chunks queued for the cleaner. Few: a chunk from hyper can hold hundreds of KiB,
/// and the cleaner keeps up with the network anyway.
const QUEUED_CHUNKS: usize = 4;

/// A file part whose bytes are in the store, not yet a file.
pub(crate) struct Received {
    id: Uuid,
    kind: clean::Kind,
    size: u64,
    sha256: String,
    pending: Box<dyn PendingWrite>,
}

/// Why a file part could not be received.
pub(crate) enum ReceiveError {
    /// The request body broke off (the client went away, or the body hit its limit).
    Body(io::Error),
    /// The file itself is refused (type, size, structure) or the store failed.
    Refused(Error),
}

/// Streams one file part into the store: checks its type by its first bytes, refuses it
/// past [`MAX_FILE_BYTES`], removes identifying metadata and hashes what is kept.
pub(crate) async fn receive<S>(
    services: &SharedServices,
    mut body: S,
) -> std::result::Result<Received, ReceiveError>
where
    S: Stream<Item = io::Result<Bytes>> + Send + Unpin,
{
    // The type decides the cleaner: read until the longest signature is in hand.
    let mut head: Vec<Bytes> = Vec::new();
    let mut head_len = 0;
    while head_len < 8 {
        match body.next().await {
            Some(Ok(b)) => {
                head_len += b.len();
                head.push(b);
            }
            Some(Err(e)) => return Err(ReceiveError::Body(e)),
            None => break,
        }
    }
    let first: Vec<u8> = head
        .iter()
        .flat_map(|b| b.iter().copied())
        .take(8)
        .collect();
    let kind = clean::sniff(&first).ok_or_else(|| {
        ReceiveError::Refused(Error::UnsupportedMediaType(
            "only JPEG, PNG, GIF and PDF files are accepted".into(),
        ))
    })?;

    let id = Uuid::now_v7();
    let mut pending = services
        .stores
        .media
        .begin(id)
        .await
        .map_err(|e| ReceiveError::Refused(Error::internal(e)))?;

    let (to_cleaner, from_body) = mpsc::channel::<io::Result<Bytes>>(QUEUED_CHUNKS);
    let (to_store, from_cleaner) = mpsc::channel::<Bytes>(1);
    let cleaner = tokio::task::spawn_blocking(move || {
        let mut input = ChannelReader {
            rx: from_body,
            current: Bytes::new(),
        };
        let mut output = PieceWriter {
            tx: to_store,
            buf: Vec::with_capacity(PIECE_BYTES),
            hash: Sha256::new(),
            size: 0,
        };
        clean::copy_clean(kind, &mut input, &mut output)?;
        output.finish()
    });

    // Feeds the cleaner, counting raw bytes against the limit. A cleaner that stopped
    // early (a broken image) closes its end; its own result says why.
    let feed = async move {
        let mut total = 0u64;
        let mut cleaner_done = false;
        let mut chunks = futures_util::stream::iter(head.into_iter().map(Ok)).chain(body);
        // Read to the end even once the cleaner is done (a JPEG ends at its end marker),
        // so the limit holds for the part as sent.
        while let Some(chunk) = chunks.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = to_cleaner.send(Err(io::Error::other("cut"))).await;
                    return Err(ReceiveError::Body(e));
                }
            };
            total += chunk.len() as u64;
            if total > MAX_FILE_BYTES {
                let _ = to_cleaner.send(Err(io::Error::other("too large"))).await;
                return Err(ReceiveError::Refused(Error::PayloadTooLarge(format!(
                    "a file may hold at most {MAX_FILE_BYTES} bytes (10 MiB)"
                ))));
            }
            if !cleaner_done && to_cleaner.send(Ok(chunk)).await.is_err() {
                cleaner_done = true;
            }
        }
        Ok(())
    };
    // Writes what the cleaner hands over; a failure closes the channel, which stops the
    // cleaner, which stops the feed.
    let store = async {
        // Owned here, so that a failed write drops it and the cleaner stops.
        let mut from_cleaner = from_cleaner;
        while let Some(piece) = from_cleaner.recv().await {
            pending.write(piece).await?;
        }
        anyhow::Ok(())
    };
    let (fed, stored) = tokio::join!(feed, store);
    let outcome = match (cleaner.await, fed, stored) {
        (Err(e), _, _) => Err(ReceiveError::Refused(Error::internal(e))),
        (_, Err(e), _) => Err(e),
        (_, _, Err(e)) => Err(ReceiveError::Refused(Error::internal(e))),
        // A broken structure, or a file that ends in the middle of one.
        (Ok(Err(e)), _, _)
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
            ) =>
        {
            Err(ReceiveError::Refused(Error::bad_input(
                "file",
                format!("the file is not a valid {}: {e}", kind.content_type()),
            )))
        }
        (Ok(Err(e)), _, _) => Err(ReceiveError::Refused(Error::internal(e))),
        (Ok(Ok(cleaned)), Ok(()), Ok(())) => Ok(cleaned),
    };
    let (size, sha256) = match outcome {
        Ok(cleaned) => cleaned,
        Err(e) => {
            // Removed before the refusal is answered, so a client that checks finds
            // nothing.
            pending.abort().await;
            return Err(e);
        }
    };
    tracing::debug!(media = %id, bytes = size, "upload received into the store");
    Ok(Received {
        id,
        kind,
        size,
        sha256,
        pending,
    })
}

/// The cleaner's input: body chunks from the channel. The end of the channel is the end
/// of the file; an error item (the body broke off) is an error, never a short file.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// The cleaner's output: hashed, counted, and sent to the store in pieces.
struct PieceWriter {
    tx: mpsc::Sender<Bytes>,
    /// One piece's worth, allocated once per piece (a piece sent is owned by the store).
    buf: Vec<u8>,
    hash: Sha256,
    size: u64,
}

impl PieceWriter {
    fn send(&mut self, piece: Bytes) -> io::Result<()> {
        self.tx
            .blocking_send(piece)
            .map_err(|_| io::Error::other("the store stopped taking the upload"))
    }

    /// Sends what is left; the size and hex SHA-256 of everything written.
    fn finish(mut self) -> io::Result<(u64, String)> {
        if !self.buf.is_empty() {
            let rest = Bytes::from(std::mem::take(&mut self.buf));
            self.send(rest)?;
        }
        Ok((self.size, hex::encode(self.hash.finalize_reset())))
    }
}

impl Write for PieceWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        // Never past a piece's end, so the buffer keeps its one allocation.
        let n = data.len().min(PIECE_BYTES - self.buf.len());
        self.hash.update(&data[..n]);
        self.size += n as u64;
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == PIECE_BYTES {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE_BYTES));
            self.send(Bytes::from(full))?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One file part of a request, as the operations find it.
pub(crate) struct Arrival {
    filename: String,
    state: tokio::sync::Mutex<State>,
}

enum State {
    Ready(Received),
    Refused(Error),
    /// Stored once: a second `uploadMedia` of the same part stores a copy of this.
    Stored(StoredMedia),
    /// A store that failed; the error was answered to the first taker.
    Failed,
}

impl Arrival {
    pub(crate) fn new(
        filename: String,
        received: std::result::Result<Received, Error>,
    ) -> Arc<Arrival> {
        Arc::new(Arrival {
            filename,
            state: tokio::sync::Mutex::new(match received {
                Ok(r) => State::Ready(r),
                Err(e) => State::Refused(e),
            }),
        })
    }
}

impl Arrival {
    /// The name the client gave the file (not yet sanitised).
    pub(crate) fn filename(&self) -> &str {
        &self.filename
    }
}

/// Removes the bytes of the arrivals no operation took: called once the operations have
/// run, so a client finds nothing of them when it reads the answer.
pub(crate) async fn discard(arrivals: &[Arc<Arrival>]) {
    for arrival in arrivals {
        let mut state = arrival.state.lock().await;
        if let State::Ready(received) = std::mem::replace(&mut *state, State::Failed) {
            received.pending.abort().await;
        }
    }
}

/// The file parts of one GraphQL request, by the index of its uploads (what the `Upload`
/// scalar carries). One part may fill several variables: their indexes share an arrival.
#[derive(Default)]
pub(crate) struct Inbox(HashMap<usize, Arc<Arrival>>);

impl Inbox {
    pub(crate) fn insert(&mut self, index: usize, arrival: Arc<Arrival>) {
        self.0.insert(index, arrival);
    }

    pub(crate) fn get(&self, index: usize) -> Option<Arc<Arrival>> {
        self.0.get(&index).cloned()
    }
}

/// Makes `arrival` a file of `owner`'s: the first time by writing its metadata, later
/// times (the same part in several `uploadMedia` fields) as a copy of the first.
pub(crate) async fn store(
    services: &SharedServices,
    owner: Uuid,
    arrival: &Arrival,
    visibility: &'static str,
) -> Result<StoredMedia> {
    let mut state = arrival.state.lock().await;
    match std::mem::replace(&mut *state, State::Failed) {
        State::Ready(received) => {
            let meta = StoredMedia {
                id: received.id,
                owner,
                filename: sanitize_filename(&arrival.filename),
                content_type: received.kind.content_type().into(),
                size: received.size,
                sha256: received.sha256,
                visibility: visibility.into(),
                created_at: now(),
            };
            received
                .pending
                .commit(&meta)
                .await
                .map_err(Error::internal)?;
            *state = State::Stored(meta.clone());
            Ok(meta)
        }
        State::Stored(first) => {
            *state = State::Stored(first.clone());
            copy(services, &first, visibility).await
        }
        State::Refused(e) => {
            let again = repeat(&e);
            *state = State::Refused(e);
            Err(again)
        }
        State::Failed => Err(Error::internal(anyhow::anyhow!(
            "this upload could not be stored"
        ))),
    }
}

/// A second file with the bytes of `first`, read back from the store.
async fn copy(
    services: &SharedServices,
    first: &StoredMedia,
    visibility: &'static str,
) -> Result<StoredMedia> {
    let store = &services.stores.media;
    let meta = StoredMedia {
        id: Uuid::now_v7(),
        visibility: visibility.into(),
        created_at: now(),
        ..first.clone()
    };
    let mut pending = store.begin(meta.id).await.map_err(Error::internal)?;
    let mut bytes = store
        .read(first, 0, first.size)
        .await
        .map_err(Error::internal)?;
    while let Some(piece) = bytes.next().await {
        pending
            .write(piece.map_err(Error::internal)?)
            .await
            .map_err(Error::internal)?;
    }
    pending.commit(&meta).await.map_err(Error::internal)?;
    Ok(meta)
}

/// The same refusal again, for the next field that uses a refused part.
fn repeat(e: &Error) -> Error {
    match e {
        Error::UnsupportedMediaType(m) => Error::UnsupportedMediaType(m.clone()),
        Error::PayloadTooLarge(m) => Error::PayloadTooLarge(m.clone()),
        Error::BadUserInput { message, field } => Error::BadUserInput {
            message: message.clone(),
            field: field.clone(),
        },
        Error::Unauthenticated(m) => Error::Unauthenticated(m.clone()),
        Error::RateLimited { retry_after } => Error::RateLimited {
            retry_after: *retry_after,
        },
        _ => Error::internal(anyhow::anyhow!("this upload could not be stored")),
    }
}
