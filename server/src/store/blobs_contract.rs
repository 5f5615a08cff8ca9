//! The [`BlobStore`] contract as tests every backend runs (SQLite always,
//! PostgreSQL when `KHEO_TEST_DATABASE_URL` names a server): parts kept
//! until the last, the offset and quota checks, the quota under
//! concurrent uploads, the attachment rows the merge writes, the sweep.

use std::sync::Arc;

use kheo_shared::evidence::{AttachmentId, ContentHash};
use kheo_shared::ids::{ModelId, RecordId};
use kheo_shared::testdata;

use super::blobs::{BlobStore, Finished, NewBlob, Part, PartOutcome, UploadState, Variant};
use super::{Store, WriteBatch};
use crate::read_model::{ReadModelWrite, RecordRow};

fn hash(seed: u8) -> String {
    ContentHash::from_digest(&[seed; 32]).to_string()
}

fn part<'a>(sha256: &'a str, device: &'a str, total: i64, first: i64, data: &'a [u8]) -> Part<'a> {
    Part { sha256, device, media_type: "jpeg", total, first, data, now: 1_000, quota: 1 << 20 }
}

fn blob<'a>(sha256: &'a str, device: &'a str, bytes: i64, content: &'a [u8]) -> NewBlob<'a> {
    NewBlob { sha256, media_type: "jpeg", bytes, width: 4, height: 3, content, thumbnail: b"thumb", device, now: 2_000 }
}

pub async fn parts_are_kept_until_the_last_completes_the_blob<S: BlobStore + Store>(store: Arc<S>) {
    let (sha, bytes) = (hash(1), (0..25u8).collect::<Vec<_>>());
    assert_eq!(store.upload_state(&sha, "d1").await.unwrap(), UploadState { stored: false, received: 0 });
    assert_eq!(
        store.put_part(&part(&sha, "d1", 25, 0, &bytes[..10])).await.unwrap(),
        PartOutcome::Received { received: 10 }
    );
    assert_eq!(store.upload_state(&sha, "d1").await.unwrap().received, 10);
    assert_eq!(store.upload_state(&sha, "d2").await.unwrap().received, 0, "uploads are per device");
    // A part that repeats or skips is refused and changes nothing.
    for first in [0, 5, 15] {
        let outcome = store.put_part(&part(&sha, "d1", 25, first, &bytes[first as usize..20])).await.unwrap();
        assert_eq!(outcome, PartOutcome::OffsetMismatch { received: 10 });
    }
    assert_eq!(
        store.put_part(&part(&sha, "d1", 25, 10, &bytes[10..20])).await.unwrap(),
        PartOutcome::Received { received: 20 }
    );
    let PartOutcome::Complete { bytes: whole } = store.put_part(&part(&sha, "d1", 25, 20, &bytes[20..])).await.unwrap()
    else {
        panic!("the last part completes the blob")
    };
    assert_eq!(whole, bytes);
    assert_eq!(store.upload_state(&sha, "d1").await.unwrap().received, 20, "nothing is kept before the checks");
    assert_eq!(store.finish(&blob(&sha, "d1", 25, b"stripped"), 20, 1 << 20).await.unwrap(), Finished::Stored);
    assert_eq!(store.upload_state(&sha, "d1").await.unwrap(), UploadState { stored: true, received: 0 });
    assert_eq!(store.read_blob(&sha, Variant::Content).await.unwrap(), Some(("jpeg".into(), b"stripped".to_vec())));
    assert_eq!(store.read_blob(&sha, Variant::Thumbnail).await.unwrap(), Some(("jpeg".into(), b"thumb".to_vec())));
    assert_eq!(store.read_blob(&hash(2), Variant::Content).await.unwrap(), None);
    assert_eq!(store.put_part(&part(&sha, "d2", 25, 0, &bytes)).await.unwrap(), PartOutcome::AlreadyStored);
    assert_eq!(store.finish(&blob(&sha, "d2", 25, b"other"), 0, 1 << 20).await.unwrap(), Finished::AlreadyStored);
    assert_eq!(store.quota_used("d1").await.unwrap(), 25, "the first device's blob");
    assert_eq!(store.quota_used("d2").await.unwrap(), 0);
}

pub async fn the_quota_counts_blobs_and_unfinished_uploads<S: BlobStore + Store>(store: Arc<S>) {
    let quota = 100;
    let (a, b, c) = (hash(1), hash(2), hash(3));
    let data = [7u8; 60];
    // An unfinished upload counts its whole declared size.
    let outcome = store.put_part(&Part { quota, ..part(&a, "d", 60, 0, &data[..10]) }).await.unwrap();
    assert_eq!(outcome, PartOutcome::Received { received: 10 });
    let outcome = store.put_part(&Part { quota, ..part(&b, "d", 50, 0, &data[..10]) }).await.unwrap();
    assert_eq!(outcome, PartOutcome::OverQuota { used: 60 });
    assert_eq!(store.upload_state(&b, "d").await.unwrap().received, 0, "nothing of it is kept");
    // Another device has a quota of its own; the upload itself goes on.
    let outcome = store.put_part(&Part { quota, ..part(&b, "e", 50, 0, &data[..10]) }).await.unwrap();
    assert_eq!(outcome, PartOutcome::Received { received: 10 });
    let outcome = store.put_part(&Part { quota, ..part(&a, "d", 60, 10, &data[10..20]) }).await.unwrap();
    assert_eq!(outcome, PartOutcome::Received { received: 20 });
    // Stored blobs count as their first device's; a discarded upload no longer counts.
    store.discard(&a, "d").await.unwrap();
    assert_eq!(store.quota_used("d").await.unwrap(), 0);
    assert_eq!(store.finish(&blob(&c, "d", 60, b"c"), 0, quota).await.unwrap(), Finished::Stored);
    assert_eq!(store.quota_used("d").await.unwrap(), 60);
    assert_eq!(store.finish(&blob(&a, "d", 60, b"a"), 0, quota).await.unwrap(), Finished::OverQuota { used: 60 });
    assert_eq!(store.read_blob(&a, Variant::Content).await.unwrap(), None);
}

