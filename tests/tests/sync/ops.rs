//! Operating the server: `/healthz` from the database probe, `/metrics` on
//! its own address, and the log format of the real process.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kheo_shared::protocol::{LOGIN_PATH, LoginRequest};
use kheo_tests::TestServer;
use tokio::io::AsyncReadExt;

use crate::records;

async fn health(url: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(format!("{url}/healthz")).await.expect("healthz answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("healthz is JSON"))
}

#[tokio::test]
async fn healthz_reports_the_database_and_is_503_once_it_is_gone() {
    let mut server = TestServer::start().await;
    let (status, body) = health(&server.url).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["checked_ms_ago"].as_u64().is_some(), "{body}");

    server.server.as_ref().expect("running").close_database().await;
    let deadline = Instant::now() + kheo_server::health::CHECK_EVERY * 4 + kheo_server::health::CHECK_TIMEOUT;
    let body = loop {
        let started = Instant::now();
        let (status, body) = health(&server.url).await;
        assert!(started.elapsed() < Duration::from_millis(100), "healthz took {:?}", started.elapsed());
        if status == 503 {
            break body;
        }
        assert_eq!(status, 200, "{body}");
        assert!(Instant::now() < deadline, "healthz still ok with the database closed: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(body["status"], "unavailable", "{body}");
    assert_ne!(body["database"], "ok", "{body}");
    server.stop().await;
}

/// The value of the series that `series` names exactly (name and labels).
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn scrape(addr: SocketAddr) -> String {
    let response = reqwest::get(format!("http://{addr}/metrics")).await.expect("metrics answer");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    response.text().await.unwrap()
}

#[tokio::test]
async fn metrics_count_syncs_and_failed_logins_by_route_template() {
    let mut server = TestServer::start_with(|c| c.metrics_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)))).await;
    let addr = server.server.as_ref().and_then(|s| s.metrics_addr).expect("a metrics address");
    let before = scrape(addr).await;
    assert!(before.contains("# TYPE kheo_sync_request_duration_seconds histogram"), "{before}");

    let model = server.model().await;
    let mut phone = server.device("metered").await;
    for r in records(2025, 3) {
        phone.put_record(model, &r);
    }
    let traffic = phone.sync(&server.url).await.expect("sync");
    let http = reqwest::Client::new();
    let wrong =
        LoginRequest { login: "metered.test".into(), secret: "not-the-secret".into(), device_label: "x".into() };
    let refused = http.post(format!("{}{LOGIN_PATH}", server.url)).json(&wrong).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let revoke = format!("{}/api/v1/devices/no-such-device-7f3a/revoke", server.url);
    let missing = http.post(revoke).bearer_auth(&phone.token).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);

    let after = scrape(addr).await;
    let syncs = value(&after, r#"kheo_http_requests_total{route="/api/v1/sync",method="POST",status="200"}"#);
    assert!(syncs.is_some_and(|n| n >= traffic.round_trips as f64), "{after}");
    assert_eq!(value(&after, r#"kheo_login_refusals_total{reason="wrong_secret"}"#), Some(1.0), "{after}");
    let login_errors = r#"kheo_http_errors_total{route="/api/v1/login",status="401",code="invalid_credentials"}"#;
    assert_eq!(value(&after, login_errors), Some(1.0), "{after}");
    let revokes = r#"kheo_http_errors_total{route="/api/v1/devices/{id}/revoke",status="404",code="not_found"}"#;
    assert_eq!(value(&after, revokes), Some(1.0), "{after}");
    assert!(!after.contains("no-such-device"), "a raw path became a label:\n{after}");
    assert!(value(&after, "kheo_records_merged_total").is_some_and(|n| n >= 3.0), "{after}");
    let up = value(&after, "kheo_sync_request_bytes_total").unwrap_or(0.0);
    assert!(up >= traffic.bytes_up as f64, "{up} < {} bytes sent\n{after}", traffic.bytes_up);
    let down = value(&after, "kheo_sync_response_bytes_total").unwrap_or(0.0);
    assert!(down >= traffic.bytes_down as f64, "{down} < {} bytes received\n{after}", traffic.bytes_down);
    assert!(value(&after, "kheo_sync_request_duration_seconds_count").is_some_and(|n| n >= 1.0), "{after}");
    assert!(value(&after, "kheo_store_commit_duration_seconds_count").is_some_and(|n| n >= 1.0), "{after}");
    assert!(value(&after, "kheo_hot_documents").is_some_and(|n| n >= 1.0), "{after}");
    assert_eq!(value(&after, "kheo_quarantine_entries"), Some(0.0), "{after}");
    server.stop().await;
}

#[tokio::test]
async fn metrics_are_not_served_on_the_main_address() {
    let server = TestServer::start().await;
    assert!(server.server.as_ref().is_some_and(|s| s.metrics_addr.is_none()), "off by default");
    let response = reqwest::get(format!("{}/metrics", server.url)).await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let body: serde_json::Value = response.json().await.expect("the JSON error body");
    assert_eq!(body["error"], "not_found");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("--metrics-addr")), "{body}");
}

/// The process's stderr from its start until it was killed.
async fn logs_of(server: &TestServer, args: &[&str]) -> String {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_kheo-process"));
    let mut process = server.spawn_process_with(binary, args, "info", true).await;
    // It printed its address, so its start-up lines are written.
    let _ = reqwest::get(format!("{}/healthz", process.url)).await;
    // A refusal is logged with its code and reason.
    let _ = reqwest::get(format!("{}/api/v1/me", process.url)).await;
    let mut stderr = process.child.stderr.take().expect("piped stderr");
    process.child.kill().await.expect("the process is killed");
    let mut text = String::new();
    stderr.read_to_string(&mut text).await.expect("its stderr is UTF-8");
    text
}

#[tokio::test]
async fn the_process_logs_json_lines_or_plain_text_without_a_terminal() {
    let server = TestServer::start().await;
    let json = logs_of(&server, &["--log-format", "json"]).await;
    let lines: Vec<&str> = json.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no log lines");
    for line in &lines {
        let event: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert!(event["timestamp"].is_string() && event["level"].is_string(), "{line}");
        // serde_json keeps the last of two equal keys: a field named like the text would hide it.
        assert_eq!(line.matches(r#""message":"#).count(), 1, "{line}");
    }
    assert!(lines.iter().any(|l| l.contains("kheo server listening")), "{json}");
    assert!(lines.iter().any(|l| l.contains("request refused") && l.contains("unauthenticated")), "{json}");

    let text = logs_of(&server, &[]).await;
    assert!(text.contains("kheo server listening"), "{text}");
    assert!(!text.contains("\x1b["), "colour codes without a terminal: {text:?}");
}
