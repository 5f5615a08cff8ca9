//! HTTP: routes, body and header checks, the CBOR/gzip framing of sync, and
//! the JSON endpoints for login, devices and administration.
//!
//! Every route but `/healthz`, `/metrics` (a JSON 404 here: metrics are
//! served on `--metrics-addr`, see [`crate::metrics`]) and the login needs
//! a device token (`Authorization: Bearer ...`); the [`Principal`]
//! extractor refuses the request with 401 before any handler runs. What no route takes goes to
//! [`AppFiles`]: the web app, or a JSON 404 under `/api`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Extension, Json, Router};
use kheo_shared::codes::Role;
use kheo_shared::protocol::{
    self, AccountInfo, CONTENT_TYPE, LOGIN_PATH, LoginRequest, LoginResponse, MAX_BODY_BYTES, SYNC_PATH, SyncRequest,
};
use serde::Deserialize;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::accounts::{self, Accounts, NewAccount};
use crate::app_files::AppFiles;
use crate::auth::Principal;
use crate::changes::{ChangeFeed, Cursor};
use crate::client_ip::ClientIp;
use crate::error::AppError;
use crate::org::OrgTree;
use crate::reports::{self, Grouping, Period, TargetSetting};
use crate::store::ReportStore;
use crate::store::directory::{AccountUpdate, DeviceRow, QuarantineEntry};
use crate::sync::SyncService;
use extract::{Path, Query};

#[derive(Clone)]
pub struct AppState {
    pub sync: Arc<SyncService>,
    pub accounts: Arc<Accounts>,
    pub reports: Arc<dyn ReportStore>,
    pub app_files: Arc<AppFiles>,
    pub changes: Arc<ChangeFeed>,
    pub health: crate::health::Health,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// The whole HTTP surface; tests drive it with `oneshot` or over loopback.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        // Served on --metrics-addr only (see crate::metrics).
        .route("/metrics", get(metrics_elsewhere))
        // The answer carries the device's token: no cache may keep it.
        .route(LOGIN_PATH, post(login).layer(no_store()))
        .route(SYNC_PATH, post(sync))
        .route("/api/v1/changes", get(changes))
        .route("/api/v1/me", get(me))
        .route("/api/v1/models", get(model_list))
        .route("/api/v1/devices", get(my_devices))
        .route("/api/v1/org", get(read_org))
        .route("/api/v1/people", get(people))
        .route("/api/v1/reports/rollup", get(rollup))
        .route("/api/v1/reports/targets", get(targets))
        .route("/api/v1/reports/latest", get(latest))
        .route("/api/v1/reports/records", get(records_export))
        .route("/api/v1/review/queue", get(review_queue))
        .route("/api/v1/reports/charts/{chart}", get(chart))
        .route("/api/v1/reports/replications/{model}", get(replications))
        .route("/api/v1/admin/targets", put(set_target))
        .route("/api/v1/devices/{id}/revoke", post(revoke_device))
        .route("/api/v1/admin/accounts", get(list_accounts).post(create_account))
        .route("/api/v1/admin/accounts/import", post(import_accounts))
        .route("/api/v1/admin/accounts/{id}", patch(update_account))
        .route("/api/v1/admin/devices", get(all_devices))
        .route("/api/v1/admin/quarantine", get(quarantine))
        .route("/api/v1/admin/org", get(export_org).put(import_org))
        // After every route: it applies to the routes already added.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(app_files)
        // The limit is enforced in `read_body`, so an oversized body gets the JSON error body too.
        .layer(DefaultBodyLimit::disable())
        // Every answer, errors included: a policy (unless the answer set its
        // own), no type sniffing, no referrer, no framing.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(API_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(TraceLayer::new_for_http())
        .layer(axum::middleware::from_fn_with_state(state.metrics.clone(), crate::metrics::track))
        .with_state(state)
}

/// What a browser may do with any answer of this server. The web app's
/// files carry their own policy ([`crate::app_files::app_policy`]); every
/// other answer (JSON, CSV, SVG, errors) allows nothing at all.
pub const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// `Cache-Control: no-store`, for answers that carry a secret.
fn no_store() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

/// A route that exists, asked with a method it does not take; axum adds `Allow`.
async fn method_not_allowed(request: Request) -> AppError {
    AppError::MethodNotAllowed(format!("{} does not take {}", request.uri().path(), request.method()))
}

async fn app_files(State(state): State<AppState>, request: Request) -> Response {
    state.app_files.serve(request).await
}

