//! Accounts, logins and devices: the operations behind the login and admin
//! endpoints and the `admin` command, in one place so both stay the same.

use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use automerge::ActorId;
use kheo_shared::codes::Role;
use kheo_shared::protocol::{AccountInfo, LoginRequest, LoginResponse};
use kheo_shared::scalars::Timestamp;
use serde::{Deserialize, Serialize};

use crate::auth::throttle::{self, LoginThrottle, ThrottleError};
use crate::auth::{Principal, secret, token};
use crate::error::AppError;
use crate::org::OrgTree;
use crate::store::LoginWindows;
use crate::store::directory::{AccountRow, AccountUpdate, DeviceRow, Directory, DirectoryError};

/// Failed logins allowed per account from one address, in one window.
pub const ACCOUNT_FAILURES: u32 = 5;
/// Failed logins allowed from one address, over all accounts, in one window.
pub const ADDRESS_FAILURES: u32 = 30;
/// Failed logins allowed per account over all addresses, in one window: ten
/// times what one address may try, so only many addresses together reach it.
pub const ACCOUNT_FAILURES_ALL_ADDRESSES: u32 = 10 * ACCOUNT_FAILURES;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Longest a login waits for a free password check before it is answered `503 busy`.
pub const HASH_QUEUE_WAIT: Duration = Duration::from_secs(1);

pub struct Accounts {
    pub directory: Arc<dyn Directory>,
    org: RwLock<Arc<OrgTree>>,
    /// The stored generation `org` was read at (see [`Accounts::authenticate`]).
    org_generation: AtomicI64,
    throttle: LoginThrottle,
    /// Password checks running or queued at once: each argon2id check takes
    /// about 19 MiB and a core for tens of milliseconds.
    hashing: Arc<tokio::sync::Semaphore>,
    /// Where every hash is computed (see [`secret::HashThreads`]).
    hash_threads: secret::HashThreads,
}

/// Password checks allowed at once: half the cores (at least one), so that
/// a flood of logins leaves the other half to sync.
pub fn hash_concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().div_ceil(2))
}

/// What an admin gives to create an account (API body and CSV row alike).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct NewAccount {
    /// Trimmed and lowercased, then 3 to 64 of `a-z 0-9 . _ - +`.
    #[schema(min_length = 3, max_length = 64)]
    pub username: String,
    /// 8 to 16 of `0-9 +`; absent, `null` or empty for none.
    #[serde(default)]
    #[schema(max_length = 16)]
    pub phone: Option<String>,
    /// 1 to 200 characters, not blank; trimmed.
    #[schema(min_length = 1, max_length = 200)]
    pub display_name: String,
    pub role: Role,
    /// A unit code of the organisation tree.
    pub unit: String,
    /// The password or PIN, 6 characters to 256 bytes; stored as an argon2id hash.
    #[schema(min_length = 6, max_length = 256)]
    pub secret: String,
}

impl From<DirectoryError> for AppError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::Duplicate(what) => AppError::Conflict(format!("{what} is already taken")),
            DirectoryError::LastAdmin => AppError::LastAdmin(
                "this is the last enabled admin account: make another account admin before disabling it or \
                 changing its role"
                    .into(),
            ),
            DirectoryError::Store(e) => AppError::Store(e),
        }
    }
}

