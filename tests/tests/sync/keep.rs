//! What a device keeps of its scope (`SyncRequest.keep`): a staff device at
//! province scale is offered only what its rule names and what it synced,
//! fetches a model when it opens one, and releases what it dropped.

use std::collections::BTreeSet;

use kheo_shared::codes::Role;
use kheo_shared::ids::DocId;
use kheo_shared::protocol::{self, Keep, SyncRequest};
use kheo_tests::{Device, HOME_UNIT, TestServer, post_raw};

use crate::records;

fn held(device: &Device) -> BTreeSet<DocId> {
    device.replica.doc_ids().copied().collect()
}

async fn converge(device: &mut Device, url: &str) {
    for _ in 0..4 {
        if device.sync(url).await.expect("sync").converged {
            return;
        }
    }
    panic!("the session did not converge");
}

#[tokio::test]
async fn each_device_is_offered_what_its_rule_keeps_and_what_it_opened() {
    let mut server = TestServer::start().await;
    let (a, b) = (server.model().await, server.model().await);
    let mut phone = server.device("phone").await;
    converge(&mut phone, &server.url).await;
    let mut written = Vec::new();
    for (model, year) in [(a, 2023), (a, 2025), (b, 2025)] {
        for r in records(year, 3) {
            written.push(phone.put_record(model, &r));
        }
    }
    converge(&mut phone, &server.url).await;
    let (a_old, a_new, b_new) =
        (DocId::log(a, 2023).unwrap(), DocId::log(a, 2025).unwrap(), DocId::log(b, 2025).unwrap());

    // Everything, as today, without a rule.
    let mut everything = server.device_as("all", Role::CommuneStaff, HOME_UNIT).await;
    converge(&mut everything, &server.url).await;
    assert_eq!(held(&everything), BTreeSet::from([DocId::Model(a), DocId::Model(b), a_old, a_new, b_new]));

    // Recent years: the profiles and this year's logs, not 2023's.
    let mut recent = server.device_as("recent", Role::CommuneStaff, HOME_UNIT).await;
    recent.replica.set_keep(Some(Keep { logs_from: Some(2024), ..Keep::default() }));
    converge(&mut recent, &server.url).await;
    assert_eq!(held(&recent), BTreeSet::from([DocId::Model(a), DocId::Model(b), a_new, b_new]));
    // Opening the older year fetches it; from then on it is kept.
    recent.replica.fetch(a_old);
    converge(&mut recent, &server.url).await;
    assert_eq!(recent.records(&a_old).len(), 3, "the opened year arrived whole");

    // Only what it opened: a province staff browser starts empty.
    let mut province = server.device_as("province", Role::ProvinceStaff, "QNA").await;
    province.replica.set_keep(Some(Keep { only_synced: true, ..Keep::default() }));
    converge(&mut province, &server.url).await;
    assert!(held(&province).is_empty(), "nothing offered: {:?}", held(&province));
    province.replica.fetch(DocId::Model(a));
    province.replica.fetch(a_new);
    converge(&mut province, &server.url).await;
    assert_eq!(held(&province), BTreeSet::from([DocId::Model(a), a_new]));
    assert_eq!(province.records(&a_new).len(), 3);

    // News reach it for what it holds, and only for that.
    for r in records(2025, 2) {
        phone.put_record(a, &r);
        phone.put_record(b, &r);
    }
    converge(&mut phone, &server.url).await;
    converge(&mut province, &server.url).await;
    assert_eq!(province.records(&a_new).len(), 5, "the opened log got the new records");
    assert_eq!(held(&province), BTreeSet::from([DocId::Model(a), a_new]), "the other model stayed away");

    // Released, it is offered no more, even after more news.
    assert!(province.replica.release(&a_new));
    converge(&mut province, &server.url).await;
    for r in records(2025, 1) {
        phone.put_record(a, &r);
    }
    converge(&mut phone, &server.url).await;
    province.replica.set_quiet_cursor(None);
    converge(&mut province, &server.url).await;
    assert_eq!(held(&province), BTreeSet::from([DocId::Model(a)]), "a released log stays away, full sync included");
    // And comes back whole when opened again.
    province.replica.fetch(a_new);
    converge(&mut province, &server.url).await;
    assert_eq!(province.records(&a_new).len(), 6);
}

#[tokio::test]
async fn a_document_released_and_sent_in_one_request_is_refused() {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let mut staff = server.device_as("staff2", Role::CommuneStaff, HOME_UNIT).await;
    converge(&mut staff, &server.url).await;
    let id = DocId::Model(model);
    let mut doc = staff.replica.doc(&id).expect("held").clone();
    let msg = automerge::sync::SyncDoc::generate_sync_message(&doc.sync(), &mut automerge::sync::State::new())
        .expect("a first message");
    let keep = Keep { release: vec![id.to_string()], ..Keep::default() };
    let request = SyncRequest {
        keep: Some(keep),
        ..SyncRequest::of(vec![kheo_shared::protocol::DocMessage::new(id, msg.encode())])
    };
    let response = post_raw(&reqwest::Client::new(), &server.url, &staff.token, protocol::encode(&request))
        .await
        .expect("answered");
    assert_eq!(response.status(), 400, "released and sent at once");
}