/// The last database probe's result (see [`crate::health`]); `503` when it failed or is stale.
async fn healthz(State(state): State<AppState>) -> Response {
    let report = state.health.report();
    let status = if report.is_ok() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, [(header::CACHE_CONTROL, "no-store")], Json(report)).into_response()
}

async fn metrics_elsewhere() -> AppError {
    AppError::NotFound("metrics are served only on the address given with --metrics-addr".into())
}

/// A login body is a few short strings; a bigger one is refused before it is parsed.
const MAX_LOGIN_BODY_BYTES: usize = 4096;

async fn login(
    State(state): State<AppState>,
    client: Option<Extension<ClientIp>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Body,
) -> Result<Json<LoginResponse>, AppError> {
    let bytes = read_body_up_to(body, MAX_LOGIN_BODY_BYTES).await?;
    let request: LoginRequest = serde_json::from_slice(&bytes)
        .map_err(|e| AppError::BadRequest(format!("body is not the expected JSON: {e}")))?;
    // The client behind a trusted proxy, else the TCP peer.
    let address = client.map(|Extension(ClientIp(ip))| ip).or(peer.map(|Extension(ConnectInfo(a))| a.ip()));
    Ok(Json(state.accounts.login(request, address).await?))
}

async fn me(who: Principal, State(state): State<AppState>) -> Result<Json<AccountInfo>, AppError> {
    let account = state
        .accounts
        .directory
        .account(&who.account_id)
        .await?
        .ok_or_else(|| AppError::NotFound("account gone".into()))?;
    Ok(Json(accounts::info(&account)))
}

#[derive(Debug, Deserialize)]
struct ChangesParams {
    since: Option<String>,
    /// Seconds to wait for a change, 0 to 25.
    wait: Option<u64>,
}

#[derive(Debug, serde::Serialize)]
struct ChangesAnswer {
    cursor: String,
    changed: bool,
}

