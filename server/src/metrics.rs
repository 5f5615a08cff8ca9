//! Metrics of this process in the Prometheus text format (0.0.4), served at
//! `GET /metrics` on `--metrics-addr` only.
//!
//! Who may read them: whoever reaches `--metrics-addr`, a listener of its
//! own that is off by default. The main address never serves them (its
//! `/metrics` is a JSON 404), so a reverse proxy that forwards everything to
//! the main port cannot expose them by accident, and a scraper needs no
//! device token. Bind it to loopback or a private interface.
//!
//! Every series is per process: with several processes on one database,
//! the scraper sums them. The one exception is the quarantine's size, read
//! from the database (so every process reports the same total), at most
//! once per [`QUARANTINE_REFRESH`].
//!
//! Cost on the hot path: a request's counters are a map lookup under a read
//! lock and an atomic add; routes are labelled by their template
//! (`/api/v1/devices/{id}/revoke`, never the raw path), so the label sets
//! stay few; a sync adds one histogram observation and two counter adds.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_body::{Frame, SizeHint};
use kheo_shared::protocol::{LOGIN_PATH, SYNC_PATH};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use tokio::sync::Mutex as AsyncMutex;

use crate::error::ErrorCode;
use crate::sync::SyncService;

/// How long a read of the quarantine's size is reused.
pub const QUARANTINE_REFRESH: Duration = Duration::from_secs(5);
/// Longest a scrape waits for the quarantine's size; past it the last value stays.
const QUARANTINE_READ_TIMEOUT: Duration = Duration::from_secs(1);
/// The route label of a request no route took (the web app's files, unknown paths).
pub const UNMATCHED: &str = "(unmatched)";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    route: String,
    status: u16,
    /// The `error` code of the JSON body, `none` for an answer without one.
    code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    reason: &'static str,
}

/// Every metric of one server process.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    login_refusals: Family<LoginLabels, Counter>,
    sync_duration: Histogram,
    sync_request_bytes: Counter,
    sync_response_bytes: Counter,
    records_merged: Counter,
    commit_duration: Histogram,
    commit_batches: Histogram,
    hot_docs: Gauge,
    quarantine: Gauge,
    /// When the quarantine's size was last read.
    quarantine_read: AsyncMutex<Option<Instant>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kheo");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "http_errors",
            "HTTP answers with a 4xx or 5xx status, by route template, status and error code",
            errors.clone(),
        );
        let login_refusals = Family::<LoginLabels, Counter>::default();
        registry.register(
            "login_refusals",
            "Logins refused: throttled, wrong_secret (or unknown login), disabled, busy (password checks full)",
            login_refusals.clone(),
        );
        // 1 ms to about 16 s.
        let sync_duration = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register_with_unit(
            "sync_request_duration",
            "Time from a sync request's head to its answer, refusals included",
            Unit::Seconds,
            sync_duration.clone(),
        );
        let sync_request_bytes = Counter::default();
        registry.register_with_unit(
            "sync_request",
            "Bytes of sync request bodies received, as sent (gzip'd)",
            Unit::Bytes,
            sync_request_bytes.clone(),
        );
        let sync_response_bytes = Counter::default();
        registry.register_with_unit(
            "sync_response",
            "Bytes of sync answers sent, as sent (gzip'd)",
            Unit::Bytes,
            sync_response_bytes.clone(),
        );
        let records_merged = Counter::default();
        registry.register(
            "records_merged",
            "Records whose merged state changed in an accepted sync",
            records_merged.clone(),
        );
        // 0.25 ms to about 8 s.
        let commit_duration = Histogram::new(exponential_buckets(0.000_25, 2.0, 16));
        registry.register_with_unit(
            "store_commit_duration",
            "Time of one group commit of the writer, until durable",
            Unit::Seconds,
            commit_duration.clone(),
        );
        let commit_batches = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        registry.register("store_commit_batches", "Sync batches folded into one group commit", commit_batches.clone());
        let hot_docs = Gauge::default();
        registry.register("hot_documents", "Documents held in this process's cache", hot_docs.clone());
        let quarantine = Gauge::default();
        registry.register(
            "quarantine_entries",
            "Refusals held in the quarantine, over all processes (read from the database)",
            quarantine.clone(),
        );
        Metrics {
            registry,
            requests,
            errors,
            login_refusals,
            sync_duration,
            sync_request_bytes,
            sync_response_bytes,
            records_merged,
            commit_duration,
            commit_batches,
            hot_docs,
            quarantine,
            quarantine_read: AsyncMutex::new(None),
        }
    }

    /// One group commit that took `took` for `batches` batches.
    pub fn committed(&self, took: Duration, batches: usize) {
        self.commit_duration.observe(took.as_secs_f64());
        self.commit_batches.observe(batches as f64);
    }

    /// Records an accepted sync changed.
    pub fn merged(&self, records: usize) {
        self.records_merged.inc_by(records as u64);
    }

    /// The metrics as text, with the gauges read now.
    pub async fn render(&self, sync: &SyncService) -> String {
        self.hot_docs.set(i64::try_from(sync.cache.len()).unwrap_or(i64::MAX));
        self.refresh_quarantine(sync).await;
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "encoding the metrics failed");
        }
        text
    }

    async fn refresh_quarantine(&self, sync: &SyncService) {
        let mut read = self.quarantine_read.lock().await;
        if read.is_some_and(|at| at.elapsed() < QUARANTINE_REFRESH) {
            return;
        }
        match tokio::time::timeout(QUARANTINE_READ_TIMEOUT, sync.directory.quarantine_count()).await {
            Ok(Ok(n)) => {
                self.quarantine.set(n);
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "reading the quarantine's size failed"),
            Err(_) => tracing::warn!("reading the quarantine's size timed out"),
        };
        // A failed read is not retried at every scrape either: the database is busy enough.
        *read = Some(Instant::now());
    }

    fn answered(&self, route: String, method: &'static str, response: &Response) {
        let status = response.status().as_u16();
        if status >= 400 {
            let code = response.extensions().get::<ErrorCode>().map_or("none", |c| c.0);
            if route == LOGIN_PATH
                && let Some(reason) = login_refusal(code)
            {
                self.login_refusals.get_or_create(&LoginLabels { reason }).inc();
            }
            self.errors.get_or_create(&ErrorLabels { route: route.clone(), status, code }).inc();
        }
        self.requests.get_or_create(&RequestLabels { route, method, status }).inc();
    }
}

