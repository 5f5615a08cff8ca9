//! The device's persistent state in browser storage (localStorage, through
//! gloo-storage): the login session, every Automerge document with its own
//! sync state, the server's refusals, when the last sync succeeded, the
//! drafts of forms and the settings; for staff devices, the releases the
//! server has not confirmed and when each document was last opened
//! (`held`). Photos' bytes are not here but in IndexedDB (`photo_store`);
//! a record and a draft hold only their hashes.
//!
//! Each document is one storage entry holding both the saved document and
//! its sync state. One `setItem` replaces an entry whole or not at all, so a
//! tab killed mid-save leaves either the old document or the new one, never
//! a mix; and since a local edit touches exactly one document, every save
//! the user makes is atomic. When the browser refuses a write (storage
//! full), the in-memory copy is put back to what storage holds, so what the
//! screen shows never runs ahead of what survives a reload.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use gloo_storage::{LocalStorage, Storage, errors::StorageError};
use kheo_shared::client::Replica;
use kheo_shared::ids::DocId;
use kheo_shared::protocol::AccountInfo;
use serde::{Deserialize, Serialize};

const SESSION_KEY: &str = "kheo.session";
const REJECTIONS_KEY: &str = "kheo.rejections";
const LAST_SYNC_KEY: &str = "kheo.last_sync";
const LOCALE_KEY: &str = "kheo.locale";
/// The cursor the phone is caught up to (`Replica::finish_session`).
const QUIET_KEY: &str = "kheo.quiet";
const PHOTOS_WIFI_KEY: &str = "kheo.photos_wifi_only";
/// Released documents the server may not have heard of yet (`held`).
const RELEASING_KEY: &str = "kheo.releasing";
/// When each document the device's rule does not keep was last opened.
const OPENED_KEY: &str = "kheo.opened";
const DOC_PREFIX: &str = "kheo.doc.";
/// Entries that failed to load are moved here rather than deleted: a
/// damaged document may still hold something a person can recover.
const QUARANTINE_PREFIX: &str = "kheo.damaged.";

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("storage is full")]
    Full,
    #[error("browser storage is not available")]
    Unavailable,
    #[error("{0}")]
    Other(String),
}

impl From<StorageError> for StoreError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::JsError(js) if js.name == "QuotaExceededError" || js.name == "NS_ERROR_DOM_QUOTA_REACHED" => {
                StoreError::Full
            }
            other => StoreError::Other(other.to_string()),
        }
    }
}

/// What a login leaves on the device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub token: String,
    pub device_id: String,
    /// Hex actor id the server bound to this device.
    pub actor: String,
    pub account: AccountInfo,
}

