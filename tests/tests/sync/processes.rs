//! Several server processes on one store. Each test server here has its own
//! hot documents, writer and connection pool, and shares nothing with the
//! others but the database: what separate processes share.

use std::collections::BTreeSet;

use kheo_shared::ids::{DocId, RecordId};
use kheo_tests::TestServer;

use crate::records;

const PHONES: usize = 9;
/// Rounds per phone: PHONES * ROUNDS appends to one log is past the
/// compaction threshold, so some process compacts a document that the
/// others wrote to since it loaded it.
const ROUNDS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn phones_spread_over_three_servers_converge_and_lose_nothing() {
    let mut server = TestServer::start().await;
    let peers = [server.start_peer().await, server.start_peer().await];
    // Created through the first server once the others run: they learn of
    // the model from the database, not from their memory.
    let model = server.model().await;
    let log = DocId::log(model, 2025).unwrap();
    let urls = vec![server.url.clone(), peers[0].url(), peers[1].url()];

    let mut tasks = Vec::new();
    for i in 0..PHONES {
        let mut phone = server.device(&format!("spread-{i}")).await;
        let urls = urls.clone();
        tasks.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for round in 0..ROUNDS {
                let batch = records(2025, 2);
                for r in &batch {
                    phone.put_record(model, r);
                }
                let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
                phone.sync_across(&urls, i + round).await.unwrap_or_else(|e| panic!("phone {i} round {round}: {e}"));
                assert_eq!(phone.replica.unsynced_changes(), 0, "phone {i} round {round} was acknowledged");
                acknowledged.extend(batch.iter().map(|r| r.id));
            }
            (phone, acknowledged)
        }));
    }
    let mut phones = Vec::new();
    let mut expected: BTreeSet<RecordId> = BTreeSet::new();
    for task in tasks {
        let (phone, acknowledged) = task.await.expect("phone task");
        expected.extend(acknowledged);
        phones.push(phone);
    }
    assert_eq!(expected.len(), PHONES * ROUNDS * 2);

    // Each server answers with everything, whichever wrote it.
    for (at, url) in urls.iter().enumerate() {
        let mut check = server.device(&format!("check-{at}")).await;
        check.sync(url).await.expect("check sync");
        let got: BTreeSet<RecordId> = check.records(&log).keys().copied().collect();
        assert_eq!(got, expected, "server {at} serves every acknowledged record");
    }
    for (i, phone) in phones.iter_mut().enumerate() {
        let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
        assert!(phone.sync_across(&urls, i).await.expect("last round").converged);
        assert_eq!(phone.records(&log).len(), expected.len(), "phone {i} holds everything");
    }

    // And the store alone holds it all, loadable: a fresh process reads it.
    for peer in peers {
        peer.stop().await.expect("peer stops");
    }
    server.restart().await;
    let mut after = server.device("after-restart").await;
    after.sync(&server.url).await.expect("sync after restart");
    let got: BTreeSet<RecordId> = after.records(&log).keys().copied().collect();
    assert_eq!(got, expected, "the store holds every acknowledged record");
}