/// The reason label of a refused login, from its error code.
fn login_refusal(code: &str) -> Option<&'static str> {
    Some(match code {
        "too_many_attempts" => "throttled",
        "invalid_credentials" => "wrong_secret",
        "account_disabled" => "disabled",
        "busy" => "busy",
        _ => return None,
    })
}

/// A bounded method label: anything unusual is `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The middleware that counts every answer of the main router (applied
/// with `Router::layer`, so it runs after routing and sees [`MatchedPath`]).
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or(UNMATCHED, MatchedPath::as_str).to_owned();
    let method = method_label(request.method());
    if route != SYNC_PATH {
        let response = next.run(request).await;
        metrics.answered(route, method, &response);
        return response;
    }
    let started = Instant::now();
    let counter = metrics.sync_request_bytes.clone();
    let request = request.map(|body| Body::new(Counted { body, counter }));
    let response = next.run(request).await;
    metrics.sync_duration.observe(started.elapsed().as_secs_f64());
    // Sync answers are whole in memory: their size is known.
    if let Some(bytes) = response.body().size_hint().exact() {
        metrics.sync_response_bytes.inc_by(bytes);
    }
    metrics.answered(route, method, &response);
    response
}

/// A request body that counts the bytes read from it.
struct Counted {
    body: Body,
    counter: Counter,
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            this.counter.inc_by(data.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// What the metrics listener needs.
#[derive(Clone)]
pub struct Scrape {
    pub metrics: Arc<Metrics>,
    pub sync: Arc<SyncService>,
}

/// The router of `--metrics-addr`: `GET /metrics` and nothing else.
pub fn router(scrape: Scrape) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(scrape)
}

async fn metrics(State(scrape): State<Scrape>) -> Response {
    let text = scrape.metrics.render(&scrape.sync).await;
    let content_type = HeaderValue::from_static(prometheus_client::encoding::prometheus_text::CONTENT_TYPE);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(m: &Metrics) -> String {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &m.registry).unwrap();
        text
    }

    #[test]
    fn answers_are_counted_by_template_status_and_code() {
        let m = Metrics::new();
        let mut refused = Response::new(Body::empty());
        *refused.status_mut() = StatusCode::UNAUTHORIZED;
        refused.extensions_mut().insert(ErrorCode("invalid_credentials"));
        m.answered(LOGIN_PATH.to_owned(), "POST", &refused);
        m.answered("/api/v1/devices/{id}/revoke".to_owned(), "POST", &Response::new(Body::empty()));
        m.committed(Duration::from_millis(3), 2);
        m.merged(4);
        let text = render(&m);
        for line in [
            r#"kheo_http_requests_total{route="/api/v1/login",method="POST",status="401"} 1"#,
            r#"kheo_http_requests_total{route="/api/v1/devices/{id}/revoke",method="POST",status="200"} 1"#,
            r#"kheo_http_errors_total{route="/api/v1/login",status="401",code="invalid_credentials"} 1"#,
            r#"kheo_login_refusals_total{reason="wrong_secret"} 1"#,
            "kheo_records_merged_total 4",
            "kheo_store_commit_duration_seconds_count 1",
            "# TYPE kheo_sync_request_duration_seconds histogram",
            "kheo_sync_request_bytes_total 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn methods_and_login_reasons_stay_a_closed_set() {
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(login_refusal("too_many_attempts"), Some("throttled"));
        assert_eq!(login_refusal("account_disabled"), Some("disabled"));
        assert_eq!(login_refusal("bad_request"), None);
    }
}
