//! Photos over HTTP (docs/PROTOCOL.md §13): the resume point, uploads in
//! parts, downloads of a blob and its thumbnail, and who may do each.
//!
//! A device may upload a hash only when a record it may write has a live
//! attachment naming it with the same media type and size: the server
//! learns of a photo by the sync first, so it never keeps bytes nobody
//! references, and a hash is never a place to store anything else. An
//! account may read a blob when it may read a record whose attachment
//! names it. Both are read from the read model (`rm_attachments`) and the
//! model's unit (`model_units`) at each request, never from memory.
//!
//! The bytes are hostile until checked: the size is bounded before the body
//! is read (256 KiB a part, 1 MiB a blob), the hash is checked before any
//! decode, and the decode is bounded ([`photo`]). A part is acknowledged
//! once durable; a check that fails discards the unfinished upload.

pub mod photo;

use std::sync::atomic::{AtomicI64, Ordering};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kheo_shared::codes::Code;
use kheo_shared::evidence::limits::MAX_PHOTO_BYTES;
use kheo_shared::evidence::{ContentHash, MediaType};
use kheo_shared::ids::ModelId;
use kheo_shared::protocol::ErrorBody;
use kheo_shared::scalars::Timestamp;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::access::Scope;
use crate::auth::Principal;
use crate::error::AppError;
use crate::http::AppState;
use crate::http::extract::Path;
use crate::http::openapi;
use crate::store::BlobStore;
use crate::store::blobs::{BlobRef, Finished, NewBlob, Part, PartOutcome, Variant};

/// The largest body of one upload request.
pub const MAX_PART_BYTES: usize = 256 * 1024;
/// Unfinished uploads untouched this long are deleted.
pub const UPLOAD_EXPIRY_MS: i64 = 7 * 24 * 3600 * 1000;
/// How often a process sweeps expired uploads (on the next upload after).
const SWEEP_EVERY_MS: i64 = 3600 * 1000;

/// What the blob endpoints share.
pub struct Blobs {
    pub store: std::sync::Arc<dyn BlobStore>,
    /// The quota of each device, in bytes.
    pub quota: i64,
    last_sweep: AtomicI64,
}

impl Blobs {
    pub fn new(store: std::sync::Arc<dyn BlobStore>, quota_mib: u64) -> Blobs {
        let quota = i64::try_from(quota_mib.saturating_mul(1 << 20)).unwrap_or(i64::MAX);
        Blobs { store, quota, last_sweep: AtomicI64::new(i64::MIN) }
    }

    /// Deletes expired uploads when this process has not for an hour. A
    /// failed sweep is logged and tried again at the next upload.
    async fn sweep_if_due(&self, now: i64) {
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now.saturating_sub(last) < SWEEP_EVERY_MS
            || self.last_sweep.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return;
        }
        match self.store.sweep_uploads(now - UPLOAD_EXPIRY_MS).await {
            Ok(0) => {}
            Ok(swept) => tracing::info!(swept, "deleted unfinished uploads untouched for 7 days"),
            Err(e) => {
                self.last_sweep.store(last, Ordering::Relaxed);
                tracing::warn!(error = %e, "sweeping unfinished uploads failed");
            }
        }
    }
}

/// Where an upload stands (§13.1), and the answer to a part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct UploadStatus {
    pub sha256: String,
    /// The server has the whole blob (from any device).
    pub stored: bool,
    /// Bytes of this device's upload the server holds durably; the total once stored.
    pub received: i64,
}

fn parse_hash(text: &str) -> Result<ContentHash, AppError> {
    ContentHash::parse(text).map_err(|e| AppError::BadRequest(e.to_string()))
}

/// The attachments naming `hash` in records of models the account's scope covers.
async fn in_scope(state: &AppState, who: &Principal, hash: &ContentHash) -> Result<Vec<BlobRef>, AppError> {
    let refs = state.blobs.store.references(hash.as_str()).await?;
    let models: Vec<ModelId> = refs.iter().filter_map(|r| r.model.parse().ok()).collect();
    if models.is_empty() {
        return Ok(Vec::new());
    }
    let units = state.sync.directory.units_of(&models).await?;
    let org = state.accounts.org();
    let scope = Scope { who, org: &org };
    Ok(refs
        .into_iter()
        .filter(|r| {
            let unit = r.model.parse::<ModelId>().ok().and_then(|m| units.get(&m));
            unit.is_some_and(|u| scope.covers(u))
        })
        .collect())
}

fn not_referenced(hash: &ContentHash) -> AppError {
    AppError::Forbidden {
        rule: "blob_not_referenced",
        message: format!(
            "no record this device may write has a photo {hash}; sync the record before uploading its photo"
        ),
        doc: None,
    }
}

