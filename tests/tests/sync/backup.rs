//! `admin backup` and `admin restore` of the embedded store: a backup taken
//! while phones sync holds every record acknowledged before it started, and
//! a server started on the restored file serves them. SQLite only, whatever
//! `KHEO_TEST_DATABASE_URL` says (PostgreSQL is backed up with `pg_dump`).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use kheo_server::Config;
use kheo_server::store::STORE_FILE;
use kheo_server::store::backup::{self, BackupError};
use kheo_shared::ids::{DocId, RecordId};
use kheo_tests::{Device, TestServer};

use crate::records;

const PHONES: usize = 3;
const ROUNDS: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_while_phones_sync_restores_every_acknowledged_record() {
    let mut server = TestServer::start_on_sqlite().await;
    let model = server.model().await;
    let log = DocId::log(model, 2025).expect("log id");
    // A photo stored before the backup: blobs are a table of the same file.
    let photo = crate::blobs::jpeg(64, false);
    let sha = crate::blobs::hash_of(&photo);
    let mut photographer = server.device("bk-photo").await;
    let attachment = crate::blobs::attachment(&sha, kheo_shared::evidence::MediaType::Jpeg, photo.len());
    crate::blobs::record_with(&mut photographer, &server.url, model, &[attachment]).await;
    let stored = crate::blobs::put(&server.url, &photographer.token, &sha, "image/jpeg", &photo, 0, photo.len()).await;
    assert_eq!(stored.status, reqwest::StatusCode::CREATED);
    let acknowledged: Arc<Mutex<BTreeSet<RecordId>>> = Arc::default();
    let (started_tx, mut started) = tokio::sync::watch::channel(0usize);
    let started_tx = Arc::new(started_tx);
    let mut tasks = Vec::new();
    for i in 0..PHONES {
        let mut phone = server.device(&format!("bk-{i}")).await;
        let (url, acknowledged, started_tx) = (server.url.clone(), acknowledged.clone(), started_tx.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..ROUNDS {
                let batch = records(2025, 2);
                for r in &batch {
                    phone.put_record(model, r);
                }
                phone.sync(&url).await.expect("the phone syncs");
                assert_eq!(phone.replica.unsynced_changes(), 0);
                // Recorded once the server answered: the records are durable by then.
                acknowledged.lock().expect("lock").extend(batch.iter().map(|r| r.id));
                started_tx.send_modify(|rounds| *rounds += 1);
            }
        }));
    }
    // Mid-way: every phone has synced at least once and keeps syncing while the backup runs.
    started.wait_for(|rounds| *rounds >= PHONES).await.expect("phones sync");
    let before: BTreeSet<RecordId> = acknowledged.lock().expect("lock").clone();
    let backups = tempfile::tempdir().expect("temporary directory");
    let file = backups.path().join("kheo-backup.sqlite3");
    let size = backup::backup(&server.data_dir(), &file).await.expect("the backup is written");
    assert!(size > 0 && file.is_file());
    // The same through the binary, while the server still runs.
    let second = backups.path().join("by-the-binary.sqlite3");
    let out = admin(&server.data_dir(), &["backup", "--to", &second.to_string_lossy()]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("bytes"));
    for task in tasks {
        task.await.expect("phone task");
    }
    let all = acknowledged.lock().expect("lock").clone();
    assert_eq!(all.len(), PHONES * ROUNDS * 2);
    assert!(!before.is_empty(), "records were acknowledged before the backup");

    // Never over an existing file.
    match backup::backup(&server.data_dir(), &file).await {
        Err(BackupError::Exists(p)) => assert_eq!(p, file),
        other => panic!("expected a refusal, got {other:?}"),
    }
    server.stop().await;
    // A restore never replaces a store in place.
    match backup::restore(&file, &server.data_dir()).await {
        Err(BackupError::StoreInPlace(_)) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }

    let restored = tempfile::tempdir().expect("temporary directory");
    backup::restore(&file, restored.path()).await.expect("the backup is restored");
    assert!(restored.path().join(STORE_FILE).is_file());
    let new = kheo_server::start(Config::for_tests(restored.path().to_owned())).await.expect("a server on the backup");
    let mut reader = Device::login(&new.url(), "bk-0.test", "bk-0-secret").await.expect("accounts came back");
    reader.sync(&new.url()).await.expect("the documents load");
    let got: BTreeSet<RecordId> = reader.records(&log).keys().copied().collect();
    assert!(got.is_superset(&before), "{} of {} records acknowledged before the backup", got.len(), before.len());
    let served = crate::blobs::get(&new.url(), &reader.token, &format!("/api/v1/blobs/{sha}"), None).await;
    assert_eq!(served.status(), reqwest::StatusCode::OK, "the photo came back");
    assert_eq!(&served.bytes().await.expect("the photo")[..], &photo[..]);
    new.stop().await.expect("the server stops");

    // The binary's restore puts the other backup in place too.
    let again = tempfile::tempdir().expect("temporary directory");
    let out = admin(again.path(), &["restore", "--from", &second.to_string_lossy()]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let new = kheo_server::start(Config::for_tests(again.path().to_owned())).await.expect("a server on the backup");
    let mut reader = Device::login(&new.url(), "bk-1.test", "bk-1-secret").await.expect("accounts came back");
    reader.sync(&new.url()).await.expect("the documents load");
    assert!(reader.records(&log).keys().copied().collect::<BTreeSet<_>>().is_superset(&before));
    new.stop().await.expect("the server stops");
}

#[tokio::test]
async fn on_postgresql_backup_and_restore_point_to_pg_dump() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("x.dump");
    for args in [["backup", "--to"], ["restore", "--from"]] {
        let binary = Path::new(env!("CARGO_BIN_EXE_kheo-process"));
        let out = tokio::process::Command::new(binary)
            .args(["admin", args[0], args[1], &file.to_string_lossy()])
            .env("KHEO_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
            .output()
            .await
            .expect("the admin command runs");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("pg_dump -Fc") && stderr.contains("pg_restore"), "{stderr}");
    }
    assert!(!file.exists());
}

/// `kheo-server admin ...` on the SQLite store of `data_dir`, as a process.
async fn admin(data_dir: &Path, args: &[&str]) -> std::process::Output {
    let binary = Path::new(env!("CARGO_BIN_EXE_kheo-process"));
    tokio::process::Command::new(binary)
        .arg("admin")
        .args(args)
        .env("KHEO_DATA_DIR", data_dir)
        .env_remove("KHEO_DATABASE_URL")
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("the admin command runs")
}
