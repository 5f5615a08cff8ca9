use kheo_shared::ids::DocId;
use kheo_tests::TestServer;

use crate::records;

#[tokio::test]
async fn a_server_restart_between_syncs_loses_nothing() {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let log = DocId::log(model, 2025).unwrap();
    let mut a = server.device("a").await;
    let mut b = server.device("b").await;
    for r in records(2025, 10) {
        a.put_record(model, &r);
    }
    a.sync(&server.url).await.unwrap();
    server.restart().await;
    for r in records(2025, 7) {
        b.put_record(model, &r);
    }
    b.sync(&server.url).await.unwrap();
    server.restart().await;
    // Both phones reconnect with the sync state persisted before the restarts.
    a.sync(&server.url).await.unwrap();
    b.sync(&server.url).await.unwrap();
    assert_eq!(a.records(&log).len(), 17);
    assert_eq!(b.records(&log).len(), 17);
}

#[tokio::test]
async fn compaction_keeps_every_change_across_restarts() {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let log = DocId::log(model, 2025).unwrap();
    let mut phone = server.device("busy-phone").await;
    // More syncs than the compaction threshold, one record each.
    let total = kheo_server::sync::COMPACT_AFTER_CHUNKS + 6;
    for r in records(2025, total) {
        phone.put_record(model, &r);
        phone.sync(&server.url).await.unwrap();
    }
    let chunks = server.store_fingerprint().await.into_iter().filter(|(k, _)| k.starts_with("chunks:")).count();
    assert!(chunks < kheo_server::sync::COMPACT_AFTER_CHUNKS, "{chunks} chunks were compacted");
    server.restart().await;
    let mut fresh = server.device("fresh-phone").await;
    fresh.sync(&server.url).await.unwrap();
    assert_eq!(fresh.records(&log).len(), total);
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_syncs() {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let log = DocId::log(model, 2025).unwrap();
    let mut phones = Vec::new();
    for i in 0..10 {
        let mut p = server.device(&format!("p{i}")).await;
        let own = records(2025, 20);
        for r in &own {
            p.put_record(model, r);
        }
        phones.push((p, own));
    }
    let url = server.url.clone();
    let syncing: Vec<_> = phones
        .into_iter()
        .map(|(mut p, own)| {
            let url = url.clone();
            tokio::spawn(async move {
                let outcome = p.sync(&url).await;
                (p, own, outcome.is_ok())
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    server.stop().await;
    let mut done = Vec::new();
    for s in syncing {
        done.push(s.await.unwrap());
    }

    // Whatever a phone was told is synced is in the store after the restart.
    server.restart().await;
    let mut check = server.device("check").await;
    check.sync(&server.url).await.unwrap();
    let stored = check.records(&log);
    for (p, own, acknowledged) in &done {
        if *acknowledged {
            assert!(own.iter().all(|r| stored.contains_key(&r.id)), "{} was acknowledged", p.name);
        }
    }
    // And the phones that were cut off lose nothing either: they retry.
    for (p, _, _) in &mut done {
        p.sync(&server.url).await.unwrap();
    }
    check.sync(&server.url).await.unwrap();
    assert_eq!(check.records(&log).len(), 200);
}