fn out_of_scope(hash: &ContentHash) -> AppError {
    AppError::Forbidden {
        rule: "out_of_scope",
        message: format!("no record this account may read has a photo {hash}"),
        doc: None,
    }
}

/// `bytes <first>-<last>/<total>`.
fn parse_range(value: &str) -> Option<(i64, i64, i64)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let number = |s: &str| -> Option<i64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 15 {
            return None;
        }
        s.parse().ok()
    };
    let (first, last, total) = (number(first)?, number(last)?, number(total)?);
    (first <= last && last < total).then_some((first, last, total))
}

#[utoipa::path(
    get,
    path = "/api/v1/blobs/{sha256}/upload",
    tag = "photos",
    summary = "Where an upload stands",
    description = "Whether the server has the whole blob, else how many bytes of this device's unfinished upload \
        it holds durably; an upload continues from `received` (docs/PROTOCOL.md §13.1). Any device that may upload \
        the blob: a record it may write has a photo naming the hash.",
    params(("sha256" = String, Path, description = "The blob's SHA-256, 64 lowercase hex digits")),
    security(("device_token" = [])),
    responses(
        (status = 200, description = "Where the upload stands.", body = UploadStatus),
        (status = 400, response = openapi::BadHash),
        (status = 401, response = openapi::Unauthenticated),
        (status = 403, description = "`forbidden`, rule `blob_not_referenced`: no record this device may write \
            names the hash.", body = ErrorBody),
        (status = 500, response = openapi::Internal),
    )
)]
pub(crate) async fn upload_status(
    who: Principal,
    State(state): State<AppState>,
    Path(sha256): Path<String>,
) -> Result<Json<UploadStatus>, AppError> {
    let hash = parse_hash(&sha256)?;
    if !in_scope(&state, &who, &hash).await?.iter().any(|r| !r.deleted) {
        return Err(not_referenced(&hash));
    }
    let upload = state.blobs.store.upload_state(hash.as_str(), &who.device_id).await?;
    Ok(Json(UploadStatus { sha256: hash.to_string(), stored: upload.stored, received: upload.received }))
}

