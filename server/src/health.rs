//! `/healthz`: whether this process can reach its database.
//!
//! The probe (a `SELECT 1` through the store's pool) runs in a task of its
//! own every [`CHECK_EVERY`]; `/healthz` only reads the last result. A
//! health check must answer at once even while a flood of logins or syncs
//! holds the pool or the writer, so it never waits for the database itself:
//! it reports what the probe saw and how long ago. The answer is `503` when
//! the last probe failed, or when no probe finished for [`STALE_AFTER`] (the
//! probe is stuck behind a database that stopped answering).
//!
//! Health is per process: each server process probes through its own pool.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinHandle;

use crate::store::Store;

/// Time between the ends of two probes.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Longest one probe may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// With no finished probe for this long, the status is unknown: unavailable.
pub const STALE_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
struct Probe {
    at: Instant,
    /// `None` when the database answered; else a short reason, safe to show anyone.
    failure: Option<&'static str>,
}

/// The last probe's result, shared by the probing task and `/healthz`.
#[derive(Clone)]
pub struct Health {
    last: Arc<Mutex<Probe>>,
}

/// The body of `/healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    pub version: &'static str,
    /// `ok`, or why the database is taken as unavailable.
    pub database: &'static str,
    /// Age of the result, in milliseconds.
    pub checked_ms_ago: u64,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }
}

impl Health {
    /// Probes once (so that a fresh server reports at once), then keeps
    /// probing in the background until the returned task is aborted.
    pub async fn start(store: Arc<dyn Store>) -> (Health, JoinHandle<()>) {
        let first = probe(store.as_ref()).await;
        let health = Health { last: Arc::new(Mutex::new(first)) };
        let task = tokio::spawn({
            let health = health.clone();
            async move {
                loop {
                    tokio::time::sleep(CHECK_EVERY).await;
                    let result = probe(store.as_ref()).await;
                    *health.last.lock().unwrap_or_else(|p| p.into_inner()) = result;
                }
            }
        });
        (health, task)
    }

    pub fn report(&self) -> Report {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let age = last.at.elapsed();
        let database = match last.failure {
            Some(reason) => reason,
            None if age > STALE_AFTER => "no answer from the database check",
            None => "ok",
        };
        Report {
            status: if database == "ok" { "ok" } else { "unavailable" },
            version: env!("CARGO_PKG_VERSION"),
            database,
            checked_ms_ago: u64::try_from(age.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

async fn probe(store: &dyn Store) -> Probe {
    let failure = match tokio::time::timeout(CHECK_TIMEOUT, store.ping()).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => {
            // The details are for the operator's log, not for whoever asks /healthz.
            tracing::warn!(error = %e, "database health check failed");
            Some("the database check failed")
        }
        Err(_) => {
            tracing::warn!(timeout = ?CHECK_TIMEOUT, "database health check timed out");
            Some("the database check timed out")
        }
    };
    Probe { at: Instant::now(), failure }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(at: Instant, failure: Option<&'static str>) -> Health {
        Health { last: Arc::new(Mutex::new(Probe { at, failure })) }
    }

    #[test]
    fn ok_only_while_the_last_probe_passed_and_is_recent() {
        assert!(health(Instant::now(), None).report().is_ok());
        let failed = health(Instant::now(), Some("the database check failed")).report();
        assert_eq!((failed.status, failed.database), ("unavailable", "the database check failed"));
        let Some(long_ago) = Instant::now().checked_sub(STALE_AFTER + Duration::from_secs(1)) else { return };
        let stale = health(long_ago, None).report();
        assert_eq!(stale.status, "unavailable");
        assert!(stale.checked_ms_ago > STALE_AFTER.as_millis() as u64);
    }
}
