use kheo_shared::ids::DocId;
use kheo_tests::TestServer;

use crate::records;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_devices_syncing_one_document_at_once_lose_nothing() {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let log = DocId::log(model, 2025).unwrap();
    let mut handles = Vec::new();
    let mut expected = Vec::new();
    for i in 0..50 {
        let mut phone = server.device(&format!("phone-{i}")).await;
        for r in records(2025, 4) {
            phone.put_record(model, &r);
            expected.push(r.id);
        }
        let url = server.url.clone();
        handles.push(tokio::spawn(async move {
            phone.sync(&url).await.expect("sync succeeds");
            phone
        }));
    }
    let mut phones = Vec::new();
    for h in handles {
        let mut phone = h.await.unwrap();
        // Under the storm a session may stop before it has seen everyone's
        // records, but never before the server acknowledged its own.
        assert_eq!(phone.replica.unsynced_changes(), 0, "{} was acknowledged", phone.name);
        phones.push(phone);
    }
    // A second round lets every phone pick up what the others pushed.
    for p in &mut phones {
        assert!(p.sync(&server.url).await.unwrap().converged);
    }
    for p in &phones {
        let got = p.records(&log);
        assert_eq!(got.len(), 200, "{}", p.name);
        assert!(expected.iter().all(|id| got.contains_key(id)));
    }
}

#[tokio::test]
async fn more_documents_than_the_hot_cache_holds_stay_correct() {
    let mut server = TestServer::start_with(|c| c.hot_docs = std::num::NonZeroUsize::new(3).unwrap()).await;
    let url = server.url.clone();
    let mut phone = server.device("many-models").await;
    let mut models = Vec::new();
    for _ in 0..10 {
        models.push(server.model().await);
    }
    for round in 0..3 {
        for m in &models {
            for r in records(2025, 2) {
                phone.put_record(*m, &r);
            }
        }
        phone.sync(&url).await.unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    let mut other = server.device("reader").await;
    other.sync(&url).await.unwrap();
    for m in &models {
        assert_eq!(other.records(&DocId::log(*m, 2025).unwrap()).len(), 6);
    }
    server.stop().await;
}

/// A refused request's changes go into the live document before the
/// checks refuse them, and the document is then reloaded from the store.
/// While that happens honest devices keep writing to the same log: every
/// record they were told is stored stays, in memory and on disk, and
/// nothing of the refused requests does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_among_concurrent_writers_lose_nothing_and_keep_nothing() {
    use automerge::transaction::Transactable;
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let log = DocId::log(model, 2025).unwrap();
    let url = server.url.clone();

    let mut honest = Vec::new();
    let mut expected = Vec::new();
    for i in 0..8 {
        let mut phone = server.device(&format!("honest-{i}")).await;
        for r in records(2025, 6) {
            phone.put_record(model, &r);
            expected.push(r.id);
        }
        honest.push(phone);
    }
    let mut breakers = Vec::new();
    for i in 0..4 {
        let mut phone = server.device(&format!("breaker-{i}")).await;
        phone.put_record(model, &records(2025, 1).remove(0));
        breakers.push(phone);
    }
    let mut handles = Vec::new();
    for mut phone in honest {
        let url = url.clone();
        handles.push(tokio::spawn(async move {
            phone.sync(&url).await.expect("an honest sync succeeds");
            phone
        }));
    }
    for mut phone in breakers {
        let url = url.clone();
        handles.push(tokio::spawn(async move {
            for round in 0..3 {
                // A key the log's schema does not have: refused after the
                // merge. A new edit each round, as the phone sets a refused
                // document aside until it changes.
                let at = kheo_shared::scalars::Timestamp(1_750_000_000_000 + round);
                phone.replica.edit(log, at, |d| d.put(automerge::ROOT, "junk", round)).unwrap();
                let refused = phone.sync(&url).await;
                assert!(refused.is_err(), "{} was refused", phone.name);
            }
            phone
        }));
    }
    for h in handles {
        h.await.unwrap();
    }

    let check = |got: std::collections::BTreeMap<_, _>| {
        assert_eq!(got.len(), expected.len(), "exactly the honest records");
        assert!(expected.iter().all(|id| got.contains_key(id)));
    };
    let mut reader = server.device("reader").await;
    reader.sync(&url).await.unwrap();
    check(reader.records(&log));
    // What the store holds, loaded by a fresh process.
    server.restart().await;
    let mut after_restart = server.device("after-restart").await;
    after_restart.sync(&server.url).await.unwrap();
    check(after_restart.records(&log));
    server.stop().await;
}
