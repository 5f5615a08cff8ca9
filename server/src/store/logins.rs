//! Where the failed-login windows of [`crate::auth::throttle`] are kept so
//! that every server process on one store counts against the same limits:
//! the [`LoginWindows`] trait, its error, and the SQL both backends run.
//!
//! Neither backend puts a login on the documents' write path. On SQLite the
//! windows are a file of their own beside the store
//! ([`super::sqlite_logins`]), whose write lock no document commit takes; on
//! PostgreSQL they are a table of the same database reached through a small
//! pool of its own ([`super::postgres_logins`]), so a login flood cannot take
//! the writer's connections.
//!
//! Both run the statements below (SQLite reads `$N` as PostgreSQL does);
//! what differs is how a transaction is begun and how one key is kept to one
//! transaction at a time (the file's write lock, or advisory locks).

use async_trait::async_trait;

use crate::auth::throttle::{self, Window};

#[derive(Debug, thiserror::Error)]
pub enum LoginWindowsError {
    #[error("login windows: {0}")]
    Database(#[from] sqlx::Error),
    #[error("login windows' schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Failed-login counts, one fixed window per key, shared by every process
/// that opens them on the same store. Times are milliseconds since the
/// epoch; the window arithmetic is [`throttle::wait`]'s.
#[async_trait]
pub trait LoginWindows: Send + Sync + 'static {
    /// Counts one attempt under each key at `now`, unless a key is at its
    /// limit in its current window: then nothing is counted and the wait
    /// (ms) until every such window ends comes back. The check and the count
    /// are one transaction, whichever process asks.
    async fn reserve(&self, keys: &[(String, u32)], now: i64, window: i64) -> Result<Option<i64>, LoginWindowsError>;

    /// Takes back one attempt counted at `at` from each key of `uncount`
    /// (if its window is still the one it was counted in) and forgets the
    /// keys of `clear`.
    async fn settle(&self, uncount: &[String], clear: &[String], at: i64) -> Result<(), LoginWindowsError>;

    /// Forgets every window that started at or before `started_by`; returns how many.
    async fn sweep(&self, started_by: i64) -> Result<u64, LoginWindowsError>;

    /// How many keys are held.
    async fn keys_held(&self) -> Result<u64, LoginWindowsError>;

    /// Releases the connections.
    async fn close(&self);
}

const READ: &str = "SELECT window_start, count FROM login_failures WHERE key = $1";
/// A window that ended starts over at this attempt. Both `SET` expressions
/// read the row as it was.
const COUNT: &str = "INSERT INTO login_failures (key, window_start, count) VALUES ($1, $2, 1) \
     ON CONFLICT (key) DO UPDATE SET \
     count = CASE WHEN login_failures.window_start + $3 <= $2 THEN 1 ELSE login_failures.count + 1 END, \
     window_start = CASE WHEN login_failures.window_start + $3 <= $2 THEN $2 ELSE login_failures.window_start END";
const UNCOUNT: &str = "UPDATE login_failures SET count = count - 1 WHERE key = $1 AND window_start <= $2 AND count > 0";
const DROP_EMPTY: &str = "DELETE FROM login_failures WHERE key = $1 AND count <= 0";
const CLEAR: &str = "DELETE FROM login_failures WHERE key = $1";
const SWEEP: &str = "DELETE FROM login_failures WHERE window_start <= $1";
const ROWS: &str = "SELECT COUNT(*) FROM login_failures";

/// The statements of this module on one backend's connection, written
/// once for both by `statements_on`.
#[async_trait]
pub trait Statements: Send {
    async fn read(&mut self, key: &str) -> Result<Option<Window>, sqlx::Error>;
    /// Runs `sql` with `key` (if any) as `$1` and `ints` after it; returns the rows it changed.
    async fn run(&mut self, sql: &'static str, key: Option<&str>, ints: &[i64]) -> Result<u64, sqlx::Error>;
    async fn rows(&mut self) -> Result<u64, sqlx::Error>;
}

macro_rules! statements_on {
    ($($conn:ty),*) => {$(
        #[async_trait]
        impl Statements for $conn {
            async fn read(&mut self, key: &str) -> Result<Option<Window>, sqlx::Error> {
                let stored: Option<(i64, i64)> = sqlx::query_as(READ).bind(key).fetch_optional(&mut *self).await?;
                Ok(stored.map(|(start, count)| Window { start, count }))
            }

            async fn run(&mut self, sql: &'static str, key: Option<&str>, ints: &[i64]) -> Result<u64, sqlx::Error> {
                let mut query = sqlx::query(sql);
                if let Some(key) = key {
                    query = query.bind(key);
                }
                for i in ints {
                    query = query.bind(*i);
                }
                Ok(query.execute(&mut *self).await?.rows_affected())
            }

            async fn rows(&mut self) -> Result<u64, sqlx::Error> {
                let (rows,): (i64,) = sqlx::query_as(ROWS).fetch_one(&mut *self).await?;
                Ok(u64::try_from(rows).unwrap_or(0))
            }
        }
    )*};
}

statements_on!(sqlx::SqliteConnection, sqlx::PgConnection);

/// What differs between the backends: their pool, and how a transaction
/// that no other transaction on the same keys runs beside is begun. Every
/// backend is [`LoginWindows`] through the one implementation below.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    type Db: sqlx::Database<Connection: Statements>;

