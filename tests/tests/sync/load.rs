//! Hostile load over real connections: concurrent password guesses against
//! the throttle, a flood of wrong logins and idle connections while a phone
//! syncs, and the connection timeouts and cap.
//!
//! Client addresses are simulated with `X-Forwarded-For` from loopback,
//! which the servers here trust as a proxy (`--trusted-proxy 127.0.0.1`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kheo_server::accounts::{ACCOUNT_FAILURES, ADDRESS_FAILURES};
use kheo_shared::codes::Role;
use kheo_shared::ids::RecordId;
use kheo_shared::protocol::LOGIN_PATH;
use kheo_shared::testdata;
use kheo_tests::{HOME_UNIT, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LOOPBACK: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn behind_proxy(config: &mut kheo_server::Config) {
    config.trusted_proxies = vec![LOOPBACK];
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client")
}

struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: serde_json::Value,
}

/// A login, as the client at `from` (sent as `X-Forwarded-For`) if given.
async fn login(http: &reqwest::Client, server: &TestServer, name: &str, secret: &str, from: Option<&str>) -> Answer {
    let mut request = http
        .post(format!("{}{LOGIN_PATH}", server.url))
        .json(&serde_json::json!({ "login": name, "secret": secret, "device_label": "load test" }));
    if let Some(from) = from {
        request = request.header("x-forwarded-for", from);
    }
    let response = request.send().await.expect("the login is answered");
    let status = response.status().as_u16();
    let retry_after =
        response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let bytes = response.bytes().await.expect("a body");
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Answer { status, retry_after, body }
}

fn server_addr(server: &TestServer) -> std::net::SocketAddr {
    server.server.as_ref().expect("server running").addr
}

/// Resident memory of this process (the servers run in it), in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Reads one HTTP/1.1 answer (head and `content-length` body), or what
/// arrives before the peer closes; `None` if nothing arrives within `wait`.
async fn read_answer(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let mut buf = [0u8; 4096];
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (!got.is_empty()).then(|| String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&got);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return Some(text.into_owned());
            }
        }
    }
}

/// Waits for the server to close `stream`: the time it took, or `None` if it stayed open for `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(wait.saturating_sub(started.elapsed()), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

const HEALTH_REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: kheo\r\n\r\n";

#[tokio::test]
async fn concurrent_wrong_logins_are_checked_at_most_the_limit_and_lock_only_that_address() {
    let server = TestServer::start_with(behind_proxy).await;
    let (name, secret) = server.account("victim", Role::Volunteer, HOME_UNIT).await;
    let http = http();
    let guesser = "192.0.2.10";
    let guesses = futures::future::join_all((0..40).map(|i| {
        let (http, server, name) = (&http, &server, &name);
        async move { login(http, server, name, &format!("guess-{i:04}"), Some(guesser)).await }
    }))
    .await;
    let mut checked = 0;
    for a in &guesses {
        match a.status {
            401 => checked += 1,
            429 => assert_eq!(a.body["error"], "too_many_attempts"),
            503 => assert_eq!(a.body["error"], "busy"),
            other => panic!("unexpected {other}: {}", a.body),
        }
    }
    assert!(checked <= ACCOUNT_FAILURES, "{checked} of 40 concurrent guesses were checked");
    // Attempts the server was too busy to check were given back: the limit fills up exactly.
    for _ in 0..ACCOUNT_FAILURES {
        let a = login(&http, &server, &name, "guess-more", Some(guesser)).await;
        match a.status {
            401 => checked += 1,
            429 => break,
            other => panic!("unexpected {other}: {}", a.body),
        }
    }
    assert_eq!(checked, ACCOUNT_FAILURES, "guesses checked in all");
    println!("40 concurrent guesses: {} checked", guesses.iter().filter(|a| a.status == 401).count());

    // The guesser's address is locked out, even with the right secret.
    let locked = login(&http, &server, &name, &secret, Some(guesser)).await;
    assert_eq!((locked.status, locked.body["error"].as_str()), (429, Some("too_many_attempts")));
    let wait: u64 = locked.retry_after.as_deref().and_then(|v| v.parse().ok()).expect("Retry-After in seconds");
    assert!((1..=15 * 60).contains(&wait), "{wait}");
    // The owner, elsewhere, logs in.
    let owner = login(&http, &server, &name, &secret, Some("198.51.100.20")).await;
    assert_eq!(owner.status, 200, "{}", owner.body);
    // Behind several proxies, only the right-most untrusted entry counts: the
    // guesser cannot escape its lock by writing another address on the left.
    let spoof = login(&http, &server, &name, &secret, Some(&format!("203.0.113.1, {guesser}"))).await;
    assert_eq!(spoof.status, 429);
}

