//! HTTP: routes, body and header checks, and the CBOR/gzip framing of sync.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kheo_shared::protocol::{self, CONTENT_TYPE, DEVICE_HEADER, MAX_BODY_BYTES, SYNC_PATH, SyncRequest};
use tower_http::trace::TraceLayer;

use crate::error::AppError;
use crate::sync::SyncService;

#[derive(Clone)]
pub struct AppState {
    pub sync: Arc<SyncService>,
}

/// The whole HTTP surface; tests drive it with `oneshot` or over loopback.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route(SYNC_PATH, post(sync))
        // The limit is enforced in `read_body`, so an oversized body gets the JSON error body too.
        .layer(DefaultBodyLimit::disable())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

async fn sync(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, AppError> {
    let device = device_of(&headers)?;
    // The media type must match exactly; parameters such as a charset are ignored.
    let is_cbor = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(CONTENT_TYPE));
    let is_gzip = headers.get(header::CONTENT_ENCODING).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    if !is_cbor || !is_gzip {
        return Err(AppError::UnsupportedMediaType);
    }
    let body = read_body(body).await?;
    let request: SyncRequest = protocol::decode(&body).map_err(|e| match e {
        protocol::DecodeError::TooLarge => AppError::BodyTooLarge(protocol::MAX_INFLATED_BYTES),
        other => AppError::MalformedBody(other.to_string()),
    })?;
    let response = state.sync.handle(&device, request).await?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)),
            (header::CONTENT_ENCODING, HeaderValue::from_static("gzip")),
        ],
        protocol::encode(&response),
    )
        .into_response())
}

async fn read_body(body: Body) -> Result<Bytes, AppError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|e| {
        let too_large = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            AppError::BodyTooLarge(MAX_BODY_BYTES)
        } else {
            AppError::MalformedBody(format!("could not read body: {e}"))
        }
    })
}

/// Until device tokens exist, the device names itself in a header.
fn device_of(headers: &HeaderMap) -> Result<String, AppError> {
    let value =
        headers.get(DEVICE_HEADER).ok_or_else(|| AppError::BadDevice(format!("{DEVICE_HEADER} is required")))?;
    let device = value.to_str().map_err(|_| AppError::BadDevice("not ASCII".into()))?;
    let ok = (1..=64).contains(&device.len())
        && device.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if !ok {
        return Err(AppError::BadDevice("1 to 64 characters of A-Z, a-z, 0-9, '-', '_', '.'".into()));
    }
    Ok(device.to_owned())
}
