//! Province-wide yearly rollup over 1,000,000 generated records, on the
//! embedded store and, when `KHEO_TEST_DATABASE_URL` names a PostgreSQL
//! server, on a scratch database there in the same run:
//!
//! ```text
//! cargo bench -p kheo-tests --bench reports          # or: -- 200000 for a smaller run
//! ```
//!
//! Prints, for each backend, the rollup's time by commune and by field
//! from the monthly pre-aggregates next to the same rollup summed over the
//! record rows (the path before them) and a bare scan of those rows, all
//! measured in the same run (machines here are noisy); what keeping the
//! pre-aggregates costs a read-model write (new records and edits, with the
//! triggers and then without them); and the staff's model list (search,
//! filters, a page with its record counts) over the province's 6,540
//! models, next to reading those models; then PostgreSQL's times as ratios
//! to SQLite's.

use std::time::Instant;

use kheo_server::model_list::{self, ModelSearch};
use kheo_server::org;
use kheo_server::read_model::{ModelRow, ReadModelWrite, RecordRow};
use kheo_server::reports::{self, Figures, Grouping, Period};
use kheo_server::store::{self, Database, WriteBatch};
use kheo_shared::ids::{ModelId, RecordId};
use kheo_shared::testdata;

fn main() {
    let records: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite = store::open(None, dir.path()).await.expect("SQLite store");
        println!("== SQLite");
        let file = dir.path().join(store::STORE_FILE);
        let on_sqlite = run(&sqlite, &format!("sqlite://{}", file.display()), records).await;
        let Some(scratch) = store::scratch::scratch_database().await else {
            println!("PostgreSQL skipped: set {} to compare", store::scratch::TEST_DATABASE_VAR);
            return;
        };
        let postgres = store::open(Some(&scratch.url), dir.path()).await.expect("PostgreSQL store");
        println!("== PostgreSQL");
        let on_postgres = run(&postgres, &scratch.url, records).await;
        println!("== PostgreSQL / SQLite, same run");
        for ((name, sqlite_ms), (_, postgres_ms)) in on_sqlite.iter().zip(&on_postgres) {
            println!("{name:<28} {postgres_ms:>8.1} ms / {sqlite_ms:>7.1} ms = {:.2}x", postgres_ms / sqlite_ms);
        }
        postgres.store.close().await;
    });
}

/// Fills `db` and measures it; returns each figure's name and milliseconds.
async fn run(db: &Database, url: &str, total: usize) -> Vec<(String, f64)> {
    const MODELS: usize = 6_540;
    let mut figures = Vec::new();
    let (store, report_store) = (db.store.as_ref(), db.reports.as_ref());
    let tree = org::demo();
    let units: Vec<String> = tree.units().map(|u| u.code.clone()).filter(|c| c != "QNA").collect();

    let t = Instant::now();
    let models: Vec<ModelId> = (0..MODELS).map(|_| ModelId::new_random()).collect();
    let mut batch = WriteBatch::default();
    for (i, m) in models.iter().enumerate() {
        let profile = testdata::model(*m, &units[i % units.len()]);
        batch.read_model.push(ReadModelWrite::Model(ModelRow { profile }));
    }
    store.commit(&[batch]).await.expect("models");
    let mut written = 0;
    while written < total {
        let n = (total - written).min(50_000);
        let mut batch = WriteBatch::default();
        for k in written..written + n {
            let day = format!("2025-{:02}-{:02}", 1 + k % 12, 1 + k % 28);
            let record = testdata::any_record(RecordId::new_random(), &day, k);
            batch.read_model.push(ReadModelWrite::Record(RecordRow::from_record(models[k % MODELS], &record)));
        }
        store.commit(&[batch]).await.expect("records");
        written += n;
    }
    println!("generated {total} records over {MODELS} models in {:.1} s", t.elapsed().as_secs_f64());

    let year = Period::parse("2025-01-01", "2025-12-31").expect("period");
    // Baseline: one pass over the same rows with nothing grouped.
    let t = Instant::now();
    let scanned = report_store.scan_count("2025-01-01", "2025-12-31").await.expect("scan");
    let scan = t.elapsed();
    figures.push(("bare scan".to_owned(), scan.as_secs_f64() * 1e3));
    assert_eq!(scanned as usize, total);
    for (name, grouping) in [("by commune", Grouping::Unit(org::Level::Commune)), ("by field", Grouping::Field)] {
        let mut took = Vec::new();
        let mut answers = Vec::new();
        for figures in [Figures::Records, Figures::Monthly] {
            let t = Instant::now();
            let r =
                reports::rollup_of(figures, report_store, &tree, None, year, grouping, false).await.expect("rollup");
            took.push(t.elapsed().as_secs_f64() * 1e3);
            let counted = r.total.patrols + r.total.meetings + r.total.production_records;
            assert!(counted > 0 && r.total.models == MODELS as i64);
            answers.push(r);
        }
        assert_eq!(answers[0], answers[1], "the pre-aggregates add up to the record rows");
        figures.push((format!("rollup {name}, record rows"), took[0]));
        figures.push((format!("rollup {name}, monthly"), took[1]));
        println!(
            "yearly rollup {name:<11} {:>7.1} ms from the monthly rows, {:>7.1} ms from the record rows ({:.1}x faster; \
             {} rows; bare scan {:.1} ms; goal < 300 ms)",
            took[1],
            took[0],
            took[0] / took[1],
            answers[1].rows.len(),
            scan.as_secs_f64() * 1e3,
        );
    }
    // The staff's model list: reading the models alone is its baseline.
    let t = Instant::now();
    let read = report_store.models().await.expect("models").len();
    let bare = t.elapsed();
    figures.push(("reading the models".to_owned(), bare.as_secs_f64() * 1e3));
    assert_eq!(read, MODELS);
    let searches = [
        ("first page", ModelSearch::default()),
        ("a name, folded", ModelSearch { q: Some("tu quan".into()), ..ModelSearch::default() }),
        ("a district, page 3", ModelSearch { unit: Some("QNA.TK".into()), page: Some(3), ..ModelSearch::default() }),
    ];
    for (name, search) in searches {
        let t = Instant::now();
        let page = model_list::search(report_store, &tree, None, &search).await.expect("model list");
        let took = t.elapsed();
        figures.push((format!("model list {name}"), took.as_secs_f64() * 1e3));
        println!(
            "model list {name:<20} {:>6.1} ms  ({} of {} models, {} on the page; reading the models {:.1} ms, list = {:.2}x)",
            took.as_secs_f64() * 1e3,
            page.total,
            MODELS,
            page.models.len(),
            bare.as_secs_f64() * 1e3,
            took.as_secs_f64() / bare.as_secs_f64()
        );
    }
    write_cost(db, url, &models, total).await;
    figures
}