/// Uploads started at once by one device (through any process): the check
/// and the write are one transaction that holds the device, so exactly as
/// many pass as the quota has room for.
pub async fn concurrent_uploads_cannot_pass_the_quota_together<S: BlobStore + Store>(store: Arc<S>) {
    let mut tasks = tokio::task::JoinSet::new();
    for seed in 0..8u8 {
        let store = store.clone();
        tasks.spawn(async move {
            let sha = hash(100 + seed);
            let p = Part { quota: 100, ..part(&sha, "d", 30, 0, &[1; 5]) };
            store.put_part(&p).await.unwrap()
        });
    }
    let mut received = 0;
    while let Some(outcome) = tasks.join_next().await {
        match outcome.unwrap() {
            PartOutcome::Received { .. } => received += 1,
            PartOutcome::OverQuota { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(received, 3, "3 × 30 bytes fit in 100");
    assert_eq!(store.quota_used("d").await.unwrap(), 90);
}

pub async fn a_merge_writes_the_attachments_its_records_name<S: BlobStore + Store>(store: Arc<S>) {
    let model = ModelId::new_random();
    let mut record = testdata::patrol(RecordId::new_random(), "2025-05-05", 0);
    let mut live = testdata::photo(9, 150_000);
    record.attachments.insert(AttachmentId::new_random(), live.clone());
    live.deleted = true;
    live.sha256 = ContentHash::from_digest(&[8; 32]);
    record.attachments.insert(AttachmentId::new_random(), live);
    let row = RecordRow::from_record(model, &record);
    assert_eq!(row.details.photos, [hash(9)], "the export lists the live photo only");
    let batch = WriteBatch { read_model: vec![ReadModelWrite::Record(row)], ..WriteBatch::default() };
    store.commit(&[batch]).await.unwrap();
    let refs = store.references(&hash(9)).await.unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!((refs[0].model.as_str(), refs[0].media_type.as_str()), (model.to_string().as_str(), "jpeg"));
    assert_eq!((refs[0].bytes, refs[0].deleted), (150_000, false));
    assert!(store.references(&hash(8)).await.unwrap()[0].deleted);
    // The record's next row replaces its attachments.
    record.attachments.clear();
    let batch = WriteBatch {
        read_model: vec![ReadModelWrite::Record(RecordRow::from_record(model, &record))],
        ..WriteBatch::default()
    };
    store.commit(&[batch]).await.unwrap();
    assert!(store.references(&hash(9)).await.unwrap().is_empty());
}

pub async fn sweeping_ends_only_uploads_untouched_since<S: BlobStore + Store>(store: Arc<S>) {
    let (old, fresh) = (hash(1), hash(2));
    store.put_part(&Part { now: 1_000, ..part(&old, "d", 30, 0, &[1; 5]) }).await.unwrap();
    store.put_part(&Part { now: 9_000, ..part(&fresh, "d", 30, 0, &[1; 5]) }).await.unwrap();
    assert_eq!(store.sweep_uploads(5_000).await.unwrap(), 1);
    assert_eq!(store.upload_state(&old, "d").await.unwrap().received, 0);
    assert_eq!(store.upload_state(&fresh, "d").await.unwrap().received, 5);
    assert_eq!(store.quota_used("d").await.unwrap(), 30);
    // The swept upload's parts went with it: it starts over from 0.
    assert!(matches!(
        store.put_part(&part(&old, "d", 30, 0, &[1; 5])).await.unwrap(),
        PartOutcome::Received { received: 5 }
    ));
}

#[macro_export]
macro_rules! blob_contract_tests {
    ($open:expr) => {
        $crate::blob_contract_tests!(@each $open;
            parts_are_kept_until_the_last_completes_the_blob,
            the_quota_counts_blobs_and_unfinished_uploads,
            concurrent_uploads_cannot_pass_the_quota_together,
            a_merge_writes_the_attachments_its_records_name,
            sweeping_ends_only_uploads_untouched_since
        );
    };
    (@each $open:expr; $($test:ident),*) => {
        $(
            #[tokio::test]
            async fn $test() {
                // `None` when the backend is not available here.
                let Some((store, _keep)) = $open.await else { return };
                $crate::store::blobs_contract::$test(store).await;
            }
        )*
    };
}
