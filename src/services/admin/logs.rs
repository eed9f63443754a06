//! The WARN/ERROR log store (`adminLogs`): a task per app drains the telemetry layer's
//! channel into admin_db in batches, so a request that logs only pays for a copy into a
//! bounded channel. When admin_db is slow the channel fills and further events are
//! dropped and counted (`/metrics`), never waited for. Kept 30 days.

use chrono::Duration;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use tokio::sync::mpsc::Receiver;
use tracing::Instrument;
use uuid::Uuid;

use crate::{
    db::admin::log_entry,
    error::Result,
    services::{now, page::Page},
    telemetry::{LogRecord, WRITER_SPAN},
};

/// Events waiting for the writer, at most: the memory a burst may take.
pub(crate) const CHANNEL_CAPACITY: usize = 4_096;
/// Rows per insert.
const BATCH: usize = 256;
/// How long entries are kept (the original logging policy's 30 days).
const RETENTION_DAYS: i64 = 30;
/// Longest message kept, in characters: a log line is not a document.
const MESSAGE_MAX: usize = 4_000;

/// Writes what `rx` receives into admin_db until every sender is gone. Its own failures
/// are logged inside [`WRITER_SPAN`], which the layer does not copy, so a failing
/// admin_db cannot feed the channel it drains.
pub(crate) fn spawn_writer(admin_db: DatabaseConnection, mut rx: Receiver<LogRecord>) {
    let task = async move {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            if rx.recv_many(&mut batch, BATCH).await == 0 {
                return;
            }
            let rows = batch.drain(..).map(row).collect::<Vec<_>>();
            let n = rows.len();
            if let Err(err) = log_entry::Entity::insert_many(rows).exec(&admin_db).await {
                tracing::warn!(error = %err, lost = n, "could not write logs to admin_db");
            }
        }
    };
    tokio::spawn(task.instrument(tracing::error_span!(WRITER_SPAN)));
}

fn row(record: LogRecord) -> log_entry::ActiveModel {
    let mut message = record.message;
    if let Some((cut, _)) = message.char_indices().nth(MESSAGE_MAX) {
        message.truncate(cut);
    }
    // PostgreSQL text cannot hold NUL.
    let message = message.replace('\0', "");
    let fields = (!record.fields.is_empty()).then(|| {
        serde_json::Value::Object(record.fields)
            .to_string()
            .replace('\0', "")
    });
    log_entry::ActiveModel {
        id: Set(Uuid::now_v7()),
        level: Set(record.level.to_string()),
        message: Set(message),
        target: Set(Some(record.target)),
        at: Set(record.at),
        fields: Set(fields),
    }
}

/// One page of entries, newest first, of one level or both, and how many match.
pub(crate) async fn page(
    admin_db: &DatabaseConnection,
    level: Option<&str>,
    page: &Page,
) -> Result<(Vec<log_entry::Model>, i64)> {
    let mut query = log_entry::Entity::find();
    if let Some(level) = level {
        query = query.filter(log_entry::Column::Level.eq(level));
    }
    let total = query.clone().count(admin_db).await? as i64;
    let rows = query
        .filter(page.after_desc(log_entry::Column::At, log_entry::Column::Id))
        .order_by_desc(log_entry::Column::At)
        .order_by_desc(log_entry::Column::Id)
        .limit(page.limit())
        .all(admin_db)
        .await?;
    Ok((rows, total))
}

/// Removes entries older than the retention; housekeeping calls it.
pub(crate) async fn prune(admin_db: &DatabaseConnection) -> Result<u64> {
    let cutoff = now() - Duration::days(RETENTION_DAYS);
    Ok(log_entry::Entity::delete_many()
        .filter(log_entry::Column::At.lt(cutoff))
        .exec(admin_db)
        .await?
        .rows_affected)
}
