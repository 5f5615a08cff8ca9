//! The server's HTTP API as the app uses it: login (JSON) and sync (CBOR
//! over gzip), with failures sorted into what the app does about them.
//! The server is the page's own origin, so paths are relative.

use gloo_net::http::{Request, Response};
use kheo_shared::protocol::{
    self, CONTENT_TYPE, ErrorBody, LOGIN_PATH, LoginRequest, LoginResponse, SYNC_PATH, SyncRequest, SyncResponse,
};

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// No answer at all: no network, server down, connection cut.
    #[error("network: {0}")]
    Network(String),
    /// The token is no longer accepted (revoked device, disabled account).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The server refused the request for a reason it named.
    #[error("{status} {}: {}", .body.error, .body.message)]
    Refused { status: u16, body: ErrorBody },
    /// A 5xx, or an answer that is not what the protocol says.
    #[error("server: {0}")]
    Server(String),
}

impl ApiError {
    /// Worth retrying later as is (the server or the network may recover).
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Network(_) | ApiError::Server(_) => true,
            ApiError::Refused { status, .. } => *status == 429 || *status == 503,
            ApiError::Unauthorized(_) => false,
        }
    }
}

pub async fn login(request: &LoginRequest) -> Result<LoginResponse, ApiError> {
    let response = Request::post(LOGIN_PATH)
        .json(request)
        .map_err(|e| ApiError::Server(e.to_string()))?
        .send()
        .await
        .map_err(|e| ApiError::Network(e.to_string()))?;
    let response = check(response).await?;
    response.json().await.map_err(|e| ApiError::Server(format!("login answer: {e}")))
}

pub async fn sync(token: &str, request: &SyncRequest) -> Result<SyncResponse, ApiError> {
    let body = js_sys::Uint8Array::from(protocol::encode(request).as_slice());
    let response = Request::post(SYNC_PATH)
        .header("content-type", CONTENT_TYPE)
        .header("content-encoding", "gzip")
        .header("authorization", &format!("Bearer {token}"))
        .body(body)
        .map_err(|e| ApiError::Server(e.to_string()))?
        .send()
        .await
        .map_err(|e| ApiError::Network(e.to_string()))?;
    let response = check(response).await?;
    let bytes = response.binary().await.map_err(|e| ApiError::Network(e.to_string()))?;
    protocol::decode_inflated(&bytes).map_err(|e| ApiError::Server(format!("sync answer: {e}")))
}

/// The organisation tree (`GET /api/v1/org`), units only.
pub async fn org(token: &str) -> Result<Vec<crate::org::Unit>, ApiError> {
    #[derive(serde::Deserialize)]
    struct Tree {
        units: Vec<crate::org::Unit>,
    }
    let response = Request::get("/api/v1/org")
        .header("authorization", &format!("Bearer {token}"))
        .send()
        .await
        .map_err(|e| ApiError::Network(e.to_string()))?;
    let tree: Tree = check(response).await?.json().await.map_err(|e| ApiError::Server(format!("org answer: {e}")))?;
    Ok(tree.units)
}

/// What `GET /api/v1/changes` answers: the scope's cursor now, and whether
/// it moved from the one the request named.
#[derive(Debug, serde::Deserialize)]
pub struct Changes {
    pub cursor: String,
    pub changed: bool,
}

/// "Anything new?" (`GET /api/v1/changes`): answers when something in the
/// account's scope changed since `since`, or after `wait_secs`; with the
/// device's `keep`, only in what the device is offered.
pub async fn changes(
    token: &str,
    since: Option<&str>,
    wait_secs: u32,
    keep: Option<&kheo_shared::protocol::Keep>,
) -> Result<Changes, ApiError> {
    let mut path = format!("/api/v1/changes?wait={wait_secs}");
    if let Some(since) = since {
        path.push_str("&since=");
        path.push_str(&String::from(js_sys::encode_uri_component(since)));
    }
    if let Some(keep) = keep {
        if keep.only_synced {
            path.push_str("&only_synced=true");
        }
        if let Some(year) = keep.logs_from {
            path.push_str(&format!("&logs_from={year}"));
        }
    }
    get(token, &path).await?.json().await.map_err(|e| ApiError::Server(format!("changes answer: {e}")))
}

/// Revokes this device's own token (`POST /api/v1/devices/{id}/revoke`), at logout.
pub async fn revoke_device(token: &str, device_id: &str) -> Result<(), ApiError> {
    let response = Request::post(&format!("/api/v1/devices/{device_id}/revoke"))
        .header("authorization", &format!("Bearer {token}"))
        .send()
        .await
        .map_err(|e| ApiError::Network(e.to_string()))?;
    check(response).await.map(|_| ())
}

