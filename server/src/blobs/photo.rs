//! The checks on a photo's bytes before the server keeps them: it must
//! decode as an image of its declared type within bounds, its metadata
//! (EXIF, XMP, ICC, comments) is removed from the stored copy, and a
//! thumbnail is made.
//!
//! The bytes come from a phone and are hostile until decoded: decoding runs
//! under [`image::Limits`] (at most 4 096 px a side, a bounded allocation)
//! on a blocking thread, at most [`DECODERS`] at a time, so no request gets
//! unbounded CPU or memory. The size itself is bounded before (1 MiB).
//!
//! Metadata is removed segment by segment (`img-parts`), without decoding
//! and encoding again, so the stored photo keeps its quality; the stripped
//! copy is the one decoded, so what is served is what was checked.

use std::io::Cursor;
use std::sync::LazyLock;

use image::{ImageFormat, ImageReader, Limits};
use img_parts::jpeg::{Jpeg, markers};
use img_parts::webp::{CHUNK_XMP, WebP};
use img_parts::{Bytes, ImageEXIF, ImageICC};
use kheo_shared::evidence::MediaType;
use kheo_shared::evidence::limits::MAX_PHOTO_SIDE;
use tokio::sync::Semaphore;

/// The longest side of a thumbnail, in pixels.
pub const THUMBNAIL_SIDE: u32 = 240;
/// Photos decoded at once by this process: each may take [`MAX_DECODE_ALLOC`].
pub const DECODERS: usize = 2;
/// What one decode may allocate: a 4 096 × 4 096 RGBA image and some room.
const MAX_DECODE_ALLOC: u64 = 80 << 20;
/// The thumbnail's JPEG quality.
const THUMBNAIL_QUALITY: u8 = 80;

static DECODING: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(DECODERS));

#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    #[error("the bytes are not a {0} image: {1}")]
    NotAnImage(&'static str, String),
    #[error("checking the photo failed: {0}")]
    Internal(String),
}

/// A photo that checked out.
#[derive(Debug, Clone)]
pub struct CheckedPhoto {
    /// The bytes to store: the upload without its metadata.
    pub content: Vec<u8>,
    pub thumbnail: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// Checks `bytes` as a photo of type `declared`, on a blocking thread once
/// one of the [`DECODERS`] is free.
pub async fn check(bytes: Vec<u8>, declared: MediaType) -> Result<CheckedPhoto, PhotoError> {
    let _permit = DECODING.acquire().await.map_err(|e| PhotoError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(move || check_now(bytes, declared))
        .await
        .map_err(|e| PhotoError::Internal(format!("the decoder stopped: {e}")))?
}

/// [`check`] on this thread.
pub fn check_now(bytes: Vec<u8>, declared: MediaType) -> Result<CheckedPhoto, PhotoError> {
    let not_image = |e: &dyn std::fmt::Display| PhotoError::NotAnImage(declared.mime(), e.to_string());
    let format = match declared {
        MediaType::Jpeg => ImageFormat::Jpeg,
        MediaType::Webp => ImageFormat::WebP,
    };
    // A file of another type is refused by its signature before any parse.
    match image::guess_format(&bytes) {
        Ok(found) if found == format => {}
        Ok(found) => return Err(not_image(&format!("it is {found:?}"))),
        Err(e) => return Err(not_image(&e)),
    }
    let content = strip_metadata(Bytes::from(bytes), declared).map_err(|e| not_image(&e))?;
    let mut reader = ImageReader::with_format(Cursor::new(&content), format);
    reader.limits(limits());
    let image = reader.decode().map_err(|e| not_image(&e))?;
    let (width, height) = (image.width(), image.height());
    let small = image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE).into_rgb8();
    let mut thumbnail = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut thumbnail, THUMBNAIL_QUALITY)
        .encode_image(&small)
        .map_err(|e| PhotoError::Internal(format!("encoding the thumbnail: {e}")))?;
    Ok(CheckedPhoto { content, thumbnail, width, height })
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_PHOTO_SIDE);
    limits.max_image_height = Some(MAX_PHOTO_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    limits
}

/// The photo without the segments that describe it rather than draw it.
///
/// JPEG keeps APP0 (JFIF) and APP14 (Adobe: how to read the colours) and
/// drops every other application segment (EXIF and XMP in APP1, ICC in
/// APP2, IPTC in APP13, makers' notes) and comments. WebP drops its EXIF,
/// XMP and ICC chunks (and the flags that announce them).
pub fn strip_metadata(bytes: Bytes, media_type: MediaType) -> Result<Vec<u8>, img_parts::Error> {
    Ok(match media_type {
        MediaType::Jpeg => {
            let mut jpeg = Jpeg::from_bytes(bytes)?;
            jpeg.segments_mut().retain(|s| {
                let m = s.marker();
                let application = (markers::APP0..=markers::APP15).contains(&m);
                !(m == markers::COM || application && m != markers::APP0 && m != markers::APP14)
            });
            jpeg.encoder().bytes().to_vec()
        }
        MediaType::Webp => {
            let mut webp = WebP::from_bytes(bytes)?;
            webp.remove_chunks_by_id(CHUNK_XMP);
            // These also set the container's flags to what is left.
            webp.set_exif(None);
            webp.set_icc_profile(None);
            webp.encoder().bytes().to_vec()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85).encode_image(&image).unwrap();
        out
    }

    /// `jpeg` with an EXIF segment (and a comment) right after SOI.
    fn with_exif(jpeg: &[u8]) -> Vec<u8> {
        let mut exif = b"Exif\0\0MM\0\x2a\0\0\0\x08GPS-SECRET-POSITION".to_vec();
        exif.resize(64, 0);
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&exif);
        out.extend_from_slice(&[0xFF, 0xFE, 0x00, 0x0A]);
        out.extend_from_slice(b"owner-id");
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    #[test]
    fn metadata_is_stripped_and_a_thumbnail_made() {
        let original = with_exif(&jpeg(640, 320));
        assert!(original.windows(10).any(|w| w == b"GPS-SECRET"));
        let checked = check_now(original.clone(), MediaType::Jpeg).expect("a JPEG");
        assert!(!checked.content.windows(10).any(|w| w == b"GPS-SECRET"), "EXIF stays");
        assert!(!checked.content.windows(8).any(|w| w == b"owner-id"), "the comment stays");
        assert_eq!((checked.width, checked.height), (640, 320));
        let thumb = image::load_from_memory_with_format(&checked.thumbnail, ImageFormat::Jpeg).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (240, 120));
    }

    #[test]
    fn other_bytes_and_types_are_not_images() {
        assert!(matches!(check_now(b"hello".to_vec(), MediaType::Jpeg), Err(PhotoError::NotAnImage(..))));
        assert!(matches!(check_now(jpeg(8, 8), MediaType::Webp), Err(PhotoError::NotAnImage(..))));
        let mut cut = jpeg(64, 64);
        cut.truncate(cut.len() / 2);
        assert!(matches!(check_now(cut, MediaType::Jpeg), Err(PhotoError::NotAnImage(..))));
    }

    #[test]
    fn a_huge_declared_size_is_refused_before_decoding() {
        // A JPEG header that claims 60 000 × 60 000 pixels.
        let mut bytes = jpeg(16, 16);
        let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).expect("a baseline frame");
        bytes[sof + 5..sof + 7].copy_from_slice(&60_000u16.to_be_bytes());
        bytes[sof + 7..sof + 9].copy_from_slice(&60_000u16.to_be_bytes());
        assert!(matches!(check_now(bytes, MediaType::Jpeg), Err(PhotoError::NotAnImage(..))));
    }
}
