use kheo_shared::ids::DocId;
use kheo_tests::{Device, TestServer};

use crate::{new_model, records};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_devices_syncing_one_document_at_once_lose_nothing() {
    let server = TestServer::start().await;
    let model = new_model();
    let log = DocId::log(model, 2025).unwrap();
    let mut handles = Vec::new();
    let mut expected = Vec::new();
    for i in 0..50 {
        let mut phone = Device::new(&format!("phone-{i}"));
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
    let dir = tempfile::tempdir().unwrap();
    let mut config = kheo_server::Config::for_tests(dir.path().to_owned());
    config.hot_docs = std::num::NonZeroUsize::new(3).unwrap();
    let server = kheo_server::start(config).await.unwrap();
    let url = server.url();
    let mut phone = Device::new("many-models");
    let models: Vec<_> = (0..10).map(|_| new_model()).collect();
    for round in 0..3 {
        for m in &models {
            for r in records(2025, 2) {
                phone.put_record(*m, &r);
            }
        }
        phone.sync(&url).await.unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    let mut other = Device::new("reader");
    other.sync(&url).await.unwrap();
    for m in &models {
        assert_eq!(other.records(&DocId::log(*m, 2025).unwrap()).len(), 6);
    }
    server.stop().await.unwrap();
}
