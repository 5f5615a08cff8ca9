//! HTTP: routes, body and header checks, the CBOR/gzip framing of sync, and
//! the JSON endpoints for login, devices and administration.
//!
//! Every route but `/healthz`, the OpenAPI document, `/metrics` (a JSON
//! 404 here: metrics are served on `--metrics-addr`, see [`crate::metrics`])
//! and the login needs a device token (`Authorization: Bearer ...`); the
//! [`Principal`] extractor refuses the request with 401 before any handler
//! runs. What no route takes goes to
//! [`AppFiles`]: the web app, or a JSON 404 under `/api`.
//!
//! Each handler carries its OpenAPI description (`#[utoipa::path]`), which
//! [`openapi`] gathers into the document served at `/api/v1/openapi.json`.

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
    self, AccountInfo, CONTENT_TYPE, ErrorBody, LOGIN_PATH, LoginRequest, LoginResponse, MAX_BODY_BYTES, SYNC_PATH,
    SyncRequest,
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

pub mod openapi;

/// A photo by its hash: its bytes (GET) and its upload (PUT), see [`crate::blobs`].
const BLOB_PATH: &str = "/api/v1/blobs/{sha256}";

#[derive(Clone)]
pub struct AppState {
    pub sync: Arc<SyncService>,
    pub accounts: Arc<Accounts>,
    pub reports: Arc<dyn ReportStore>,
    pub app_files: Arc<AppFiles>,
    pub changes: Arc<ChangeFeed>,
    pub health: crate::health::Health,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub blobs: Arc<crate::blobs::Blobs>,
}

/// The whole HTTP surface; tests drive it with `oneshot` or over loopback.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route(openapi::PATH, get(openapi::serve))
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
        .route(BLOB_PATH, get(crate::blobs::download).put(crate::blobs::upload))
        .route("/api/v1/blobs/{sha256}/upload", get(crate::blobs::upload_status))
        .route("/api/v1/blobs/{sha256}/thumbnail", get(crate::blobs::thumbnail))
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

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    summary = "Health of this process and its database",
    description = "Needs no token. Reads the last database probe (every second) and never waits for the \
                   database: `503` when the last probe failed or none finished for 5 s.",
    responses(
        (status = 200, description = "The process is up and its database answered.", body = crate::health::Report),
        (status = 503, description = "The database did not answer its last probe.", body = crate::health::Report),
    )
)]
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

#[utoipa::path(
    post,
    path = "/api/v1/login",
    tag = "login and devices",
    summary = "Log in and register a device",
    description = "Logs in with a username or phone number and a password or PIN, and registers a new device: its \
        bearer token (shown only here), device id and Automerge actor. Needs no token. Failed logins are throttled \
        per account and address (docs/PROTOCOL.md §2.1).",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in: a new device. `Cache-Control: no-store`, as on every answer of this \
            endpoint.", body = LoginResponse),
        (status = 400, description = "`bad_request`: the body is not JSON with string fields `login` and `secret`.",
            body = ErrorBody),
        (status = 401, description = "`invalid_credentials`: a wrong secret or an unknown username or phone, told \
            apart by nothing; `account_disabled`: the secret is right, the account is disabled.", body = ErrorBody),
        (status = 408, response = openapi::BodyTimeout),
        (status = 413, description = "`body_too_large`: the body is over 4 KiB.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: too many failed logins; wait `Retry-After` seconds.",
            body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait, at least 1"))),
        (status = 503, description = "`busy`: every password check is taken; nothing was checked or counted.",
            body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, response = openapi::Internal),
    )
)]
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

