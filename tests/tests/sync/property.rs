//! Random offline/online schedules: whatever order devices edit, go offline,
//! sync, send corrupted messages, and the server restarts in, every device
//! ends with every record, and a new device loads every document. The same
//! schedules run against one server and against three server processes on
//! one store, each request of a session going to the next of them.

use std::collections::BTreeSet;

use kheo_shared::ids::{DocId, RecordId};
use kheo_tests::{Device, TestServer};
use proptest::prelude::*;

use crate::records;

#[derive(Debug, Clone)]
enum Step {
    /// Device logs new records while offline.
    Log {
        device: usize,
        count: usize,
        year_offset: i32,
    },
    /// Device edits a record it already holds (note or tombstone).
    Edit {
        device: usize,
        pick: usize,
        delete: bool,
    },
    Sync {
        device: usize,
    },
    /// Device sends its next request with one bit flipped: the server
    /// refuses it or takes it, and either way no document breaks.
    Tamper {
        device: usize,
        at: usize,
        bit: u8,
    },
    RestartServer,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..4usize, 1..4usize, 0..2i32).prop_map(|(device, count, year_offset)| Step::Log { device, count, year_offset }),
        2 => (0..4usize, any::<usize>(), any::<bool>()).prop_map(|(device, pick, delete)| Step::Edit { device, pick, delete }),
        4 => (0..4usize).prop_map(|device| Step::Sync { device }),
        2 => (0..4usize, any::<usize>(), 0..8u8).prop_map(|(device, at, bit)| Step::Tamper { device, at, bit }),
        1 => Just(Step::RestartServer),
    ]
}

async fn run(schedule: Vec<Step>, processes: usize) {
    let mut server = TestServer::start().await;
    let mut peers = Vec::new();
    for _ in 1..processes {
        peers.push(server.start_peer().await);
    }
    let model = server.model().await;
    let mut devices: Vec<Device> = Vec::new();
    for i in 0..4 {
        devices.push(server.device(&format!("d{i}")).await);
    }
    let mut created: BTreeSet<RecordId> = BTreeSet::new();
    let logs = [DocId::log(model, 2025).unwrap(), DocId::log(model, 2026).unwrap()];
    for (turn, s) in schedule.into_iter().enumerate() {
        // The servers this step may reach: the first restarts, so its address is read each time.
        let urls: Vec<String> = std::iter::once(server.url.clone()).chain(peers.iter().map(|p| p.url())).collect();
        let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
        match s {
            Step::Log { device, count, year_offset } => {
                for r in records(2025 + year_offset, count) {
                    created.insert(r.id);
                    devices[device].put_record(model, &r);
                }
            }
            Step::Edit { device, pick, delete } => {
                let d = &mut devices[device];
                let held: Vec<_> = logs.iter().flat_map(|l| d.records(l).into_values()).collect();
                if !held.is_empty() {
                    let mut r = held[pick % held.len()].clone();
                    if delete {
                        r.deleted = true
                    } else {
                        r.note = format!("sửa bởi {}", d.name)
                    }
                    d.put_record(model, &r);
                }
            }
            Step::Sync { device } => {
                devices[device].sync_across(&urls, turn + device).await.expect("sync");
            }
            Step::Tamper { device, at, bit } => {
                let d = &mut devices[device];
                d.replica.start_session();
                let first = d.replica.request(true);
                let mut request = d.replica.request(false);
                if request.docs.is_empty() {
                    request = first;
                }
                if let Some(m) = request.docs.first_mut() {
                    let i = at % m.msg.len().max(1);
                    if let Some(byte) = m.msg.get_mut(i) {
                        *byte ^= 1 << bit;
                    }
                }
                let body = kheo_shared::protocol::encode(&request);
                let response = kheo_tests::post_raw(&reqwest::Client::new(), urls[turn % urls.len()], &d.token, body)
                    .await
                    .expect("the server answers");
                assert!(response.status().as_u16() < 500, "{}", response.status());
                d.replica.abort_session();
            }
            Step::RestartServer => server.restart().await,
        }
    }
    // Everyone comes online; two passes so the first syncers see the last ones' records.
    let urls: Vec<String> = std::iter::once(server.url.clone()).chain(peers.iter().map(|p| p.url())).collect();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    for pass in 0..2 {
        for (i, d) in devices.iter_mut().enumerate() {
            assert!(d.sync_across(&urls, pass + i).await.expect("final sync").converged);
        }
    }
    for d in &mut devices {
        let held: BTreeSet<RecordId> = logs.iter().flat_map(|l| d.records(l).into_keys()).collect();
        assert_eq!(held, created, "{} holds every record", d.name);
    }
    for l in &logs {
        let heads: Vec<_> = devices.iter_mut().map(|d| d.replica.heads(l)).collect();
        assert!(heads.windows(2).all(|w| w[0] == w[1]), "converged on {l}");
    }
    // Accepted means loadable: a device that never saw them gets every
    // document, and each saves and loads back whole.
    let mut fresh = server.device("fresh").await;
    assert!(fresh.sync(urls[urls.len() - 1]).await.expect("fresh sync").converged);
    for l in &logs {
        let Some(doc) = fresh.replica.doc(l) else { continue };
        let mut doc = doc.clone();
        let loaded = automerge::AutoCommit::load(&doc.save()).expect("the document loads");
        let held = kheo_shared::schema::read_log(&loaded, l).expect("the log reads").records.len();
        assert_eq!(held, devices[0].records(l).len(), "{l} whole on a new device");
    }
    for peer in peers {
        peer.stop().await.expect("peer stops");
    }
    server.stop().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn random_schedules_converge_with_no_lost_record(schedule in proptest::collection::vec(step(), 1..25)) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(run(schedule, 1));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]
    #[test]
    fn random_schedules_across_three_server_processes_converge(schedule in proptest::collection::vec(step(), 1..25)) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(run(schedule, 3));
    }
}
