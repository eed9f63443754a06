//! Where media bytes live: MongoDB GridFS in production, plain files under `DATA_DIR`
//! when embedded. Both sit behind [`MediaStore`] so the rest of the server never knows
//! which one it talks to. Each file's metadata (owner, visibility, type, size, sha256,
//! name, time) lives with its bytes: `fs.files.metadata` in GridFS, a JSON file beside
//! the bytes locally.
//!
//! Bytes arrive checked and cleaned (`services::media`) in pieces while the request body
//! is still coming in, through a [`PendingWrite`], and leave as a stream of chunks: no
//! file is ever held whole in memory. A file exists once its metadata is written, which
//! is the last step of a write.

use std::{
    collections::HashMap,
    io,
    path::{Path, PathBuf},
    pin::Pin,
    time::Duration,
};

use anyhow::Context;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures_util::{stream, Stream, TryStreamExt};
use mongodb::{
    bson::{doc, Bson, Document},
    options::{ClientOptions, IndexOptions},
    Client, IndexModel,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use uuid::Uuid;

/// What the store keeps of a file besides its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredMedia {
    pub id: Uuid,
    pub owner: Uuid,
    /// Sanitised, for display and `Content-Disposition` only.
    pub filename: String,
    /// Decided by the bytes (`services::media::sniff`), never by the client.
    pub content_type: String,
    /// Of the stored bytes (after metadata removal).
    pub size: u64,
    /// Hex SHA-256 of the stored bytes: the download's `ETag`.
    pub sha256: String,
    /// `PUBLIC` or `PRIVATE`.
    pub visibility: String,
    pub created_at: DateTime<Utc>,
}

/// The bytes of a file, from an offset: a stream of chunks in order.
pub(crate) type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

#[async_trait::async_trait]
pub(crate) trait MediaStore: Send + Sync + 'static {
    /// Answers `Ok` when the store can serve reads and writes right now.
    async fn ping(&self) -> anyhow::Result<()>;

    /// Starts writing the bytes of a new file `id` (a fresh UUID v7, never reused).
    async fn begin(&self, id: Uuid) -> anyhow::Result<Box<dyn PendingWrite>>;

    async fn get(&self, id: Uuid) -> anyhow::Result<Option<StoredMedia>>;

    /// Several files in one round trip (avatars of a page of users).
    async fn get_many(&self, ids: &[Uuid]) -> anyhow::Result<HashMap<Uuid, StoredMedia>>;

    /// `owner`'s files, newest first, those before `before` (an id) when given, at most
    /// `limit`; and how many they have in all.
    async fn list_owner(
        &self,
        owner: Uuid,
        before: Option<Uuid>,
        limit: u64,
    ) -> anyhow::Result<(Vec<StoredMedia>, u64)>;

    async fn set_visibility(&self, id: Uuid, visibility: &str) -> anyhow::Result<()>;

    /// Removes the file and its bytes; false when there was none.
    async fn delete(&self, id: Uuid) -> anyhow::Result<bool>;

    /// The bytes of `meta`'s file from `start` (inclusive) to `end` (exclusive).
    async fn read(&self, meta: &StoredMedia, start: u64, end: u64) -> anyhow::Result<ByteStream>;

    /// Removes what interrupted uploads left behind (older than `age`); how many.
    async fn sweep(&self, age: Duration) -> anyhow::Result<u64>;

    /// How many files the store holds and their stored bytes (uploads in progress are not
    /// files yet), for the admin statistics.
    async fn totals(&self) -> anyhow::Result<(u64, u64)>;
    /// Forgets `owner` once their files are deleted: whatever the store keeps per owner
    /// besides the files (nothing in GridFS, the owner's folder in the local store).
    async fn forget_owner(&self, _owner: Uuid) -> anyhow::Result<()> {
        Ok(())
    }
}