impl From<ThrottleError> for AppError {
    fn from(e: ThrottleError) -> Self {
        match e {
            ThrottleError::Locked(wait) => AppError::TooManyAttempts(whole_seconds(wait)),
            // An attempt that cannot be counted is not checked.
            ThrottleError::Unavailable(e) => AppError::LoginsUnavailable(e),
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

/// A person as the app shows them: the login name records carry, and the
/// name to show for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Person {
    pub username: String,
    pub display_name: String,
}

/// Whether `reader` sees the name of an account of `unit`: one of the
/// reader's unit or below it (whose records the reader sees), or above it
/// (the staff who review and consolidate it); province staff see everyone.
fn sees(org: &OrgTree, reader: &Principal, unit: &str) -> bool {
    reader.is_at_least(Role::ProvinceStaff) || org.is_within(unit, &reader.unit) || org.is_within(&reader.unit, unit)
}

/// The username and (if any) phone an account logs in with.
fn logins_of(a: &NewAccount) -> Vec<String> {
    let phone = a.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned);
    std::iter::once(a.username.trim().to_lowercase()).chain(phone).collect()
}

/// Seconds to wait, rounded up, at least one (for `Retry-After`).
fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

fn valid_login(s: &str) -> bool {
    (3..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
}

impl Accounts {
    /// `logins`: the failed-login windows every process on the store shares.
    pub fn new(directory: Arc<dyn Directory>, logins: Arc<dyn LoginWindows>, org: OrgTree) -> Self {
        Accounts {
            directory,
            org: RwLock::new(Arc::new(org)),
            // Unknown until the first request compares it: that one reloads.
            org_generation: AtomicI64::new(-1),
            throttle: LoginThrottle::new(
                logins,
                throttle::Limits {
                    per_pair: ACCOUNT_FAILURES,
                    per_address: ADDRESS_FAILURES,
                    per_account: ACCOUNT_FAILURES_ALL_ADDRESSES,
                    window: FAILURE_WINDOW,
                },
            ),
            hashing: Arc::new(tokio::sync::Semaphore::new(hash_concurrency())),
            hash_threads: secret::HashThreads::new(hash_concurrency()),
        }
    }

    pub fn org(&self) -> Arc<OrgTree> {
        self.org.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The display names of the accounts whose work `reader` sees, by
    /// username; disabled accounts too, since their records remain.
    pub async fn people(&self, reader: &Principal) -> Result<Vec<Person>, AppError> {
        let org = self.org();
        let mut out: Vec<Person> = self
            .directory
            .accounts()
            .await?
            .into_iter()
            .filter(|a| sees(&org, reader, &a.unit))
            .map(|a| Person { username: a.username, display_name: a.display_name })
            .collect();
        out.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(out)
    }

    /// Every account's display name by login name, for exports (which are
    /// scoped by their records, not by these names).
    pub async fn display_names(&self) -> Result<std::collections::HashMap<String, String>, AppError> {
        Ok(self.directory.accounts().await?.into_iter().map(|a| (a.username, a.display_name)).collect())
    }

    /// The tree as stored: reloaded when another process (or an admin
    /// command) replaced it since this one read it.
    async fn refresh_org(&self) -> Result<(), AppError> {
        let stored = self.directory.org_generation().await?;
        if stored == self.org_generation.load(Ordering::Acquire) {
            return Ok(());
        }
        let (units, successions) = self.directory.org().await?;
        let tree = OrgTree::new(units, successions)
            .map_err(|e| AppError::Internal(format!("the stored organisation tree is invalid: {e}")))?;
        *self.org.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(tree);
        self.org_generation.store(stored, Ordering::Release);
        Ok(())
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
        if !secret::plausible(&new.secret) {
            let error = if new.secret.len() > secret::MAX_SECRET_BYTES {
                secret::SecretError::TooLong
            } else {
                secret::SecretError::TooShort
            };
            return Err(AppError::BadRequest(error.to_string()));
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
        let secret_hash = self
            .hash_threads
            .run(move || secret::hash(&secret))
            .await
            .ok_or_else(|| AppError::Internal("hashing the secret failed".into()))?
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
    ///
    /// `address` is the client's address (behind a trusted proxy, the one it
    /// forwarded); without one, every such login shares one address's limits.
    pub async fn login(&self, request: LoginRequest, address: Option<IpAddr>) -> Result<LoginResponse, AppError> {
        let login = request.login.trim().to_lowercase();
        // What cannot be any account's login or secret is refused before it
        // is looked up, hashed or remembered: the answer reveals nothing, as
        // no account could match.
        if !valid_login(&login) || !secret::plausible(&request.secret) {
            return Err(AppError::InvalidCredentials);
        }
        let account = self.directory.account_by_login(&login).await?;
        // Counted per account, whichever of its logins was typed.
        let account_key = account.as_ref().map_or_else(|| login.clone(), |a| a.id.clone());
        let address = address.unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED));
        let mut attempt = self.throttle.reserve(&account_key, address, Timestamp::now().millis()).await?;
        let permit = match tokio::time::timeout(HASH_QUEUE_WAIT, self.hashing.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            _ => {
                self.throttle.refund(attempt).await?;
                return Err(AppError::Busy(1));
            }
        };
        attempt.checked();
        let stored = account.as_ref().map(|a| a.secret_hash.clone());
        let secret = request.secret;
        // The permit goes with the check: a client that hangs up does not free
        // its slot before the hash is done.
        let matches = self
            .hash_threads
            .run(move || {
                let _permit = permit;
                match &stored {
                    Some(stored) => secret::verify(&secret, stored),
                    None => secret::verify(&secret, secret::decoy()),
                }
            })
            .await
            .ok_or_else(|| AppError::Internal("checking the secret failed".into()))?;
        // A wrong secret or an unknown name leaves the attempt counted.
        let Some(account) = account.filter(|_| matches) else {
            return Err(AppError::InvalidCredentials);
        };
        // A right secret whose attempt cannot be settled is refused too:
        // it stays counted, as a failure would.
        self.throttle.succeeded(attempt).await?;
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
        // Scope is decided on the tree as stored, whichever process imported it.
        self.refresh_org().await?;
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
