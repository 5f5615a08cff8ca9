//! `kheo-server admin migrate-store`: a province's store copied from one
//! database into another (the embedded SQLite file into PostgreSQL), then
//! verified. This module owns the copy, its resumption and its checks; the
//! rows come and go through the store's traits ([`Transfer`] for what the
//! others do not expose).
//!
//! * **What is copied**: every table of both backends' migrations but the
//!   read model, row for row: the organisation tree (units, successions),
//!   accounts with their secret hashes, devices with their token hashes
//!   (phones keep their logins), model units, targets, the quarantine (with
//!   its ids), documents as stored (snapshot, chunks with their versions,
//!   version and writer: heads and the multi-process version checks carry
//!   over), sync states and blobs (photos; unfinished uploads are not
//!   copied, a phone starts them again). `generations` is not copied: it counts tree
//!   imports for processes that hold the tree in memory, and the copy's
//!   tree import counts one. The read model (`rm_*`) is built on the target
//!   from the copied documents, which also proves they load there.
//! * **Verified**: the row count of every copied table, each document's
//!   version and Automerge heads on both sides, and the read model's row
//!   counts against the source's. Any difference fails the run (and leaves
//!   the target marked unfinished).
//! * **Resumable**: every step writes in batches, each in a transaction of
//!   its own, skipping rows whose key is already there; before writing
//!   anything the run marks the target with its source
//!   (`migration_progress`). A run cut off anywhere is finished by running
//!   it again; a run after a finished one copies nothing (the copy may be
//!   serving by then) and only verifies.
//! * **Refuses** a target that holds any row (or another source's mark)
//!   unless told to write into it ([`MigrateOptions::into_non_empty`]):
//!   then rows already there are kept as they are, the tree is replaced by
//!   the source's, and the counts only have to reach the source's.
//! * **The source must be stopped**: the copy reads table by table, not in
//!   one snapshot. A write made during the copy most often fails the
//!   verification (a count or a document's heads differ), one made after it
//!   is simply not copied; `admin migrate-store` refuses a SQLite file that
//!   another process holds open ([`super::open_elsewhere`]).
//! * **Memory** stays bounded: documents move a batch at a time (bounded in
//!   count and bytes), sync states, quarantine entries and blobs by pages
//!   of keys;
//!   only ids, accounts, devices, model units and the tree are held whole.

use std::collections::BTreeMap;

use kheo_shared::ids::{DocId, ModelId};
use kheo_shared::scalars::Timestamp;

use super::directory::DirectoryError;
use super::transfer::{COPIED_TABLES, MigrationMark, READ_MODEL_TABLES, RawDoc};
use super::{Database, StoreError, WriteBatch};
use crate::org::{Succession, Unit};

/// A document batch ends at this many bytes of snapshots and chunks, or at
/// [`MigrateOptions::batch_docs`] documents, whichever comes first.
const DOC_BATCH_BYTES: usize = 16 << 20;
/// Blobs per transaction: each is at most 1 MiB (and its thumbnail).
const BLOB_PAGE: i64 = 16;
/// Read-model rows written per transaction while the target's is built.
const READ_MODEL_ROWS_PER_COMMIT: usize = 2_000;
/// Differences listed in an error; the rest are counted.
const MISMATCHES_SHOWN: usize = 20;

#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// Documents per transaction.
    pub batch_docs: usize,
    /// Rows per transaction for the other tables.
    pub batch_rows: usize,
    /// Write into a target that already holds data.
    pub into_non_empty: bool,
    /// Stop with [`MigrateError::CutOff`] once this many batches are
    /// committed: how tests cut a run off at a known point.
    pub stop_after_batches: Option<usize>,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions { batch_docs: 100, batch_rows: 1_000, into_non_empty: false, stop_after_batches: None }
    }
}

/// What a run reports as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Rows of a table read from the source so far, and how many of them
    /// this run wrote (the others were already there).
    Copied { table: &'static str, read: u64, written: u64 },
    /// Documents whose heads were compared so far, of all of them.
    Verified { documents: u64, of: u64 },
}

/// Rows of one table on both sides.
#[derive(Debug, Clone, PartialEq)]
pub struct TableCount {
    pub table: &'static str,
    pub source: i64,
    pub target: i64,
}

