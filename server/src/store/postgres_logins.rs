//! The login windows on PostgreSQL: the `login_failures` table of the
//! store's database, reached through a small pool of its own so that a
//! login flood waits for these connections, never for the writer's.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use super::logins::{Backend, LoginWindowsError};

/// The first key of the throttle's advisory locks (the two-key lock space,
/// apart from the single-key locks the directory takes).
const LOCK_CLASS: i32 = 0x4b4c;

pub struct PgLogins {
    pool: PgPool,
}

impl PgLogins {
    /// Connects to `url`; the table comes with the store's migrations.
    pub async fn open(url: &str) -> Result<Self, LoginWindowsError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        Ok(PgLogins { pool })
    }
}

/// A key's lock: two keys on one number only wait for each other.
fn lock_number(key: &str) -> i32 {
    let digest = Sha256::digest(key.as_bytes());
    i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

#[async_trait]
impl Backend for PgLogins {
    type Db = Postgres;

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A transaction that holds every key of `keys`: one key's window
    /// changes in one transaction at a time, over every process. The locks
    /// are taken in the order of their numbers, so two logins that share
    /// keys wait for each other instead of deadlocking.
    async fn holding(&self, keys: &[&str]) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let mut locks: Vec<i32> = keys.iter().copied().map(lock_number).collect();
        locks.sort_unstable();
        locks.dedup();
        let mut tx = self.pool.begin().await?;
        for lock in locks {
            sqlx::query("SELECT pg_advisory_xact_lock($1, $2)").bind(LOCK_CLASS).bind(lock).execute(&mut *tx).await?;
        }
        Ok(tx)
    }
}

#[cfg(test)]
mod contract_tests {
    use std::sync::Arc;

    use super::PgLogins;
    use crate::store::logins_contract::Two;
    use crate::store::scratch::{ScratchDatabase, TEST_DATABASE_VAR, scratch_database};
    use crate::store::{PgStore, Store};

    /// Two pools on one scratch database, as two processes on one store;
    /// `None` when no PostgreSQL is named.
    async fn open() -> Option<(Two, ScratchDatabase)> {
        let Some(db) = scratch_database().await else {
            eprintln!("skipped: {TEST_DATABASE_VAR} names no PostgreSQL server");
            return None;
        };
        // The store's migrations make the table.
        PgStore::open(&db.url).await.expect("store opens").close().await;
        let one = PgLogins::open(&db.url).await.expect("opens");
        let two = PgLogins::open(&db.url).await.expect("opens again");
        Some(([Arc::new(one), Arc::new(two)], db))
    }

    crate::login_windows_contract_tests!(open());
}