async fn check(response: Response) -> Result<Response, ApiError> {
    let status = response.status();
    if response.ok() {
        return Ok(response);
    }
    let body: Option<ErrorBody> = response.json().await.ok();
    match (status, body) {
        (401, body) => Err(ApiError::Unauthorized(body.map(|b| b.message).unwrap_or_default())),
        (s, _) if s >= 500 => Err(ApiError::Server(format!("HTTP {s}"))),
        (s, Some(body)) => Err(ApiError::Refused { status: s, body }),
        // A proxy or captive portal answering instead of the server.
        (s, None) => Err(ApiError::Server(format!("HTTP {s} without an error body"))),
    }
}

/// `GET` of an authenticated path, checked; for the report endpoints.
async fn get(token: &str, path: &str) -> Result<Response, ApiError> {
    let response = Request::get(path)
        .header("authorization", &format!("Bearer {token}"))
        .send()
        .await
        .map_err(|e| ApiError::Network(e.to_string()))?;
    check(response).await
}

/// A JSON answer of the server's report endpoints (`crate::reports` has the shapes).
pub async fn get_json<T: serde::de::DeserializeOwned>(token: &str, path: &str) -> Result<T, ApiError> {
    get(token, path).await?.json().await.map_err(|e| ApiError::Server(format!("report answer: {e}")))
}

/// A text answer: the SVG charts the server draws.
pub async fn get_text(token: &str, path: &str) -> Result<String, ApiError> {
    get(token, path).await?.text().await.map_err(|e| ApiError::Network(e.to_string()))
}

/// A file to download: its bytes, its type and the name the server gives it.
pub struct Download {
    pub bytes: Vec<u8>,
    pub content_type: String,
    pub name: Option<String>,
}

pub async fn get_file(token: &str, path: &str) -> Result<Download, ApiError> {
    let response = get(token, path).await?;
    let headers = response.headers();
    let content_type = headers.get("content-type").unwrap_or_else(|| "application/octet-stream".into());
    let name = headers.get("content-disposition").and_then(|d| crate::reports::attachment_name(&d));
    let bytes = response.binary().await.map_err(|e| ApiError::Network(e.to_string()))?;
    Ok(Download { bytes, content_type, name })
}

/// `PUT` of a JSON body to an authenticated path (a yearly target), checked.
pub async fn put_json<T: serde::Serialize>(token: &str, path: &str, body: &T) -> Result<(), ApiError> {
    let response = Request::put(path)
        .header("authorization", &format!("Bearer {token}"))
        .json(body)
        .map_err(|e| ApiError::Server(e.to_string()))?
        .send()
        .await
        .map_err(|e| ApiError::Network(e.to_string()))?;
    check(response).await.map(|_| ())
}

/// What the blob endpoints answer (`docs/PROTOCOL.md` §13): whether the
/// server holds the whole photo, else how many bytes of this device's
/// upload it holds durably.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct BlobProgress {
    pub stored: bool,
    #[serde(default)]
    pub received: u32,
}

/// Where an upload continues (`GET /api/v1/blobs/{sha}/upload`).
pub async fn blob_resume(token: &str, sha: &str) -> Result<BlobProgress, ApiError> {
    get(token, &format!("/api/v1/blobs/{sha}/upload"))
        .await?
        .json()
        .await
        .map_err(|e| ApiError::Server(format!("resume answer: {e}")))
}

/// One part of a photo (`PUT /api/v1/blobs/{sha}`): `part` starts at
/// byte `first` of `total`.
pub async fn blob_put(
    token: &str,
    sha: &str,
    mime: &str,
    part: &[u8],
    first: u32,
    total: u32,
) -> Result<BlobProgress, ApiError> {
    let mut request = Request::put(&format!("/api/v1/blobs/{sha}"))
        .header("authorization", &format!("Bearer {token}"))
        .header("content-type", mime);
    let last = first as usize + part.len();
    // Without the header the body is the whole blob.
    if first > 0 || last < total as usize {
        request = request.header("content-range", &format!("bytes {first}-{}/{total}", last.saturating_sub(1)));
    }
    let response = request
        .body(js_sys::Uint8Array::from(part))
        .map_err(|e| ApiError::Server(e.to_string()))?
        .send()
        .await
        .map_err(|e| ApiError::Network(e.to_string()))?;
    check(response).await?.json().await.map_err(|e| ApiError::Server(format!("upload answer: {e}")))
}
