//! Accounts, logins and devices: the operations behind the login and admin
//! endpoints and the `admin` command, in one place so both stay the same.

use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use automerge::ActorId;
use kheo_shared::codes::Role;
use kheo_shared::protocol::{AccountInfo, LoginRequest, LoginResponse};
use kheo_shared::scalars::Timestamp;
use serde::Deserialize;

use crate::auth::throttle::Throttle;
use crate::auth::{Principal, secret, token};
use crate::error::AppError;
use crate::org::OrgTree;
use crate::store::directory::{AccountRow, AccountUpdate, DeviceRow, Directory, DirectoryError};

/// Failed logins allowed per account, and per address, in one window.
pub const ACCOUNT_FAILURES: u32 = 5;
pub const ADDRESS_FAILURES: u32 = 30;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

pub struct Accounts {
    pub directory: Arc<dyn Directory>,
    org: RwLock<Arc<OrgTree>>,
    by_account: Throttle,
    by_address: Throttle,
}

/// What an admin gives to create an account (API body and CSV row alike).
#[derive(Debug, Clone, Deserialize)]
pub struct NewAccount {
    pub username: String,
    #[serde(default)]
    pub phone: Option<String>,
    pub display_name: String,
    pub role: Role,
    pub unit: String,
    pub secret: String,
}

impl From<DirectoryError> for AppError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::Duplicate(what) => AppError::Conflict(format!("{what} is already taken")),
            DirectoryError::Store(e) => AppError::Store(e),
        }
    }
}

pub fn info(a: &AccountRow) -> AccountInfo {
    AccountInfo {
        id: a.id.clone(),
        username: a.username.clone(),
        display_name: a.display_name.clone(),
        role: a.role,
        unit: a.unit.clone(),
        disabled: a.disabled,
    }
}

/// The username and (if any) phone an account logs in with.
fn logins_of(a: &NewAccount) -> Vec<String> {
    let phone = a.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned);
    std::iter::once(a.username.trim().to_lowercase()).chain(phone).collect()
}

