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