/// A file being written. Its bytes go to the store as they arrive; the file exists only
/// once [`commit`](PendingWrite::commit) writes its metadata (GridFS: the files document,
/// last, as the driver's own upload stream does). Dropped without a commit, it removes
/// what it wrote; a crash leaves bytes without metadata, which `sweep` removes later.
#[async_trait::async_trait]
pub(crate) trait PendingWrite: Send + Sync {
    /// Appends `piece` (of any length).
    async fn write(&mut self, piece: Bytes) -> anyhow::Result<()>;

    /// Makes the file exist as `meta` describes (`meta.id` is the id given to `begin`).
    /// Nothing is left behind when it fails.
    async fn commit(self: Box<Self>, meta: &StoredMedia) -> anyhow::Result<()>;

    /// Removes what was written, now (dropping does it too, in the background).
    async fn abort(self: Box<Self>);
}

/// True when a UUID v7's time lies more than `age` in the past (or it has none).
fn older_than(id: Uuid, age: Duration) -> bool {
    let Some(ts) = id.get_timestamp() else {
        return true;
    };
    let (secs, nanos) = ts.to_unix();
    let made = DateTime::<Utc>::from_timestamp(secs as i64, nanos).unwrap_or_default();
    let cutoff = Utc::now() - chrono::Duration::from_std(age).unwrap_or_default();
    made < cutoff
}

// ---------------------------------------------------------------------------------- GridFS

/// GridFS in the configured MongoDB database (bucket `fs`, as the old media service used).
/// File ids are the media's UUID v7 as a string: time-ordered, so `myMedia` pages by id,
/// and never reused (a failed close of a reused id would delete the earlier file's chunks).
pub(crate) struct GridFsStore {
    client: Client,
    database: String,
}

/// The driver's default chunk size.
const CHUNK_SIZE: usize = 255 * 1024;
/// Chunks inserted per round trip: four, as the driver's upload stream does with 1 MiB
/// writes.
const CHUNKS_PER_INSERT: usize = 4;

impl GridFsStore {
    pub(crate) async fn connect(url: &str, database: &str) -> anyhow::Result<GridFsStore> {
        let mut options = ClientOptions::parse(url)
            .await
            .context("invalid MongoDB URL")?;
        options.server_selection_timeout = Some(Duration::from_secs(5));
        options.connect_timeout = Some(Duration::from_secs(5));
        options.app_name = Some("jolmood-api".into());
        let client = Client::with_options(options)?;
        let store = GridFsStore {
            client,
            database: database.to_string(),
        };
        store.ping().await?;
        store.ensure_indexes().await?;
        Ok(store)
    }

    fn db(&self) -> mongodb::Database {
        self.client.database(&self.database)
    }

    fn files(&self) -> mongodb::Collection<Document> {
        self.db().collection("fs.files")
    }

    fn chunks(&self) -> mongodb::Collection<Document> {
        self.db().collection("fs.chunks")
    }

    /// The driver creates the chunks index without `unique`; a unique one comes first so
    /// no two chunks can claim the same place. `myMedia` reads by owner, newest first.
    async fn ensure_indexes(&self) -> anyhow::Result<()> {
        self.chunks()
            .create_index(
                IndexModel::builder()
                    .keys(doc! { "files_id": 1, "n": 1 })
                    .options(IndexOptions::builder().unique(true).build())
                    .build(),
            )
            .await
            .context("creating the unique fs.chunks index")?;
        self.files()
            .create_index(
                IndexModel::builder()
                    .keys(doc! { "metadata.owner": 1, "_id": -1 })
                    .build(),
            )
            .await
            .context("creating the fs.files owner index")?;
        Ok(())
    }

    fn to_doc(meta: &StoredMedia) -> Document {
        doc! {
            "owner": meta.owner.to_string(),
            "filename": &meta.filename,
            "contentType": &meta.content_type,
            "size": meta.size as i64,
            "sha256": &meta.sha256,
            "visibility": &meta.visibility,
            "createdAt": meta.created_at.to_rfc3339(),
        }
    }

