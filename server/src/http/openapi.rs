//! The OpenAPI 3.1 document of the HTTP API, served at `GET /api/v1/openapi.json`.
//!
//! It is derived from the code: each handler of [`super`] carries its
//! `#[utoipa::path]` (method, path, parameters with their bounds, body,
//! answers and their error codes, token), and the request and response types
//! derive their schemas. This module owns what ties them together: the list
//! of operations, the bearer scheme, the error answers many endpoints share,
//! and the few types that exist only to be described (the handler builds the
//! JSON itself, or reads a parameter as text). The sync endpoint is in the
//! document with its media types only; `docs/PROTOCOL.md` describes it.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use kheo_shared::protocol::ErrorBody;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToResponse, ToSchema};

pub const PATH: &str = "/api/v1/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Kheo",
        description = "The HTTP API of the Kheo server. The sync endpoint's CBOR messages are described by \
                       docs/PROTOCOL.md, which is also the normative text for every endpoint; errors have the \
                       JSON body `ErrorBody`, whose `error` codes are listed in its §9."
    ),
    paths(
        super::healthz,
        serve,
        super::login,
        super::sync,
        super::changes,
        super::me,
        super::model_list,
        super::my_devices,
        super::read_org,
        super::people,
        super::rollup,
        super::targets,
        super::latest,
        super::records_export,
        super::review_queue,
        super::chart,
        super::replications,
        super::set_target,
        super::revoke_device,
        super::list_accounts,
        super::create_account,
        super::import_accounts,
        super::update_account,
        super::all_devices,
        super::quarantine,
        super::export_org,
        super::import_org,
        crate::blobs::upload_status,
        crate::blobs::upload,
        crate::blobs::download,
        crate::blobs::thumbnail,
    ),
    // Schemas only parameters name: utoipa collects those of bodies by itself.
    components(
        schemas(GroupBy, RollupFormat, RecordsFormat, Chart),
        responses(
            Unauthenticated,
            NeedsRole,
            BadQuery,
            BodyTooLarge,
            BodyTimeout,
            Internal,
            BadHash,
            BlobOutOfScope,
            BlobNotUploaded
        )
    ),
    modifiers(&DeviceToken),
    tags(
        (name = "login and devices", description = "Logging in, the account, its devices, the tree and people it sees"),
        (name = "sync", description = "Sync (see docs/PROTOCOL.md) and hearing of changes"),
        (name = "reports", description = "Reports, exports, charts, the model list and the review queue"),
        (name = "photos", description = "Photos' bytes by their SHA-256: uploads in parts and downloads"),
        (name = "admin", description = "Accounts, devices, quarantine and the organisation tree, for admins"),
        (name = "meta", description = "Liveness and this document"),
    )
)]
pub struct ApiDoc;

/// The document, serialized once: it is the same for every request.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi().to_pretty_json().unwrap_or_else(|e| unreachable!("an OpenAPI document is plain JSON: {e}"))
});

/// The document as served.
pub fn document() -> &'static str {
    &DOCUMENT
}

#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    summary = "This document",
    description = "This document. Needs no token: it describes the API, it holds no data.",
    responses((status = 200, description = "The OpenAPI 3.1 document.", content_type = "application/json"))
)]
pub async fn serve() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}

/// `Authorization: Bearer <token>`, the token of a login.
struct DeviceToken;

impl Modify for DeviceToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("kheo_ and 43 base64url characters")
            .description(Some(
                "The token `POST /api/v1/login` returns, naming a device and through it an account, its role and \
                 its unit. Which role an endpoint needs is in its description.",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("device_token", SecurityScheme::Http(scheme));
    }
}

/// The error answers most endpoints share; each names its `error` codes.
#[derive(ToResponse)]
#[response(description = "`unauthenticated`: no `Authorization: Bearer <token>`, or an unknown token; \
                          `token_revoked`: the device was revoked; `account_disabled`: the account is disabled.")]
pub struct Unauthenticated(pub ErrorBody);

#[derive(ToResponse)]
#[response(description = "`forbidden`, rule `needs_role`: the account's role is below the one this endpoint needs.")]
pub struct NeedsRole(pub ErrorBody);

#[derive(ToResponse)]
#[response(description = "`bad_query`: a query parameter is missing, of the wrong type, or an invalid value \
                          (a day that is not `YYYY-MM-DD`, a period that ends before it starts, an unknown code).")]
pub struct BadQuery(pub ErrorBody);

#[derive(ToResponse)]
#[response(description = "`body_too_large`: the body is over 8 MiB.")]
pub struct BodyTooLarge(pub ErrorBody);

#[derive(ToResponse)]
#[response(description = "`body_timeout`: the body did not arrive within the server's body timeout (30 s by default).")]
pub struct BodyTimeout(pub ErrorBody);

#[derive(ToResponse)]
#[response(description = "`internal`: a failure of the server, logged; the message says only \"internal error\".")]
pub struct Internal(pub ErrorBody);

#[derive(ToResponse)]
#[response(description = "`bad_request`: the blob's name is not 64 lowercase hex digits.")]
pub struct BadHash(pub ErrorBody);

#[derive(ToResponse)]
#[response(description = "`forbidden`, rule `out_of_scope`: no record this account may read names the hash, \
                          whether or not the blob exists.")]
pub struct BlobOutOfScope(pub ErrorBody);

#[derive(ToResponse)]
#[response(description = "`not_found`: a readable record names the hash, but no phone has uploaded it yet.")]
pub struct BlobNotUploaded(pub ErrorBody);

// The types below are only described: the handlers build these answers as
// JSON values, or read these parameters as text and match them.

/// `GET /api/v1/reports/latest`.
#[derive(ToSchema)]
#[allow(dead_code, reason = "described, never built: the handler writes the JSON")]
pub struct LatestMonth {
    /// `YYYY-MM`, or `null` before anyone logged anything.
    month: Option<String>,
}

/// What a rollup's rows group: a field, a model, or the unit of a level
/// that stands for each model's unit on the period's last day.
#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code, reason = "described, never built: the handler reads the text")]
pub enum GroupBy {
    Field,
    Model,
    Province,
    District,
    Commune,
    Village,
    Agency,
}

/// JSON by default; CSV (UTF-8 with a byte-order mark) or XLSX downloads.
#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code, reason = "described, never built: the handler reads the text")]
pub enum RollupFormat {
    Json,
    Csv,
    Xlsx,
}

/// CSV (UTF-8 with a byte-order mark) by default, or XLSX.
#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code, reason = "described, never built: the handler reads the text")]
pub enum RecordsFormat {
    Csv,
    Xlsx,
}

/// `records.svg` and `incidents.svg` need `from` and `to`; `targets.svg` needs `year`.
#[derive(ToSchema, serde::Serialize)]
#[allow(dead_code, reason = "described, never built: the handler reads the text")]
pub enum Chart {
    #[serde(rename = "records.svg")]
    Records,
    #[serde(rename = "incidents.svg")]
    Incidents,
    #[serde(rename = "targets.svg")]
    Targets,
}

#[cfg(test)]
mod tests;
