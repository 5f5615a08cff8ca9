//! The web app is served beside the API: every path no API route takes gets
//! the app's files (or `index.html` for the app's own routes), with exact
//! media types and `no-cache`; `/api` paths never get the app.

use std::path::Path;

use kheo_shared::protocol::ErrorBody;
use kheo_tests::TestServer;
use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE, IF_MODIFIED_SINCE,
    LAST_MODIFIED, REFERRER_POLICY, VARY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};

const INDEX: &str = "<!doctype html><title>Kheo test shell</title>";
const WASM: &[u8] = b"\0asm\x01\0\0\0";

/// A fake build of the app, as `cargo xtask build-app` lays it out.
fn fake_dist(dir: &Path) {
    std::fs::write(dir.join("index.html"), INDEX).unwrap();
    std::fs::write(dir.join("kheo_app.js"), "export default function init() {}").unwrap();
    std::fs::write(dir.join("kheo_app_bg.wasm"), WASM).unwrap();
    std::fs::write(dir.join("kheo_app_bg.wasm.br"), b"pretend brotli").unwrap();
    std::fs::write(dir.join("manifest.webmanifest"), r#"{"name":"Kheo"}"#).unwrap();
    std::fs::write(dir.join("sw.js"), "const BUILD = 'abc';").unwrap();
}

async fn server_with_app() -> (TestServer, tempfile::TempDir) {
    let dist = tempfile::tempdir().unwrap();
    fake_dist(dist.path());
    let app_dir = dist.path().to_owned();
    let server = TestServer::start_with(move |config| config.app_dir = Some(app_dir)).await;
    (server, dist)
}

fn header(response: &reqwest::Response, name: reqwest::header::HeaderName) -> &str {
    response.headers().get(&name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} header"))
}

async fn get(server: &TestServer, path: &str) -> reqwest::Response {
    reqwest::get(format!("{}{path}", server.url)).await.unwrap()
}

async fn not_found_json(response: reqwest::Response) -> ErrorBody {
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(header(&response, CONTENT_TYPE).starts_with("application/json"));
    let body: ErrorBody = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body.error, "not_found", "{body:?}");
    body
}

#[tokio::test]
async fn app_files_are_served_with_exact_types_and_no_cache() {
    let (server, _dist) = server_with_app().await;
    for (path, media) in [
        ("/", "text/html"),
        ("/index.html", "text/html"),
        ("/kheo_app.js", "text/javascript"),
        ("/kheo_app_bg.wasm", "application/wasm"),
        ("/manifest.webmanifest", "application/manifest+json"),
        ("/sw.js", "text/javascript"),
    ] {
        let response = get(&server, path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&response, CONTENT_TYPE).split(';').next(), Some(media), "{path}");
        assert_eq!(header(&response, CACHE_CONTROL), "no-cache", "{path}");
    }
    let wasm = get(&server, "/kheo_app_bg.wasm").await.bytes().await.unwrap();
    assert_eq!(&wasm[..], WASM);
}

