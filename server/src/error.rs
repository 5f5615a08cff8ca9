//! The server's error type and how each error becomes an HTTP answer.
//!
//! Every error a client can cause maps to a 4xx with a stable `error` code
//! (listed in `docs/PROTOCOL.md`) and a message meant for people. Internal
//! failures are logged in full and answered with a 500 whose body says only
//! "internal error".

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kheo_shared::protocol::ErrorBody;
use kheo_shared::schema::SchemaError;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("request body must be gzip-compressed CBOR (Content-Type: application/cbor, Content-Encoding: gzip)")]
    UnsupportedMediaType,
    #[error("{0}")]
    MalformedBody(String),
    #[error("protocol version {0} is not supported; this server speaks versions 1 and 2")]
    UnsupportedVersion(u32),
    #[error("{0}")]
    BadDocumentId(String),
    #[error("document {0} appears twice in one request")]
    DuplicateDocument(String),
    #[error("{doc}: not a valid Automerge sync message: {reason}")]
    BadSyncMessage { doc: String, reason: String },
    #[error("{doc}: a change was refused: {reason}")]
    BadChange { doc: String, reason: String },
    /// The device sends the changes as they are instead.
    #[error("{doc}: {reason}; send the changes unpacked")]
    BadPacked { doc: String, reason: String },
    #[error("{0}")]
    OverBudget(String),
    #[error("{doc}: {error}")]
    SchemaViolation { doc: String, error: SchemaError },
    #[error("request body is larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("{0}")]
    TooManyDocuments(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("this device was signed out (its token was revoked); log in again")]
    TokenRevoked,
    #[error("this account is disabled")]
    AccountDisabled,
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("too many failed logins; try again in {0} s")]
    TooManyAttempts(u64),
    #[error("the server is busy; try again in {0} s")]
    Busy(u64),
    #[error("the request body did not arrive within {0} s")]
    BodyTimeout(u64),
    #[error("{message}")]
    Forbidden { rule: &'static str, message: String, doc: Option<String> },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A quiet sync's cursor was made for another scope than the account's now.
    #[error("the cursor was given for another scope (the account moved or changed role): sync in full")]
    StaleCursor,
    #[error("{0}")]
    BadRequest(String),
    /// The query string is not what the endpoint takes.
    #[error("{0}")]
    BadQuery(String),
    /// A path segment that cannot be read (e.g. not UTF-8 once decoded).
    #[error("{0}")]
    BadPath(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The change would leave no enabled admin account.
    #[error("{0}")]
    LastAdmin(String),
    /// A blob's bytes do not hash to its name (docs/PROTOCOL.md §13.2).
    #[error("{0}")]
    HashMismatch(String),
    /// A blob's bytes are not an image of the declared type within bounds.
    #[error("{0}")]
    NotAnImage(String),
    /// An upload part does not start where the server's copy ends.
    #[error("{0}")]
    OffsetMismatch(String),
    /// A blob or an upload part over its size limit.
    #[error("{0}")]
    TooLarge(String),
    /// The device's blobs and unfinished uploads would pass its quota.
    #[error("{0}")]
    OverQuota(String),
    /// A blob upload whose `Content-Type` is not its attachment's.
    #[error("{0}")]
    WrongMediaType(String),
    /// The login throttle's store failed: the login is refused unchecked.
    #[error("logging in is unavailable for a moment; try again later")]
    LoginsUnavailable(#[source] crate::store::logins::LoginWindowsError),
    #[error("internal error")]
    Store(#[from] StoreError),
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        use AppError::*;
        match self {
            UnsupportedMediaType | WrongMediaType(_) | NotAnImage(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            HashMismatch(_) => StatusCode::BAD_REQUEST,
            OffsetMismatch(_) => StatusCode::CONFLICT,
            TooLarge(_) | OverQuota(_) => StatusCode::PAYLOAD_TOO_LARGE,
            MalformedBody(_)
            | UnsupportedVersion(_)
            | BadDocumentId(_)
            | DuplicateDocument(_)
            | BadSyncMessage { .. }
            | BadChange { .. }
            | BadPacked { .. }
            | BadRequest(_)
            | BadQuery(_)
            | BadPath(_) => StatusCode::BAD_REQUEST,
            MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Unauthenticated(_) | TokenRevoked | AccountDisabled | InvalidCredentials => StatusCode::UNAUTHORIZED,
            TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            Busy(_) | LoginsUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Forbidden { .. } => StatusCode::FORBIDDEN,
            NotFound(_) => StatusCode::NOT_FOUND,
            Conflict(_) | LastAdmin(_) | StaleCursor => StatusCode::CONFLICT,
            SchemaViolation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            BodyTooLarge(_) | TooManyDocuments(_) | OverBudget(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Store(_) | Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        use AppError::*;
        match self {
            UnsupportedMediaType | WrongMediaType(_) => "unsupported_media_type",
            HashMismatch(_) => "hash_mismatch",
            NotAnImage(_) => "not_an_image",
            OffsetMismatch(_) => "offset_mismatch",
            TooLarge(_) => "too_large",
            OverQuota(_) => "over_quota",
            MalformedBody(_) => "malformed_body",
            UnsupportedVersion(_) => "unsupported_version",
            BadDocumentId(_) => "bad_document_id",
            DuplicateDocument(_) => "duplicate_document",
            BadSyncMessage { .. } => "bad_sync_message",
            BadChange { .. } => "bad_change",
            BadPacked { .. } => "bad_packed",
            OverBudget(_) => "over_budget",
            SchemaViolation { .. } => "schema_violation",
            BodyTooLarge(_) => "body_too_large",
            TooManyDocuments(_) => "too_many_documents",
            Unauthenticated(_) => "unauthenticated",
            TokenRevoked => "token_revoked",
            AccountDisabled => "account_disabled",
            InvalidCredentials => "invalid_credentials",
            TooManyAttempts(_) => "too_many_attempts",
            Busy(_) => "busy",
            LoginsUnavailable(_) => "unavailable",
            BodyTimeout(_) => "body_timeout",
            Forbidden { .. } => "forbidden",
            NotFound(_) => "not_found",
            Conflict(_) => "conflict",
            StaleCursor => "stale_cursor",
            BadRequest(_) => "bad_request",
            BadQuery(_) => "bad_query",
            BadPath(_) => "bad_path",
            MethodNotAllowed(_) => "method_not_allowed",
            LastAdmin(_) => "last_admin",
            Store(_) | Internal(_) => "internal",
        }
    }

    pub fn body(&self) -> ErrorBody {
        let (doc, path, rule) = match self {
            AppError::SchemaViolation { doc, error } => (Some(doc.clone()), Some(error.path.clone()), None),
            AppError::BadSyncMessage { doc, .. }
            | AppError::BadChange { doc, .. }
            | AppError::BadPacked { doc, .. } => (Some(doc.clone()), None, None),
            AppError::Forbidden { rule, doc, .. } => (doc.clone(), None, Some((*rule).to_owned())),
            _ => (None, None, None),
        };
        ErrorBody { error: self.code().into(), message: self.to_string(), doc, path, rule }
    }
}

/// The `error` code of an answer, kept in its extensions for the metrics
/// (a closed set: [`AppError::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub &'static str);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = ?self, "request failed");
        } else {
            // Not `message`: that is the event's own text, and a JSON line would carry the key twice.
            tracing::info!(code = self.code(), reason = %self, "request refused");
        }
        let mut response = (status, Json(self.body())).into_response();
        response.extensions_mut().insert(ErrorCode(self.code()));
        if let AppError::TooManyAttempts(seconds) | AppError::Busy(seconds) = self
            && let Ok(value) = axum::http::HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, value);
        }
        response
    }
}
