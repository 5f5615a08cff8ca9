//! The authenticated device behind a request.

use automerge::ActorId;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use kheo_shared::codes::Role;

use crate::error::AppError;
use crate::http::AppState;

#[derive(Debug, Clone)]
pub struct Principal {
    pub device_id: String,
    pub account_id: String,
    pub username: String,
    pub role: Role,
    /// The unit the account is bound to now (moving an account moves its scope).
    pub unit: String,
    /// The only actor this device may write new changes under.
    pub actor: ActorId,
}

impl Principal {
    pub fn is_at_least(&self, role: Role) -> bool {
        self.role >= role
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| AppError::Unauthenticated("an Authorization: Bearer <token> header is required".into()))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| AppError::Unauthenticated("the Authorization header must be Bearer <token>".into()))?;
        state.accounts.authenticate(token.trim()).await
    }
}