#[utoipa::path(
    put,
    path = "/api/v1/blobs/{sha256}",
    tag = "photos",
    summary = "Upload a photo, or its next part",
    description = "The next part of a blob's bytes (at most 256 KiB), from `received` on; `Content-Range: bytes \
        <first>-<last>/<total>` unless the body is the whole blob. The last part is checked whole (hash, image of \
        the declared type within 4 096 px a side) and the blob stored without its metadata (docs/PROTOCOL.md \
        §13.2). A part is acknowledged once durable.",
    params(
        ("sha256" = String, Path, description = "The blob's SHA-256, 64 lowercase hex digits"),
        ("Content-Range" = Option<String>, Header, description = "`bytes <first>-<last>/<total>`"),
    ),
    request_body(content = Vec<u8>, content_type = "image/jpeg", description = "The part's bytes (or `image/webp`)"),
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The blob was already stored; the body is ignored.", body = UploadStatus),
        (status = 201, description = "The last part arrived and the blob is stored.", body = UploadStatus),
        (status = 202, description = "The part is stored; more are expected.", body = UploadStatus),
        (status = 400, description = "`bad_request`: a bad name, an unreadable `Content-Range`, a total that is \
            not the attachment's size or a body that is not the range; `hash_mismatch`: the bytes do not hash to \
            the name.", body = ErrorBody),
        (status = 401, response = openapi::Unauthenticated),
        (status = 403, description = "`forbidden`, rule `blob_not_referenced`: no record this device may write \
            has a live photo naming the hash.", body = ErrorBody),
        (status = 408, response = openapi::BodyTimeout),
        (status = 409, description = "`offset_mismatch`: the part does not start at `received`.", body = ErrorBody),
        (status = 413, description = "`too_large`: a total over 1 MiB or a body over 256 KiB; `over_quota`: the \
            device's photos would pass its quota.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: `Content-Type` is not the attachment's type; \
            `not_an_image`: the bytes are not an image of that type within bounds.", body = ErrorBody),
        (status = 500, response = openapi::Internal),
    )
)]
pub(crate) async fn upload(
    who: Principal,
    State(state): State<AppState>,
    Path(sha256): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    let hash = parse_hash(&sha256)?;
    let refs: Vec<BlobRef> = in_scope(&state, &who, &hash).await?.into_iter().filter(|r| !r.deleted).collect();
    if refs.is_empty() {
        return Err(not_referenced(&hash));
    }
    let mime = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media_type =
        MediaType::from_mime(mime).filter(|t| refs.iter().any(|r| r.media_type == t.code())).ok_or_else(|| {
            let wanted: Vec<&str> =
                refs.iter().filter_map(|r| MediaType::from_code(&r.media_type)).map(MediaType::mime).collect();
            AppError::WrongMediaType(format!("Content-Type {mime:?} is not the photo's type ({})", wanted.join(", ")))
        })?;
    let range = match headers.get(header::CONTENT_RANGE) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(parse_range)
                .ok_or_else(|| AppError::BadRequest("Content-Range must be bytes <first>-<last>/<total>".into()))?,
        ),
    };
    if let Some((_, _, total)) = range
        && total > i64::from(MAX_PHOTO_BYTES)
    {
        return Err(AppError::TooLarge(format!("a photo is at most {MAX_PHOTO_BYTES} bytes, not {total}")));
    }
    // The length is told before the body is read where the client says it.
    let declared_length =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|n| n > MAX_PART_BYTES as u64) {
        return Err(AppError::TooLarge(format!("one request carries at most {MAX_PART_BYTES} bytes")));
    }
    let data = crate::http::read_body_up_to(body, MAX_PART_BYTES).await.map_err(|e| match e {
        AppError::BodyTooLarge(_) => AppError::TooLarge(format!("one request carries at most {MAX_PART_BYTES} bytes")),
        other => other,
    })?;
    let (first, total) = match range {
        Some((first, last, total)) => {
            if data.len() as i64 != last - first + 1 {
                return Err(AppError::BadRequest(format!(
                    "the body has {} bytes, the range {first}-{last} says {}",
                    data.len(),
                    last - first + 1
                )));
            }
            (first, total)
        }
        None => (0, data.len() as i64),
    };
    if total > i64::from(MAX_PHOTO_BYTES) {
        return Err(AppError::TooLarge(format!("a photo is at most {MAX_PHOTO_BYTES} bytes, not {total}")));
    }
    if !refs.iter().any(|r| r.media_type == media_type.code() && r.bytes == total) {
        let sizes: Vec<String> = refs.iter().map(|r| r.bytes.to_string()).collect();
        return Err(AppError::BadRequest(format!("the photo has {} bytes, not {total}", sizes.join(" or "))));
    }
    let now = Timestamp::now().millis();
    state.blobs.sweep_if_due(now).await;
    let store = &state.blobs.store;
    let part = Part {
        sha256: hash.as_str(),
        device: &who.device_id,
        media_type: media_type.code(),
        total,
        first,
        data: &data,
        now,
        quota: state.blobs.quota,
    };
    let status = |code: StatusCode, stored: bool, received: i64| {
        (code, Json(UploadStatus { sha256: hash.to_string(), stored, received })).into_response()
    };
    let bytes = match store.put_part(&part).await? {
        PartOutcome::AlreadyStored => return Ok(status(StatusCode::OK, true, total)),
        PartOutcome::OffsetMismatch { received } => return Err(offset_mismatch(first, received)),
        PartOutcome::OverQuota { used } => return Err(over_quota(used, total, state.blobs.quota)),
        PartOutcome::Received { received } => return Ok(status(StatusCode::ACCEPTED, false, received)),
        PartOutcome::Complete { bytes } => bytes,
    };
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    if ContentHash::from_digest(&digest) != hash {
        store.discard(hash.as_str(), &who.device_id).await?;
        return Err(AppError::HashMismatch(format!(
            "the bytes hash to {}, not {hash}; the upload was discarded",
            ContentHash::from_digest(&digest)
        )));
    }
    let checked = match photo::check(bytes, media_type).await {
        Ok(checked) => checked,
        Err(photo::PhotoError::NotAnImage(kind, reason)) => {
            store.discard(hash.as_str(), &who.device_id).await?;
            return Err(AppError::NotAnImage(format!(
                "not a {kind} image of at most 4096 px a side ({reason}); the upload was discarded"
            )));
        }
        Err(photo::PhotoError::Internal(e)) => return Err(AppError::Internal(e)),
    };
    let blob = NewBlob {
        sha256: hash.as_str(),
        media_type: media_type.code(),
        bytes: total,
        width: i64::from(checked.width),
        height: i64::from(checked.height),
        content: &checked.content,
        thumbnail: &checked.thumbnail,
        device: &who.device_id,
        now,
    };
    match store.finish(&blob, first, state.blobs.quota).await? {
        Finished::Stored => Ok(status(StatusCode::CREATED, true, total)),
        Finished::AlreadyStored => Ok(status(StatusCode::OK, true, total)),
        Finished::OffsetMismatch { received } => Err(offset_mismatch(first, received)),
        Finished::OverQuota { used } => Err(over_quota(used, total, state.blobs.quota)),
    }
}

