//! The server as its own process, built from this crate's binary and configured through
//! the environment as an operator would, with JSON logs read back line by line. For tests
//! that assert on what the server logs (a client must never be able to make it log an
//! ERROR), which an in-process server cannot tell apart from the other tests' servers.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{mpsc, Arc, Mutex},
    thread::JoinHandle,
    time::Duration,
};

use jolmood::config::{Database, DbLocation, MediaLocation};

use super::{test_config, Backend, TestApp, JWT_SECRET};

pub struct ServerProcess {
    child: Child,
    reader: Option<JoinHandle<()>>,
    lines: Arc<Mutex<Vec<serde_json::Value>>>,
}

/// What the server logged, one JSON object per line.
pub struct Logs(pub Vec<serde_json::Value>);

impl Logs {
    /// The lines logged at ERROR.
    pub fn errors(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|l| l["level"] == "ERROR")
            .map(|l| l.to_string())
            .collect()
    }
}

impl ServerProcess {
    /// Starts `jolmood serve` over fresh databases of `backend`, with `env` on top of the
    /// test settings; `None` when the backend's services are not reachable.
    pub async fn start(backend: Backend, env: &[(&str, &str)]) -> Option<(ServerProcess, TestApp)> {
        let (config, dbs) = test_config(backend).await?;
        let data_dir = config.data_dir.display().to_string();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jolmood"));
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            // No `.env` of the working tree may leak in.
            .current_dir(&config.data_dir)
            .env("DATA_DIR", &data_dir)
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info,jolmood=debug")
            .env("JWT_SECRET", JWT_SECRET)
            .env("SESSION_CACHE_SECONDS", "1")
            .env("REGISTRATIONS_PER_ADDRESS", "10000");
        for db in Database::ALL {
            if let DbLocation::Url(url) = config.db(db) {
                cmd.env(db.env_var(), url);
            }
        }
        if let MediaLocation::Mongo { url, database } = config.media() {
            cmd.env("MONGODB_URL", url)
                .env("MONGODB_DATABASE", database);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the server binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = mpsc::channel::<SocketAddr>();
        let seen = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if let Some(addr) = event["fields"]["addr"].as_str() {
                    if let Ok(addr) = addr.parse() {
                        let _ = addr_tx.send(addr);
                    }
                }
                seen.lock().expect("log lines").push(event);
            }
        });
        let addr =
            tokio::task::spawn_blocking(move || addr_rx.recv_timeout(Duration::from_secs(60)))
                .await
                .expect("waiting for the address")
                .expect("the server logs the address it listens on");
        let server = ServerProcess {
            child,
            reader: Some(reader),
            lines,
        };
        Some((server, TestApp::at(addr, backend, dbs)))
    }

    /// The server's process id (to look at its open files).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server (SIGTERM: a graceful shutdown) and returns what it logged, read
    /// to the end of its output.
    pub fn stop(mut self) -> Logs {
        // SAFETY: kill(2) on the pid of a child this value owns and has not reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        Logs(std::mem::take(&mut *self.lines.lock().expect("log lines")))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