/// What a finished, verified run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// It carried on from a run that was cut off, or found a finished one.
    pub resumed: bool,
    /// A finished run was there: nothing was copied, the copy was verified again.
    pub verified_only: bool,
    /// Rows this run wrote, over every copied table.
    pub written: u64,
    /// Every copied table, after the copy.
    pub tables: Vec<TableCount>,
    /// Documents whose version and heads are equal on both sides.
    pub documents_verified: u64,
    /// The read model's tables, after it was built on the target.
    pub read_model: Vec<TableCount>,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "the target database is not empty ({0}): nothing was written. Migrate into an empty database, or pass \
         --into-non-empty to add this store to it (rows already there are kept)"
    )]
    NotEmpty(String),
    #[error(
        "the target database holds a migration from {0}, not from this store: nothing was written. Pass \
         --into-non-empty to add this store to it"
    )]
    OtherSource(String),
    #[error("stopped after {0} batches, as asked; run again to finish")]
    CutOff(usize),
    #[error("the copy does not match the source: {}", list(.0))]
    Mismatch(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

fn list(mismatches: &[String]) -> String {
    let mut text = mismatches.iter().take(MISMATCHES_SHOWN).cloned().collect::<Vec<_>>().join("; ");
    if mismatches.len() > MISMATCHES_SHOWN {
        text.push_str(&format!("; and {} more", mismatches.len() - MISMATCHES_SHOWN));
    }
    text
}

/// Counts batches and stops the run where the options say.
struct Run<'a> {
    options: &'a MigrateOptions,
    batches: usize,
    written: u64,
    progress: &'a mut dyn FnMut(&Progress),
}

impl Run<'_> {
    /// Rows held whole, written a batch at a time by `import`, which says how many it wrote.
    async fn in_batches<T>(
        &mut self,
        table: &'static str,
        rows: &[T],
        import: impl AsyncFn(&[T]) -> Result<usize, MigrateError>,
    ) -> Result<(), MigrateError> {
        let mut read = 0;
        for part in rows.chunks(self.options.batch_rows.max(1)) {
            read += part.len() as u64;
            let written = import(part).await?;
            self.committed(table, read, written)?;
        }
        Ok(())
    }

    fn committed(&mut self, table: &'static str, read: u64, written: usize) -> Result<(), MigrateError> {
        self.batches += 1;
        self.written += written as u64;
        (self.progress)(&Progress::Copied { table, read, written: written as u64 });
        match self.options.stop_after_batches {
            Some(n) if self.batches >= n => Err(MigrateError::CutOff(self.batches)),
            _ => Ok(()),
        }
    }
}

