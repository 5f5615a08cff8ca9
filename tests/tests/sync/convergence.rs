use kheo_shared::ids::DocId;
use kheo_shared::testdata;
use kheo_tests::{Device, TestServer};

use crate::records;

#[tokio::test]
async fn devices_editing_one_model_offline_converge_in_any_order() {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let mut staff = server.device("commune-staff").await;
    staff.sync(&server.url).await.unwrap();

    // Three phones, each offline with its own records, plus edits of a shared record.
    let mut phones: Vec<Device> = Vec::new();
    for i in 0..3 {
        phones.push(server.device(&format!("phone-{i}")).await);
    }
    let mut expected = Vec::new();
    let log = DocId::log(model, 2025).unwrap();
    for (i, phone) in phones.iter_mut().enumerate() {
        for r in records(2025, 5 + i) {
            phone.put_record(model, &r);
            expected.push(r.id);
        }
    }
    // Sync in a varied order, some twice, then everyone once more to pick up the rest.
    for i in [2, 0, 2, 1, 0, 1, 2] {
        phones[i].sync(&server.url).await.unwrap();
    }
    let mut everyone: Vec<&mut Device> = phones.iter_mut().collect();
    everyone.push(&mut staff);
    for d in &mut everyone {
        d.sync(&server.url).await.unwrap();
    }
    for d in &everyone {
        let got = d.records(&log);
        assert_eq!(got.len(), expected.len(), "{} sees every record", d.name);
        for id in &expected {
            assert!(got.contains_key(id), "{} has {id}", d.name);
        }
    }
    let heads: Vec<_> = everyone.iter_mut().map(|d| d.replica.heads(&log)).collect();
    assert!(heads.windows(2).all(|w| w[0] == w[1]), "identical heads everywhere");
}

#[tokio::test]
async fn a_new_phone_receives_every_document_of_its_scope() {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let mut first = server.device("first").await;
    for r in records(2024, 3).iter().chain(records(2025, 4).iter()) {
        first.put_record(model, r);
    }
    first.sync(&server.url).await.unwrap();

    let mut newcomer = server.device("newcomer").await;
    let traffic = newcomer.sync(&server.url).await.unwrap();
    assert_eq!(newcomer.records(&DocId::log(model, 2024).unwrap()).len(), 3);
    assert_eq!(newcomer.records(&DocId::log(model, 2025).unwrap()).len(), 4);
    assert!(newcomer.replica.doc(&DocId::Model(model)).is_some());
    assert!(traffic.round_trips <= 3, "{traffic:?}");

    // A full request may name held documents without a message for them.
    let held: Vec<String> = newcomer.replica.doc_ids().map(ToString::to_string).collect();
    let ask = |held: Vec<String>| kheo_shared::protocol::SyncRequest {
        v: 1,
        docs: vec![],
        full: true,
        held,
        quiet: None,
        keep: None,
    };
    let http = reqwest::Client::new();
    let missing = |body: Vec<u8>| {
        let (http, url, token) = (http.clone(), server.url.clone(), newcomer.token.clone());
        async move {
            let bytes = kheo_tests::post_raw(&http, &url, &token, body).await.unwrap().bytes().await.unwrap();
            kheo_shared::protocol::decode::<kheo_shared::protocol::SyncResponse>(&bytes).unwrap().missing.len()
        }
    };
    assert_eq!(missing(kheo_shared::protocol::encode(&ask(Vec::new()))).await, held.len());
    assert_eq!(missing(kheo_shared::protocol::encode(&ask(held))).await, 0);
}

#[tokio::test]
async fn concurrent_edits_of_one_record_merge_field_by_field() {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let mut a = server.device("a").await;
    let mut b = server.device("b").await;
    let record = testdata::household_support(kheo_shared::ids::RecordId::new_random(), "2025-05-05", 2_000_000);
    let log = a.put_record(model, &record);
    a.sync(&server.url).await.unwrap();
    b.sync(&server.url).await.unwrap();

    let mut on_a = b.records(&log)[&record.id].clone();
    on_a.note = "đã nhận đủ".into();
    a.put_record(model, &on_a);
    let mut on_b = record.clone();
    on_b.deleted = true;
    b.put_record(model, &on_b);
    a.sync(&server.url).await.unwrap();
    b.sync(&server.url).await.unwrap();
    a.sync(&server.url).await.unwrap();

    for d in [&a, &b] {
        let merged = &d.records(&log)[&record.id];
        assert_eq!(merged.note, "đã nhận đủ");
        assert!(merged.deleted, "the tombstone survives");
    }
}

/// A bloom-filter false positive (or a cut-off session) can deliver a change
/// before the change it depends on. The server must keep it, across a
/// restart too, and apply it once the dependency arrives.
#[tokio::test]
async fn a_change_that_arrives_before_its_dependency_is_kept() {
    use automerge::sync::{Message, MessageVersion};
    use kheo_shared::protocol::{self, DocMessage, SyncRequest};

    let mut server = TestServer::start().await;
    let model = server.model().await;
    let mut phone = server.device("phone").await;
    let [first, second] = [records(2025, 1).remove(0), records(2025, 1).remove(0)];
    let log = phone.put_record(model, &first);
    phone.put_record(model, &second);
    let mut doc = phone.replica.doc(&log).unwrap().clone();
    let changes = doc.get_changes(&[]);
    assert_eq!(changes.len(), 2);

    let send = |change: &automerge::Change| {
        let msg = Message {
            heads: vec![change.hash()],
            need: vec![],
            have: vec![],
            changes: change.raw_bytes().to_vec().into(),
            flags: None,
            version: MessageVersion::V1,
        };
        protocol::encode(&SyncRequest {
            v: 1,
            docs: vec![DocMessage::new(log, msg.encode())],
            full: false,
            held: Vec::new(),
            quiet: None,
            keep: None,
        })
    };
    let http = reqwest::Client::new();
    let r = kheo_tests::post_raw(&http, &server.url, &phone.token, send(&changes[1])).await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    server.restart().await;
    let r = kheo_tests::post_raw(&http, &server.url, &phone.token, send(&changes[0])).await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());

    let mut reader = server.device("reader").await;
    reader.sync(&server.url).await.unwrap();
    let got = reader.records(&log);
    assert!(got.contains_key(&first.id) && got.contains_key(&second.id), "{} records", got.len());
}