#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "login and devices",
    summary = "The token's account",
    description = "The token's account as it is now. Any signed-in account.",
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The account.", body = AccountInfo),
        (status = 401, response = openapi::Unauthenticated),
        (status = 404, description = "`not_found`: the account is gone.", body = ErrorBody),
        (status = 500, response = openapi::Internal),
    )
)]
async fn me(who: Principal, State(state): State<AppState>) -> Result<Json<AccountInfo>, AppError> {
    let account = state
        .accounts
        .directory
        .account(&who.account_id)
        .await?
        .ok_or_else(|| AppError::NotFound("account gone".into()))?;
    Ok(Json(accounts::info(&account)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ChangesParams {
    /// The cursor of a previous answer; without it the answer is immediate.
    #[param(min_length = 22, max_length = 22)]
    since: Option<String>,
    /// Seconds to wait for a change, 0 to 25.
    #[param(minimum = 0, maximum = 25, default = 0)]
    wait: Option<u64>,
    /// With `true`: hear only of the documents this device has synced (the
    /// `only_synced` of the `keep` its syncs send).
    only_synced: Option<bool>,
    /// Hear of no activity log of a year before this one that this device
    /// has not synced (the `logs_from` of its `keep`), 2000 to 2100.
    #[param(minimum = 2000, maximum = 2100)]
    logs_from: Option<i32>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct ChangesAnswer {
    /// Names the versions of every document in the scope now; pass it as `since`.
    cursor: String,
    /// The cursor is not the `since` of the request.
    changed: bool,
}

/// "Anything new in my scope?": a long-poll (see [`crate::changes`]).
#[utoipa::path(
    get,
    path = "/api/v1/changes",
    tag = "sync",
    summary = "Wait for a change in the scope",
    description = "\"Anything new in my scope?\": a long-poll that answers as soon as a document in the account's \
        scope changes, or after `wait` seconds (docs/PROTOCOL.md §6, *Hearing of changes*). Any signed-in account. \
        `Cache-Control: no-store`.",
    params(ChangesParams),
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The scope's cursor, and whether it moved.", body = ChangesAnswer),
        (status = 400, description = "`bad_query`: `since` is not a cursor, `wait` is over 25, `only_synced` is not \
            a boolean or `logs_from` not a year from 2000 to 2100.", body = ErrorBody),
        (status = 401, response = openapi::Unauthenticated),
        (status = 500, response = openapi::Internal),
    )
)]
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
    let (min, max_year) = (kheo_shared::ids::MIN_YEAR, kheo_shared::ids::MAX_YEAR);
    if let Some(year) = p.logs_from.filter(|y| !(min..=max_year).contains(y)) {
        return Err(AppError::BadQuery(format!("logs_from is a year from {min} to {max_year}, not {year}")));
    }
    let keep = (p.only_synced.is_some() || p.logs_from.is_some()).then(|| kheo_shared::protocol::Keep {
        logs_from: p.logs_from,
        only_synced: p.only_synced.unwrap_or(false),
        release: Vec::new(),
    });
    let org = state.accounts.org();
    let answer = state.changes.wait(&org, &who, keep.as_ref(), since, std::time::Duration::from_secs(wait)).await?;
    let body = ChangesAnswer { cursor: answer.cursor.to_string(), changed: answer.changed };
    // An answer is about this moment: no cache may keep it.
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// The model list of commune staff and above: search, filters, counts, pages.
#[utoipa::path(
    get,
    path = "/api/v1/models",
    tag = "reports",
    summary = "The staff's model list",
    description = "The staff's model list in the reader's scope, by name: search, filters, counts, pages \
        (docs/PROTOCOL.md §12, *Model list*). Needs `commune_staff` or above.",
    params(crate::model_list::ModelSearch),
    security(("device_token" = [])),
    responses(
        (status = 200, description = "One page of the matching models.", body = crate::model_list::ModelPage),
        (status = 400, description = "`bad_query`: `q` over 100 characters, an unknown field, status or unit code, \
            `page` 0, `per_page` not 1 to 100.", body = ErrorBody),
        (status = 401, response = openapi::Unauthenticated),
        (status = 403, response = openapi::NeedsRole),
        (status = 500, response = openapi::Internal),
    )
)]
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
#[utoipa::path(
    get,
    path = "/api/v1/people",
    tag = "login and devices",
    summary = "The names of the people the reader sees",
    description = "The login and display names of the accounts whose work the reader sees: the reader's unit and \
        below and the units above it (everyone for `province_staff` and `admin`). Any signed-in account.",
    security(("device_token" = [])),
    responses(
        (status = 200, description = "By username.", body = Vec<accounts::Person>),
        (status = 401, response = openapi::Unauthenticated),
        (status = 500, response = openapi::Internal),
    )
)]
async fn people(who: Principal, State(state): State<AppState>) -> Result<Json<Vec<accounts::Person>>, AppError> {
    Ok(Json(state.accounts.people(&who).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/devices",
    tag = "login and devices",
    summary = "The account's devices",
    description = "The account's devices, revoked ones included, oldest first. Any signed-in account.",
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The devices; times in milliseconds since the Unix epoch.", body = Vec<DeviceRow>),
        (status = 401, response = openapi::Unauthenticated),
        (status = 500, response = openapi::Internal),
    )
)]
async fn my_devices(who: Principal, State(state): State<AppState>) -> Result<Json<Vec<DeviceRow>>, AppError> {
    Ok(Json(state.accounts.directory.devices(Some(&who.account_id)).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/devices/{id}/revoke",
    tag = "login and devices",
    summary = "Revoke a device",
    description = "Signs a device out: its token gets `401 token_revoked` from then on. Its owner may, and so may an \
        admin; revoking a revoked device keeps its first `revoked_at`.",
    params(("id" = String, Path, description = "The device id")),
    security(("device_token" = [])),
    responses(
        (status = 204, description = "Revoked."),
        (status = 400, description = "`bad_path`: the id does not decode to UTF-8.", body = ErrorBody),
        (status = 401, response = openapi::Unauthenticated),
        (status = 403, description = "`forbidden`, rule `own_devices_only`: neither the owner nor an admin.",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no device has this id.", body = ErrorBody),
        (status = 500, response = openapi::Internal),
    )
)]
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

#[utoipa::path(
    get,
    path = "/api/v1/admin/accounts",
    tag = "admin",
    summary = "Every account",
    description = "Every account, by username. Needs `admin`.",
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The accounts.", body = Vec<AccountInfo>),
        (status = 401, response = openapi::Unauthenticated),
        (status = 403, response = openapi::NeedsRole),
        (status = 500, response = openapi::Internal),
    )
)]
async fn list_accounts(who: Principal, State(state): State<AppState>) -> Result<Json<Vec<AccountInfo>>, AppError> {
    require(&who, Role::Admin)?;
    Ok(Json(state.accounts.directory.accounts().await?.iter().map(accounts::info).collect()))
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/accounts",
    tag = "admin",
    summary = "Create an account",
    description = "Creates an account. Needs `admin`.",
    request_body = NewAccount,
    security(("device_token" = [])),
    responses(
        (status = 201, description = "The account created.", body = AccountInfo),
        (status = 400, description = "`bad_request`: not the JSON of a new account, or an invalid value (the message \
            says which).", body = ErrorBody),
        (status = 401, response = openapi::Unauthenticated),
        (status = 403, response = openapi::NeedsRole),
        (status = 408, response = openapi::BodyTimeout),
        (status = 409, description = "`conflict`: the username or phone is taken.", body = ErrorBody),
        (status = 413, response = openapi::BodyTooLarge),
        (status = 500, response = openapi::Internal),
    )
)]
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
#[utoipa::path(
    post,
    path = "/api/v1/admin/accounts/import",
    tag = "admin",
    summary = "Create accounts from a CSV file",
    description = "Creates the accounts of a UTF-8 CSV file with the header \
        `username,phone,display_name,role,unit,secret`, one account a line, the fields of a new account. Every row \
        is checked before any is created: an error names its line and creates nothing. Needs `admin`.",
    request_body(content = String, content_type = "text/csv", description = "The CSV file; a leading byte-order mark \
        is ignored."),
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The accounts created, in file order.", body = Vec<AccountInfo>),
        (status = 400, description = "`bad_request`: a line is not a valid new account.", body = ErrorBody),
        (status = 401, response = openapi::Unauthenticated),
        (status = 403, response = openapi::NeedsRole),
        (status = 408, response = openapi::BodyTimeout),
        (status = 409, description = "`conflict`: a username or phone is taken, or appears twice in the file.",
            body = ErrorBody),
        (status = 413, response = openapi::BodyTooLarge),
        (status = 500, response = openapi::Internal),
    )
)]
async fn import_accounts(
    who: Principal,
    State(state): State<AppState>,
    body: Body,
) -> Result<Json<Vec<AccountInfo>>, AppError> {
    require(&who, Role::Admin)?;
    let csv = read_body(body).await?;
    Ok(Json(state.accounts.import_csv(&csv).await?))
}