#[tokio::test]
async fn forwarded_addresses_from_an_untrusted_peer_are_ignored() {
    // No trusted proxy: X-Forwarded-For is the client's word, and every request counts under the peer.
    let server = TestServer::start().await;
    let (name, secret) = server.account("direct", Role::Volunteer, HOME_UNIT).await;
    let http = http();
    for i in 0..ACCOUNT_FAILURES {
        let a = login(&http, &server, &name, "guess-wrong", Some(&format!("192.0.2.{i}"))).await;
        assert_eq!(a.status, 401);
    }
    let a = login(&http, &server, &name, &secret, Some("198.51.100.99")).await;
    assert_eq!((a.status, a.body["error"].as_str()), (429, Some("too_many_attempts")));
}

#[tokio::test]
async fn absurd_logins_are_refused_before_they_are_hashed_or_counted() {
    let server = TestServer::start_with(behind_proxy).await;
    let (name, secret) = server.account("plain", Role::Volunteer, HOME_UNIT).await;
    let http = http();
    let from = Some("192.0.2.77");
    let long_name = "n".repeat(1_000);
    let long_secret = "s".repeat(257);
    let started = Instant::now();
    for i in 0..(2 * ADDRESS_FAILURES) {
        let a = if i % 2 == 0 {
            login(&http, &server, &long_name, "guess-123", from).await
        } else {
            login(&http, &server, &name, &long_secret, from).await
        };
        assert_eq!((a.status, a.body["error"].as_str()), (401, Some("invalid_credentials")));
    }
    println!("{} absurd logins answered in {:?}", 2 * ADDRESS_FAILURES, started.elapsed());
    // None of them counted against the address or the account.
    let a = login(&http, &server, &name, &secret, from).await;
    assert_eq!(a.status, 200, "{}", a.body);
    // A body far bigger than a login is refused unread.
    let big = http
        .post(format!("{}{LOGIN_PATH}", server.url))
        .header("content-type", "application/json")
        .body(vec![b' '; 8 << 10])
        .send()
        .await
        .expect("answered");
    assert_eq!(big.status().as_u16(), 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_wrong_logins_and_idle_connections_leaves_sync_and_health_responsive() {
    let mut server = TestServer::start_with(behind_proxy).await;
    let model = server.model().await;
    let mut phone = server.device("steady").await;
    phone.put_record(model, &testdata::meeting(RecordId::new_random(), "2025-03-01", 5));
    phone.sync(&server.url).await.expect("first sync");
    let baseline = resident_bytes();

    // 300 connections that never send a byte.
    let addr = server_addr(&server);
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(addr).await.expect("connects"));
    }

    // 200 clients guessing at once, each from its own address, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(resident_bytes(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let flood_client = http();
    let url = server.url.clone();
    let flood: Vec<_> = (0..200u32)
        .map(|i| {
            let (stop, http, url) = (stop.clone(), flood_client.clone(), url.clone());
            tokio::spawn(async move {
                let from = format!("10.1.{}.{}", i / 250, i % 250 + 1);
                let body = serde_json::json!({ "login": format!("flood{i}.test"), "secret": "wrong-guess" });
                let mut seen = std::collections::BTreeMap::<u16, u32>::new();
                let until = Instant::now() + Duration::from_secs(30);
                for _ in 0..500 {
                    if stop.load(Ordering::Relaxed) || Instant::now() > until {
                        break;
                    }
                    let sent = http
                        .post(format!("{url}{LOGIN_PATH}"))
                        .header("x-forwarded-for", &from)
                        .json(&body)
                        .send()
                        .await;
                    let status = match sent {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            if status == 503 {
                                assert!(r.headers().contains_key(reqwest::header::RETRY_AFTER));
                            }
                            status
                        }
                        Err(_) => 0,
                    };
                    *seen.entry(status).or_default() += 1;
                    if status != 401 {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let health = http();
    let mut slowest = Duration::ZERO;
    for i in 0..5 {
        phone.put_record(model, &testdata::meeting(RecordId::new_random(), "2025-03-02", 6 + i));
        let started = Instant::now();
        let traffic = phone.sync(&server.url).await.expect("sync under load");
        let took = started.elapsed();
        slowest = slowest.max(took);
        assert!(traffic.converged);
        assert!(took < Duration::from_secs(1), "sync {i} took {took:?} under the flood");
        let started = Instant::now();
        let answer = health.get(format!("{}/healthz", server.url)).send().await.expect("healthz answers");
        assert_eq!(answer.status().as_u16(), 200);
        assert!(started.elapsed() < Duration::from_secs(1), "healthz took {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    stop.store(true, Ordering::Relaxed);
    let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
    for task in flood {
        for (status, n) in task.await.expect("flood task") {
            *statuses.entry(status).or_default() += n;
        }
    }
    sampler.await.expect("sampler");
    let peak = peak.load(Ordering::Relaxed);
    let grown = peak.saturating_sub(baseline);
    println!(
        "flood answers {statuses:?}; slowest sync {slowest:?}; resident {} MB at rest, peak {} MB (+{} MB)",
        baseline >> 20,
        peak >> 20,
        grown >> 20
    );
    assert!(statuses.keys().all(|s| [401, 429, 503].contains(s)), "{statuses:?}");
    assert!(grown < 500 << 20, "memory grew by {} MB", grown >> 20);
    // The idle connections were held open all along (the header timeout is 10 s).
    let mut still_open = 0;
    for stream in &mut idle {
        let mut buf = [0u8; 1];
        if let Err(_elapsed) = tokio::time::timeout(Duration::from_millis(1), stream.read(&mut buf)).await {
            still_open += 1;
        }
    }
    assert!(still_open > 250, "{still_open} idle connections were still open");
    server.stop().await;
}

#[tokio::test]
async fn idle_connections_close_after_the_header_and_idle_timeouts() {
    let server = TestServer::start_with(|c| {
        c.header_timeout = Duration::from_millis(300);
        c.idle_timeout = Duration::from_millis(1200);
    })
    .await;
    let addr = server_addr(&server);

    // Nothing sent: closed after the header timeout.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let took = closed_within(&mut silent, Duration::from_secs(5)).await.expect("a silent connection is closed");
    assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(2), "{took:?}");

    // Half a request head: the same.
    let mut partial = TcpStream::connect(addr).await.unwrap();
    partial.write_all(b"GET /healthz HTTP/1.1\r\nhost: kheo\r\n").await.unwrap();
    let took = closed_within(&mut partial, Duration::from_secs(5)).await.expect("a partial head is cut off");
    assert!(took < Duration::from_secs(2), "{took:?}");

    // Kept alive after an answer for longer than the header timeout, until the idle timeout.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(HEALTH_REQUEST).await.unwrap();
    let first = read_answer(&mut kept, Duration::from_secs(2)).await.expect("answered");
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    kept.write_all(HEALTH_REQUEST).await.unwrap();
    let second = read_answer(&mut kept, Duration::from_secs(2)).await.expect("still open after 600 ms idle");
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    let took = closed_within(&mut kept, Duration::from_secs(5)).await.expect("closed once idle too long");
    assert!(took >= Duration::from_millis(1000) && took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_until_idle_ones_time_out() {
    let server = TestServer::start_with(|c| {
        c.max_connections = 4;
        c.header_timeout = Duration::from_millis(500);
    })
    .await;
    let addr = server_addr(&server);
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let _ = extra.write_all(HEALTH_REQUEST).await;
    let refused = read_answer(&mut extra, Duration::from_secs(2)).await.unwrap_or_default();
    assert!(started.elapsed() < Duration::from_millis(400), "refused quickly: {:?}", started.elapsed());
    assert!(refused.is_empty() || refused.starts_with("HTTP/1.1 503"), "{refused}");
    if !refused.is_empty() {
        assert!(refused.contains(r#""error":"busy""#) && refused.to_ascii_lowercase().contains("retry-after: 1"));
    }
    // The held connections time out and free their slots.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let answer = http().get(format!("{}/healthz", server.url)).send().await.expect("a slot is free again");
    assert_eq!(answer.status().as_u16(), 200);
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_answered_408() {
    let server = TestServer::start_with(|c| c.body_timeout = Duration::from_millis(300)).await;
    let mut slow = TcpStream::connect(server_addr(&server)).await.unwrap();
    slow.write_all(
        b"POST /api/v1/login HTTP/1.1\r\nhost: kheo\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"login\"",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let answer = read_answer(&mut slow, Duration::from_secs(3)).await.expect("answered");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""error":"body_timeout""#), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

/// A client that asks and never reads: once the server's writes have
/// waited `write_timeout` for it, the connection is closed (its slot and
/// buffers freed), while everyone else is served.
#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected_after_the_write_timeout() {
    const SIZE: usize = 32 << 20;
    let app = tempfile::tempdir().unwrap();
    std::fs::write(app.path().join("index.html"), "<!doctype html>").unwrap();
    std::fs::write(app.path().join("big.bin"), vec![7u8; SIZE]).unwrap();
    let dir = app.path().to_owned();
    let server = TestServer::start_with(move |c| {
        c.write_timeout = Duration::from_millis(500);
        c.app_dir = Some(dir);
    })
    .await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(server_addr(&server)).await.unwrap();
    stream.write_all(b"GET /big.bin HTTP/1.1\r\nhost: kheo\r\n\r\n").await.unwrap();
    // Not reading: the answer fills the buffers and the server's write waits.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let answered = reqwest::get(format!("{}/healthz", server.url)).await.expect("another client is served");
    assert!(answered.status().is_success());
    // What the server wrote before it gave up is in the buffers; past it, the end.
    let mut buf = vec![0u8; 1 << 16];
    let mut received = 0usize;
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received += n,
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the server closed the connection it could not write to");
    assert!(received < SIZE, "{received} bytes of {SIZE}: the answer was cut off");
}