/// "Anything new in my scope?": a long-poll (see [`crate::changes`]).
async fn changes(
    who: Principal,
    State(state): State<AppState>,
    Query(p): Query<ChangesParams>,
) -> Result<Response, AppError> {
    let since = p.since.as_deref().map(Cursor::parse).transpose().map_err(AppError::BadQuery)?;
    let wait = p.wait.unwrap_or(0);
    let max = crate::changes::MAX_WAIT.as_secs();
    if wait > max {
        return Err(AppError::BadQuery(format!("wait is at most {max} seconds, not {wait}")));
    }
    let org = state.accounts.org();
    let answer = state.changes.wait(&org, &who, since, std::time::Duration::from_secs(wait)).await?;
    let body = ChangesAnswer { cursor: answer.cursor.to_string(), changed: answer.changed };
    // An answer is about this moment: no cache may keep it.
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// The model list of commune staff and above: search, filters, counts, pages.
async fn model_list(
    who: Principal,
    State(state): State<AppState>,
    Query(search): Query<crate::model_list::ModelSearch>,
) -> Result<Json<crate::model_list::ModelPage>, AppError> {
    require(&who, Role::CommuneStaff)?;
    let org = state.accounts.org();
    let scope = reports::report_scope(&who, &org);
    Ok(Json(crate::model_list::search(state.reports.as_ref(), &org, scope.as_deref(), &search).await?))
}

/// The display names of the people whose records or reviews the reader
/// sees, so that screens show names rather than logins.
async fn people(who: Principal, State(state): State<AppState>) -> Result<Json<Vec<accounts::Person>>, AppError> {
    Ok(Json(state.accounts.people(&who).await?))
}

async fn my_devices(who: Principal, State(state): State<AppState>) -> Result<Json<Vec<DeviceRow>>, AppError> {
    Ok(Json(state.accounts.directory.devices(Some(&who.account_id)).await?))
}

async fn revoke_device(
    who: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    state.accounts.revoke_device(&who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn require(who: &Principal, role: Role) -> Result<(), AppError> {
    if who.is_at_least(role) {
        Ok(())
    } else {
        Err(AppError::Forbidden {
            rule: "needs_role",
            message: format!("this needs the {role} role; {} is {}", who.username, who.role),
            doc: None,
        })
    }
}

async fn list_accounts(who: Principal, State(state): State<AppState>) -> Result<Json<Vec<AccountInfo>>, AppError> {
    require(&who, Role::Admin)?;
    Ok(Json(state.accounts.directory.accounts().await?.iter().map(accounts::info).collect()))
}

async fn create_account(
    who: Principal,
    State(state): State<AppState>,
    body: Body,
) -> Result<(StatusCode, Json<AccountInfo>), AppError> {
    require(&who, Role::Admin)?;
    let new: NewAccount = json_body(body).await?;
    Ok((StatusCode::CREATED, Json(state.accounts.create_account(new).await?)))
}

/// CSV with the header `username,phone,display_name,role,unit,secret`.
async fn import_accounts(
    who: Principal,
    State(state): State<AppState>,
    body: Body,
) -> Result<Json<Vec<AccountInfo>>, AppError> {
    require(&who, Role::Admin)?;
    let csv = read_body(body).await?;
    Ok(Json(state.accounts.import_csv(&csv).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountPatch {
    disabled: Option<bool>,
    unit: Option<String>,
    role: Option<Role>,
    display_name: Option<String>,
}

async fn update_account(
    who: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<AccountInfo>, AppError> {
    require(&who, Role::Admin)?;
    let p: AccountPatch = json_body(body).await?;
    let update = AccountUpdate {
        disabled: p.disabled,
        unit: p.unit,
        role: p.role,
        display_name: p.display_name,
        secret_hash: None,
    };
    Ok(Json(state.accounts.update_account(&id, update).await?))
}

async fn all_devices(who: Principal, State(state): State<AppState>) -> Result<Json<Vec<DeviceRow>>, AppError> {
    require(&who, Role::Admin)?;
    Ok(Json(state.accounts.directory.devices(None).await?))
}

async fn quarantine(who: Principal, State(state): State<AppState>) -> Result<Json<Vec<QuarantineEntry>>, AppError> {
    require(&who, Role::Admin)?;
    Ok(Json(state.accounts.directory.quarantined().await?))
}

#[derive(Debug, Deserialize)]
struct RollupParams {
    from: String,
    to: String,
    #[serde(default = "default_group")]
    group: String,
    #[serde(default)]
    approved: bool,
    #[serde(default)]
    format: Option<String>,
}

fn default_group() -> String {
    "field".into()
}

/// A rollup of the reader's scope; `format=csv` or `format=xlsx` downloads it.
async fn rollup(
    who: Principal,
    State(state): State<AppState>,
    Query(p): Query<RollupParams>,
) -> Result<Response, AppError> {
    let org = state.accounts.org();
    let period = Period::parse(&p.from, &p.to).map_err(in_query)?;
    let grouping = Grouping::parse(&p.group).map_err(in_query)?;
    let scope = reports::report_scope(&who, &org);
    let r = reports::rollup(state.reports.as_ref(), &org, scope.as_deref(), period, grouping, p.approved).await?;
    let name = format!("tong-hop-{}-{}", p.from, p.to);
    match p.format.as_deref() {
        None | Some("json") => Ok(Json(r).into_response()),
        Some("csv") => Ok(download(reports::to_csv(&r)?, "text/csv; charset=utf-8", &format!("{name}.csv"))),
        Some("xlsx") => Ok(download(
            reports::to_xlsx(&r)?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            &format!("{name}.xlsx"),
        )),
        Some(other) => Err(AppError::BadQuery(format!("format json, csv or xlsx, not {other:?}"))),
    }
}

fn download(bytes: Vec<u8>, content_type: &'static str, file: &str) -> Response {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{file}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type)), (header::CONTENT_DISPOSITION, disposition)],
        bytes,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct RecordsParams {
    from: String,
    to: String,
    #[serde(default)]
    format: Option<String>,
}

/// The raw records of a period in the reader's scope, as CSV (default) or XLSX.
async fn records_export(
    who: Principal,
    State(state): State<AppState>,
    Query(p): Query<RecordsParams>,
) -> Result<Response, AppError> {
    let org = state.accounts.org();
    let period = Period::parse(&p.from, &p.to).map_err(in_query)?;
    let scope = reports::report_scope(&who, &org);
    let names = state.accounts.display_names().await?;
    let rows = reports::record_rows(state.reports.as_ref(), &org, scope.as_deref(), period, &names).await?;
    let name = format!("ban-ghi-{}-{}", p.from, p.to);
    match p.format.as_deref() {
        None | Some("csv") => Ok(download(
            reports::rows_to_csv(&reports::RECORD_COLUMNS, &rows)?,
            "text/csv; charset=utf-8",
            &format!("{name}.csv"),
        )),
        Some("xlsx") => Ok(download(
            reports::rows_to_xlsx("Bản ghi", &reports::RECORD_COLUMNS, &rows, &reports::RECORD_NUMBER_COLUMNS)?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            &format!("{name}.xlsx"),
        )),
        Some(other) => Err(AppError::BadQuery(format!("format csv or xlsx, not {other:?}"))),
    }
}

#[derive(Debug, Deserialize)]
struct ChartParams {
    from: Option<String>,
    to: Option<String>,
    year: Option<i32>,
    #[serde(default)]
    approved: bool,
    /// `en` for English words; Vietnamese otherwise.
    lang: Option<String>,
}

/// `records.svg` (records per month), `incidents.svg` (incidents by
/// category) over `from`..`to`; `targets.svg` (new models against target per
/// unit) for `year`. All scoped like the reports, in the reader's language.
async fn chart(
    who: Principal,
    State(state): State<AppState>,
    Path(chart): Path<String>,
    Query(p): Query<ChartParams>,
) -> Result<Response, AppError> {
    use crate::charts::{Bar, bars, month_label};
    let org = state.accounts.org();
    let scope = reports::report_scope(&who, &org);
    let english = p.lang.as_deref() == Some("en");
    let say = |vi: &str, en: &str| if english { en.to_owned() } else { vi.to_owned() };
    let empty = say("Không có số liệu", "No data");
    let period = || match (&p.from, &p.to) {
        (Some(from), Some(to)) => Period::parse(from, to).map_err(in_query),
        _ => Err(AppError::BadQuery("this chart needs from and to (YYYY-MM-DD)".into())),
    };
    let svg = match chart.as_str() {
        "records.svg" => {
            let months =
                reports::records_by_month(state.reports.as_ref(), &org, scope.as_deref(), period()?, p.approved)
                    .await?;
            let data: Vec<Bar> = months
                .into_iter()
                .map(|(m, n)| Bar { label: month_label(&m), value: n as f64, target: None })
                .collect();
            bars(&say("Số hoạt động theo tháng", "Activities per month"), &empty, &data)
        }
        "incidents.svg" => {
            let grouping = Grouping::Field;
            let r = reports::rollup(state.reports.as_ref(), &org, scope.as_deref(), period()?, grouping, p.approved)
                .await?;
            let data: Vec<Bar> = r
                .total
                .incidents_by_category
                .iter()
                .map(|(c, n)| Bar { label: reports::word_in(english, "category", c), value: *n as f64, target: None })
                .collect();
            bars(&say("Vụ việc theo loại", "Incidents by category"), &empty, &data)
        }
        "targets.svg" => {
            let year = p.year.ok_or_else(|| AppError::BadQuery("this chart needs a year".into()))?;
            let rows = reports::progress(state.reports.as_ref(), &org, year).await.map_err(in_query)?;
            let data: Vec<Bar> = rows
                .into_iter()
                .filter(|r| scope.as_deref().is_none_or(|s| org.is_within(&r.unit, s)))
                .map(|r| Bar { label: r.name, value: r.new_models as f64, target: Some(r.new_models_target as f64) })
                .collect();
            let title = if english {
                format!("New models against the {year} target")
            } else {
                format!("Mô hình mới so với chỉ tiêu năm {year}")
            };
            bars(&title, &empty, &data)
        }
        other => return Err(AppError::NotFound(format!("no chart {other}"))),
    };
    Ok(([(header::CONTENT_TYPE, "image/svg+xml; charset=utf-8")], svg).into_response())
}

/// The review queue of the reader's commune (commune staff and above).
async fn review_queue(
    who: Principal,
    State(state): State<AppState>,
    Query(f): Query<reports::QueueFilter>,
) -> Result<Json<Vec<reports::QueueItem>>, AppError> {
    require(&who, Role::CommuneStaff)?;
    let org = state.accounts.org();
    let scope = reports::report_scope(&who, &org);
    // Its only refusals are about the filters, which come from the query.
    Ok(Json(reports::review_queue(state.reports.as_ref(), &org, scope.as_deref(), &f).await.map_err(in_query)?))
}

/// A typical model and where it was replicated.
async fn replications(
    who: Principal,
    State(state): State<AppState>,
    Path(model): Path<String>,
) -> Result<Json<Vec<reports::Replication>>, AppError> {
    let org = state.accounts.org();
    let scope = reports::report_scope(&who, &org);
    Ok(Json(reports::replications(state.reports.as_ref(), &org, scope.as_deref(), &model).await?))
}

/// The latest month with records in the reader's scope: `{"month": "2025-06"}`,
/// or `{"month": null}` before anyone logged anything.
async fn latest(who: Principal, State(state): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    let org = state.accounts.org();
    let scope = reports::report_scope(&who, &org);
    let month = reports::latest_month(state.reports.as_ref(), &org, scope.as_deref()).await?;
    Ok(Json(serde_json::json!({ "month": month })))
}

#[derive(Debug, Deserialize)]
struct YearParam {
    year: i32,
}

/// Progress against the yearly targets, for the units in the reader's scope.
async fn targets(
    who: Principal,
    State(state): State<AppState>,
    Query(p): Query<YearParam>,
) -> Result<Json<Vec<reports::Progress>>, AppError> {
    let org = state.accounts.org();
    let scope = reports::report_scope(&who, &org);
    let rows = reports::progress(state.reports.as_ref(), &org, p.year).await.map_err(in_query)?;
    Ok(Json(rows.into_iter().filter(|r| scope.as_deref().is_none_or(|s| org.is_within(&r.unit, s))).collect()))
}

async fn set_target(who: Principal, State(state): State<AppState>, body: Body) -> Result<StatusCode, AppError> {
    require(&who, Role::ProvinceStaff)?;
    let t: TargetSetting = json_body(body).await?;
    if state.accounts.org().get(&t.unit).is_none() {
        return Err(AppError::BadRequest(format!("unit {} is not in the organisation tree", t.unit)));
    }
    if !(0..=1000).contains(&t.new_models) || !(0..=1000).contains(&t.typical) || !(2000..=2100).contains(&t.year) {
        return Err(AppError::BadRequest("targets are 0 to 1000 models, for a year 2000 to 2100".into()));
    }
    state.reports.set_target(&t.unit, t.year, t.new_models, t.typical).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every signed-in user reads the tree: the app shows unit names and lets
/// staff pick a unit for a new model.
async fn read_org(_who: Principal, State(state): State<AppState>) -> Result<Response, AppError> {
    let json = crate::org::to_json(&state.accounts.org()).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

async fn export_org(who: Principal, State(state): State<AppState>) -> Result<Response, AppError> {
    require(&who, Role::Admin)?;
    let json = crate::org::to_json(&state.accounts.org()).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

async fn import_org(who: Principal, State(state): State<AppState>, body: Body) -> Result<StatusCode, AppError> {
    require(&who, Role::Admin)?;
    let bytes = read_body(body).await?;
    let text = std::str::from_utf8(&bytes).map_err(|_| AppError::BadRequest("the tree must be UTF-8 JSON".into()))?;
    let tree: OrgTree = crate::org::from_json(text).map_err(|e| AppError::BadRequest(e.to_string()))?;
    state.accounts.replace_org(tree).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn sync(
    who: Principal,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
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
        protocol::DecodeError::TooMany(message) => AppError::TooManyDocuments(message),
        other => AppError::MalformedBody(other.to_string()),
    })?;
    let org = state.accounts.org();
    let response = state.sync.handle(&who, &org, request).await?;
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
    read_body_up_to(body, MAX_BODY_BYTES).await
}

async fn read_body_up_to(body: Body, limit: usize) -> Result<Bytes, AppError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            AppError::BodyTooLarge(limit)
        } else if let Some(limit) = crate::connections::body_timed_out(&e) {
            AppError::BodyTimeout(limit.as_secs().max(1))
        } else {
            AppError::MalformedBody(format!("could not read body: {e}"))
        }
    })
}

async fn json_body<T: for<'de> Deserialize<'de>>(body: Body) -> Result<T, AppError> {
    let bytes = read_body(body).await?;
    serde_json::from_slice(&bytes).map_err(|e| AppError::BadRequest(format!("body is not the expected JSON: {e}")))
}

/// A refusal caused by a value of the query string.
fn in_query(e: AppError) -> AppError {
    match e {
        AppError::BadRequest(message) => AppError::BadQuery(message),
        other => other,
    }
}

/// axum's `Query` and `Path`, refusing with the JSON error body (`400
/// bad_query`, `400 bad_path`) rather than axum's plain-text rejection.
mod extract {
    use axum::extract::FromRequestParts;
    use axum::http::request::Parts;
    use serde::de::DeserializeOwned;

    use crate::error::AppError;

    pub struct Query<T>(pub T);

    impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
        type Rejection = AppError;

        async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
            match axum::extract::Query::<T>::from_request_parts(parts, state).await {
                Ok(axum::extract::Query(value)) => Ok(Query(value)),
                Err(rejection) => Err(AppError::BadQuery(rejection.body_text())),
            }
        }
    }

    pub struct Path<T>(pub T);

    impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
        type Rejection = AppError;

        async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
            match axum::extract::Path::<T>::from_request_parts(parts, state).await {
                Ok(axum::extract::Path(value)) => Ok(Path(value)),
                Err(rejection) => Err(AppError::BadPath(rejection.body_text())),
            }
        }
    }
}