/// Any of the fields; an absent or `null` one is left as it is.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AccountPatch {
    disabled: Option<bool>,
    /// A unit code of the organisation tree.
    unit: Option<String>,
    role: Option<Role>,
    /// 1 to 200 characters, not blank; trimmed.
    #[schema(min_length = 1, max_length = 200)]
    display_name: Option<String>,
}

#[utoipa::path(
    patch,
    path = "/api/v1/admin/accounts/{id}",
    tag = "admin",
    summary = "Change an account",
    description = "Changes an account. Usernames, phone numbers and secrets cannot be changed here. Needs `admin`.",
    params(("id" = String, Path, description = "The account id")),
    request_body = AccountPatch,
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The account after the change.", body = AccountInfo),
        (status = 400, description = "`bad_request`: an unknown field, a wrong type, a unit not in the tree, a blank \
            or long name; `bad_path`: the id does not decode to UTF-8.", body = ErrorBody),
        (status = 401, response = openapi::Unauthenticated),
        (status = 403, response = openapi::NeedsRole),
        (status = 404, description = "`not_found`: no account has this id.", body = ErrorBody),
        (status = 408, response = openapi::BodyTimeout),
        (status = 409, description = "`last_admin`: the change would leave no enabled admin account; nothing \
            changed.", body = ErrorBody),
        (status = 413, response = openapi::BodyTooLarge),
        (status = 500, response = openapi::Internal),
    )
)]
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

