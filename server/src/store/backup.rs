//! Backup and restore of the embedded store (`admin backup`, `admin
//! restore`). This module owns both file operations; PostgreSQL is backed
//! up with its own tools (`pg_dump -Fc`, `pg_restore`, see the README).
//!
//! * **Backup** is online: `VACUUM INTO` writes a consistent copy of
//!   [`STORE_FILE`] (one read transaction: every acknowledged sync before it
//!   started is in it, none half) while the server keeps serving. It is
//!   written beside the destination, flushed to disk, then linked into
//!   place, so the destination never holds a partial copy and an existing
//!   file is never overwritten. [`STORE_FILE`] is the only file of the data
//!   directory that holds durable data (a login-throttle file, if any, holds
//!   counts that may be lost).
//! * **Restore** puts a backup in place as the store of an empty data
//!   directory: the server must be stopped, and a data directory that still
//!   holds a store (or its write-ahead log) is refused, so nothing is ever
//!   overwritten: move the old store aside first. The backup is checked
//!   (`PRAGMA quick_check`) and migrated before it takes the store's name.

use std::fs::File;
use std::path::{Path, PathBuf};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use super::{STORE_FILE, SqliteStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} already exists: a backup never overwrites a file")]
    Exists(PathBuf),
    #[error("no store at {0}")]
    NoStore(PathBuf),
    #[error(
        "{0} already holds a store: stop its server and move {STORE_FILE} (and any {STORE_FILE}-wal, \
         {STORE_FILE}-shm) aside before restoring"
    )]
    StoreInPlace(PathBuf),
    #[error("{path} is not a sound store: {reason}")]
    Unsound { path: PathBuf, reason: String },
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BackupError {
    let path = path.to_owned();
    move |source| BackupError::Io { what, path, source }
}

/// The file beside `dest` a copy is written to before it takes `dest`'s name.
fn partial_of(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    dest.with_file_name(name)
}

/// Flushes a file, then its directory (the new name), to disk.
fn sync_file_and_dir(path: &Path) -> Result<(), BackupError> {
    File::open(path).and_then(|f| f.sync_all()).map_err(io("flushing", path))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // Directories cannot be opened for syncing everywhere; where they can, the rename is made durable.
    #[cfg(unix)]
    File::open(dir).and_then(|d| d.sync_all()).map_err(io("flushing", dir))?;
    Ok(())
}

/// Gives `from` the name `to` without replacing a file already there
/// (a hard link fails when `to` exists), then drops the old name.
fn rename_no_clobber(from: &Path, to: &Path) -> Result<(), BackupError> {
    std::fs::hard_link(from, to).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            BackupError::Exists(to.to_owned())
        } else {
            io("naming", to)(e)
        }
    })?;
    std::fs::remove_file(from).map_err(io("removing", from))?;
    Ok(())
}

/// Copies the store of `data_dir` to `dest` while its server may be
/// running; returns the copy's size in bytes.
pub async fn backup(data_dir: &Path, dest: &Path) -> Result<u64, BackupError> {
    let store = data_dir.join(STORE_FILE);
    if !store.is_file() {
        return Err(BackupError::NoStore(store));
    }
    if dest.exists() {
        return Err(BackupError::Exists(dest.to_owned()));
    }
    let partial = partial_of(dest);
    // Left by a backup that was cut off: never a copy anybody relies on.
    if partial.exists() {
        std::fs::remove_file(&partial).map_err(io("removing", &partial))?;
    }
    let partial_text = partial
        .to_str()
        .ok_or_else(|| BackupError::Unsound { path: partial.clone(), reason: "the path is not valid UTF-8".into() })?;
    // A connection of its own, outside the store's pool: no migration, no writes.
    let mut conn =
        SqliteConnectOptions::new().filename(&store).busy_timeout(std::time::Duration::from_secs(30)).connect().await?;
    sqlx::query("VACUUM INTO ?").bind(partial_text).execute(&mut conn).await?;
    conn.close().await?;
    sync_file_and_dir(&partial)?;
    rename_no_clobber(&partial, dest)?;
    sync_file_and_dir(dest)?;
    Ok(std::fs::metadata(dest).map_err(io("reading", dest))?.len())
}

/// Puts the backup `from` in place as the store of `data_dir` (created if
/// missing), which must hold none; the server must be stopped. Returns the
/// restored store's size in bytes.
pub async fn restore(from: &Path, data_dir: &Path) -> Result<u64, BackupError> {
    if !from.is_file() {
        return Err(BackupError::NoStore(from.to_owned()));
    }
    std::fs::create_dir_all(data_dir).map_err(io("creating", data_dir))?;
    let store = data_dir.join(STORE_FILE);
    let in_place = ["", "-wal", "-shm"].iter().any(|suffix| {
        let mut name = store.as_os_str().to_os_string();
        name.push(suffix);
        Path::new(&name).exists()
    });
    if in_place {
        return Err(BackupError::StoreInPlace(data_dir.to_owned()));
    }
    let partial = partial_of(&store);
    if partial.exists() {
        std::fs::remove_file(&partial).map_err(io("removing", &partial))?;
    }
    std::fs::copy(from, &partial).map_err(io("copying to", &partial))?;
    check(&partial).await?;
    // Migrated now, as the server would at start; a backup of an older version is brought up to date.
    SqliteStore::migrate_alone(&partial).await?;
    // Migrated without a write-ahead log: one left over would not follow the rename.
    for suffix in ["-wal", "-shm"] {
        let mut name = partial.as_os_str().to_os_string();
        name.push(suffix);
        let path = PathBuf::from(name);
        if path.exists() {
            return Err(BackupError::Unsound { path, reason: "its write-ahead log was not checkpointed".into() });
        }
    }
    sync_file_and_dir(&partial)?;
    rename_no_clobber(&partial, &store)?;
    sync_file_and_dir(&store)?;
    Ok(std::fs::metadata(&store).map_err(io("reading", &store))?.len())
}

/// SQLite's own check of the file's pages and indexes.
async fn check(path: &Path) -> Result<(), BackupError> {
    let mut conn = SqliteConnectOptions::new().filename(path).connect().await?;
    let verdict: String = sqlx::query_scalar("PRAGMA quick_check").fetch_one(&mut conn).await?;
    conn.close().await?;
    if verdict == "ok" { Ok(()) } else { Err(BackupError::Unsound { path: path.to_owned(), reason: verdict }) }
}
