//! Logging: `tracing` everywhere, rendered as JSON lines in production (`LOG_FORMAT=json`)
//! or human-readable text for development. `RUST_LOG` refines the filter as usual.

use crate::config::LogFormat;
use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, EnvFilter, Layer};

/// Installs the global subscriber. Call once, from `main`; tests run without it.
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
        .try_init();
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