#[utoipa::path(
    get,
    path = "/api/v1/admin/devices",
    tag = "admin",
    summary = "Every device",
    description = "Every device of every account, oldest first. Needs `admin`.",
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The devices.", body = Vec<DeviceRow>),
        (status = 401, response = openapi::Unauthenticated),
        (status = 403, response = openapi::NeedsRole),
        (status = 500, response = openapi::Internal),
    )
)]
async fn all_devices(who: Principal, State(state): State<AppState>) -> Result<Json<Vec<DeviceRow>>, AppError> {
    require(&who, Role::Admin)?;
    Ok(Json(state.accounts.directory.devices(None).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/quarantine",
    tag = "admin",
    summary = "The quarantined changes",
    description = "The changes sync refused and kept, oldest first (the changes themselves are not returned). Needs \
        `admin`.",
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The quarantine entries.", body = Vec<QuarantineEntry>),
        (status = 401, response = openapi::Unauthenticated),
        (status = 403, response = openapi::NeedsRole),
        (status = 500, response = openapi::Internal),
    )
)]
async fn quarantine(who: Principal, State(state): State<AppState>) -> Result<Json<Vec<QuarantineEntry>>, AppError> {
    require(&who, Role::Admin)?;
    Ok(Json(state.accounts.directory.quarantined().await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct RollupParams {
    /// First day of the period.
    #[param(format = Date)]
    from: String,
    /// Last day of the period, included, not before `from`.
    #[param(format = Date)]
    to: String,
    /// What the rows group: a field, a model, or a unit of a level.
    #[serde(default = "default_group")]
    #[param(value_type = Option<openapi::GroupBy>)]
    group: String,
    /// Count only approved records.
    #[serde(default)]
    approved: bool,
    /// `json` (default), or a `csv` or `xlsx` download.
    #[serde(default)]
    #[param(value_type = Option<openapi::RollupFormat>)]
    format: Option<String>,
}

fn default_group() -> String {
    "field".into()
}

/// A rollup of the reader's scope; `format=csv` or `format=xlsx` downloads it.
#[utoipa::path(
    get,
    path = "/api/v1/reports/rollup",
    tag = "reports",
    summary = "A rollup of a period",
    description = "A rollup of the reader's scope over a period (docs/PROTOCOL.md §12): JSON, or a CSV or XLSX \
        download with Vietnamese column names. Any signed-in account; the scope is the account's unit and below, or \
        everything for `province_staff` and `admin`.",
    params(RollupParams),
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The rollup; CSV and XLSX come with `Content-Disposition: attachment`.",
            content(
                (reports::Rollup = "application/json"),
                (String = "text/csv; charset=utf-8"),
                ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            )),
        (status = 400, response = openapi::BadQuery),
        (status = 401, response = openapi::Unauthenticated),
        (status = 500, response = openapi::Internal),
    )
)]
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct RecordsParams {
    /// First day of the period.
    #[param(format = Date)]
    from: String,
    /// Last day of the period, included, not before `from`.
    #[param(format = Date)]
    to: String,
    /// A `csv` (default) or `xlsx` download.
    #[serde(default)]
    #[param(value_type = Option<openapi::RecordsFormat>)]
    format: Option<String>,
}