    fn from_doc(files: &Document) -> Option<StoredMedia> {
        let id = Uuid::parse_str(files.get_str("_id").ok()?).ok()?;
        let m = files.get_document("metadata").ok()?;
        Some(StoredMedia {
            id,
            owner: Uuid::parse_str(m.get_str("owner").ok()?).ok()?,
            filename: m.get_str("filename").ok()?.to_string(),
            content_type: m.get_str("contentType").ok()?.to_string(),
            size: u64::try_from(m.get_i64("size").ok()?).ok()?,
            sha256: m.get_str("sha256").ok()?.to_string(),
            visibility: m.get_str("visibility").ok()?.to_string(),
            created_at: DateTime::parse_from_rfc3339(m.get_str("createdAt").ok()?)
                .ok()?
                .with_timezone(&Utc),
        })
    }
}

#[async_trait::async_trait]
impl MediaStore for GridFsStore {
    async fn ping(&self) -> anyhow::Result<()> {
        self.db().run_command(doc! { "ping": 1 }).await?;
        Ok(())
    }

    async fn begin(&self, id: Uuid) -> anyhow::Result<Box<dyn PendingWrite>> {
        Ok(Box::new(GridFsWrite {
            files: self.files(),
            chunks: self.chunks(),
            id: id.to_string(),
            ready: Vec::new(),
            carry: BytesMut::new(),
            next_n: 0,
            length: 0,
            committed: false,
        }))
    }

    async fn get(&self, id: Uuid) -> anyhow::Result<Option<StoredMedia>> {
        let found = self
            .files()
            .find_one(doc! { "_id": id.to_string() })
            .await?;
        Ok(found.as_ref().and_then(Self::from_doc))
    }