#[derive(Serialize, Deserialize)]
struct StoredDoc {
    doc: String,
    sync: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredRejection {
    error: String,
    rule: Option<String>,
    message: String,
    heads: Vec<String>,
}

/// Whether localStorage can be used at all (private modes may refuse it).
pub fn available() -> bool {
    web_sys::window().and_then(|w| w.local_storage().ok().flatten()).is_some()
}

pub fn load_session() -> Option<Session> {
    LocalStorage::get(SESSION_KEY).ok()
}

pub fn save_session(session: &Session) -> Result<(), StoreError> {
    Ok(LocalStorage::set(SESSION_KEY, session)?)
}

pub fn last_sync() -> Option<i64> {
    LocalStorage::get(LAST_SYNC_KEY).ok()
}

pub fn save_last_sync(millis: i64) -> Result<(), StoreError> {
    Ok(LocalStorage::set(LAST_SYNC_KEY, millis)?)
}

pub fn locale() -> Option<String> {
    LocalStorage::get(LOCALE_KEY).ok()
}

pub fn save_locale(code: &str) -> Result<(), StoreError> {
    Ok(LocalStorage::set(LOCALE_KEY, code)?)
}

/// "Send photos on Wi-Fi only" (off unless chosen).
pub fn photos_wifi_only() -> bool {
    LocalStorage::get(PHOTOS_WIFI_KEY).unwrap_or(false)
}

pub fn save_photos_wifi_only(on: bool) -> Result<(), StoreError> {
    Ok(LocalStorage::set(PHOTOS_WIFI_KEY, on)?)
}

const DRAFT_PREFIX: &str = "kheo.draft.";

/// A form's unsaved content, kept on the phone as it is typed (a reload,
/// Back or a killed tab loses nothing). Best effort: a full storage keeps
/// the form as it is on screen, which is all a draft is for.
pub fn save_draft<T: serde::Serialize>(key: &str, draft: &T) {
    let _ = LocalStorage::set(format!("{DRAFT_PREFIX}{key}"), draft);
}

pub fn load_draft<T: serde::de::DeserializeOwned>(key: &str) -> Option<T> {
    LocalStorage::get(format!("{DRAFT_PREFIX}{key}")).ok()
}

pub fn clear_draft(key: &str) {
    LocalStorage::delete(format!("{DRAFT_PREFIX}{key}"));
}

/// The text of every kept draft, to search for the photos they name.
pub fn drafts_text() -> String {
    keys()
        .into_iter()
        .filter(|k| k.starts_with(DRAFT_PREFIX))
        .filter_map(|k| LocalStorage::raw().get_item(&k).ok().flatten())
        .collect()
}

/// Removes everything this app stored (logout), the language choice aside.
pub fn clear_device() {
    for key in keys() {
        if key.starts_with("kheo.") && key != LOCALE_KEY {
            LocalStorage::delete(key);
        }
    }
}

fn keys() -> Vec<String> {
    let storage = LocalStorage::raw();
    let n = storage.length().unwrap_or(0);
    (0..n).filter_map(|i| storage.key(i).ok().flatten()).collect()
}

/// Loads every stored document into a replica. Entries that cannot be read
/// are set aside and named in the result, never silently dropped.
pub fn load_replica(replica: &mut Replica) -> Vec<String> {
    let mut damaged = Vec::new();
    for key in keys() {
        let Some(id_text) = key.strip_prefix(DOC_PREFIX) else { continue };
        let loaded = DocId::parse(id_text).map_err(|e| e.to_string()).and_then(|id| {
            let stored: StoredDoc = LocalStorage::get(&key).map_err(|e| e.to_string())?;
            let doc = B64.decode(stored.doc).map_err(|e| e.to_string())?;
            let sync = B64.decode(stored.sync).map_err(|e| e.to_string())?;
            // Logs load when first needed or in the background: the phone
            // opens on its models without loading every record first.
            match id {
                DocId::Log { .. } => replica.import_later(id, doc, &sync),
                DocId::Model(_) => replica.import(id, &doc, &sync),
            }
            .map_err(|e| e.to_string())
        });
        if let Err(reason) = loaded {
            set_aside(id_text, &reason);
            damaged.push(id_text.to_owned());
        }
    }
    restore_rejections(replica);
    for id in releasing() {
        replica.resume_release(id);
    }
    if damaged.is_empty() {
        replica.set_quiet_cursor(LocalStorage::get(QUIET_KEY).ok());
    } else {
        // A document set aside may have held what the cursor vouches for:
        // the next session lists every document again.
        forget_quiet_cursor(replica);
    }
    damaged
}

/// Moves a stored document that does not load out of the way, kept for
/// whoever can recover it.
fn set_aside(id_text: &str, reason: &str) {
    let key = format!("{DOC_PREFIX}{id_text}");
    web_sys::console::error_1(&format!("set aside {key}: {reason}").into());
    if let Ok(raw) = LocalStorage::raw().get_item(&key)
        && let Some(raw) = raw
        && LocalStorage::raw().set_item(&format!("{QUARANTINE_PREFIX}{id_text}"), &raw).is_ok()
    {
        LocalStorage::delete(&key);
    }
}

/// Sets aside the documents that failed to load late (see
/// `Replica::import_later`); their ids, for the notice. The cursor goes
/// too: the server must send them again.
pub fn set_aside_damaged(replica: &mut Replica) -> Vec<String> {
    let damaged: Vec<String> = replica.take_damaged().iter().map(DocId::to_string).collect();
    for id in &damaged {
        set_aside(id, "does not load");
    }
    if !damaged.is_empty() {
        forget_quiet_cursor(replica);
    }
    damaged
}

/// Keeps the cursor of a session that ended with every answer saved.
pub fn save_quiet_cursor(replica: &Replica) -> Result<(), StoreError> {
    match replica.quiet_cursor() {
        Some(cursor) => Ok(LocalStorage::set(QUIET_KEY, cursor)?),
        None => {
            LocalStorage::delete(QUIET_KEY);
            Ok(())
        }
    }
}

/// Drops the cursor, in storage and in the replica: what arrived was not
/// all saved, so the server must be asked about every document again.
pub fn forget_quiet_cursor(replica: &mut Replica) {
    replica.set_quiet_cursor(None);
    LocalStorage::delete(QUIET_KEY);
}

/// Writes one document and its sync state as one storage entry.
pub fn save_doc(replica: &mut Replica, id: &DocId) -> Result<(), StoreError> {
    let Some((doc, sync)) = replica.export(id) else { return Ok(()) };
    // What failed to load is never written over.
    set_aside_damaged(replica);
    let entry = StoredDoc { doc: B64.encode(doc), sync: B64.encode(sync) };
    Ok(LocalStorage::set(format!("{DOC_PREFIX}{id}"), entry)?)
}

/// Puts a document in memory back to what storage holds (or drops it if
/// storage holds none): the undo of an edit that could not be saved.
pub fn revert_doc(replica: &mut Replica, id: &DocId) {
    let stored: Option<StoredDoc> = LocalStorage::get(format!("{DOC_PREFIX}{id}")).ok();
    let restored = stored.and_then(|s| Some((B64.decode(s.doc).ok()?, B64.decode(s.sync).ok()?)));
    match restored {
        Some((doc, sync)) if replica.import(*id, &doc, &sync).is_ok() => {}
        _ => replica.forget(id),
    }
}

/// Saves the refusals the replica holds, with the heads they apply to.
pub fn save_rejections(replica: &mut Replica) -> Result<(), StoreError> {
    let stored: BTreeMap<String, StoredRejection> = replica
        .rejections()
        .into_iter()
        .map(|(id, r)| {
            let heads = r.heads.iter().map(|h| h.to_string()).collect();
            (id.to_string(), StoredRejection { error: r.error, rule: r.rule, message: r.message, heads })
        })
        .collect();
    Ok(LocalStorage::set(REJECTIONS_KEY, stored)?)
}

/// A refusal is restored only while the document is as it was refused; an
/// edit since then is a fix waiting to be sent.
fn restore_rejections(replica: &mut Replica) {
    let stored: BTreeMap<String, StoredRejection> = LocalStorage::get(REJECTIONS_KEY).unwrap_or_default();
    for (id, r) in stored {
        let Ok(id) = DocId::parse(&id) else { continue };
        let heads: Vec<String> = replica.heads(&id).iter().map(|h| h.to_string()).collect();
        if heads == r.heads {
            replica.reject(id, &r.error, r.rule.as_deref(), &r.message);
        }
    }
}

/// Characters each stored document takes (localStorage counts UTF-16
/// characters against its quota of about 5 million).
pub fn doc_sizes() -> Vec<(DocId, usize)> {
    let storage = LocalStorage::raw();
    keys()
        .into_iter()
        .filter_map(|key| {
            let id = DocId::parse(key.strip_prefix(DOC_PREFIX)?).ok()?;
            let value = storage.get_item(&key).ok().flatten()?;
            Some((id, key.len() + value.len()))
        })
        .collect()
}

/// Removes a document's entry (after the replica released it).
pub fn delete_doc(id: &DocId) {
    LocalStorage::delete(format!("{DOC_PREFIX}{id}"));
}

fn releasing() -> Vec<DocId> {
    let stored: Vec<String> = LocalStorage::get(RELEASING_KEY).unwrap_or_default();
    stored.iter().filter_map(|id| DocId::parse(id).ok()).collect()
}

/// Records the releases the server has not confirmed, so that a page
/// closed before the next sync still tells the server.
pub fn save_releasing(replica: &Replica) -> Result<(), StoreError> {
    let ids: Vec<String> = replica.pending_releases().map(DocId::to_string).collect();
    if ids.is_empty() {
        LocalStorage::delete(RELEASING_KEY);
        return Ok(());
    }
    Ok(LocalStorage::set(RELEASING_KEY, ids)?)
}

pub fn opened() -> BTreeMap<DocId, i64> {
    let stored: BTreeMap<String, i64> = LocalStorage::get(OPENED_KEY).unwrap_or_default();
    stored.into_iter().filter_map(|(id, at)| Some((DocId::parse(&id).ok()?, at))).collect()
}

pub fn save_opened(opened: &BTreeMap<DocId, i64>) -> Result<(), StoreError> {
    let stored: BTreeMap<String, i64> = opened.iter().map(|(id, at)| (id.to_string(), *at)).collect();
    Ok(LocalStorage::set(OPENED_KEY, stored)?)
}