/// The raw records of a period in the reader's scope, as CSV (default) or XLSX.
#[utoipa::path(
    get,
    path = "/api/v1/reports/records",
    tag = "reports",
    summary = "A period's records, as CSV or XLSX",
    description = "Every record of a period in the reader's scope, tombstones included, one row each, with \
        Vietnamese column names (docs/PROTOCOL.md §12). Any signed-in account.",
    params(RecordsParams),
    security(("device_token" = [])),
    responses(
        (status = 200, description = "A download (`Content-Disposition: attachment`).",
            content(
                (String = "text/csv; charset=utf-8"),
                ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            )),
        (status = 400, response = openapi::BadQuery),
        (status = 401, response = openapi::Unauthenticated),
        (status = 500, response = openapi::Internal),
    )
)]
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ChartParams {
    /// First day, for `records.svg` and `incidents.svg`.
    #[param(format = Date)]
    from: Option<String>,
    /// Last day, included, for `records.svg` and `incidents.svg`.
    #[param(format = Date)]
    to: Option<String>,
    /// The year of `targets.svg`.
    year: Option<i32>,
    /// Count only approved records.
    #[serde(default)]
    approved: bool,
    /// `en` for English words; Vietnamese otherwise.
    lang: Option<String>,
}

/// `records.svg` (records per month), `incidents.svg` (incidents by
/// category) over `from`..`to`; `targets.svg` (new models against target per
/// unit) for `year`. All scoped like the reports, in the reader's language.
#[utoipa::path(
    get,
    path = "/api/v1/reports/charts/{chart}",
    tag = "reports",
    summary = "An SVG chart",
    description = "An SVG chart of the reader's scope, 340 units wide: records per month or incidents by category \
        over `from`..`to`, or new models against target per unit for `year`. Any signed-in account.",
    params(("chart" = openapi::Chart, Path, description = "Which chart"), ChartParams),
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The chart.", content((String = "image/svg+xml; charset=utf-8"))),
        (status = 400, description = "`bad_query`: a chart without its `from` and `to` or `year`, or an invalid \
            value; `bad_path`: the name does not decode to UTF-8.", body = ErrorBody),
        (status = 401, response = openapi::Unauthenticated),
        (status = 404, description = "`not_found`: no chart of this name.", body = ErrorBody),
        (status = 500, response = openapi::Internal),
    )
)]
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
#[utoipa::path(
    get,
    path = "/api/v1/review/queue",
    tag = "reports",
    summary = "The review queue",
    description = "The live records of the reader's scope for commune review, newest first, with the fields two \
        devices changed concurrently. Needs `commune_staff` or above.",
    params(reports::QueueFilter),
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The records.", body = Vec<reports::QueueItem>),
        (status = 400, description = "`bad_query`: a day that is not `YYYY-MM-DD`, or a period that ends before it \
            starts.", body = ErrorBody),
        (status = 401, response = openapi::Unauthenticated),
        (status = 403, response = openapi::NeedsRole),
        (status = 500, response = openapi::Internal),
    )
)]
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
#[utoipa::path(
    get,
    path = "/api/v1/reports/replications/{model}",
    tag = "reports",
    summary = "Where a model was replicated",
    description = "The models replicated from a model in the reader's scope, directly (`depth` 1) or through another \
        replication. Any signed-in account.",
    params(("model" = String, Path, description = "The model id")),
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The replications, by depth, then start.", body = Vec<reports::Replication>),
        (status = 400, description = "`bad_path`: the id does not decode to UTF-8.", body = ErrorBody),
        (status = 401, response = openapi::Unauthenticated),
        (status = 404, description = "`not_found`: no such model in the reader's scope.", body = ErrorBody),
        (status = 500, response = openapi::Internal),
    )
)]
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
#[utoipa::path(
    get,
    path = "/api/v1/reports/latest",
    tag = "reports",
    summary = "The latest month with records",
    description = "The latest month with a live record in the reader's scope; the report screen opens on it. Any \
        signed-in account.",
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The month, or `null` before anyone logged anything.",
            body = openapi::LatestMonth),
        (status = 401, response = openapi::Unauthenticated),
        (status = 500, response = openapi::Internal),
    )
)]
async fn latest(who: Principal, State(state): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    let org = state.accounts.org();
    let scope = reports::report_scope(&who, &org);
    let month = reports::latest_month(state.reports.as_ref(), &org, scope.as_deref()).await?;
    Ok(Json(serde_json::json!({ "month": month })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct YearParam {
    year: i32,
}

/// Progress against the yearly targets, for the units in the reader's scope.
#[utoipa::path(
    get,
    path = "/api/v1/reports/targets",
    tag = "reports",
    summary = "Progress against the yearly targets",
    description = "Progress against the yearly targets, one row per unit in the reader's scope that has targets \
        (docs/PROTOCOL.md §12). Any signed-in account.",
    params(YearParam),
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The rows.", body = Vec<reports::Progress>),
        (status = 400, response = openapi::BadQuery),
        (status = 401, response = openapi::Unauthenticated),
        (status = 500, response = openapi::Internal),
    )
)]
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