/// Copies `source` into `target` and verifies the copy. `source_name`
/// names the source in the target's mark: the same name resumes, another
/// is refused (see the module documentation).
pub async fn migrate(
    source: &Database,
    target: &Database,
    source_name: &str,
    options: &MigrateOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Summary, MigrateError> {
    let marks = target.transfer.migration_marks().await?;
    let ours = marks.iter().find(|m| m.source == source_name).cloned();
    if ours.is_none() && !options.into_non_empty {
        if let Some(other) = marks.first() {
            return Err(MigrateError::OtherSource(other.source.clone()));
        }
        let mut held = Vec::new();
        for table in COPIED_TABLES.iter().chain(READ_MODEL_TABLES.iter()) {
            let rows = target.transfer.count_rows(table).await?;
            if rows > 0 {
                held.push(format!("{table}: {rows}"));
            }
        }
        if !held.is_empty() {
            return Err(MigrateError::NotEmpty(held.join(", ")));
        }
    }
    // A finished copy may be serving already: copying again could put the
    // source's older tree or model units over newer ones. It is only verified.
    let verified_only = ours.as_ref().is_some_and(|m| m.finished_at.is_some());
    let started_at = ours.as_ref().map_or_else(|| Timestamp::now().millis(), |m| m.started_at);
    let mut mark = MigrationMark { source: source_name.to_owned(), started_at, finished_at: None };
    let mut run = Run { options, batches: 0, written: 0, progress };
    if !verified_only {
        // Marked before the first write: whatever a cut-off run leaves is known as ours.
        target.transfer.set_migration_mark(&mark).await?;
        copy(source, target, &mut run).await?;
    }
    let (tables, documents_verified, read_model) = verify(source, target, options, run.progress).await?;
    if !verified_only {
        mark.finished_at = Some(Timestamp::now().millis());
        target.transfer.set_migration_mark(&mark).await?;
    }
    Ok(Summary { resumed: ours.is_some(), verified_only, written: run.written, tables, documents_verified, read_model })
}

/// The tree in byte order of its keys: PostgreSQL's collation may list it in another.
fn sorted((mut units, mut successions): (Vec<Unit>, Vec<Succession>)) -> (Vec<Unit>, Vec<Succession>) {
    units.sort_by(|a, b| a.code.cmp(&b.code));
    successions.sort_by(|a, b| (&a.old, &a.new).cmp(&(&b.old, &b.new)));
    (units, successions)
}

async fn copy(source: &Database, target: &Database, run: &mut Run<'_>) -> Result<(), MigrateError> {
    let rows = run.options.batch_rows.max(1);

    // The tree, whole: replaced only when it differs, so a resumed run counts no new generation.
    let tree = sorted(source.directory.org().await?);
    let read = (tree.0.len() + tree.1.len()) as u64;
    if sorted(target.directory.org().await?) != tree {
        target.directory.replace_org(&tree.0, &tree.1).await?;
        run.committed("org tree", read, read as usize)?;
    } else {
        run.committed("org tree", read, 0)?;
    }

    let accounts = source.directory.accounts().await?;
    run.in_batches("accounts", &accounts, async |part| Ok(target.transfer.import_accounts(part).await?)).await?;
    let devices = source.transfer.export_devices().await?;
    run.in_batches("devices", &devices, async |part| Ok(target.transfer.import_devices(part).await?)).await?;
    drop(devices);

    // In id order, so that every run writes the same batches; only what the target lacks is written.
    let model_units: BTreeMap<ModelId, String> = source.directory.model_units().await?.into_iter().collect();
    let model_units: Vec<_> = model_units.into_iter().collect();
    run.in_batches("model_units", &model_units, async |part| {
        let models: Vec<ModelId> = part.iter().map(|(m, _)| *m).collect();
        let there = target.directory.units_of(&models).await?;
        let batch = WriteBatch {
            model_units: part.iter().filter(|(m, u)| there.get(m) != Some(u)).cloned().collect(),
            ..WriteBatch::default()
        };
        let written = batch.model_units.len();
        if written > 0 {
            target.store.commit(&[batch]).await?;
        }
        Ok(written)
    })
    .await?;

    let targets = source.transfer.export_targets().await?;
    run.in_batches("targets", &targets, async |part| Ok(target.transfer.import_targets(part).await?)).await?;

    let (mut after, mut read) = (i64::MIN, 0);
    loop {
        let page = source.transfer.export_quarantine(after, rows as i64).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        read += page.len() as u64;
        let written = target.transfer.import_quarantine(&page).await?;
        run.committed("quarantine", read, written)?;
    }

    copy_documents(source, target, run).await?;

    let (mut after, mut read): (Option<(String, String)>, u64) = (None, 0);
    loop {
        let key = after.as_ref().map(|(d, doc)| (d.as_str(), doc.as_str()));
        let page = source.transfer.export_sync_states(key, rows as i64).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.device.clone(), last.doc_id.clone()));
        read += page.len() as u64;
        let written = target.transfer.import_sync_states(&page).await?;
        run.committed("sync_states", read, written)?;
    }

    // A page of blobs holds at most BLOB_PAGE MiB.
    let (mut after, mut read) = (String::new(), 0);
    loop {
        let page = source.transfer.export_blobs(&after, BLOB_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.sha256.clone();
        read += page.len() as u64;
        let written = target.transfer.import_blobs(&page).await?;
        run.committed("blobs", read, written)?;
    }
    Ok(())
}

