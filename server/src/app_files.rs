//! The web app (the PWA that `cargo xtask build-app` writes to `app/dist`),
//! served for every request no API route takes: from `--app-dir`, or, when
//! the binary was built with the `embed-app` feature, from the copy of
//! `app/dist` compiled into it.
//!
//! * A path whose last segment has no dot (`/`, `/records/2025`) is a route
//!   of the app and gets `index.html` when no such file exists (the app
//!   routes in the browser); a missing file (`/missing.js`) is a 404.
//! * `/api` and everything under it never gets the app: an unknown API path
//!   is a JSON 404 like every other API error.
//! * Every file is sent with `Cache-Control: no-cache`: the browser
//!   revalidates (`ETag` or `Last-Modified`, answered 304 when unchanged)
//!   and the service worker does the offline caching, under a cache named
//!   after the build.
//! * The `.br` and `.gz` copies the build writes beside the large files are
//!   sent to browsers that accept them.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

use crate::error::AppError;

/// What the server tells a browser when it has no app to serve.
pub const NOT_BUILT: &str = "the web app was not built: run `cargo xtask build-app` and start the server with \
                             `--app-dir app/dist` (or build it with `--features embed-app`); `cargo xtask run` \
                             does both";

/// Where the app's files come from.
#[derive(Debug, Clone)]
pub enum AppFiles {
    /// A directory read at each request (`--app-dir`).
    Dir(PathBuf),
    /// `app/dist` as it was when the binary was built (feature `embed-app`).
    #[cfg(feature = "embed-app")]
    Embedded,
    /// No app: app paths answer a JSON 404 that says how to build it.
    Missing,
}

impl AppFiles {
    /// `--app-dir` if given (it must hold an `index.html`), else the
    /// embedded copy if there is one.
    pub fn new(app_dir: Option<&Path>) -> anyhow::Result<AppFiles> {
        if let Some(dir) = app_dir {
            anyhow::ensure!(
                dir.join("index.html").is_file(),
                "--app-dir {} holds no index.html; build the app with `cargo xtask build-app` (it writes app/dist)",
                dir.display()
            );
            return Ok(AppFiles::Dir(dir.to_owned()));
        }
        #[cfg(feature = "embed-app")]
        return Ok(AppFiles::Embedded);
        #[cfg(not(feature = "embed-app"))]
        Ok(AppFiles::Missing)
    }

    /// One line for the start-up message.
    pub fn describe(&self) -> String {
        match self {
            AppFiles::Dir(dir) => format!("the app from {}", dir.display()),
            #[cfg(feature = "embed-app")]
            AppFiles::Embedded => "the app embedded in this binary".into(),
            AppFiles::Missing => format!("no app ({NOT_BUILT})"),
        }
    }

    /// Answers a request that no API route took.
    pub async fn serve(&self, request: Request) -> Response {
        let path = request.uri().path();
        if path == "/api" || path.starts_with("/api/") {
            return AppError::NotFound(format!("no API endpoint {} {path}", request.method())).into_response();
        }
        // A route of the app is answered with index.html.
        let extension = file_extension(path).unwrap_or("html").to_owned();
        let mut response = match self {
            AppFiles::Dir(dir) => serve_dir(dir, request).await,
            #[cfg(feature = "embed-app")]
            AppFiles::Embedded => embedded::serve(&request),
            AppFiles::Missing => return AppError::NotFound(NOT_BUILT.into()).into_response(),
        };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        // The same path may be sent compressed or not.
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if response.status().is_success()
            && let Some(content_type) = content_type(&extension)
        {
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        response
    }
}

/// The extension of the last path segment (`None` for a route of the app).
fn file_extension(path: &str) -> Option<&str> {
    let last = path.rsplit('/').next().unwrap_or(path);
    last.rsplit_once('.').map(|(_, ext)| ext)
}

/// Media types the app needs exactly; others are guessed from the extension.
fn content_type(extension: &str) -> Option<&'static str> {
    Some(match extension {
        "wasm" => "application/wasm",
        "webmanifest" => "application/manifest+json",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

async fn serve_dir(dir: &Path, request: Request) -> Response {
    let files = ServeDir::new(dir).precompressed_br().precompressed_gzip();
    let result = if file_extension(request.uri().path()).is_none() {
        let index = ServeFile::new(dir.join("index.html"));
        files.fallback(index).oneshot(request).await.map(|r| r.map(Body::new))
    } else {
        files.oneshot(request).await.map(|r| r.map(Body::new))
    };
    match result {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

#[cfg(feature = "embed-app")]
mod embedded {
    use axum::http::{HeaderMap, Method, StatusCode};

    use super::*;

    /// `app/dist` at build time (`build.rs` refuses to build without it).
    #[derive(rust_embed::Embed)]
    #[folder = "../app/dist/"]
    struct Dist;

    pub(super) fn serve(request: &Request) -> Response {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")]).into_response();
        }
        let path = request.uri().path().trim_start_matches('/');
        let name = if path.is_empty() || path.ends_with('/') { format!("{path}index.html") } else { path.to_owned() };
        let (name, file) = match Dist::get(&name) {
            Some(file) => (name, file),
            None if file_extension(request.uri().path()).is_none() => match Dist::get("index.html") {
                Some(file) => ("index.html".to_owned(), file),
                None => return AppError::NotFound(NOT_BUILT.into()).into_response(),
            },
            None => return AppError::NotFound(format!("no file {}", request.uri().path())).into_response(),
        };
        let hash = file.metadata.sha256_hash();
        let content_type = name
            .rsplit_once('.')
            .and_then(|(_, ext)| content_type(ext))
            .map(str::to_owned)
            .unwrap_or_else(|| file.metadata.mimetype().to_owned());
        let (encoding, data) = [("br", ".br"), ("gzip", ".gz")]
            .into_iter()
            .filter(|(encoding, _)| accepts(request.headers(), encoding))
            .find_map(|(encoding, suffix)| Dist::get(&format!("{name}{suffix}")).map(|f| (Some(encoding), f.data)))
            .unwrap_or((None, file.data));
        let tag: String = hash.iter().take(12).map(|b| format!("{b:02x}")).collect();
        let etag = format!("\"{tag}{}\"", encoding.map(|e| format!("-{e}")).unwrap_or_default());
        let mut headers = HeaderMap::new();
        let mut put = |name, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name, value);
            }
        };
        put(header::CONTENT_TYPE, &content_type);
        put(header::ETAG, &etag);
        if let Some(encoding) = encoding {
            put(header::CONTENT_ENCODING, encoding);
        }
        let unchanged = request
            .headers()
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
        if unchanged {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        (headers, Body::from(data.into_owned())).into_response()
    }

    /// Whether `Accept-Encoding` lists `encoding` with a non-zero weight.
    fn accepts(headers: &HeaderMap, encoding: &str) -> bool {
        headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
            |item| {
                let mut parts = item.split(';').map(str::trim);
                let name_matches = parts.next().is_some_and(|n| n.eq_ignore_ascii_case(encoding));
                let zero = parts.any(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()) == Some(0.0));
                name_matches && !zero
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_have_no_extension() {
        assert_eq!(file_extension("/"), None);
        assert_eq!(file_extension("/records/2025"), None);
        assert_eq!(file_extension("/v1.2/records"), None);
        assert_eq!(file_extension("/kheo_app_bg.wasm"), Some("wasm"));
        assert_eq!(file_extension("/manifest.webmanifest"), Some("webmanifest"));
    }
}