/// A phone that has not updated: it speaks Automerge's own sync with a
/// persisted state (heads and Bloom filters first, its changes in the
/// second round), as every phone did before changes went in the first
/// request. The server takes it as before, and its records reach others.
#[tokio::test]
async fn an_old_protocol_client_still_syncs() {
    use automerge::sync::{Message, State, SyncDoc};
    use kheo_shared::protocol::{self, DocMessage, PROTOCOL_VERSION, SyncRequest, SyncResponse};

    let mut server = TestServer::start().await;
    let model = server.model().await;
    let log = DocId::log(model, 2025).unwrap();
    let mut current = server.device("current").await;
    current.put_record(model, &records(2025, 1).remove(0));
    current.sync(&server.url).await.unwrap();

    let old = server.device("old").await;
    let mut doc = automerge::AutoCommit::new().with_actor(old.replica.actor().clone());
    let mut saved = State::new().encode();
    let http = reqwest::Client::new();
    // One session: Automerge's messages until it has nothing to say; returns the round trips.
    async fn session(
        http: &reqwest::Client,
        url: &str,
        token: &str,
        log: DocId,
        doc: &mut automerge::AutoCommit,
        saved: &mut Vec<u8>,
    ) -> usize {
        let mut state = State::decode(saved).unwrap();
        let mut rounds = 0;
        loop {
            let Some(msg) = doc.sync().generate_sync_message(&mut state) else { break };
            rounds += 1;
            assert!(rounds < 10, "no convergence");
            let request = SyncRequest {
                v: PROTOCOL_VERSION,
                docs: vec![DocMessage::new(log, msg.encode())],
                full: false,
                held: vec![],
                quiet: None,
                keep: None,
            };
            let answer = kheo_tests::post_raw(http, url, token, protocol::encode(&request)).await.unwrap();
            assert!(answer.status().is_success(), "{}", answer.status());
            let response: SyncResponse = protocol::decode(&answer.bytes().await.unwrap()).unwrap();
            for m in response.docs {
                doc.sync().receive_sync_message(&mut state, Message::decode(&m.msg).unwrap()).unwrap();
            }
        }
        *saved = state.encode();
        rounds
    }
    session(&http, &server.url, &old.token, log, &mut doc, &mut saved).await;
    assert_eq!(kheo_shared::schema::read_log(&doc, &log).unwrap().records.len(), 1, "it received the log");

    let mine = records(2025, 3);
    for r in &mine {
        let mut r = r.clone();
        r.device = old.name.clone();
        kheo_shared::schema::put_record(&mut doc, &r).unwrap();
        doc.commit();
    }
    let rounds = session(&http, &server.url, &old.token, log, &mut doc, &mut saved).await;
    assert_eq!(rounds, 2, "heads and filters first, then the changes");
    current.sync(&server.url).await.unwrap();
    let got = current.records(&log);
    assert_eq!(got.len(), 4);
    assert!(mine.iter().all(|r| got.contains_key(&r.id)));
}

#[tokio::test]
async fn a_phone_holding_a_thousand_quiet_documents_syncs_in_one_small_request() {
    let server = TestServer::start().await;
    let mut staff = server.device_as("staff-many", kheo_shared::codes::Role::CommuneStaff, kheo_tests::HOME_UNIT).await;
    let models: Vec<kheo_shared::ids::ModelId> = (0..1_000).map(|_| kheo_shared::ids::ModelId::new_random()).collect();
    for m in &models {
        let mut profile = testdata::model(*m, kheo_tests::HOME_UNIT);
        profile.status = kheo_shared::codes::ModelStatus::Recognised;
        profile.status_years.typical = None;
        staff.put_model(&profile);
    }
    while !staff.sync(&server.url).await.unwrap().converged {}

    let mut phone = server.device("quiet-phone").await;
    while !phone.sync(&server.url).await.unwrap().converged {}
    assert!(phone.replica.doc_ids().count() >= 1_000);

    let quiet = phone.sync(&server.url).await.unwrap();
    assert_eq!(quiet.round_trips, 1, "nothing new: one request");
    assert!(quiet.bytes_up < 2048 && quiet.bytes_down < 2048, "{} bytes up, {} down", quiet.bytes_up, quiet.bytes_down);

    // Someone else starts a year's log: the quiet phone gets it whole in its first answer.
    let log = DocId::log(models[7], 2025).unwrap();
    let record = testdata::meeting(kheo_shared::ids::RecordId::new_random(), "2025-05-05", 11);
    let mut other = server.device("busy-phone").await;
    other.sync(&server.url).await.unwrap();
    other.put_record(models[7], &record);
    other.sync(&server.url).await.unwrap();
    let news = phone.sync(&server.url).await.unwrap();
    assert!(phone.records(&log).contains_key(&record.id));
    assert!(news.round_trips <= 2, "{} round trips", news.round_trips);
    assert_eq!(phone.sync(&server.url).await.unwrap().round_trips, 1, "and quiet again");
}