    fn pool(&self) -> &sqlx::Pool<Self::Db>;

    /// A transaction that holds `keys` until it ends, in every process.
    async fn holding(&self, keys: &[&str]) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>;
}

#[async_trait]
impl<B: Backend> LoginWindows for B {
    async fn reserve(&self, keys: &[(String, u32)], now: i64, window: i64) -> Result<Option<i64>, LoginWindowsError> {
        // A locked key refuses before anything is held or written: most of
        // a flood's attempts are refused, and a refusal writes nothing. It is
        // as sound as a refusal under the lock: a key leaves its limit only
        // when its window ends or an attempt is settled, and either may as
        // well have come just after this read.
        let mut conn = self.pool().acquire().await?;
        if let Some(wait) = locked(&mut *conn, keys, now, window).await? {
            return Ok(Some(wait));
        }
        drop(conn);
        let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
        let mut tx = self.holding(&names).await?;
        let wait = count_unless_locked(&mut *tx, keys, now, window).await?;
        tx.commit().await?;
        Ok(wait)
    }

    async fn settle(&self, uncount: &[String], clear: &[String], at: i64) -> Result<(), LoginWindowsError> {
        let names: Vec<&str> = uncount.iter().chain(clear).map(String::as_str).collect();
        let mut tx = self.holding(&names).await?;
        for key in clear {
            tx.run(CLEAR, Some(key), &[]).await?;
        }
        for key in uncount {
            tx.run(UNCOUNT, Some(key), &[at]).await?;
            tx.run(DROP_EMPTY, Some(key), &[]).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn sweep(&self, started_by: i64) -> Result<u64, LoginWindowsError> {
        Ok(self.pool().acquire().await?.run(SWEEP, None, &[started_by]).await?)
    }

    async fn keys_held(&self) -> Result<u64, LoginWindowsError> {
        Ok(self.pool().acquire().await?.rows().await?)
    }

    async fn close(&self) {
        self.pool().close().await;
    }
}

/// The wait before `keys` may be counted at `now`, as stored now.
async fn locked(
    conn: &mut impl Statements,
    keys: &[(String, u32)],
    now: i64,
    window: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let mut current = Vec::with_capacity(keys.len());
    for (key, limit) in keys {
        current.push((conn.read(key).await?, *limit));
    }
    Ok(throttle::wait(&current, now, window))
}

/// Counts one attempt under each key at `now`, unless [`locked`], in a
/// transaction that holds the keys.
async fn count_unless_locked(
    conn: &mut impl Statements,
    keys: &[(String, u32)],
    now: i64,
    window: i64,
) -> Result<Option<i64>, sqlx::Error> {
    if let Some(wait) = locked(conn, keys, now, window).await? {
        return Ok(Some(wait));
    }
    for (key, _) in keys {
        conn.run(COUNT, Some(key), &[now, window]).await?;
    }
    Ok(None)
}
