//! Passwords and PINs, hashed with argon2id (the crate's default parameters).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;

/// Shortest secret accepted: a 6-digit PIN.
pub const MIN_SECRET_CHARS: usize = 6;
/// Longest secret accepted, in bytes of UTF-8: a login with a longer one is
/// refused before it is hashed.
pub const MAX_SECRET_BYTES: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("a password or PIN needs at least {MIN_SECRET_CHARS} characters")]
    TooShort,
    #[error("a password or PIN is at most {MAX_SECRET_BYTES} bytes")]
    TooLong,
    #[error("could not hash the secret: {0}")]
    Hash(String),
}

/// Whether `secret` has a length an account's secret can have.
pub fn plausible(secret: &str) -> bool {
    secret.len() <= MAX_SECRET_BYTES && secret.chars().count() >= MIN_SECRET_CHARS
}

pub fn hash(secret: &str) -> Result<String, SecretError> {
    if secret.len() > MAX_SECRET_BYTES {
        return Err(SecretError::TooLong);
    }
    if secret.chars().count() < MIN_SECRET_CHARS {
        return Err(SecretError::TooShort);
    }
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| SecretError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| SecretError::Hash(e.to_string()))
}

/// False for a wrong secret and for a stored hash that does not parse.
pub fn verify(secret: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| Argon2::default().verify_password(secret.as_bytes(), &parsed).is_ok())
}

/// A hash to verify against when the account does not exist, so that an
/// unknown name costs the same time as a wrong secret.
pub fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("decoy-secret-never-matches").unwrap_or_default())
}

/// The threads every argon2 computation of a server runs on.
///
/// One argon2id computation takes about 19 MiB. On tokio's blocking pool,
/// successive computations land on whichever of its (up to 512) threads is
/// free, and the allocator keeps a freed block in the arena of the thread
/// that used it: memory grows with the threads ever used. On a fixed few
/// threads it stays at a few blocks. How many computations may *wait* is
/// bounded by the caller (the login semaphore).
pub struct HashThreads {
    jobs: Option<std::sync::mpsc::Sender<Job>>,
}

type Job = Box<dyn FnOnce() + Send>;

/// Nice value of the hashing threads: when the cores are contended, a flood
/// of logins takes CPU time from syncs only in proportion (a nice-10 thread
/// weighs about a tenth of a normal one).
#[cfg(target_os = "linux")]
const HASH_NICE: libc::c_int = 10;

/// Lowers the calling thread's priority to [`HASH_NICE`], where the OS allows.
fn yield_to_requests() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority takes plain integers and touches no memory. On
        // Linux the nice value is per thread, and PRIO_PROCESS with who = 0
        // names the calling thread only. Lowering priority needs no privilege.
        let failed = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, HASH_NICE) } != 0;
        if failed {
            tracing::debug!("could not lower the priority of a password hashing thread");
        }
    }
}

impl HashThreads {
    pub fn new(threads: usize) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        let mut started = 0;
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new().name(format!("kheo-hash-{i}")).spawn(move || {
                yield_to_requests();
                loop {
                    // The lock is held only while waiting for the next job.
                    let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    match job {
                        // A panicking job drops its answer channel; the thread lives on.
                        Ok(job) => drop(std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))),
                        // Every sender is gone: the server is done with these threads.
                        Err(_) => return,
                    }
                }
            });
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::error!(error = %e, "cannot start a password hashing thread"),
            }
        }
        HashThreads { jobs: (started > 0).then_some(jobs) }
    }

    /// Runs `f` on one of the threads (or, if none could be started, on
    /// tokio's blocking pool); `None` if it panicked.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let Some(jobs) = &self.jobs else {
            return tokio::task::spawn_blocking(f).await.ok();
        };
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = answer.send(f());
        });
        jobs.send(job).ok()?;
        answered.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_threads_run_jobs_and_survive_a_panic() {
        let threads = HashThreads::new(1);
        assert_eq!(threads.run(|| 6 * 7).await, Some(42));
        assert_eq!(threads.run(|| -> u8 { panic!("a bad job") }).await, None);
        let name = threads.run(|| std::thread::current().name().map(str::to_owned)).await;
        assert_eq!(name.flatten().as_deref(), Some("kheo-hash-0"), "the same thread, still there");
        #[cfg(target_os = "linux")]
        {
            let status = threads.run(|| std::fs::read_to_string("/proc/thread-self/stat")).await;
            // Field 19 of stat is the nice value (after the parenthesised name).
            let stat = status.and_then(Result::ok).unwrap_or_default();
            let nice = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().nth(16).map(str::to_owned));
            assert_eq!(nice.as_deref(), Some("10"), "{stat}");
        }
    }

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash("123456").unwrap();
        let b = hash("123456").unwrap();
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify("123456", &a));
        assert!(!verify("123457", &a));
        assert!(!verify("123456", "not a hash"));
        assert!(matches!(hash("12345"), Err(SecretError::TooShort)));
        assert!(matches!(hash(&"x".repeat(MAX_SECRET_BYTES + 1)), Err(SecretError::TooLong)));
        assert!(plausible("123456") && !plausible("12345") && !plausible(&"x".repeat(257)));
    }
}
