//! The login windows of the embedded store: a SQLite file of their own,
//! `logins.sqlite3` beside `kheo.sqlite3`, shared by every process on the
//! data directory. A login takes this file's write lock, never the
//! documents': a flood of wrong logins cannot hold up a sync's commit.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::logins::{Backend, LoginWindowsError};

pub const FILE: &str = "logins.sqlite3";

pub struct SqliteLogins {
    pool: SqlitePool,
}

impl SqliteLogins {
    /// Opens (creating if needed) the windows' file in `dir` and migrates it.
    pub async fn open(dir: &Path) -> Result<Self, LoginWindowsError> {
        let options = SqliteConnectOptions::new()
            .filename(dir.join(FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // No fsync per commit: a power cut may forget the last counts,
            // which forgives a few failed logins and costs an attacker a
            // power cut they cannot cause. WAL with NORMAL still never
            // leaves the file corrupt.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        // Few connections: each transaction is a handful of statements on
        // short keys, and the writes take one lock in turn anyway.
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite-logins").run(&pool).await?;
        Ok(SqliteLogins { pool })
    }
}

#[async_trait]
impl Backend for SqliteLogins {
    type Db = sqlx::Sqlite;

    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The file's write lock, taken up front, holds every key.
    async fn holding(&self, _keys: &[&str]) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }
}

#[cfg(test)]
mod contract_tests {
    use std::sync::Arc;

    use super::SqliteLogins;
    use crate::store::logins_contract::Two;

    /// Two openings of one file, as two processes on one data directory.
    async fn open() -> Option<(Two, tempfile::TempDir)> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let one = SqliteLogins::open(dir.path()).await.expect("opens");
        let two = SqliteLogins::open(dir.path()).await.expect("opens again");
        Some(([Arc::new(one), Arc::new(two)], dir))
    }

    crate::login_windows_contract_tests!(open());
}
