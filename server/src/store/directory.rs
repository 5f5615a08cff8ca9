//! The directory: accounts, devices, the organisation tree, which unit each
//! model belongs to, and the quarantine of refused changes. Behind a trait
//! like the document store, so that a distributed engine can stand in for
//! the embedded one.

use std::collections::HashMap;

use async_trait::async_trait;
use kheo_shared::codes::Role;
use kheo_shared::ids::ModelId;
use serde::Serialize;

use super::StoreError;
use crate::org::{Succession, Unit};

#[derive(Debug, Clone, PartialEq)]
pub struct AccountRow {
    pub id: String,
    pub username: String,
    pub phone: Option<String>,
    pub display_name: String,
    pub role: Role,
    pub unit: String,
    pub secret_hash: String,
    pub disabled: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DeviceRow {
    pub id: String,
    pub account: String,
    /// Hex Automerge actor id bound to this device.
    pub actor: String,
    pub label: String,
    pub created_at: i64,
    pub last_seen: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// Refusals kept per device: the newest ones, each with its changes while
/// the device's kept changes stay under the byte budget. A phone that
/// retries a refused change in a loop (or an attacker) cannot fill the disk.
pub const QUARANTINE_ENTRIES_PER_DEVICE: usize = 200;
pub const QUARANTINE_BYTES_PER_DEVICE: usize = 4 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct QuarantineEntry {
    pub id: i64,
    pub at: i64,
    pub device: String,
    pub account: String,
    pub doc_id: String,
    pub rule: String,
    pub message: String,
    /// The refused changes as received (an Automerge change chunk).
    #[serde(skip)]
    pub changes: Vec<u8>,
    pub bytes: usize,
}

/// A change to an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AccountUpdate {
    pub disabled: Option<bool>,
    pub unit: Option<String>,
    pub role: Option<Role>,
    pub display_name: Option<String>,
    pub secret_hash: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{0} is already taken")]
    Duplicate(String),
    /// The update would disable or demote the last enabled admin.
    #[error("the last enabled admin cannot be disabled or lose the admin role")]
    LastAdmin,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for DirectoryError {
    fn from(e: sqlx::Error) -> Self {
        DirectoryError::Store(StoreError::Database(e))
    }
}

#[async_trait]
pub trait Directory: Send + Sync + 'static {
    async fn insert_account(&self, account: &AccountRow) -> Result<(), DirectoryError>;
    /// By username or phone number.
    async fn account_by_login(&self, login: &str) -> Result<Option<AccountRow>, DirectoryError>;
    async fn account(&self, id: &str) -> Result<Option<AccountRow>, DirectoryError>;
    async fn accounts(&self) -> Result<Vec<AccountRow>, DirectoryError>;
    /// False when there is no such account; [`DirectoryError::LastAdmin`]
    /// (and no change) when it would leave no enabled admin account.
    async fn update_account(&self, id: &str, update: &AccountUpdate) -> Result<bool, DirectoryError>;

    async fn insert_device(&self, device: &DeviceRow, token_hash: &[u8]) -> Result<(), DirectoryError>;
    async fn device_by_token(&self, token_hash: &[u8]) -> Result<Option<(DeviceRow, AccountRow)>, DirectoryError>;
    async fn devices(&self, account: Option<&str>) -> Result<Vec<DeviceRow>, DirectoryError>;
    /// False when there is no such device or it was already revoked.
    async fn revoke_device(&self, id: &str, at: i64) -> Result<bool, DirectoryError>;

    async fn org(&self) -> Result<(Vec<Unit>, Vec<Succession>), DirectoryError>;
    /// How many times the tree was replaced: a process holding the tree in
    /// memory reloads it when this moved.
    async fn org_generation(&self) -> Result<i64, DirectoryError>;
    /// Replaces the whole tree (it was validated as a whole) and counts one generation.
    async fn replace_org(&self, units: &[Unit], successions: &[Succession]) -> Result<(), DirectoryError>;

    async fn model_units(&self) -> Result<HashMap<ModelId, String>, DirectoryError>;
    /// The units of these models, as stored now; unknown models are left out.
    async fn units_of(&self, models: &[ModelId]) -> Result<HashMap<ModelId, String>, DirectoryError>;

    async fn quarantine(&self, entry: &QuarantineEntry) -> Result<(), DirectoryError>;
    async fn quarantined(&self) -> Result<Vec<QuarantineEntry>, DirectoryError>;
    /// How many refusals the quarantine holds, over every process (for metrics).
    async fn quarantine_count(&self) -> Result<i64, DirectoryError>;
}
