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
//! * Every file carries the app's `Content-Security-Policy` ([`app_policy`]):
//!   its own scripts, styles, images, worker and manifest, WebAssembly, the
//!   API on the same origin, and the inline script of `index.html` by its
//!   hash, computed from the `index.html` being served.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha256};
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
        let (mut response, index) = match self {
            AppFiles::Dir(dir) => {
                // Read at each request, like the files: a new build needs no restart.
                let index = tokio::fs::read_to_string(dir.join("index.html")).await.unwrap_or_default();
                (serve_dir(dir, request).await, index)
            }
            #[cfg(feature = "embed-app")]
            AppFiles::Embedded => (embedded::serve(&request), embedded::index()),
            AppFiles::Missing => return AppError::NotFound(NOT_BUILT.into()).into_response(),
        };
        let headers = response.headers_mut();
        // On every file and on 304s too: a 304 updates the headers a cache
        // (or the service worker's copy) keeps for index.html.
        if let Ok(policy) = HeaderValue::from_str(&app_policy(&index)) {
            headers.insert(header::CONTENT_SECURITY_POLICY, policy);
        }
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

/// The `Content-Security-Policy` of the web app whose `index.html` is
/// `index_html`: a Leptos/WebAssembly PWA that loads only its own files,
/// compiles WebAssembly (`'wasm-unsafe-eval'`, not `'unsafe-eval'`), talks
/// only to this origin, shows the photos it holds through object URLs
/// (`img-src blob:`), and runs the inline scripts of its `index.html`
/// (allowed by hash, so no other inline script runs).
pub fn app_policy(index_html: &str) -> String {
    let hashes: String = inline_scripts(index_html)
        .iter()
        .map(|script| {
            // The HTML parser turns CRLF and CR into LF before the browser hashes a script.
            let text = script.replace("\r\n", "\n").replace('\r', "\n");
            let digest = Sha256::digest(text.as_bytes());
            format!(" 'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
        })
        .collect();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{hashes}; style-src 'self'; img-src 'self' data: blob:; \
         connect-src 'self'; worker-src 'self'; manifest-src 'self'; font-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// The text of each `<script>` element without a `src` attribute.
fn inline_scripts(html: &str) -> Vec<&str> {
    let lower = html.to_ascii_lowercase();
    let mut scripts = Vec::new();
    let mut at = 0;
    while let Some(start) = lower[at..].find("<script").map(|i| at + i) {
        let Some(open_end) = lower[start..].find('>').map(|i| start + i + 1) else { break };
        let Some(close) = lower[open_end..].find("</script").map(|i| open_end + i) else { break };
        let tag = &lower[start..open_end];
        if !tag.contains(" src=") && !tag.contains("\tsrc=") && !tag.contains("\nsrc=") {
            scripts.push(&html[open_end..close]);
        }
        at = close;
    }
    scripts
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

    /// The embedded `index.html`, for the policy's script hashes.
    pub(super) fn index() -> String {
        Dist::get("index.html").map(|f| String::from_utf8_lossy(&f.data).into_owned()).unwrap_or_default()
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

    #[test]
    fn the_policy_allows_exactly_the_inline_scripts_of_index_html() {
        // The hash a browser computes for `<script>alert(1)</script>` (the CSP spec's example form).
        let html = "<html><script type=\"module\">alert(1)</script><SCRIPT src=\"/a.js\"></SCRIPT></html>";
        assert_eq!(inline_scripts(html), ["alert(1)"]);
        let expected = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"alert(1)"));
        let policy = app_policy(html);
        assert!(policy.contains(&format!("script-src 'self' 'wasm-unsafe-eval' 'sha256-{expected}';")), "{policy}");
        assert_eq!(policy.matches("'sha256-").count(), 1);
        // CRLF is hashed as the parser sees it.
        assert_eq!(app_policy("<script>a\r\nb</script>"), app_policy("<script>a\nb</script>"));
        // No index: no inline script runs.
        assert!(app_policy("").contains("script-src 'self' 'wasm-unsafe-eval';"));
        for directive in ["frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'", "connect-src 'self'"] {
            assert!(policy.contains(directive), "{directive}");
        }
    }

    #[test]
    fn the_shipped_index_html_has_its_script_hashed() {
        let index = include_str!("../../app/static/index.html");
        let scripts = inline_scripts(index);
        assert_eq!(scripts.len(), 1, "index.html has one inline script");
        assert!(scripts[0].contains("serviceWorker.register"));
        assert_eq!(app_policy(index).matches("'sha256-").count(), 1);
    }
}