/// What keeping the pre-aggregates costs a read-model write: 20,000 new
/// records, then the same records edited (another month and amount), with
/// the triggers, then the same again with the triggers dropped (SQLite) or
/// disabled (PostgreSQL). One commit per 1,000 rows, so the commit's own
/// cost weighs little. Left last: the store keeps no triggers after it.
async fn write_cost(db: &Database, url: &str, models: &[ModelId], offset: usize) {
    const ROWS: usize = 20_000;
    let write = |edited: bool, ids: &[RecordId]| {
        let batches: Vec<WriteBatch> = ids
            .chunks(1_000)
            .enumerate()
            .map(|(c, chunk)| {
                let rows = chunk.iter().enumerate().map(|(i, id)| {
                    let k = offset + c * 1_000 + i;
                    let day = format!("2025-{:02}-{:02}", 1 + (k + usize::from(edited)) % 12, 1 + k % 28);
                    let mut record = testdata::any_record(*id, &day, k);
                    if edited {
                        record.note = "sửa".into();
                    }
                    ReadModelWrite::Record(RecordRow::from_record(models[k % models.len()], &record))
                });
                WriteBatch { read_model: rows.collect(), ..WriteBatch::default() }
            })
            .collect();
        batches
    };
    let timed = |label: &'static str| {
        let ids: Vec<RecordId> = (0..ROWS).map(|_| RecordId::new_random()).collect();
        let (new, edits) = (write(false, &ids), write(true, &ids));
        async move {
            let mut per_row = [0.0; 2];
            for (n, batches) in [new, edits].into_iter().enumerate() {
                let t = Instant::now();
                for batch in batches {
                    db.store.commit(&[batch]).await.expect("rows");
                }
                per_row[n] = t.elapsed().as_secs_f64() * 1e6 / ROWS as f64;
            }
            println!(
                "read-model write {label:<22} new {:>6.1} us/record, edit {:>6.1} us/record",
                per_row[0], per_row[1]
            );
            per_row
        }
    };
    let with = timed("with the pre-aggregates").await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.expect("the store's database");
    let off: &[&str] = if url.starts_with("postgres") {
        &["ALTER TABLE rm_records DISABLE TRIGGER USER", "ALTER TABLE rm_incidents DISABLE TRIGGER USER"]
    } else {
        &[
            "DROP TRIGGER rm_records_monthly_insert",
            "DROP TRIGGER rm_records_monthly_update",
            "DROP TRIGGER rm_records_monthly_delete",
            "DROP TRIGGER rm_incidents_monthly_insert",
            "DROP TRIGGER rm_incidents_monthly_delete",
        ]
    };
    for statement in off {
        sqlx::query(statement).execute(&pool).await.expect("triggers off");
    }
    pool.close().await;
    let without = timed("without (baseline)").await;
    println!(
        "pre-aggregates cost per record written: new {:+.1} us ({:.2}x), edit {:+.1} us ({:.2}x)",
        with[0] - without[0],
        with[0] / without[0],
        with[1] - without[1],
        with[1] / without[1]
    );
}
