//! The limit `scripts/bench media` measures the API against: the same bytes written to and
//! read from GridFS with the driver alone, no HTTP and no GraphQL.
//!
//! Usage: gridfs_direct <mongodb url> <database> <file> <rounds>
//! Prints one line per round: `upload_seconds download_seconds`.

use std::time::Instant;

use futures_util::{AsyncReadExt, AsyncWriteExt};
use mongodb::bson::Bson;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, database, file, rounds] = args.as_slice() else {
        anyhow::bail!("usage: gridfs_direct <mongodb url> <database> <file> <rounds>");
    };
    let bytes = std::fs::read(file)?;
    let client = mongodb::Client::with_uri_str(url).await?;
    let bucket = client.database(database).gridfs_bucket(None);
    for _ in 0..rounds.parse::<usize>()? {
        let id = Bson::String(uuid::Uuid::now_v7().to_string());
        let started = Instant::now();
        let mut upload = bucket
            .open_upload_stream("direct.bin")
            .id(id.clone())
            .chunk_size_bytes(255 * 1024)
            .await?;
        // The API hands the upload stream four chunks at a time; so does this.
        for piece in bytes.chunks(4 * 255 * 1024) {
            upload.write_all(piece).await?;
        }
        upload.close().await?;
        let up = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let mut download = bucket.open_download_stream(id.clone()).await?;
        let mut back = Vec::with_capacity(bytes.len());
        download.read_to_end(&mut back).await?;
        let down = started.elapsed().as_secs_f64();
        anyhow::ensure!(back == bytes, "the bytes read back differ");
        bucket.delete(id).await?;
        println!("{up:.4} {down:.4}");
    }
    Ok(())
}
