//! Where media bytes live: MongoDB GridFS in production, plain files under `DATA_DIR`
//! when embedded. Both sit behind [`MediaStore`] so the rest of the server never knows
//! which one it talks to.
//!
//! The trait grows with the media domain (upload, streaming download, deletion); today it
//! carries what the health check needs.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use mongodb::{bson::doc, options::ClientOptions, Client};

#[async_trait::async_trait]
pub(crate) trait MediaStore: Send + Sync + 'static {
    /// Answers `Ok` when the store can serve reads and writes right now.
    async fn ping(&self) -> anyhow::Result<()>;
}

/// GridFS in the configured MongoDB database (bucket `fs`, as the old media service used).
pub(crate) struct GridFsStore {
    client: Client,
    database: String,
}

impl GridFsStore {
    pub(crate) async fn connect(url: &str, database: &str) -> anyhow::Result<GridFsStore> {
        let mut options = ClientOptions::parse(url)
            .await
            .context("invalid MongoDB URL")?;
        options.server_selection_timeout = Some(Duration::from_secs(5));
        options.connect_timeout = Some(Duration::from_secs(5));
        options.app_name = Some("jolmood-api".into());
        let store = GridFsStore {
            client: Client::with_options(options)?,
            database: database.to_string(),
        };
        store.ping().await?;
        Ok(store)
    }

    fn db(&self) -> mongodb::Database {
        self.client.database(&self.database)
    }
}

#[async_trait::async_trait]
impl MediaStore for GridFsStore {
    async fn ping(&self) -> anyhow::Result<()> {
        self.db().run_command(doc! { "ping": 1 }).await?;
        Ok(())
    }
}

/// Files under a local folder, for the embedded default.
pub(crate) struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub(crate) async fn open(root: PathBuf) -> anyhow::Result<LocalStore> {
        tokio::fs::create_dir_all(&root).await?;
        Ok(LocalStore { root })
    }
}

#[async_trait::async_trait]
impl MediaStore for LocalStore {
    async fn ping(&self) -> anyhow::Result<()> {
        let meta = tokio::fs::metadata(&self.root).await?;
        anyhow::ensure!(meta.is_dir(), "{} is not a directory", self.root.display());
        Ok(())
    }
}