#[tokio::test]
async fn a_tree_imported_through_one_server_reaches_the_others_at_their_next_request() {
    let server = TestServer::start().await;
    let peer = server.start_peer().await;
    let read_org = |url: String| {
        let token = server.staff_token().to_owned();
        async move {
            let response = reqwest::Client::new()
                .get(format!("{url}/api/v1/org"))
                .bearer_auth(token)
                .send()
                .await
                .expect("org request");
            assert!(response.status().is_success());
            response.text().await.expect("org body")
        }
    };
    assert!(!read_org(peer.url()).await.contains("QNA.TK.TT.MOI"));

    let mut units: Vec<_> = kheo_server::org::demo().units().cloned().collect();
    let mut village = units.iter().find(|u| u.code == "QNA.TK.TT.KD").expect("a village of Tam Thăng").clone();
    village.code = "QNA.TK.TT.MOI".into();
    village.name = "Thôn Mới".into();
    units.push(village);
    let successions = kheo_server::org::demo().successions().cloned().collect();
    let tree = kheo_server::org::OrgTree::new(units, successions).expect("the tree is valid");
    server.accounts().replace_org(tree).await.expect("the first server imports the tree");

    assert!(read_org(peer.url()).await.contains("QNA.TK.TT.MOI"), "the peer answers from the stored tree");
    peer.stop().await.expect("peer stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_process_killed_mid_sync_loses_no_acknowledged_record() {
    use std::sync::{Arc, RwLock};
    let mut server = TestServer::start().await;
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_kheo-process"));
    let mut processes = Vec::new();
    for _ in 0..3 {
        processes.push(server.spawn_process(binary).await);
    }
    let model = server.model().await;
    let log = DocId::log(model, 2025).unwrap();
    let live: Arc<RwLock<Vec<String>>> = Arc::new(RwLock::new(processes.iter().map(|p| p.url.clone()).collect()));

    let mut tasks = Vec::new();
    for i in 0..6 {
        let mut phone = server.device(&format!("killed-{i}")).await;
        let live = live.clone();
        tasks.push(tokio::spawn(async move {
            let (mut created, mut acknowledged, mut failures) = (Vec::new(), BTreeSet::new(), 0);
            for round in 0..8 {
                let batch = records(2025, 2);
                for r in &batch {
                    phone.put_record(model, r);
                }
                created.extend(batch.iter().map(|r| r.id));
                // A phone whose server died tries again with what is left, as it would later.
                for attempt in 0..5 {
                    let urls = live.read().unwrap().clone();
                    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
                    match phone.sync_across(&urls, i + round + attempt).await {
                        Ok(_) if phone.replica.unsynced_changes() == 0 => {
                            acknowledged.extend(created.iter().copied());
                            break;
                        }
                        Ok(_) => {}
                        Err(_) => failures += 1,
                    }
                }
            }
            (phone, created, acknowledged, failures)
        }));
    }
    // Mid-way through, one process dies without a chance to finish anything.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let mut victim = processes.remove(0);
    live.write().unwrap().retain(|u| *u != victim.url);
    victim.child.start_kill().expect("SIGKILL");
    victim.child.wait().await.expect("the killed process is reaped");

    let (mut phones, mut created, mut acknowledged, mut failures) = (Vec::new(), BTreeSet::new(), BTreeSet::new(), 0);
    for task in tasks {
        let (phone, made, acked, failed) = task.await.expect("phone task");
        created.extend(made);
        acknowledged.extend(acked);
        failures += failed;
        phones.push(phone);
    }
    assert_eq!(acknowledged, created, "every phone got its records acknowledged by a live process");
    eprintln!("{failures} syncs failed while the process died");

    // Every acknowledged record is served by both survivors, and by a new process.
    processes.push(server.spawn_process(binary).await);
    for (at, process) in processes.iter().enumerate() {
        let mut check = server.device(&format!("after-kill-{at}")).await;
        check.sync(&process.url).await.expect("check sync");
        let got: BTreeSet<RecordId> = check.records(&log).keys().copied().collect();
        assert_eq!(got, acknowledged, "process {at} serves every acknowledged record");
    }
    let urls: Vec<String> = processes.iter().map(|p| p.url.clone()).collect();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    for (i, phone) in phones.iter_mut().enumerate() {
        assert!(phone.sync_across(&urls, i).await.expect("last round").converged);
        assert_eq!(phone.records(&log).len(), acknowledged.len());
    }
    for mut process in processes {
        process.child.start_kill().ok();
        process.child.wait().await.ok();
    }
    server.restart().await;
    let mut after = server.device("after-all").await;
    after.sync(&server.url).await.expect("sync after restart");
    assert_eq!(after.records(&log).len(), acknowledged.len(), "the store holds it all, loadable");
}

/// A login through `url`: its status and `error` code.
async fn login_at(http: &reqwest::Client, url: &str, login: &str, secret: &str) -> (u16, String) {
    let response = http
        .post(format!("{url}{}", kheo_shared::protocol::LOGIN_PATH))
        .json(&serde_json::json!({ "login": login, "secret": secret, "device_label": "guesser" }))
        .send()
        .await
        .expect("the login is answered");
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body["error"].as_str().unwrap_or_default().to_owned())
}

/// Wrong guesses at `login`, each through the next of `urls`, until one is
/// refused: how many were checked (answered 401) before it.
async fn guesses_before_the_lock(http: &reqwest::Client, urls: &[String], login: &str) -> u32 {
    for i in 0..100u32 {
        let url = &urls[i as usize % urls.len()];
        match login_at(http, url, login, "guess-wrong").await {
            (401, _) => {}
            (429, code) if code == "too_many_attempts" => return i,
            other => panic!("guess {i}: {other:?}"),
        }
    }
    panic!("100 guesses and no lock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guessing_through_two_server_processes_is_refused_after_as_many_attempts_as_through_one() {
    let server = TestServer::start().await;
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_kheo-process"));
    let process = server.spawn_process(binary).await;
    let http = reqwest::Client::new();
    let (one, _) = server.account("through-one", kheo_shared::codes::Role::Volunteer, kheo_tests::HOME_UNIT).await;
    let (two, secret) = server.account("through-two", kheo_shared::codes::Role::Volunteer, kheo_tests::HOME_UNIT).await;

    let alone = guesses_before_the_lock(&http, std::slice::from_ref(&server.url), &one).await;
    let urls = [server.url.clone(), process.url.clone()];
    let spread = guesses_before_the_lock(&http, &urls, &two).await;
    assert_eq!(alone, kheo_server::accounts::ACCOUNT_FAILURES);
    assert_eq!(spread, alone, "two processes give a guesser no more attempts than one");
    // Locked on both, even with the right secret.
    for url in &urls {
        assert_eq!(login_at(&http, url, &two, &secret).await, (429, "too_many_attempts".to_owned()), "{url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_guesses_at_once_through_two_servers_are_checked_at_most_the_limit() {
    let server = TestServer::start().await;
    let peer = server.start_peer().await;
    let urls = [server.url.clone(), peer.url()];
    let (name, secret) = server.account("rushed", kheo_shared::codes::Role::Volunteer, kheo_tests::HOME_UNIT).await;
    let http = reqwest::Client::new();
    let answers = futures::future::join_all((0..40).map(|i| login_at(&http, &urls[i % 2], &name, "guess-wrong"))).await;
    let mut checked = 0;
    for answer in &answers {
        match answer {
            (401, _) => checked += 1,
            (429, code) => assert_eq!(code, "too_many_attempts"),
            (503, code) => assert_eq!(code, "busy"),
            other => panic!("{other:?}"),
        }
    }
    assert!(checked <= kheo_server::accounts::ACCOUNT_FAILURES, "{checked} of 40 were checked");
    // What the servers were too busy to check was given back: the limit fills up exactly.
    checked += guesses_before_the_lock(&http, &urls, &name).await;
    assert_eq!(checked, kheo_server::accounts::ACCOUNT_FAILURES, "guesses checked in all");
    assert_eq!(login_at(&http, &urls[1], &name, &secret).await.0, 429);
    peer.stop().await.expect("peer stops");
}
