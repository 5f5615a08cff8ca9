//! Photos (docs/PROTOCOL.md §13) against the real server: uploads whole and
//! in parts, a cut connection resumed from `received`, idempotent re-puts,
//! the stored copy stripped of its EXIF, the thumbnail, caching, and every
//! refusal with its code and nothing stored. On PostgreSQL too when
//! `KHEO_TEST_DATABASE_URL` names a server.

use kheo_shared::codes::{ModelStatus, Role};
use kheo_shared::evidence::{Attachment, AttachmentId, ContentHash, MediaType};
use kheo_shared::ids::{ModelId, RecordId};
use kheo_shared::record::Record;
use kheo_shared::scalars::Timestamp;
use kheo_shared::testdata;
use kheo_tests::{Device, TestServer};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

const PART: usize = 64 * 1024;

/// A JPEG of `side` × `side` pixels; `noisy` ones barely compress (bigger files).
pub(crate) fn jpeg(side: u32, noisy: bool) -> Vec<u8> {
    let mut seed = 0x2545_f491_u32;
    let image = image::RgbImage::from_fn(side, side, |x, y| {
        if noisy {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            image::Rgb([seed as u8, (seed >> 8) as u8, (seed >> 16) as u8])
        } else {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 120])
        }
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92).encode_image(&image).expect("JPEG encodes");
    out
}

fn webp(side: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(side, side, |x, y| image::Rgb([(x * 3 % 256) as u8, (y % 256) as u8, 40]));
    let mut out = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut out)
        .encode(image.as_raw(), side, side, image::ExtendedColorType::Rgb8)
        .expect("WebP encodes");
    out
}

/// `jpeg` with an EXIF segment carrying a position, right after SOI.
fn with_exif(jpeg: &[u8]) -> Vec<u8> {
    let mut exif = b"Exif\0\0MM\0\x2a\0\0\0\x08GPS 15.5739N 108.4740E".to_vec();
    exif.resize(80, 0);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&exif);
    out.extend_from_slice(&jpeg[2..]);
    out
}

pub(crate) fn hash_of(bytes: &[u8]) -> String {
    let digest: [u8; 32] = Sha256::digest(bytes).into();
    ContentHash::from_digest(&digest).to_string()
}

pub(crate) fn attachment(sha256: &str, media_type: MediaType, bytes: usize) -> Attachment {
    Attachment {
        sha256: ContentHash::parse(sha256).expect("a hash"),
        media_type,
        bytes: bytes as u32,
        width: 64,
        height: 64,
        taken_at: Timestamp(1_750_000_000_000),
        caption: "Tuần tra bờ sông".into(),
        deleted: false,
    }
}

/// A patrol with these photos, logged by `device` in `model` and synced.
pub(crate) async fn record_with(device: &mut Device, url: &str, model: ModelId, photos: &[Attachment]) -> Record {
    let mut record = testdata::patrol(RecordId::new_random(), "2025-06-02", 0);
    for photo in photos {
        record.attachments.insert(AttachmentId::new_random(), photo.clone());
    }
    device.put_record(model, &record);
    device.sync(url).await.expect("the record syncs");
    record
}

/// A model of another commune, created by its own staff.
async fn model_in(server: &TestServer, unit: &str, name: &str) -> ModelId {
    let mut staff = server.device_as(name, Role::CommuneStaff, unit).await;
    let model = ModelId::new_random();
    let mut profile = testdata::model(model, unit);
    profile.status = ModelStatus::Recognised;
    profile.status_years.typical = None;
    staff.put_model(&profile);
    staff.sync(&server.url).await.expect("the model syncs");
    model
}

pub(crate) struct Answer {
    pub status: StatusCode,
    pub json: serde_json::Value,
}

impl Answer {
    fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or("")
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let json = response.json().await.unwrap_or(serde_json::Value::Null);
    Answer { status, json }
}

/// `PUT /api/v1/blobs/{sha}` of `bytes[first..end]`, with a range unless it is the whole.
pub(crate) async fn put(
    url: &str,
    token: &str,
    sha: &str,
    mime: &str,
    bytes: &[u8],
    first: usize,
    end: usize,
) -> Answer {
    let mut request = reqwest::Client::new()
        .put(format!("{url}/api/v1/blobs/{sha}"))
        .bearer_auth(token)
        .header("Content-Type", mime)
        .body(bytes[first..end].to_vec());
    if (first, end) != (0, bytes.len()) {
        request = request.header("Content-Range", format!("bytes {first}-{}/{}", end - 1, bytes.len()));
    }
    answer(request.send().await.expect("the server answers")).await
}

