//! Password hashing: Argon2id at OWASP's minimum (m = 19 MiB, t = 2, p = 1).
//!
//! Hashing is CPU-bound for tens of milliseconds. It runs on a pool of its own,
//! `cores - 1` threads at the lowest scheduling priority (nice 19 on Linux), fed by a bounded
//! queue: a burst of logins waits there, and while it is hashed the other requests still
//! get the cores first, so signing in cannot slow everyone else down. A full queue
//! answers `RATE_LIMITED` at once instead of growing. Unknown emails are verified against
//! a dummy hash so that they cost the same time as a wrong password.

use std::sync::{mpsc, Arc, Mutex};

use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Algorithm, Argon2, Params, Version,
};
use tokio::sync::oneshot;

use crate::error::{Error, Result};

pub(crate) const MIN_LEN: usize = 8;
pub(crate) const MAX_LEN: usize = 128;
const M_COST: u32 = 19_456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;
/// Hashes that may wait for a thread; past that, callers get `RATE_LIMITED`.
const MAX_WAITING: usize = 64;
/// How much less the hashing threads weigh with the scheduler than the request threads.
const HASHING_NICENESS: i32 = 19;

fn argon2() -> Argon2<'static> {
    // The parameters are constants within Argon2's documented ranges.
    let params = Params::new(M_COST, T_COST, P_COST, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The outcome of a verification.
pub(crate) struct Verified {
    pub(crate) ok: bool,
    /// The stored hash uses weaker parameters than today's: store a new one.
    pub(crate) needs_rehash: bool,
}

type Job = Box<dyn FnOnce() + Send>;

pub(crate) struct Hasher {
    jobs: mpsc::SyncSender<Job>,
    dummy: Arc<str>,
}

/// Lowers the calling thread's priority. Best effort: where it is not possible the
/// thread simply runs at normal priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain syscalls on the calling thread; `setpriority` with a thread id
    // changes that thread only (Linux threads have per-thread nice values).
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, HASHING_NICENESS);
    }
}

impl Hasher {
    pub(crate) fn new() -> anyhow::Result<Hasher> {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let (jobs, queue) = mpsc::sync_channel::<Job>(MAX_WAITING);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..cores.saturating_sub(1).max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let job = match queue.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            // A panicking job must not take the thread with it; its
                            // caller sees the dropped reply as an internal error.
                            Ok(job) => {
                                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                            }
                            Err(_) => return,
                        }
                    }
                })?;
        }
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let dummy = argon2()
            .hash_password(b"dummy password for unknown accounts", &salt)
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
            .to_string();
        Ok(Hasher {
            jobs,
            dummy: dummy.into(),
        })
    }

    /// Checks the length rule (in characters) before anything costly happens.
    pub(crate) fn check_policy(field: &str, password: &str) -> Result<()> {
        let len = password.chars().count();
        if !(MIN_LEN..=MAX_LEN).contains(&len) {
            return Err(Error::bad_input(
                field,
                format!("{field} must be {MIN_LEN} to {MAX_LEN} characters"),
            ));
        }
        Ok(())
    }

    /// Runs `work` on a hashing thread.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            // A caller that went away while queued no longer needs the hash.
            if tx.is_closed() {
                return;
            }
            let _ = tx.send(work());
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(_)) => return Err(Error::RateLimited { retry_after: 1 }),
            Err(mpsc::TrySendError::Disconnected(_)) => {
                return Err(Error::internal(anyhow::anyhow!(
                    "the hashing threads are gone"
                )))
            }
        }
        rx.await.map_err(Error::internal)
    }

    pub(crate) async fn hash(&self, password: &str) -> Result<String> {
        let password = password.to_string();
        self.blocking(move || {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            argon2()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| Error::internal(anyhow::anyhow!("argon2: {e}")))
        })
        .await?
    }

    /// Verifies `password` against `stored`, or against the dummy hash when there is no
    /// account (the answer is then always `ok: false`, after the same work).
    pub(crate) async fn verify(&self, password: &str, stored: Option<&str>) -> Result<Verified> {
        let password = password.to_string();
        let real = stored.is_some();
        let hash: Arc<str> = stored.map(Arc::from).unwrap_or_else(|| self.dummy.clone());
        self.blocking(move || {
            let Ok(parsed) = PasswordHash::new(&hash) else {
                return Verified {
                    ok: false,
                    needs_rehash: false,
                };
            };
            let ok = argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
                && real;
            Verified {
                ok,
                needs_rehash: ok && is_weaker(&parsed),
            }
        })
        .await
    }
}

/// True when a stored hash is not Argon2id with at least today's parameters.
fn is_weaker(hash: &PasswordHash<'_>) -> bool {
    if hash.algorithm.as_str() != "argon2id" {
        return true;
    }
    match Params::try_from(hash) {
        Ok(p) => p.m_cost() < M_COST || p.t_cost() < T_COST || p.p_cost() < P_COST,
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let h = Hasher::new().unwrap();
        let stored = h.hash("correct horse").await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h.verify("correct horse", Some(&stored)).await.unwrap().ok);
        assert!(!h.verify("wrong horse", Some(&stored)).await.unwrap().ok);
        assert!(!h.verify("correct horse", None).await.unwrap().ok);
    }

    #[tokio::test]
    async fn weaker_hashes_ask_for_an_upgrade() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(4096, 1, 1, None).unwrap(),
        );
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let stored = weak
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        let v = Hasher::new()
            .unwrap()
            .verify("correct horse", Some(&stored))
            .await
            .unwrap();
        assert!(v.ok && v.needs_rehash);
    }

    #[test]
    fn policy_counts_characters() {
        assert!(Hasher::check_policy("password", "1234567").is_err());
        assert!(Hasher::check_policy("password", "12345678").is_ok());
        assert!(Hasher::check_policy("password", &"é".repeat(128)).is_ok());
        assert!(Hasher::check_policy("password", &"x".repeat(129)).is_err());
    }
}