fn valid_login(s: &str) -> bool {
    (3..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
}

impl Accounts {
    pub fn new(directory: Arc<dyn Directory>, org: OrgTree) -> Self {
        Accounts {
            directory,
            org: RwLock::new(Arc::new(org)),
            by_account: Throttle::new(ACCOUNT_FAILURES, FAILURE_WINDOW),
            by_address: Throttle::new(ADDRESS_FAILURES, FAILURE_WINDOW),
        }
    }

    pub fn org(&self) -> Arc<OrgTree> {
        self.org.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the organisation tree, in the store and for every later request.
    pub async fn replace_org(&self, tree: OrgTree) -> Result<(), AppError> {
        let units: Vec<_> = tree.units().cloned().collect();
        let successions: Vec<_> = tree.successions().cloned().collect();
        for a in self.directory.accounts().await? {
            if tree.get(&a.unit).is_none() {
                return Err(AppError::BadRequest(format!(
                    "account {} is bound to {}, missing from the new tree",
                    a.username, a.unit
                )));
            }
        }
        self.directory.replace_org(&units, &successions).await?;
        *self.org.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(tree);
        Ok(())
    }

    /// Every check an account must pass before it is created, so that a
    /// CSV import can check all rows before creating any.
    async fn check_new(&self, new: &NewAccount) -> Result<(), AppError> {
        let username = new.username.trim().to_lowercase();
        if !valid_login(&username) {
            return Err(AppError::BadRequest("a username is 3 to 64 of a-z, 0-9, '.', '_', '-', '+'".into()));
        }
        let phone = new.phone.as_deref().unwrap_or("").trim();
        let phone_ok = (8..=16).contains(&phone.len()) && phone.bytes().all(|b| b.is_ascii_digit() || b == b'+');
        if !phone.is_empty() && !phone_ok {
            return Err(AppError::BadRequest(format!("{phone:?} is not a phone number")));
        }
        if new.display_name.trim().is_empty() || new.display_name.chars().count() > 200 {
            return Err(AppError::BadRequest("a display name is 1 to 200 characters".into()));
        }
        if self.org().get(&new.unit).is_none() {
            return Err(AppError::BadRequest(format!("unit {} is not in the organisation tree", new.unit)));
        }
        if new.secret.chars().count() < secret::MIN_SECRET_CHARS {
            return Err(AppError::BadRequest(secret::SecretError::TooShort.to_string()));
        }
        // A login is a username or a phone number: neither may name two accounts.
        for login in logins_of(new) {
            if self.directory.account_by_login(&login).await?.is_some() {
                return Err(AppError::Conflict(format!("{login} is already taken")));
            }
        }
        Ok(())
    }

    pub async fn create_account(&self, new: NewAccount) -> Result<AccountInfo, AppError> {
        self.check_new(&new).await?;
        let username = new.username.trim().to_lowercase();
        let secret = new.secret.clone();
        let secret_hash = tokio::task::spawn_blocking(move || secret::hash(&secret))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
            .map_err(|e| AppError::BadRequest(e.to_string()))?;
        let row = AccountRow {
            id: uuid::Uuid::new_v4().to_string(),
            username,
            phone: new.phone.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()),
            display_name: new.display_name.trim().to_owned(),
            role: new.role,
            unit: new.unit,
            secret_hash,
            disabled: false,
            created_at: Timestamp::now().millis(),
        };
        self.directory.insert_account(&row).await?;
        Ok(info(&row))
    }

    pub async fn update_account(&self, id: &str, mut update: AccountUpdate) -> Result<AccountInfo, AppError> {
        if let Some(unit) = &update.unit
            && self.org().get(unit).is_none()
        {
            return Err(AppError::BadRequest(format!("unit {unit} is not in the organisation tree")));
        }
        if let Some(name) = update.display_name.as_mut() {
            *name = name.trim().to_owned();
            if name.is_empty() || name.chars().count() > 200 {
                return Err(AppError::BadRequest("a display name is 1 to 200 characters".into()));
            }
        }
        if !self.directory.update_account(id, &update).await? {
            return Err(AppError::NotFound(format!("no account {id}")));
        }
        let account =
            self.directory.account(id).await?.ok_or_else(|| AppError::NotFound(format!("no account {id}")))?;
        Ok(info(&account))
    }

    /// Checks a login and registers a new device for it.
    pub async fn login(&self, request: LoginRequest, address: Option<IpAddr>) -> Result<LoginResponse, AppError> {
        let now = Instant::now();
        let login = request.login.trim().to_lowercase();
        let account = self.directory.account_by_login(&login).await?;
        // Counted per account, whichever of its logins was typed.
        let account_key = format!("account:{}", account.as_ref().map_or(login.as_str(), |a| a.id.as_str()));
        let address_key = address.map(|a| format!("address:{a}"));
        for key in std::iter::once(&account_key).chain(address_key.as_ref()) {
            let throttle = if key.starts_with("account:") { &self.by_account } else { &self.by_address };
            if let Some(wait) = throttle.check(key, now) {
                return Err(AppError::TooManyAttempts(wait.as_secs().max(1)));
            }
        }
        let stored = account.as_ref().map(|a| a.secret_hash.clone()).unwrap_or_else(|| secret::decoy().to_owned());
        let secret = request.secret;
        let matches = tokio::task::spawn_blocking(move || secret::verify(&secret, &stored))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let Some(account) = account.filter(|_| matches) else {
            self.by_account.fail(&account_key, now);
            if let Some(k) = &address_key {
                self.by_address.fail(k, now);
            }
            return Err(AppError::InvalidCredentials);
        };
        self.by_account.succeed(&account_key);
        if account.disabled {
            return Err(AppError::AccountDisabled);
        }
        let token = token::generate();
        let label: String = request.device_label.trim().chars().take(100).collect();
        let device = DeviceRow {
            id: uuid::Uuid::new_v4().to_string(),
            account: account.id.clone(),
            actor: ActorId::random().to_hex_string(),
            label: if label.is_empty() { "thiết bị".into() } else { label },
            created_at: Timestamp::now().millis(),
            last_seen: None,
            revoked_at: None,
        };
        self.directory.insert_device(&device, &token::hash(&token)).await?;
        tracing::info!(account = %account.username, device = %device.id, "device registered");
        Ok(LoginResponse { token, device_id: device.id, actor: device.actor, account: info(&account) })
    }

    /// The device and account behind a bearer token, if both are in good standing.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, AppError> {
        if !token::looks_valid(bearer) {
            return Err(AppError::Unauthenticated("unknown token".into()));
        }
        let (device, account) = self
            .directory
            .device_by_token(&token::hash(bearer))
            .await?
            .ok_or_else(|| AppError::Unauthenticated("unknown token".into()))?;
        if device.revoked_at.is_some() {
            return Err(AppError::TokenRevoked);
        }
        if account.disabled {
            return Err(AppError::AccountDisabled);
        }
        let actor = ActorId::try_from(device.actor.as_str())
            .map_err(|_| AppError::Internal(format!("device {} has an unreadable actor", device.id)))?;
        Ok(Principal {
            device_id: device.id,
            account_id: account.id,
            username: account.username,
            role: account.role,
            unit: account.unit,
            actor,
        })
    }

    /// Revokes a device: its owner may, from another device, and so may an admin.
    pub async fn revoke_device(&self, by: &Principal, device_id: &str) -> Result<(), AppError> {
        let devices = self.directory.devices(None).await?;
        let device = devices
            .iter()
            .find(|d| d.id == device_id)
            .ok_or_else(|| AppError::NotFound(format!("no device {device_id}")))?;
        if device.account != by.account_id && !by.is_at_least(Role::Admin) {
            return Err(AppError::Forbidden {
                rule: "own_devices_only",
                message: "only the owner or an admin revokes a device".into(),
                doc: None,
            });
        }
        self.directory.revoke_device(device_id, Timestamp::now().millis()).await?;
        tracing::info!(device = device_id, by = %by.username, "device revoked");
        Ok(())
    }
}

impl Accounts {
    /// Creates the accounts of a CSV file (header
    /// `username,phone,display_name,role,unit,secret`). Every row is checked
    /// before any account is created, so a bad file creates nothing.
    pub async fn import_csv(&self, csv: &[u8]) -> Result<Vec<AccountInfo>, AppError> {
        // Spreadsheets save CSV with a byte-order mark.
        let csv = csv.strip_prefix("\u{feff}".as_bytes()).unwrap_or(csv);
        let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(csv);
        let mut rows: Vec<NewAccount> = Vec::new();
        for (i, row) in reader.deserialize::<NewAccount>().enumerate() {
            let line = i + 2;
            let at_line = |e: AppError| match e {
                AppError::Conflict(m) => AppError::Conflict(format!("line {line}: {m}")),
                other => AppError::BadRequest(format!("line {line}: {other}")),
            };
            let row = row.map_err(|e| AppError::BadRequest(format!("line {line}: {e}")))?;
            self.check_new(&row).await.map_err(at_line)?;
            let mine = logins_of(&row);
            if rows.iter().any(|r| logins_of(r).iter().any(|l| mine.contains(l))) {
                return Err(AppError::Conflict(format!("line {line}: a username or phone appears twice in the file")));
            }
            rows.push(row);
        }
        let mut created = Vec::with_capacity(rows.len());
        for row in rows {
            created.push(self.create_account(row).await?);
        }
        Ok(created)
    }
}