async fn status(url: &str, token: &str, sha: &str) -> Answer {
    let response = reqwest::Client::new()
        .get(format!("{url}/api/v1/blobs/{sha}/upload"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the server answers");
    answer(response).await
}

pub(crate) async fn get(url: &str, token: &str, path: &str, etag: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("{url}{path}")).bearer_auth(token);
    if let Some(etag) = etag {
        request = request.header("If-None-Match", etag);
    }
    request.send().await.expect("the server answers")
}

/// Every row of the blob tables, to show that a refusal stored nothing.
async fn blob_fingerprint(server: &TestServer) -> Vec<String> {
    use sqlx::Row;
    let pool = server.raw_database().await;
    let mut rows = Vec::new();
    for query in [
        "SELECT sha256 || '/' || first_device || '/' || CAST(bytes AS TEXT), content FROM blobs ORDER BY sha256",
        "SELECT sha256 || '/' || device || '/' || CAST(received AS TEXT), media_type FROM blob_uploads \
         ORDER BY sha256, device",
        "SELECT sha256 || '/' || device || '/' || CAST(part_start AS TEXT), data FROM blob_parts \
         ORDER BY sha256, device, part_start",
    ] {
        for r in sqlx::query(query).fetch_all(&pool).await.expect("blob tables read") {
            let key: String = r.get(0);
            let value: Vec<u8> = r.try_get(1).unwrap_or_else(|_| r.get::<String, _>(1).into_bytes());
            rows.push(format!("{key}:{}", hash_of(&value)));
        }
    }
    pool.close().await;
    rows
}

#[tokio::test]
async fn a_photo_uploads_whole_is_stored_without_its_exif_and_served_with_its_thumbnail() {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let url = server.url.clone();
    let mut phone = server.device("photo").await;
    let photo = with_exif(&jpeg(320, false));
    assert!(photo.windows(3).any(|w| w == b"GPS"));
    let sha = hash_of(&photo);
    record_with(&mut phone, &url, model, &[attachment(&sha, MediaType::Jpeg, photo.len())]).await;

    let before = status(&url, &phone.token, &sha).await;
    assert_eq!(
        (before.status, &before.json["stored"], &before.json["received"]),
        (StatusCode::OK, &false.into(), &0.into())
    );
    let stored = put(&url, &phone.token, &sha, "image/jpeg", &photo, 0, photo.len()).await;
    assert_eq!(stored.status, StatusCode::CREATED, "{:?}", stored.json);
    assert_eq!(stored.json["received"], photo.len());
    // A second upload of a stored blob changes nothing.
    let fingerprint = blob_fingerprint(&server).await;
    let again = put(&url, &phone.token, &sha, "image/jpeg", &photo, 0, photo.len()).await;
    assert_eq!((again.status, &again.json["stored"]), (StatusCode::OK, &true.into()));
    assert_eq!(blob_fingerprint(&server).await, fingerprint);
    assert_eq!(status(&url, &phone.token, &sha).await.json["stored"], true);

    // The commune's staff reads it: the bytes without the EXIF segment, cached for good.
    let path = format!("/api/v1/blobs/{sha}");
    let response = get(&url, server.staff_token(), &path, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let etag = format!("\"{sha}\"");
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    assert_eq!(response.headers()["etag"], etag.as_str());
    assert_eq!(response.headers()["cache-control"], "private, max-age=31536000, immutable");
    let served = response.bytes().await.expect("the photo");
    assert!(!served.windows(3).any(|w| w == b"GPS"), "the position is gone");
    assert!(!served.windows(4).any(|w| w == b"Exif"));
    let decoded = image::load_from_memory_with_format(&served, image::ImageFormat::Jpeg).expect("still a JPEG");
    assert_eq!((decoded.width(), decoded.height()), (320, 320));
    assert_eq!(get(&url, server.staff_token(), &path, Some(&etag)).await.status(), StatusCode::NOT_MODIFIED);

    let response = get(&url, server.staff_token(), &format!("{path}/thumbnail"), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    let thumb = response.bytes().await.expect("the thumbnail");
    let thumb = image::load_from_memory_with_format(&thumb, image::ImageFormat::Jpeg).expect("a JPEG thumbnail");
    assert_eq!((thumb.width(), thumb.height()), (240, 240));

    // Kept across a restart: it was durable when acknowledged.
    server.restart().await;
    assert_eq!(get(&server.url, server.staff_token(), &path, None).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_photo_uploads_in_parts_and_a_cut_part_resumes_from_received() {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let url = server.url.clone();
    let mut phone = server.device("parts").await;
    let photo = jpeg(320, true);
    assert!(photo.len() > 2 * PART && photo.len() < 256 * 1024, "{} bytes", photo.len());
    let sha = hash_of(&photo);
    let small = webp(48);
    let small_sha = hash_of(&small);
    record_with(
        &mut phone,
        &url,
        model,
        &[attachment(&sha, MediaType::Jpeg, photo.len()), attachment(&small_sha, MediaType::Webp, small.len())],
    )
    .await;

    let first = put(&url, &phone.token, &sha, "image/jpeg", &photo, 0, PART).await;
    assert_eq!((first.status, &first.json["received"]), (StatusCode::ACCEPTED, &PART.into()), "{:?}", first.json);
    // The same part again, or one that skips ahead, is refused: continue from `received`.
    for (from, to) in [(0, PART), (2 * PART, 3 * PART)] {
        let refused = put(&url, &phone.token, &sha, "image/jpeg", &photo, from, to).await;
        assert_eq!((refused.status, refused.error()), (StatusCode::CONFLICT, "offset_mismatch"));
    }

    // The next part's connection is cut half way through its body.
    let fingerprint = blob_fingerprint(&server).await;
    let address = url.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address).await.expect("connects");
    let head = format!(
        "PUT /api/v1/blobs/{sha} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: image/jpeg\r\nContent-Range: bytes {PART}-{}/{}\r\nContent-Length: {PART}\r\n\r\n",
        phone.token,
        2 * PART - 1,
        photo.len()
    );
    socket.write_all(head.as_bytes()).await.expect("the head is sent");
    socket.write_all(&photo[PART..PART + PART / 2]).await.expect("half the body is sent");
    socket.flush().await.expect("flushed");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    drop(socket);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(blob_fingerprint(&server).await, fingerprint, "nothing of the cut part is kept");
    let resume = status(&url, &phone.token, &sha).await;
    assert_eq!((&resume.json["stored"], &resume.json["received"]), (&false.into(), &PART.into()));

    let mut at = PART;
    while at < photo.len() {
        let end = (at + PART).min(photo.len());
        let part = put(&url, &phone.token, &sha, "image/jpeg", &photo, at, end).await;
        let want = if end == photo.len() { StatusCode::CREATED } else { StatusCode::ACCEPTED };
        assert_eq!(part.status, want, "{:?}", part.json);
        assert_eq!(part.json["received"], end);
        at = end;
    }
    let served = get(&url, &phone.token, &format!("/api/v1/blobs/{sha}"), None).await;
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(&served.bytes().await.expect("bytes")[..], &photo[..], "a JPEG without metadata is kept as it came");
    // A late repeat of the last part is answered as stored.
    let repeat = put(&url, &phone.token, &sha, "image/jpeg", &photo, at - PART, at).await;
    assert_eq!(repeat.status, StatusCode::OK);

    let stored = put(&url, &phone.token, &small_sha, "image/webp", &small, 0, small.len()).await;
    assert_eq!(stored.status, StatusCode::CREATED, "{:?}", stored.json);
    let thumb = get(&url, &phone.token, &format!("/api/v1/blobs/{small_sha}/thumbnail"), None).await;
    assert_eq!((thumb.status(), thumb.headers()["content-type"].to_str().ok()), (StatusCode::OK, Some("image/jpeg")));
}

#[tokio::test]
async fn every_refused_upload_answers_its_code_and_stores_nothing() {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let url = server.url.clone();
    let mut phone = server.device("refused").await;
    let photo = jpeg(64, false);
    let sha = hash_of(&photo);
    // Bytes that are not an image, and a photo whose record names other bytes of its size.
    let noise: Vec<u8> = (0..5_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let noise_sha = hash_of(&noise);
    let mut forged = photo.clone();
    let last = forged.len() - 3;
    forged[last] ^= 0xFF;
    let forged_sha = hash_of(&forged);
    let big = 300 * 1024;
    let big_sha = hash_of(b"big");
    let unsynced = jpeg(40, false);
    let unsynced_sha = hash_of(&unsynced);
    record_with(
        &mut phone,
        &url,
        model,
        &[
            attachment(&sha, MediaType::Jpeg, photo.len()),
            attachment(&noise_sha, MediaType::Jpeg, noise.len()),
            attachment(&forged_sha, MediaType::Jpeg, photo.len()),
            attachment(&big_sha, MediaType::Jpeg, big),
        ],
    )
    .await;
    // Logged but not synced yet: the server does not know of it.
    let mut later = testdata::patrol(RecordId::new_random(), "2025-06-03", 0);
    later.attachments.insert(AttachmentId::new_random(), attachment(&unsynced_sha, MediaType::Jpeg, unsynced.len()));
    phone.put_record(model, &later);

    let before = blob_fingerprint(&server).await;
    let token = phone.token.clone();
    let whole = photo.len();
    let cases: Vec<(&str, Answer, StatusCode, &str)> = vec![
        (
            "a bad name",
            put(&url, &token, &sha.to_uppercase(), "image/jpeg", &photo, 0, whole).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "upload before the record synced",
            put(&url, &token, &unsynced_sha, "image/jpeg", &unsynced, 0, unsynced.len()).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "the wrong type",
            put(&url, &token, &sha, "image/webp", &photo, 0, whole).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "hash mismatch",
            put(&url, &token, &forged_sha, "image/jpeg", &photo, 0, whole).await,
            StatusCode::BAD_REQUEST,
            "hash_mismatch",
        ),
        (
            "not an image",
            put(&url, &token, &noise_sha, "image/jpeg", &noise, 0, noise.len()).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not_an_image",
        ),
        (
            "a size that is not the attachment's",
            put(&url, &token, &sha, "image/jpeg", &photo[..whole - 1], 0, whole - 1).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "a body over 256 KiB",
            put(&url, &token, &big_sha, "image/jpeg", &vec![0xFF; big], 0, big).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
    ];
    for (what, got, status, error) in &cases {
        assert_eq!((got.status, got.error()), (*status, *error), "{what}: {:?}", got.json);
    }
    assert_eq!(cases[1].1.json["rule"], "blob_not_referenced");

    // A huge declared size and an unreadable range, before any byte is read.
    let http = reqwest::Client::new();
    for (range, status, error) in [
        ("bytes 0-9/4294967296", StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        ("bytes 0-9/1048577", StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        ("bytes=0-9/10", StatusCode::BAD_REQUEST, "bad_request"),
    ] {
        let response = http
            .put(format!("{url}/api/v1/blobs/{sha}"))
            .bearer_auth(&token)
            .header("Content-Type", "image/jpeg")
            .header("Content-Range", range)
            .body(photo[..10].to_vec())
            .send()
            .await
            .expect("answers");
        let got = answer(response).await;
        assert_eq!((got.status, got.error()), (status, error), "{range}");
    }
    // A failed check at the last part discards the parts before it.
    let first = put(&url, &token, &forged_sha, "image/jpeg", &photo, 0, 1000).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let last = put(&url, &token, &forged_sha, "image/jpeg", &photo, 1000, whole).await;
    assert_eq!(last.error(), "hash_mismatch");
    assert_eq!(status(&url, &token, &forged_sha).await.json["received"], 0);

    assert_eq!(blob_fingerprint(&server).await, before, "no refusal stored anything");
    // Referenced but never uploaded.
    let missing = get(&url, &token, &format!("/api/v1/blobs/{sha}"), None).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(answer(missing).await.error(), "not_found");
}

#[tokio::test]
async fn a_device_over_its_quota_is_refused_before_anything_is_stored() {
    let mut server = TestServer::start_with(|c| c.blob_quota_mib = 1).await;
    let model = server.model().await;
    let url = server.url.clone();
    let mut phone = server.device("quota").await;
    let (a, b) = (hash_of(b"a"), hash_of(b"b"));
    let size = 700_000;
    record_with(
        &mut phone,
        &url,
        model,
        &[attachment(&a, MediaType::Jpeg, size), attachment(&b, MediaType::Jpeg, size)],
    )
    .await;
    let bytes = vec![0xAB; size];
    // An unfinished upload counts its whole size against the quota.
    assert_eq!(put(&url, &phone.token, &a, "image/jpeg", &bytes, 0, PART).await.status, StatusCode::ACCEPTED);
    let before = blob_fingerprint(&server).await;
    let refused = put(&url, &phone.token, &b, "image/jpeg", &bytes, 0, PART).await;
    assert_eq!((refused.status, refused.error()), (StatusCode::PAYLOAD_TOO_LARGE, "over_quota"), "{:?}", refused.json);
    assert_eq!(blob_fingerprint(&server).await, before);
    // Another device of the same account has its own quota.
    let mut other = Device::login(&url, "quota.test", "quota-secret").await.expect("a second phone");
    other.sync(&url).await.expect("syncs");
    assert_eq!(put(&url, &other.token, &b, "image/jpeg", &bytes, 0, PART).await.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_photo_of_another_communes_record_is_neither_uploaded_nor_read_from_here() {
    let mut server = TestServer::start().await;
    let home_model = server.model().await;
    let url = server.url.clone();
    let elsewhere = model_in(&server, "QNA.DB.DP", "dp-staff").await;
    let mut theirs = server.device_as("dp-volunteer", Role::Volunteer, "QNA.DB.DP").await;
    let photo = jpeg(48, false);
    let sha = hash_of(&photo);
    record_with(&mut theirs, &url, elsewhere, &[attachment(&sha, MediaType::Jpeg, photo.len())]).await;
    let mut ours = server.device("home").await;
    // Our phone names the hash too, in a record it logged but never synced.
    let mut unsent = testdata::patrol(RecordId::new_random(), "2025-06-04", 0);
    unsent.attachments.insert(AttachmentId::new_random(), attachment(&sha, MediaType::Jpeg, photo.len()));
    ours.put_record(home_model, &unsent);

    let before = blob_fingerprint(&server).await;
    let refused = put(&url, &ours.token, &sha, "image/jpeg", &photo, 0, photo.len()).await;
    assert_eq!((refused.status, refused.error()), (StatusCode::FORBIDDEN, "forbidden"));
    assert_eq!(refused.json["rule"], "blob_not_referenced");
    assert_eq!(status(&url, &ours.token, &sha).await.status, StatusCode::FORBIDDEN);
    assert_eq!(blob_fingerprint(&server).await, before);
    // Not uploaded yet, and not ours to read: refused alike.
    for token in [ours.token.as_str(), server.staff_token()] {
        let response = get(&url, token, &format!("/api/v1/blobs/{sha}"), None).await;
        let got = answer(response).await;
        assert_eq!((got.status, got.json["rule"].as_str()), (StatusCode::FORBIDDEN, Some("out_of_scope")));
    }

    let stored = put(&url, &theirs.token, &sha, "image/jpeg", &photo, 0, photo.len()).await;
    assert_eq!(stored.status, StatusCode::CREATED);
    for path in [format!("/api/v1/blobs/{sha}"), format!("/api/v1/blobs/{sha}/thumbnail")] {
        for token in [ours.token.as_str(), server.staff_token()] {
            let got = answer(get(&url, token, &path, None).await).await;
            assert_eq!(
                (got.status, got.json["rule"].as_str()),
                (StatusCode::FORBIDDEN, Some("out_of_scope")),
                "{path}"
            );
        }
        assert_eq!(get(&url, &theirs.token, &path, None).await.status(), StatusCode::OK, "{path}");
    }
    // Province staff read every commune's photos.
    let province = server.device_as("province", Role::ProvinceStaff, "QNA").await;
    assert_eq!(get(&url, &province.token, &format!("/api/v1/blobs/{sha}"), None).await.status(), StatusCode::OK);
    // Once our record syncs, our commune may read it too.
    ours.sync(&url).await.expect("syncs");
    assert_eq!(get(&url, &ours.token, &format!("/api/v1/blobs/{sha}"), None).await.status(), StatusCode::OK);
}
