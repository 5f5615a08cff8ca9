//! Photos as the phone takes and shows them. Taking one: the picked file
//! decoded by the browser (which also turns it upright), shrunk to at most
//! 1,280 px on its long side and encoded as JPEG near 150 KB, hashed
//! (SHA-256, the blob's name), a thumbnail of at most 240 px made, and both
//! kept in [`photo_store`] before the form shows the thumbnail: the photo
//! survives a reload or a killed tab from then on, with no network.
//!
//! Showing one: the local bytes when the phone has them, else fetched from
//! the server (`/api/v1/blobs/{sha}/thumbnail`, or the blob itself when
//! opened full size) and cached in IndexedDB, as an object URL.

use js_sys::{Promise, Uint8Array};
use kheo_shared::evidence::{Attachment, ContentHash, MediaType, limits};
use kheo_shared::scalars::Timestamp;
use sha2::{Digest, Sha256};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageBitmap};

use crate::photo_store::{self, FULL, PhotoStoreError, THUMB};

/// The long side of a photo as kept and sent.
const PHOTO_SIDE: u32 = 1280;
const THUMB_SIDE: u32 = 240;
/// A JPEG at the first quality that comes under this size is kept; a
/// photo of a busy scene tries the lower ones.
const TARGET_BYTES: usize = 200 * 1024;
const QUALITIES: [f64; 3] = [0.8, 0.65, 0.5];
const THUMB_QUALITY: f64 = 0.7;