/// Documents a batch at a time; those the target already holds are not
/// even read from the source.
async fn copy_documents(source: &Database, target: &Database, run: &mut Run<'_>) -> Result<(), MigrateError> {
    let ids = source.store.doc_ids().await?;
    let per_batch = run.options.batch_docs.max(1);
    let mut read = 0;
    for part in ids.chunks(per_batch) {
        read += part.len() as u64;
        let present: std::collections::HashSet<DocId> =
            target.store.versions(part).await?.into_iter().map(|(id, _)| id).collect();
        let mut batch: Vec<RawDoc> = Vec::new();
        let mut bytes = 0;
        let mut written = 0;
        for id in part.iter().filter(|id| !present.contains(id)) {
            let Some(doc) = source.transfer.export_doc(&id.to_string()).await? else { continue };
            bytes += doc.size();
            batch.push(doc);
            // A batch of large documents is cut early: memory stays bounded.
            if bytes >= DOC_BATCH_BYTES {
                written += target.transfer.import_docs(&batch).await?;
                batch.clear();
                bytes = 0;
            }
        }
        if !batch.is_empty() {
            written += target.transfer.import_docs(&batch).await?;
        }
        run.committed("documents", read, written)?;
    }
    Ok(())
}

async fn counts(db: &Database, tables: &[&'static str]) -> Result<Vec<i64>, StoreError> {
    let mut counts = Vec::with_capacity(tables.len());
    for table in tables {
        counts.push(db.transfer.count_rows(table).await?);
    }
    Ok(counts)
}

fn compare(
    tables: &[&'static str],
    source: Vec<i64>,
    target: Vec<i64>,
    into_non_empty: bool,
    mismatches: &mut Vec<String>,
) -> Vec<TableCount> {
    let mut out = Vec::with_capacity(tables.len());
    for ((table, source), target) in tables.iter().zip(source).zip(target) {
        // Into a database that held rows before, the copy adds to them.
        let agrees = if into_non_empty { target >= source } else { target == source };
        if !agrees {
            mismatches.push(format!("{table}: {source} rows in the source, {target} in the target"));
        }
        out.push(TableCount { table, source, target });
    }
    out
}

/// Row counts, each document's version and heads, and the read model
/// built on the target from its own copies of the documents.
async fn verify(
    source: &Database,
    target: &Database,
    options: &MigrateOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(Vec<TableCount>, u64, Vec<TableCount>), MigrateError> {
    let mut mismatches = Vec::new();
    let tables = compare(
        &COPIED_TABLES,
        counts(source, &COPIED_TABLES).await?,
        counts(target, &COPIED_TABLES).await?,
        options.into_non_empty,
        &mut mismatches,
    );

    let ids = source.store.doc_ids().await?;
    let of = ids.len() as u64;
    let mut verified = 0;
    let mut rows = WriteBatch::default();
    for part in ids.chunks(options.batch_docs.max(1)) {
        for id in part {
            let (Some(theirs), Some(ours)) = (source.store.load_doc(id).await?, target.store.load_doc(id).await?)
            else {
                mismatches.push(format!("document {id} is missing from the target"));
                continue;
            };
            if theirs.version != ours.version {
                mismatches.push(format!(
                    "document {id}: version {:?} in the source, {:?} in the target",
                    theirs.version, ours.version
                ));
            }
            let source_heads = theirs.to_automerge().map(|d| d.get_heads());
            drop(theirs);
            let copy = match ours.to_automerge() {
                Ok(doc) => doc,
                Err(e) => {
                    mismatches.push(format!("document {id} does not load from the target: {e}"));
                    continue;
                }
            };
            match source_heads {
                Ok(heads) if heads == copy.get_heads() => verified += 1,
                Ok(_) => mismatches.push(format!("document {id}: heads differ")),
                // Copied as stored, it is as unreadable on both sides.
                Err(e) => mismatches.push(format!("document {id} does not load from the source: {e}")),
            }
            rows.read_model.extend(crate::read_model::rows_of(id, &copy));
            if rows.read_model.len() >= READ_MODEL_ROWS_PER_COMMIT {
                target.store.commit(&[std::mem::take(&mut rows)]).await?;
            }
        }
        progress(&Progress::Verified { documents: verified, of });
    }
    target.store.commit(&[rows]).await?;

    let read_model = compare(
        &READ_MODEL_TABLES,
        counts(source, &READ_MODEL_TABLES).await?,
        counts(target, &READ_MODEL_TABLES).await?,
        options.into_non_empty,
        &mut mismatches,
    );
    if mismatches.is_empty() { Ok((tables, verified, read_model)) } else { Err(MigrateError::Mismatch(mismatches)) }
}

#[cfg(test)]
mod tests {
    use automerge::AutoCommit;
    use kheo_shared::codes::Role;
    use kheo_shared::ids::RecordId;
    use kheo_shared::{schema, testdata};

    use super::*;
    use crate::store::directory::{AccountRow, DeviceRow, QuarantineEntry};
    use crate::store::{DocWrite, Version};

    const WRITER: i64 = 7;

    async fn sqlite() -> (Database, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = Database::open_sqlite_file(&dir.path().join("kheo.sqlite3")).await.expect("store opens");
        (db, dir)
    }

    /// A store with some of every table: three models, each with a log
    /// written in two chunks, one compacted, and a photo on a record (two
    /// blobs); a device's sync states; an account, its device, a refusal, a
    /// target and the demo tree.
    async fn filled() -> (Database, tempfile::TempDir) {
        let (db, dir) = sqlite().await;
        let tree = crate::org::demo();
        let units: Vec<_> = tree.units().cloned().collect();
        let successions: Vec<_> = tree.successions().cloned().collect();
        db.directory.replace_org(&units, &successions).await.unwrap();
        let account = AccountRow {
            id: "acc-1".into(),
            username: "tv1".into(),
            phone: Some("0900".into()),
            display_name: "TV 1".into(),
            role: Role::Volunteer,
            unit: "QNA.TK.TT".into(),
            secret_hash: "$argon2id$hash".into(),
            disabled: false,
            created_at: 1,
        };
        db.directory.insert_account(&account).await.unwrap();
        let device = DeviceRow {
            id: "dev-1".into(),
            account: "acc-1".into(),
            actor: "aabb".into(),
            label: "phone".into(),
            created_at: 2,
            last_seen: Some(3),
            revoked_at: None,
        };
        db.directory.insert_device(&device, b"token-hash").await.unwrap();
        db.reports.set_target("QNA.TK", 2025, 3, 1).await.unwrap();
        let refused = QuarantineEntry {
            id: 0,
            at: 5,
            device: "dev-1".into(),
            account: "acc-1".into(),
            doc_id: "model/x".into(),
            rule: "foreign_actor".into(),
            message: "refused".into(),
            changes: b"changes".to_vec(),
            bytes: 7,
        };
        db.directory.quarantine(&refused).await.unwrap();
        for compacted in [false, false, true] {
            let model = ModelId::new_random();
            let mut doc = AutoCommit::new();
            schema::put_model(&mut doc, &testdata::model(model, "QNA.TK.TT")).unwrap();
            let id = DocId::Model(model);
            let mut batch = WriteBatch::default();
            batch.docs.push(DocWrite::Append {
                doc: id,
                chunk: doc.save(),
                base: Version::NONE,
                next: Version::NONE.next(WRITER),
            });
            batch.model_units.push((model, "QNA.TK.TT".into()));
            batch.read_model.extend(crate::read_model::rows_of(&id, doc.document()));
            batch.sync_states.push(("dev-1".into(), id, b"state".to_vec()));
            let log = DocId::log(model, 2025).unwrap();
            let mut records = AutoCommit::new();
            schema::init_log(&mut records, model, 2025).unwrap();
            let mut patrol = testdata::patrol(RecordId::new_random(), "2025-03-03", 2);
            let photo = testdata::photo(compacted as u8, 12);
            let sha = photo.sha256.to_string();
            patrol.attachments.insert(kheo_shared::evidence::AttachmentId::new_random(), photo);
            schema::put_record(&mut records, &patrol).unwrap();
            let blob = crate::store::blobs::NewBlob {
                sha256: &sha,
                media_type: "jpeg",
                bytes: 12,
                width: 1,
                height: 1,
                content: b"photo-bytes",
                thumbnail: b"thumb",
                device: "dev-1",
                now: 4,
            };
            db.blobs.finish(&blob, 0, i64::MAX).await.unwrap();
            let first = records.save();
            let v1 = Version::NONE.next(WRITER);
            batch.docs.push(DocWrite::Append { doc: log, chunk: first, base: Version::NONE, next: v1 });
            db.store.commit(&[batch]).await.unwrap();
            schema::put_record(&mut records, &testdata::meeting(RecordId::new_random(), "2025-04-04", 9)).unwrap();
            let second = records.save_incremental();
            let mut batch = WriteBatch::default();
            batch.docs.push(DocWrite::Append { doc: log, chunk: second, base: v1, next: v1.next(WRITER) });
            if compacted {
                let v2 = v1.next(WRITER);
                batch.docs.push(DocWrite::Snapshot {
                    doc: log,
                    bytes: records.save(),
                    base: v2,
                    next: v2.next(WRITER),
                });
            }
            batch.read_model.extend(crate::read_model::rows_of(&log, records.document()));
            db.store.commit(&[batch]).await.unwrap();
        }
        (db, dir)
    }

    #[tokio::test]
    async fn a_store_is_copied_whole_and_verified() {
        let (source, _s) = filled().await;
        let (target, _t) = sqlite().await;
        let mut seen = Vec::new();
        let summary = migrate(&source, &target, "src", &MigrateOptions::default(), &mut |p| seen.push(p.clone()))
            .await
            .expect("the copy is verified");
        assert!(!summary.resumed);
        assert_eq!(summary.documents_verified, 6);
        for t in summary.tables.iter().chain(&summary.read_model) {
            assert_eq!(t.source, t.target, "{}", t.table);
            assert!(t.source > 0, "the test fills {}", t.table);
        }
        assert!(seen.iter().any(|p| matches!(p, Progress::Verified { documents: 6, of: 6 })));
        let device = target.directory.device_by_token(b"token-hash").await.unwrap().expect("the token still logs in");
        assert_eq!(device.1.secret_hash, "$argon2id$hash");
        assert!(target.transfer.migration_marks().await.unwrap()[0].finished_at.is_some());
        // A second run only verifies.
        let again = migrate(&source, &target, "src", &MigrateOptions::default(), &mut |_| {}).await.unwrap();
        assert!(again.resumed && again.verified_only);
        assert_eq!(again.written, 0);
        // The copied quarantine keeps its id, and the next refusal's follows it.
        let copied = target.directory.quarantined().await.unwrap();
        let mut next = copied[0].clone();
        next.changes = b"more".to_vec();
        target.directory.quarantine(&next).await.unwrap();
        let after = target.directory.quarantined().await.unwrap();
        assert!(after[1].id > after[0].id);
    }

    #[tokio::test]
    async fn a_run_cut_off_resumes_and_verifies() {
        let (source, _s) = filled().await;
        let (target, _t) = sqlite().await;
        let options =
            MigrateOptions { batch_docs: 1, batch_rows: 1, stop_after_batches: Some(8), ..Default::default() };
        match migrate(&source, &target, "src", &options, &mut |_| {}).await {
            Err(MigrateError::CutOff(8)) => {}
            other => panic!("expected a cut-off, got {other:?}"),
        }
        let partial = target.transfer.count_rows("documents").await.unwrap();
        assert!(partial < 6, "the cut-off run left documents to copy ({partial})");
        let summary = migrate(&source, &target, "src", &MigrateOptions::default(), &mut |_| {}).await.unwrap();
        assert!(summary.resumed);
        assert_eq!(summary.documents_verified, 6);
    }

    #[tokio::test]
    async fn a_non_empty_target_is_refused_and_nothing_is_written() {
        let (source, _s) = filled().await;
        let (target, _t) = sqlite().await;
        target.reports.set_target("QNA", 2030, 1, 1).await.unwrap();
        match migrate(&source, &target, "src", &MigrateOptions::default(), &mut |_| {}).await {
            Err(e @ MigrateError::NotEmpty(_)) => assert!(e.to_string().contains("targets: 1"), "{e}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(target.transfer.migration_marks().await.unwrap().is_empty());
        assert_eq!(target.transfer.count_rows("documents").await.unwrap(), 0);
        // Another source's mark is refused too, and --into-non-empty writes anyway.
        let into = MigrateOptions { into_non_empty: true, ..Default::default() };
        let summary = migrate(&source, &target, "src", &into, &mut |_| {}).await.unwrap();
        let targets = summary.tables.iter().find(|t| t.table == "targets").unwrap();
        assert_eq!((targets.source, targets.target), (1, 2));
        let (other, _o) = filled().await;
        match migrate(&other, &target, "other", &MigrateOptions::default(), &mut |_| {}).await {
            Err(MigrateError::OtherSource(s)) => assert_eq!(s, "src"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