#[utoipa::path(
    put,
    path = "/api/v1/admin/targets",
    tag = "reports",
    summary = "Set a unit's targets for a year",
    description = "Sets a unit's targets for a year, overriding the province's rule. Needs `province_staff` or \
        above.",
    request_body = TargetSetting,
    security(("device_token" = [])),
    responses(
        (status = 204, description = "Set."),
        (status = 400, description = "`bad_request`: not the JSON of a target, a unit not in the tree, or a value \
            out of its bounds.", body = ErrorBody),
        (status = 401, response = openapi::Unauthenticated),
        (status = 403, response = openapi::NeedsRole),
        (status = 408, response = openapi::BodyTimeout),
        (status = 413, response = openapi::BodyTooLarge),
        (status = 500, response = openapi::Internal),
    )
)]
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
#[utoipa::path(
    get,
    path = "/api/v1/org",
    tag = "login and devices",
    summary = "The organisation tree",
    description = "The organisation tree: its units and successions (docs/PROTOCOL.md §10). Any signed-in account.",
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The tree.", body = crate::org::OrgDocument),
        (status = 401, response = openapi::Unauthenticated),
        (status = 500, response = openapi::Internal),
    )
)]
async fn read_org(_who: Principal, State(state): State<AppState>) -> Result<Response, AppError> {
    let json = crate::org::to_json(&state.accounts.org()).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/org",
    tag = "admin",
    summary = "The organisation tree, for admins",
    description = "The organisation tree, as `GET /api/v1/org` gives it. Needs `admin`.",
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The tree.", body = crate::org::OrgDocument),
        (status = 401, response = openapi::Unauthenticated),
        (status = 403, response = openapi::NeedsRole),
        (status = 500, response = openapi::Internal),
    )
)]
async fn export_org(who: Principal, State(state): State<AppState>) -> Result<Response, AppError> {
    require(&who, Role::Admin)?;
    let json = crate::org::to_json(&state.accounts.org()).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

#[utoipa::path(
    put,
    path = "/api/v1/admin/org",
    tag = "admin",
    summary = "Replace the organisation tree",
    description = "Replaces the whole organisation tree after validating it as a whole; on any error nothing \
        changes. Needs `admin`.",
    request_body = crate::org::OrgDocument,
    security(("device_token" = [])),
    responses(
        (status = 204, description = "Replaced."),
        (status = 400, description = "`bad_request`: unknown fields, an invalid tree (the message names the entry, \
            e.g. `JSON units[3]: …`), or an account bound to a unit missing from the new tree.", body = ErrorBody),
        (status = 401, response = openapi::Unauthenticated),
        (status = 403, response = openapi::NeedsRole),
        (status = 408, response = openapi::BodyTimeout),
        (status = 413, response = openapi::BodyTooLarge),
        (status = 500, response = openapi::Internal),
    )
)]
async fn import_org(who: Principal, State(state): State<AppState>, body: Body) -> Result<StatusCode, AppError> {
    require(&who, Role::Admin)?;
    let bytes = read_body(body).await?;
    let text = std::str::from_utf8(&bytes).map_err(|_| AppError::BadRequest("the tree must be UTF-8 JSON".into()))?;
    let tree: OrgTree = crate::org::from_json(text).map_err(|e| AppError::BadRequest(e.to_string()))?;
    state.accounts.replace_org(tree).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/v1/sync",
    tag = "sync",
    summary = "One round trip of a sync session (CBOR)",
    description = "One round trip of a sync session: Automerge sync messages for many documents, as gzip-compressed \
        CBOR. Not JSON: `docs/PROTOCOL.md` is its normative description (§1 headers and limits, §3 message shapes, \
        §6 sessions, §7 write rules, §9 errors). Any signed-in account.",
    request_body(content(("application/cbor")), description = "The CBOR request of docs/PROTOCOL.md §3, with \
        `Content-Encoding: gzip`."),
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The CBOR response of docs/PROTOCOL.md §3, with `Content-Encoding: gzip`.",
            content(("application/cbor"))),
        (status = 400, description = "`malformed_body`, `unsupported_version`, `bad_document_id`, \
            `duplicate_document`, `bad_sync_message`, `bad_change` (docs/PROTOCOL.md §9).", body = ErrorBody),
        (status = 401, response = openapi::Unauthenticated),
        (status = 403, description = "`forbidden`, with the `rule` of docs/PROTOCOL.md §7.2 broken and the `doc`.",
            body = ErrorBody),
        (status = 408, response = openapi::BodyTimeout),
        (status = 413, description = "`body_too_large`, `too_many_documents`, `over_budget`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `Content-Type: application/cbor` with \
            `Content-Encoding: gzip`.", body = ErrorBody),
        (status = 422, description = "`schema_violation`, with the `doc` and the `path` in it.", body = ErrorBody),
        (status = 500, response = openapi::Internal),
        (status = 503, description = "`busy`: other processes kept writing the same documents; try again.",
            body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
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

pub(crate) async fn read_body_up_to(body: Body, limit: usize) -> Result<Bytes, AppError> {
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
pub(crate) mod extract {
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
