//! Throwaway PostgreSQL databases for tests and benchmarks: each gets a
//! fresh database on the server `KHEO_TEST_DATABASE_URL` names, dropped
//! when the [`ScratchDatabase`] is.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor};

/// The variable that names a PostgreSQL server tests may create databases on.
pub const TEST_DATABASE_VAR: &str = "KHEO_TEST_DATABASE_URL";

/// A database of its own on the test server, or `None` when no test server is named.
pub async fn scratch_database() -> Option<ScratchDatabase> {
    let base = std::env::var(TEST_DATABASE_VAR).ok().filter(|u| !u.is_empty())?;
    let name = format!("kheo_test_{}", uuid::Uuid::new_v4().simple());
    let admin = PgConnectOptions::from_str(&base).unwrap_or_else(|e| panic!("{TEST_DATABASE_VAR}: {e}"));
    let mut conn = admin.connect().await.unwrap_or_else(|e| panic!("connecting to {TEST_DATABASE_VAR}: {e}"));
    conn.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("creating a scratch database");
    conn.close().await.ok();
    let url = admin.clone().database(&name).to_url_lossy().to_string();
    Some(ScratchDatabase { admin, name, url })
}

pub struct ScratchDatabase {
    admin: PgConnectOptions,
    name: String,
    /// Where the scratch database is: `--database-url` for a server on it.
    pub url: String,
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop may run inside a runtime: the database is dropped on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let mut conn = admin.connect().await.ok()?;
                conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await.ok()?;
                conn.close().await.ok()
            })
        });
        let _ = dropped.join();
    }
}