    async fn get_many(&self, ids: &[Uuid]) -> anyhow::Result<HashMap<Uuid, StoredMedia>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let keys: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let docs: Vec<Document> = self
            .files()
            .find(doc! { "_id": { "$in": keys } })
            .await?
            .try_collect()
            .await?;
        Ok(docs
            .iter()
            .filter_map(Self::from_doc)
            .map(|m| (m.id, m))
            .collect())
    }

    async fn list_owner(
        &self,
        owner: Uuid,
        before: Option<Uuid>,
        limit: u64,
    ) -> anyhow::Result<(Vec<StoredMedia>, u64)> {
        let all = doc! { "metadata.owner": owner.to_string() };
        let total = self.files().count_documents(all.clone()).await?;
        let mut filter = all;
        if let Some(before) = before {
            filter.insert("_id", doc! { "$lt": before.to_string() });
        }
        let docs: Vec<Document> = self
            .files()
            .find(filter)
            .sort(doc! { "_id": -1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await?
            .try_collect()
            .await?;
        Ok((docs.iter().filter_map(Self::from_doc).collect(), total))
    }

    async fn set_visibility(&self, id: Uuid, visibility: &str) -> anyhow::Result<()> {
        self.files()
            .update_one(
                doc! { "_id": id.to_string() },
                doc! { "$set": { "metadata.visibility": visibility } },
            )
            .await?;
        Ok(())
    }

    async fn delete(&self, id: Uuid) -> anyhow::Result<bool> {
        let removed = self
            .files()
            .delete_one(doc! { "_id": id.to_string() })
            .await?
            .deleted_count;
        self.chunks()
            .delete_many(doc! { "files_id": id.to_string() })
            .await?;
        Ok(removed > 0)
    }

    /// GridFS downloads have no offset: the read starts at the chunk that holds `start`.
    async fn read(&self, meta: &StoredMedia, start: u64, end: u64) -> anyhow::Result<ByteStream> {
        let chunk = CHUNK_SIZE as u64;
        let files = self
            .files()
            .find_one(doc! { "_id": meta.id.to_string() })
            .await?
            .context("the file is gone")?;
        let chunk = files
            .get_i32("chunkSize")
            .ok()
            .and_then(|c| u64::try_from(c).ok())
            .filter(|c| *c > 0)
            .unwrap_or(chunk);
        if end <= start {
            return Ok(Box::pin(stream::empty()));
        }
        let first = start / chunk;
        let last = (end - 1) / chunk;
        let cursor = self
            .chunks()
            .find(doc! {
                "files_id": meta.id.to_string(),
                "n": {
                    "$gte": i64::try_from(first).unwrap_or(i64::MAX),
                    "$lte": i64::try_from(last).unwrap_or(i64::MAX),
                },
            })
            .sort(doc! { "n": 1 })
            .await?;
        let mut offset = first * chunk;
        let stream = cursor
            .map_err(io::Error::other)
            .map_ok(move |chunk_doc| {
                let data = match chunk_doc.get("data") {
                    Some(Bson::Binary(b)) => b.bytes.clone(),
                    _ => Vec::new(),
                };
                let len = data.len() as u64;
                let from = start.saturating_sub(offset).min(len);
                let to = end.saturating_sub(offset).min(len);
                offset += len;
                Bytes::from(data).slice(from as usize..to.max(from) as usize)
            })
            .try_filter(|b| futures_util::future::ready(!b.is_empty()));
        Ok(Box::pin(stream))
    }

    /// One aggregation over `fs.files`: a file exists once its files document does.
    async fn totals(&self) -> anyhow::Result<(u64, u64)> {
        let mut cursor = self
            .files()
            .aggregate(vec![doc! { "$group": {
                "_id": Bson::Null,
                "files": { "$sum": 1 },
                "bytes": { "$sum": "$metadata.size" },
            } }])
            .await?;
        let Some(group) = cursor.try_next().await? else {
            return Ok((0, 0));
        };
        let number = |key: &str| -> u64 {
            match group.get(key) {
                Some(Bson::Int32(n)) => u64::try_from(*n).unwrap_or(0),
                Some(Bson::Int64(n)) => u64::try_from(*n).unwrap_or(0),
                Some(Bson::Double(n)) if *n >= 0.0 => *n as u64,
                _ => 0,
            }
        };
        Ok((number("files"), number("bytes")))
    }

    /// Chunks without a files document are what a crash mid-upload leaves; their ids carry
    /// the upload's time (UUID v7), so only those older than `age` go: younger ones may
    /// belong to an upload still running.
    async fn sweep(&self, age: Duration) -> anyhow::Result<u64> {
        // Every file has a chunk 0: walk those (a cursor, however many files there are)
        // and ask for their files documents in batches.
        let mut firsts = self
            .chunks()
            .find(doc! { "n": 0 })
            .projection(doc! { "files_id": 1, "_id": 0 })
            .await?;
        let mut removed = 0;
        let mut batch: Vec<String> = Vec::new();
        loop {
            let next = firsts.try_next().await?;
            if let Some(key) = next
                .as_ref()
                .and_then(|d| d.get_str("files_id").ok())
                .filter(|k| Uuid::parse_str(k).is_ok_and(|u| older_than(u, age)))
            {
                batch.push(key.to_string());
            }
            if batch.len() >= 500 || (next.is_none() && !batch.is_empty()) {
                let present: Vec<Document> = self
                    .files()
                    .find(doc! { "_id": { "$in": &batch } })
                    .projection(doc! { "_id": 1 })
                    .await?
                    .try_collect()
                    .await?;
                let present: std::collections::HashSet<&str> = present
                    .iter()
                    .filter_map(|d| d.get_str("_id").ok())
                    .collect();
                let orphans: Vec<&String> = batch
                    .iter()
                    .filter(|k| !present.contains(k.as_str()))
                    .collect();
                if !orphans.is_empty() {
                    removed += self
                        .chunks()
                        .delete_many(doc! { "files_id": { "$in": orphans } })
                        .await?
                        .deleted_count;
                }
                batch.clear();
            }
            if next.is_none() {
                return Ok(removed);
            }
        }
    }
}

/// A GridFS file being written chunk by chunk, as the GridFS spec lays it out: chunk
/// documents `{files_id, n, data}` of [`CHUNK_SIZE`] bytes (the last one shorter), then
/// the files document. Written by hand rather than through the driver's upload stream,
/// whose metadata must be known before the first byte (here the size, hash and owner's
/// choices are known only at the end).
struct GridFsWrite {
    files: mongodb::Collection<Document>,
    chunks: mongodb::Collection<Document>,
    id: String,
    /// Whole chunks not inserted yet (slices of the pieces written: no copy).
    ready: Vec<Bytes>,
    /// The start of a chunk that the next piece completes.
    carry: BytesMut,
    next_n: i32,
    length: u64,
    committed: bool,
}

impl GridFsWrite {
    /// Inserts the chunks ready, in one round trip.
    async fn insert_ready(&mut self) -> anyhow::Result<()> {
        if self.ready.is_empty() {
            return Ok(());
        }
        let mut docs = Vec::with_capacity(self.ready.len());
        for data in self.ready.drain(..) {
            docs.push(doc! {
                "files_id": &self.id,
                "n": self.next_n,
                "data": Bson::Binary(mongodb::bson::Binary {
                    subtype: mongodb::bson::spec::BinarySubtype::Generic,
                    bytes: data.to_vec(),
                }),
            });
            self.next_n += 1;
        }
        self.chunks.insert_many(docs).await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl PendingWrite for GridFsWrite {
    async fn write(&mut self, mut piece: Bytes) -> anyhow::Result<()> {
        self.length += piece.len() as u64;
        if !self.carry.is_empty() {
            let take = (CHUNK_SIZE - self.carry.len()).min(piece.len());
            self.carry.extend_from_slice(&piece.split_to(take));
            if self.carry.len() == CHUNK_SIZE {
                self.ready.push(self.carry.split().freeze());
            }
        }
        while piece.len() >= CHUNK_SIZE {
            self.ready.push(piece.split_to(CHUNK_SIZE));
        }
        self.carry.extend_from_slice(&piece);
        if self.ready.len() >= CHUNKS_PER_INSERT {
            self.insert_ready().await?;
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>, meta: &StoredMedia) -> anyhow::Result<()> {
        if !self.carry.is_empty() {
            let last = self.carry.split().freeze();
            self.ready.push(last);
        }
        self.insert_ready().await?;
        self.files
            .insert_one(doc! {
                "_id": &self.id,
                "length": i64::try_from(self.length)?,
                "chunkSize": CHUNK_SIZE as i32,
                "uploadDate": mongodb::bson::DateTime::now(),
                "filename": &meta.filename,
                "metadata": GridFsStore::to_doc(meta),
            })
            .await?;
        self.committed = true;
        Ok(())
    }

    async fn abort(mut self: Box<Self>) {
        if self.next_n > 0 {
            if let Err(e) = self.chunks.delete_many(doc! { "files_id": &self.id }).await {
                tracing::warn!(error = %e, media = %self.id, "removing an unfinished upload failed; the sweeper will");
            }
        }
        self.committed = true;
    }
}

impl Drop for GridFsWrite {
    /// An upload that did not commit takes its chunks with it.
    fn drop(&mut self) {
        if self.committed || self.next_n == 0 {
            return;
        }
        let chunks = self.chunks.clone();
        let id = std::mem::take(&mut self.id);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = chunks.delete_many(doc! { "files_id": &id }).await {
                    tracing::warn!(error = %e, media = %id, "removing an unfinished upload failed; the sweeper will");
                }
            });
        }
    }
}

// ----------------------------------------------------------------------------- local files

/// Files under a local folder, for the embedded default: `files/<id>` holds the bytes,
/// `meta/<id>.json` the metadata (a file exists once its metadata does), `owners/<owner>/
/// <id>` lists an owner's files for `myMedia`, and `tmp/` holds uploads in progress.
pub(crate) struct LocalStore {
    root: PathBuf,
}

/// A local file being written into `tmp/`; a commit renames it into `files/` and then
/// writes its metadata (the file exists from then on).
struct LocalWrite {
    store: LocalStore,
    tmp: PathBuf,
    file: tokio::fs::File,
    committed: bool,
}

#[async_trait::async_trait]
impl PendingWrite for LocalWrite {
    async fn write(&mut self, piece: Bytes) -> anyhow::Result<()> {
        self.file.write_all(&piece).await?;
        Ok(())
    }

    async fn commit(mut self: Box<Self>, meta: &StoredMedia) -> anyhow::Result<()> {
        let store = &self.store;
        let written: anyhow::Result<()> = async {
            // tokio writes in the background: `flush` reports a failed write, which
            // `sync_all` alone would keep to itself.
            self.file.flush().await?;
            self.file.sync_all().await?;
            tokio::fs::rename(&self.tmp, store.bytes_path(meta.id)).await?;
            tokio::fs::create_dir_all(store.owner_dir(meta.owner)).await?;
            tokio::fs::write(store.owner_dir(meta.owner).join(meta.id.to_string()), b"").await?;
            store.write_meta(meta).await
        }
        .await;
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(store.bytes_path(meta.id)).await;
            let _ =
                tokio::fs::remove_file(store.owner_dir(meta.owner).join(meta.id.to_string())).await;
            return Err(e);
        }
        self.committed = true;
        Ok(())
    }

    async fn abort(mut self: Box<Self>) {
        let _ = tokio::fs::remove_file(&self.tmp).await;
        self.committed = true;
    }
}