#[tokio::test]
async fn routes_of_the_app_get_index_html_and_missing_files_do_not() {
    let (server, _dist) = server_with_app().await;
    for route in ["/records", "/models/2025/new", "/v1.2/records"] {
        let response = get(&server, route).await;
        assert_eq!(response.status(), StatusCode::OK, "{route}");
        assert!(header(&response, CONTENT_TYPE).starts_with("text/html"), "{route}");
        assert_eq!(header(&response, CACHE_CONTROL), "no-cache");
        assert_eq!(response.text().await.unwrap(), INDEX, "{route}");
    }
    // A missing asset is a 404, not the shell (which would hide a broken build).
    assert_eq!(get(&server, "/missing.js").await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unchanged_files_revalidate_and_precompressed_copies_are_used() {
    let (server, _dist) = server_with_app().await;
    let http = reqwest::Client::new();
    let first = http.get(format!("{}/kheo_app_bg.wasm", server.url)).send().await.unwrap();
    let modified = header(&first, LAST_MODIFIED).to_owned();
    let again =
        http.get(format!("{}/kheo_app_bg.wasm", server.url)).header(IF_MODIFIED_SINCE, modified).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    let compressed =
        http.get(format!("{}/kheo_app_bg.wasm", server.url)).header(ACCEPT_ENCODING, "br").send().await.unwrap();
    assert_eq!(header(&compressed, CONTENT_ENCODING), "br");
    assert_eq!(header(&compressed, VARY), "accept-encoding");
    assert_eq!(header(&compressed, CONTENT_TYPE), "application/wasm");
    assert_eq!(&compressed.bytes().await.unwrap()[..], b"pretend brotli");
}

#[tokio::test]
async fn api_paths_keep_precedence_and_unknown_ones_are_json_404() {
    let (server, _dist) = server_with_app().await;
    let health = get(&server, "/healthz").await;
    assert!(header(&health, CONTENT_TYPE).starts_with("application/json"));
    for path in ["/api", "/api/", "/api/v1/nothing-here", "/api/v2/sync"] {
        let body = not_found_json(get(&server, path).await).await;
        assert!(body.message.contains("API"), "{path}: {body:?}");
    }
    // A known API route still needs its token: the app never answers for it.
    let me = get(&server, "/api/v1/me").await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn without_an_app_the_shell_is_a_json_404_that_says_how_to_build_it() {
    let server = TestServer::start().await;
    let body = not_found_json(get(&server, "/").await).await;
    assert!(body.message.contains("cargo xtask build-app"), "{body:?}");
    not_found_json(get(&server, "/api/v1/nothing-here").await).await;
}

/// The app's shell as the build writes it: one inline module script.
const INDEX_WITH_SCRIPT: &str = "<!doctype html><title>Kheo</title>\n<script type=\"module\">\n  import init from \
                                 '/kheo_app.js';\n  init();\n</script>\n";

fn security_headers_are_set(response: &reqwest::Response, what: &str) {
    assert_eq!(header(response, X_CONTENT_TYPE_OPTIONS), "nosniff", "{what}");
    assert_eq!(header(response, REFERRER_POLICY), "no-referrer", "{what}");
    assert_eq!(header(response, X_FRAME_OPTIONS), "DENY", "{what}");
}

#[tokio::test]
async fn app_files_carry_the_app_policy_with_the_hash_of_the_inline_script() {
    let (server, dist) = server_with_app().await;
    std::fs::write(dist.path().join("index.html"), INDEX_WITH_SCRIPT).unwrap();
    let expected = kheo_server::app_files::app_policy(INDEX_WITH_SCRIPT);
    assert!(expected.contains("script-src 'self' 'wasm-unsafe-eval' 'sha256-"), "{expected}");
    for path in ["/", "/index.html", "/records/2025", "/kheo_app.js", "/kheo_app_bg.wasm", "/sw.js"] {
        let response = get(&server, path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&response, CONTENT_SECURITY_POLICY), expected, "{path}");
        security_headers_are_set(&response, path);
    }
    // A 304 refreshes the headers a cache keeps: it carries the same policy.
    let http = reqwest::Client::new();
    let first = http.get(format!("{}/index.html", server.url)).send().await.unwrap();
    let modified = header(&first, LAST_MODIFIED).to_owned();
    let again =
        http.get(format!("{}/index.html", server.url)).header(IF_MODIFIED_SINCE, modified).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&again, CONTENT_SECURITY_POLICY), expected);
    // A new build's index.html is hashed without a restart.
    let rebuilt = INDEX_WITH_SCRIPT.replace("init();", "init({});");
    std::fs::write(dist.path().join("index.html"), &rebuilt).unwrap();
    let response = get(&server, "/").await;
    assert_eq!(header(&response, CONTENT_SECURITY_POLICY), kheo_server::app_files::app_policy(&rebuilt));
    assert_ne!(header(&response, CONTENT_SECURITY_POLICY), expected);
}

#[tokio::test]
async fn every_other_answer_allows_nothing_and_is_not_framed_or_sniffed() {
    let (server, _dist) = server_with_app().await;
    let staff = server.staff_token().to_owned();
    let http = reqwest::Client::new();
    let answers = [
        ("health", http.get(format!("{}/healthz", server.url)).send().await.unwrap()),
        ("API document", http.get(format!("{}/api/v1/openapi.json", server.url)).send().await.unwrap()),
        ("unknown API path", http.get(format!("{}/api/v1/nothing-here", server.url)).send().await.unwrap()),
        ("no token", http.get(format!("{}/api/v1/me", server.url)).send().await.unwrap()),
        ("me", http.get(format!("{}/api/v1/me", server.url)).bearer_auth(&staff).send().await.unwrap()),
        (
            "chart",
            http.get(format!("{}/api/v1/reports/charts/records.svg?from=2025-01-01&to=2025-12-31", server.url))
                .bearer_auth(&staff)
                .send()
                .await
                .unwrap(),
        ),
        ("sync refusal", http.post(format!("{}/api/v1/sync", server.url)).bearer_auth(&staff).send().await.unwrap()),
    ];
    for (what, response) in answers {
        assert_eq!(header(&response, CONTENT_SECURITY_POLICY), kheo_server::http::API_POLICY, "{what}");
        security_headers_are_set(&response, what);
    }
}
