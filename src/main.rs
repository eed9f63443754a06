//! The `jolmood` command: serve (default), migrate, export-schema, seed-demo.

#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use jolmood::config::Config;

/// A request allocates and frees many small objects (parsed documents, field values,
/// JSON); under load glibc's malloc took over a quarter of the server's CPU time in the
/// feed benchmark (BENCHMARKS.md). mimalloc's thread-local free lists cost far less.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "jolmood",
    version,
    about = "Jolmood API: one GraphQL server for the coaching platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default). Configuration comes from the environment.
    Serve,
    /// Bring every database up to the latest schema, then exit.
    Migrate,
    /// Create demo accounts (three coaches, one user) to try the API with.
    SeedDemo,
    /// Print the GraphQL SDL (or write it to a file).
    ExportSchema {
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A `.env` file of the working directory fills in what the environment leaves unset.
    let _ = dotenvy::dotenv();
    let command = jolmood::config::ignoring_empty_env(Cli::command());
    let cli = Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::ExportSchema { output } => {
            let sdl = jolmood::sdl();
            match output {
                Some(path) => std::fs::write(&path, sdl)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => print!("{sdl}"),
            }
            Ok(())
        }
        Command::SeedDemo => {
            config.check()?;
            jolmood::telemetry::init(config.log_format);
            let state = jolmood::build(config).await?;
            jolmood::seed::seed(&state).await
        }
        Command::Migrate => {
            jolmood::telemetry::init(config.log_format);
            jolmood::migrate(&config).await?;
            tracing::info!("every database is up to date");
            Ok(())
        }
        Command::Serve => {
            config.check()?;
            jolmood::telemetry::init(config.log_format);
            let bind = config.bind_addr;
            let listener = tokio::net::TcpListener::bind(bind)
                .await
                .with_context(|| format!("BIND_ADDR: cannot listen on {bind}"))?;
            // The bound address, not the configured one: port 0 picks a free port.
            let addr = listener.local_addr()?;
            let state = jolmood::build(config).await?;
            tracing::info!(addr = %addr, "Jolmood API listening; GraphiQL at http://{}/", display_addr(addr));
            jolmood::serve(state, listener, shutdown_signal()).await
        }
    }
}

fn display_addr(addr: std::net::SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