impl Drop for LocalWrite {
    /// An upload that did not commit takes its bytes with it (a failed commit may have
    /// moved them already: removing a missing file is fine).
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl LocalStore {
    pub(crate) async fn open(root: PathBuf) -> anyhow::Result<LocalStore> {
        for dir in ["files", "meta", "owners", "tmp"] {
            tokio::fs::create_dir_all(root.join(dir)).await?;
        }
        Ok(LocalStore { root })
    }

    fn bytes_path(&self, id: Uuid) -> PathBuf {
        self.root.join("files").join(id.to_string())
    }

    fn meta_path(&self, id: Uuid) -> PathBuf {
        self.root.join("meta").join(format!("{id}.json"))
    }

    fn owner_dir(&self, owner: Uuid) -> PathBuf {
        self.root.join("owners").join(owner.to_string())
    }

    async fn write_meta(&self, meta: &StoredMedia) -> anyhow::Result<()> {
        let tmp = self.root.join("tmp").join(format!("{}.json", meta.id));
        tokio::fs::write(&tmp, serde_json::to_vec(meta)?).await?;
        tokio::fs::rename(&tmp, self.meta_path(meta.id)).await?;
        Ok(())
    }

    async fn read_meta(path: &Path) -> anyhow::Result<Option<StoredMedia>> {
        match tokio::fs::read(path).await {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait::async_trait]
impl MediaStore for LocalStore {
    async fn ping(&self) -> anyhow::Result<()> {
        let meta = tokio::fs::metadata(&self.root).await?;
        anyhow::ensure!(meta.is_dir(), "{} is not a directory", self.root.display());
        Ok(())
    }

    async fn begin(&self, id: Uuid) -> anyhow::Result<Box<dyn PendingWrite>> {
        let tmp = self.root.join("tmp").join(id.to_string());
        let file = tokio::fs::File::create(&tmp).await?;
        Ok(Box::new(LocalWrite {
            store: LocalStore {
                root: self.root.clone(),
            },
            tmp,
            file,
            committed: false,
        }))
    }

    async fn get(&self, id: Uuid) -> anyhow::Result<Option<StoredMedia>> {
        Self::read_meta(&self.meta_path(id)).await
    }

    async fn get_many(&self, ids: &[Uuid]) -> anyhow::Result<HashMap<Uuid, StoredMedia>> {
        let mut out = HashMap::new();
        for id in ids {
            if let Some(m) = self.get(*id).await? {
                out.insert(*id, m);
            }
        }
        Ok(out)
    }

    async fn list_owner(
        &self,
        owner: Uuid,
        before: Option<Uuid>,
        limit: u64,
    ) -> anyhow::Result<(Vec<StoredMedia>, u64)> {
        let mut ids = Vec::new();
        match tokio::fs::read_dir(self.owner_dir(owner)).await {
            Ok(mut dir) => {
                while let Some(entry) = dir.next_entry().await? {
                    if let Some(id) = entry
                        .file_name()
                        .to_str()
                        .and_then(|n| Uuid::parse_str(n).ok())
                    {
                        ids.push(id);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let total = ids.len() as u64;
        let mut page = Vec::new();
        for id in ids.into_iter().filter(|id| before.is_none_or(|b| *id < b)) {
            if page.len() as u64 >= limit {
                break;
            }
            if let Some(m) = self.get(id).await? {
                page.push(m);
            }
        }
        Ok((page, total))
    }

    async fn set_visibility(&self, id: Uuid, visibility: &str) -> anyhow::Result<()> {
        if let Some(mut meta) = self.get(id).await? {
            meta.visibility = visibility.to_string();
            self.write_meta(&meta).await?;
        }
        Ok(())
    }

    async fn forget_owner(&self, owner: Uuid) -> anyhow::Result<()> {
        match tokio::fs::remove_dir_all(self.owner_dir(owner)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn delete(&self, id: Uuid) -> anyhow::Result<bool> {
        let Some(meta) = self.get(id).await? else {
            return Ok(false);
        };
        tokio::fs::remove_file(self.meta_path(id)).await?;
        let _ = tokio::fs::remove_file(self.owner_dir(meta.owner).join(id.to_string())).await;
        let _ = tokio::fs::remove_file(self.bytes_path(id)).await;
        Ok(true)
    }

    async fn read(&self, meta: &StoredMedia, start: u64, end: u64) -> anyhow::Result<ByteStream> {
        let mut file = tokio::fs::File::open(self.bytes_path(meta.id)).await?;
        file.seek(io::SeekFrom::Start(start)).await?;
        let reader = file.take(end.saturating_sub(start));
        let stream = stream::try_unfold(reader, |mut reader| async move {
            let mut buf = vec![0u8; 64 * 1024];
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                return Ok(None);
            }
            buf.truncate(n);
            Ok(Some((Bytes::from(buf), reader)))
        });
        Ok(Box::pin(stream))
    }

    /// A file exists once its metadata file does: count those and add up their sizes.
    async fn totals(&self) -> anyhow::Result<(u64, u64)> {
        let (mut files, mut bytes) = (0, 0);
        let mut dir = tokio::fs::read_dir(self.root.join("meta")).await?;
        while let Some(entry) = dir.next_entry().await? {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            // A file deleted meanwhile is simply not counted.
            if let Some(meta) = Self::read_meta(&path).await? {
                files += 1;
                bytes += meta.size;
            }
        }
        Ok((files, bytes))
    }

    /// Uploads in progress live in `tmp/`; bytes without metadata are what a crash between
    /// the two renames leaves. Both go once older than `age`.
    async fn sweep(&self, age: Duration) -> anyhow::Result<u64> {
        let mut removed = 0;
        let mut dir = tokio::fs::read_dir(self.root.join("tmp")).await?;
        while let Some(entry) = dir.next_entry().await? {
            let old = entry
                .metadata()
                .await?
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|e| e > age);
            if old {
                tokio::fs::remove_file(entry.path()).await?;
                removed += 1;
            }
        }
        let mut dir = tokio::fs::read_dir(self.root.join("files")).await?;
        while let Some(entry) = dir.next_entry().await? {
            let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|n| Uuid::parse_str(n).ok())
            else {
                continue;
            };
            if older_than(id, age) && !tokio::fs::try_exists(self.meta_path(id)).await? {
                tokio::fs::remove_file(entry.path()).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