fn offset_mismatch(first: i64, received: i64) -> AppError {
    AppError::OffsetMismatch(format!(
        "the part starts at {first}, the server holds {received} bytes: continue from there"
    ))
}

fn over_quota(used: i64, total: i64, quota: i64) -> AppError {
    AppError::OverQuota(format!(
        "this device's photos take {used} bytes; {total} more would pass its quota of {quota} bytes"
    ))
}

#[utoipa::path(
    get,
    path = "/api/v1/blobs/{sha256}",
    tag = "photos",
    summary = "A photo's bytes",
    description = "The stored photo (metadata stripped) with its `Content-Type`, `ETag: \"<sha256>\"` and an \
        immutable cache; `304` for a matching `If-None-Match` (docs/PROTOCOL.md §13.3). Any account that may read a \
        record with a photo naming the hash.",
    params(("sha256" = String, Path, description = "The blob's SHA-256, 64 lowercase hex digits")),
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The bytes.", content_type = "image/jpeg", body = Vec<u8>),
        (status = 304, description = "The copy named by `If-None-Match` is current."),
        (status = 400, response = openapi::BadHash),
        (status = 401, response = openapi::Unauthenticated),
        (status = 403, response = openapi::BlobOutOfScope),
        (status = 404, response = openapi::BlobNotUploaded),
        (status = 500, response = openapi::Internal),
    )
)]
pub(crate) async fn download(
    who: Principal,
    State(state): State<AppState>,
    Path(sha256): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    serve(&state, &who, &sha256, &headers, Variant::Content).await
}

#[utoipa::path(
    get,
    path = "/api/v1/blobs/{sha256}/thumbnail",
    tag = "photos",
    summary = "A photo's thumbnail",
    description = "A JPEG of at most 240 px on the long side, made when the photo was stored; the same headers and \
        rights as the photo (docs/PROTOCOL.md §13.3).",
    params(("sha256" = String, Path, description = "The blob's SHA-256, 64 lowercase hex digits")),
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The thumbnail.", content_type = "image/jpeg", body = Vec<u8>),
        (status = 304, description = "The copy named by `If-None-Match` is current."),
        (status = 400, response = openapi::BadHash),
        (status = 401, response = openapi::Unauthenticated),
        (status = 403, response = openapi::BlobOutOfScope),
        (status = 404, response = openapi::BlobNotUploaded),
        (status = 500, response = openapi::Internal),
    )
)]
pub(crate) async fn thumbnail(
    who: Principal,
    State(state): State<AppState>,
    Path(sha256): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    serve(&state, &who, &sha256, &headers, Variant::Thumbnail).await
}

/// A blob is named by its hash, so a copy is never stale.
const IMMUTABLE: &str = "private, max-age=31536000, immutable";

async fn serve(
    state: &AppState,
    who: &Principal,
    sha256: &str,
    headers: &HeaderMap,
    variant: Variant,
) -> Result<Response, AppError> {
    let hash = parse_hash(sha256)?;
    // Refused alike whether or not the blob exists: the answer tells nothing of others' photos.
    if in_scope(state, who, &hash).await?.is_empty() {
        return Err(out_of_scope(&hash));
    }
    let etag = format!("\"{hash}\"");
    let etag_value = HeaderValue::from_str(&etag).map_err(|e| AppError::Internal(e.to_string()))?;
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let Some((media_type, bytes)) = state.blobs.store.read_blob(hash.as_str(), variant).await? else {
        return Err(AppError::NotFound(format!("photo {hash} has not been uploaded yet")));
    };
    let cache = [(header::ETAG, etag_value), (header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE))];
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    let mime = MediaType::from_code(&media_type).map_or("application/octet-stream", MediaType::mime);
    Ok((StatusCode::OK, cache, [(header::CONTENT_TYPE, HeaderValue::from_static(mime))], bytes).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn content_ranges_are_read_strictly() {
        assert_eq!(super::parse_range("bytes 0-65535/150000"), Some((0, 65535, 150000)));
        assert_eq!(super::parse_range("bytes 65536-149999/150000"), Some((65536, 149999, 150000)));
        for bad in ["bytes 5-4/10", "bytes 0-10/10", "0-1/2", "bytes -1/2", "bytes 0-1/", "bytes +0-1/2", "bytes */10"]
        {
            assert_eq!(super::parse_range(bad), None, "{bad}");
        }
    }
}
