//! Logging: `tracing` everywhere, rendered as JSON lines in production (`LOG_FORMAT=json`)
//! or human-readable text for development. `RUST_LOG` refines the filter as usual.
//!
//! WARN and ERROR events also go to admin_db (`adminLogs`) through [`AdminLogLayer`]: the
//! layer only copies the event into a bounded channel (never waiting: when it is full the
//! event is dropped and counted), and a task of the app ([`LogTap`]'s receiver) writes
//! them in batches, off the request path. The layer knows nothing of databases.

use std::{
    fmt::Write as _,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock, Weak,
    },
};

use chrono::{DateTime, Utc};
use tracing::{
    field::{Field, Visit},
    Event, Level, Subscriber,
};
use tracing_subscriber::{
    filter::LevelFilter, layer::Context, layer::SubscriberExt, registry::LookupSpan,
    util::SubscriberInitExt, EnvFilter, Layer,
};

use crate::config::LogFormat;

/// Installs the global subscriber. Call once, from `main`; the tests' harness installs the
/// same [`admin_log_layer`] under its own output.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,sqlx=warn,sea_orm=warn,mongodb=warn,tower_http=info")
    });
    let fmt = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().compact().boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(admin_log_layer())
        .try_init();
}

/// The layer that copies WARN and ERROR events to every app's [`LogTap`], filtered so
/// that it enables nothing below WARN. Every subscriber the server runs under installs it
/// (`init` above; the test harness too).
pub fn admin_log_layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    AdminLogLayer.with_filter(LevelFilter::WARN)
}

/// The span the log writer runs in: events inside it (its own failures) are not copied,
/// so a failing write cannot feed itself.
pub(crate) const WRITER_SPAN: &str = "admin_log_writer";

/// A WARN or ERROR event as `adminLogs` keeps it.
#[derive(Clone, Debug)]
pub(crate) struct LogRecord {
    /// `WARN` or `ERROR`.
    pub(crate) level: &'static str,
    pub(crate) message: String,
    pub(crate) target: String,
    /// The event's other fields, as a JSON object.
    pub(crate) fields: serde_json::Map<String, serde_json::Value>,
    pub(crate) at: DateTime<Utc>,
}

struct Sink {
    tx: tokio::sync::mpsc::Sender<LogRecord>,
    dropped: AtomicU64,
}

/// The apps of this process that want WARN/ERROR events (one in production; tests run
/// many servers in one process).
static SINKS: RwLock<Vec<Weak<Sink>>> = RwLock::new(Vec::new());

/// An app's subscription to WARN/ERROR events; dropping it unsubscribes.
pub(crate) struct LogTap {
    sink: Arc<Sink>,
}

impl LogTap {
    /// Subscribes with a channel of `capacity` events; the receiver is the writer's.
    pub(crate) fn open(capacity: usize) -> (LogTap, tokio::sync::mpsc::Receiver<LogRecord>) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        let sink = Arc::new(Sink {
            tx,
            dropped: AtomicU64::new(0),
        });
        if let Ok(mut sinks) = SINKS.write() {
            sinks.retain(|s| s.strong_count() > 0);
            sinks.push(Arc::downgrade(&sink));
        }
        (LogTap { sink }, rx)
    }

    /// Events dropped because the channel was full (the writer behind), since start.
    pub(crate) fn dropped(&self) -> u64 {
        self.sink.dropped.load(Ordering::Relaxed)
    }
}

/// See the module's documentation.
pub struct AdminLogLayer;

impl<S> Layer<S> for AdminLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let level = match *meta.level() {
            Level::ERROR => "ERROR",
            Level::WARN => "WARN",
            _ => return,
        };
        let sinks: Vec<Arc<Sink>> = match SINKS.read() {
            Ok(sinks) => sinks.iter().filter_map(Weak::upgrade).collect(),
            Err(_) => return,
        };
        if sinks.is_empty() {
            return;
        }
        if let Some(scope) = ctx.event_scope(event) {
            if scope.from_root().any(|span| span.name() == WRITER_SPAN) {
                return;
            }
        }
        let mut visitor = Fields::default();
        event.record(&mut visitor);
        let record = LogRecord {
            level,
            message: visitor.message,
            target: meta.target().to_string(),
            fields: visitor.fields,
            // Microseconds, as every database keeps them (keyset cursors compare them).
            at: chrono::SubsecRound::trunc_subsecs(Utc::now(), 6),
        };
        for sink in sinks {
            if sink.tx.try_send(record.clone()).is_err() {
                // Full (or the app is gone): drop rather than wait.
                sink.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Collects an event's `message` and its other fields as JSON.
#[derive(Default)]
struct Fields {
    message: String,
    fields: serde_json::Map<String, serde_json::Value>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        if field.name() == "message" {
            match value {
                serde_json::Value::String(s) => self.message = s,
                other => self.message = other.to_string(),
            }
        } else {
            self.fields.insert(field.name().to_string(), value);
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.put(field, serde_json::Value::String(text));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, serde_json::Value::String(value.to_string()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
}

/// Spawns `future` on the runtime inside the current span, so what it logs is still
/// attributed to the request (operation, request id, user) that started it.
pub(crate) fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    use tracing::Instrument;
    tokio::spawn(future.instrument(tracing::Span::current()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_warnings_and_errors_drops_when_full_and_skips_the_writer() {
        let (tap, mut rx) = LogTap::open(2);
        let subscriber = tracing_subscriber::registry().with(admin_log_layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("below WARN: not kept");
            tracing::warn!(user = 7, reason = %"gone", "kept");
            tracing::error_span!(WRITER_SPAN).in_scope(|| tracing::warn!("the writer's own"));
            tracing::error!("kept too");
            tracing::warn!("the channel is full: dropped");
        });
        let first = rx.try_recv().unwrap();
        assert_eq!((first.level, first.message.as_str()), ("WARN", "kept"));
        assert_eq!(first.fields["user"], 7);
        assert_eq!(first.fields["reason"], "gone");
        assert!(first.target.contains("telemetry"), "{}", first.target);
        let second = rx.try_recv().unwrap();
        assert_eq!(
            (second.level, second.message.as_str()),
            ("ERROR", "kept too")
        );
        assert!(rx.try_recv().is_err());
        assert_eq!(tap.dropped(), 1);
    }
}