#[derive(Debug, Clone, thiserror::Error)]
pub enum TakeError {
    #[error("not an image the browser can read")]
    NotAnImage,
    #[error("the photo stays too large")]
    TooLarge,
    #[error(transparent)]
    Storage(#[from] PhotoStoreError),
    #[error("{0}")]
    Browser(String),
}

fn browser(e: JsValue) -> TakeError {
    TakeError::Browser(e.as_string().unwrap_or_else(|| format!("{e:?}")))
}

/// Shrinks, hashes and keeps a picked photo; the attachment names it.
pub async fn take(file: &web_sys::Blob, now: Timestamp) -> Result<Attachment, TakeError> {
    let window = web_sys::window().ok_or_else(|| TakeError::Browser("no window".into()))?;
    let bitmap: ImageBitmap = JsFuture::from(window.create_image_bitmap_with_blob(file).map_err(browser)?)
        .await
        .map_err(|_| TakeError::NotAnImage)?
        .dyn_into()
        .map_err(|_| TakeError::NotAnImage)?;
    let taken = keep(&bitmap, now).await;
    bitmap.close();
    taken
}

async fn keep(bitmap: &ImageBitmap, now: Timestamp) -> Result<Attachment, TakeError> {
    let (width, height) = fit(bitmap.width(), bitmap.height(), PHOTO_SIDE);
    if width == 0 || height == 0 {
        return Err(TakeError::NotAnImage);
    }
    let mut bytes = Vec::new();
    for quality in QUALITIES {
        bytes = encode(bitmap, width, height, quality).await?;
        if bytes.len() <= TARGET_BYTES {
            break;
        }
    }
    if bytes.is_empty() || bytes.len() > limits::MAX_PHOTO_BYTES as usize {
        return Err(TakeError::TooLarge);
    }
    let sha = ContentHash::from_digest(&Sha256::digest(&bytes).into());
    let (tw, th) = fit(width, height, THUMB_SIDE);
    let thumb = encode(bitmap, tw, th, THUMB_QUALITY).await?;
    photo_store::put(FULL, sha.as_str(), &bytes).await?;
    photo_store::put(THUMB, sha.as_str(), &thumb).await?;
    Ok(Attachment {
        sha256: sha,
        media_type: MediaType::Jpeg,
        bytes: bytes.len() as u32,
        width,
        height,
        taken_at: now,
        caption: String::new(),
        deleted: false,
    })
}

/// `(width, height)` scaled down (never up) to fit `side` on the long side.
fn fit(width: u32, height: u32, side: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= side {
        return (width, height);
    }
    let scale = f64::from(side) / f64::from(long);
    let scaled = |n: u32| ((f64::from(n) * scale).round() as u32).max(1);
    (scaled(width), scaled(height))
}

async fn encode(bitmap: &ImageBitmap, width: u32, height: u32, quality: f64) -> Result<Vec<u8>, TakeError> {
    let document =
        web_sys::window().and_then(|w| w.document()).ok_or_else(|| TakeError::Browser("no document".into()))?;
    let canvas: HtmlCanvasElement = document
        .create_element("canvas")
        .map_err(browser)?
        .dyn_into()
        .map_err(|_| TakeError::Browser("canvas".into()))?;
    canvas.set_width(width);
    canvas.set_height(height);
    let context: CanvasRenderingContext2d = canvas
        .get_context("2d")
        .map_err(browser)?
        .and_then(|c| c.dyn_into().ok())
        .ok_or_else(|| TakeError::Browser("no 2d canvas".into()))?;
    // JPEG has no transparency: a transparent PNG would turn black.
    context.set_fill_style_str("#fff");
    context.fill_rect(0.0, 0.0, f64::from(width), f64::from(height));
    context
        .draw_image_with_image_bitmap_and_dw_and_dh(bitmap, 0.0, 0.0, f64::from(width), f64::from(height))
        .map_err(browser)?;
    let mut failed = None;
    let blob = Promise::new(&mut |resolve, _| {
        if let Err(e) = canvas.to_blob_with_type_and_encoder_options(&resolve, "image/jpeg", &quality.into()) {
            failed = Some(e);
        }
    });
    if let Some(e) = failed {
        return Err(browser(e));
    }
    let blob: web_sys::Blob =
        JsFuture::from(blob).await.map_err(browser)?.dyn_into().map_err(|_| TakeError::Browser("no JPEG".into()))?;
    blob_bytes(&blob).await
}

pub async fn blob_bytes(blob: &web_sys::Blob) -> Result<Vec<u8>, TakeError> {
    let buffer = JsFuture::from(blob.array_buffer()).await.map_err(browser)?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// An object URL for bytes of `mime` (revoke it with [`revoke`]).
pub fn object_url(bytes: &[u8], mime: &str) -> Option<String> {
    let parts = js_sys::Array::of1(&Uint8Array::from(bytes));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options).ok()?;
    web_sys::Url::create_object_url_with_blob(&blob).ok()
}

pub fn revoke(url: &str) {
    let _ = web_sys::Url::revoke_object_url(url);
}

/// The thumbnail's bytes: kept on the phone, or fetched and kept.
pub async fn thumbnail(sha: &ContentHash) -> Option<Vec<u8>> {
    if let Some(bytes) = photo_store::get(THUMB, sha.as_str()).await {
        return Some(bytes);
    }
    let bytes = fetch(&format!("/api/v1/blobs/{sha}/thumbnail")).await?;
    let _ = photo_store::put(THUMB, sha.as_str(), &bytes).await;
    Some(bytes)
}

/// The full photo's bytes: kept on the phone, or fetched and kept (the
/// server holds it, so it counts as sent and may be freed again).
pub async fn full(sha: &ContentHash) -> Option<Vec<u8>> {
    if let Some(bytes) = photo_store::get(FULL, sha.as_str()).await {
        return Some(bytes);
    }
    let bytes = fetch(&format!("/api/v1/blobs/{sha}")).await?;
    if photo_store::put(FULL, sha.as_str(), &bytes).await.is_ok() {
        let _ = photo_store::mark_sent(sha.as_str()).await;
    }
    Some(bytes)
}

async fn fetch(path: &str) -> Option<Vec<u8>> {
    let token = crate::device::with(|d| d.session.token.clone())?;
    crate::api::get_file(&token, path).await.ok().map(|d| d.bytes)
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn photos_shrink_to_the_long_side_and_never_grow() {
        assert_eq!(fit(4000, 3000, 1280), (1280, 960));
        assert_eq!(fit(3000, 4000, 1280), (960, 1280));
        assert_eq!(fit(800, 600, 1280), (800, 600));
        assert_eq!(fit(10000, 1, 240), (240, 1));
    }
}
