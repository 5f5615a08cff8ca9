//! The phone's store of photo bytes, in IndexedDB (localStorage holds
//! strings of a few megabytes in all; a record's document holds only the
//! photo's hash). Three object stores, each keyed by the photo's SHA-256:
//!
//! * `full`: the shrunk photo as uploaded (or as downloaded when opened);
//! * `thumb`: its thumbnail, made on the phone or fetched from the server;
//! * `sent`: present once the server said it stores the whole photo.
//!
//! Each call is one request in a transaction of its own, so nothing here
//! depends on a transaction outliving an `.await`. When storage runs short,
//! [`free_space`] drops the full bytes of photos the server confirmed; the
//! thumbnails stay, and a full photo is fetched again when opened.

use std::cell::RefCell;

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbObjectStore, IdbRequest, IdbTransactionMode};

const DB_NAME: &str = "kheo-photos";
const DB_VERSION: u32 = 1;
pub const FULL: &str = "full";
pub const THUMB: &str = "thumb";
const SENT: &str = "sent";
/// Above this share of the quota the phone frees confirmed photos.
const FULL_SHARE: f64 = 0.8;

#[derive(Debug, Clone, thiserror::Error)]
pub enum PhotoStoreError {
    #[error("storage is full")]
    Full,
    #[error("IndexedDB: {0}")]
    Other(String),
}

thread_local! {
    static DB: RefCell<Option<IdbDatabase>> = const { RefCell::new(None) };
}

fn error_of(value: &JsValue) -> PhotoStoreError {
    let name = js_sys::Reflect::get(value, &"name".into()).ok().and_then(|n| n.as_string()).unwrap_or_default();
    if name == "QuotaExceededError" {
        PhotoStoreError::Full
    } else {
        let message = js_sys::Reflect::get(value, &"message".into()).ok().and_then(|m| m.as_string());
        PhotoStoreError::Other(message.unwrap_or(name))
    }
}

/// The outcome of one request: its result, or its error.
async fn finish(request: &IdbRequest) -> Result<JsValue, PhotoStoreError> {
    let promise = Promise::new(&mut |resolve, reject| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
    });
    let outcome = JsFuture::from(promise).await;
    request.set_onsuccess(None);
    request.set_onerror(None);
    match outcome {
        Ok(_) => request.result().map_err(|e| error_of(&e)),
        Err(_) => Err(request
            .error()
            .ok()
            .flatten()
            .map(|e| error_of(&e))
            .unwrap_or_else(|| PhotoStoreError::Other("request failed".into()))),
    }
}

async fn db() -> Result<IdbDatabase, PhotoStoreError> {
    if let Some(db) = DB.with(|d| d.borrow().clone()) {
        return Ok(db);
    }
    let factory = web_sys::window()
        .and_then(|w| w.indexed_db().ok().flatten())
        .ok_or_else(|| PhotoStoreError::Other("IndexedDB is not available".into()))?;
    let open = factory.open_with_u32(DB_NAME, DB_VERSION).map_err(|e| error_of(&e))?;
    let upgrade = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
        let Some(db) = e
            .target()
            .and_then(|t| t.dyn_into::<IdbRequest>().ok())
            .and_then(|r| r.result().ok())
            .and_then(|r| r.dyn_into::<IdbDatabase>().ok())
        else {
            return;
        };
        for name in [FULL, THUMB, SENT] {
            if !db.object_store_names().contains(name) {
                let _ = db.create_object_store(name);
            }
        }
    });
    open.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
    let result = finish(&open).await;
    open.set_onupgradeneeded(None);
    let db: IdbDatabase = result?.dyn_into().map_err(|_| PhotoStoreError::Other("not a database".into()))?;
    DB.with(|d| *d.borrow_mut() = Some(db.clone()));
    Ok(db)
}

async fn store(name: &str, mode: IdbTransactionMode) -> Result<IdbObjectStore, PhotoStoreError> {
    let tx = db().await?.transaction_with_str_and_mode(name, mode).map_err(|e| error_of(&e))?;
    tx.object_store(name).map_err(|e| error_of(&e))
}

/// Keeps `bytes` under `sha` in `which` ([`FULL`] or [`THUMB`]). A full
/// storage first frees what the server holds, then tries once more.
pub async fn put(which: &str, sha: &str, bytes: &[u8]) -> Result<(), PhotoStoreError> {
    let write = || async {
        let request =
            store(which, IdbTransactionMode::Readwrite).await?.put_with_key(&Uint8Array::from(bytes), &sha.into());
        finish(&request.map_err(|e| error_of(&e))?).await.map(|_| ())
    };
    match write().await {
        Err(PhotoStoreError::Full) => {
            drop_confirmed().await;
            write().await
        }
        other => other,
    }
}

pub async fn get(which: &str, sha: &str) -> Option<Vec<u8>> {
    let request = store(which, IdbTransactionMode::Readonly).await.ok()?.get(&sha.into()).ok()?;
    let value = finish(&request).await.ok()?;
    value.dyn_into::<Uint8Array>().ok().map(|a| a.to_vec())
}

/// Whether `which` holds `sha`, without reading its bytes.
pub async fn has(which: &str, sha: &str) -> bool {
    let Ok(store) = store(which, IdbTransactionMode::Readonly).await else { return false };
    let Ok(request) = store.count_with_key(&sha.into()) else { return false };
    finish(&request).await.ok().and_then(|n| n.as_f64()).is_some_and(|n| n > 0.0)
}

/// The server said it stores the whole photo.
pub async fn mark_sent(sha: &str) -> Result<(), PhotoStoreError> {
    let request = store(SENT, IdbTransactionMode::Readwrite).await?.put_with_key(&JsValue::TRUE, &sha.into());
    finish(&request.map_err(|e| error_of(&e))?).await.map(|_| ())
}

pub async fn is_sent(sha: &str) -> bool {
    has(SENT, sha).await
}

/// Drops the full bytes of every photo the server confirmed. Thumbnails stay.
async fn drop_confirmed() {
    let Ok(sent) = store(SENT, IdbTransactionMode::Readonly).await else { return };
    let Ok(request) = sent.get_all_keys() else { return };
    let Ok(keys) = finish(&request).await else { return };
    let Ok(full) = store(FULL, IdbTransactionMode::Readwrite).await else { return };
    for key in js_sys::Array::from(&keys).iter() {
        if let Ok(request) = full.delete(&key) {
            let _ = finish(&request).await;
        }
    }
}

/// When the browser says this origin uses more than 80% of its quota,
/// frees the full bytes of the photos the server holds.
pub async fn free_space() {
    let Some(storage) = web_sys::window().map(|w| w.navigator().storage()) else { return };
    let Ok(promise) = storage.estimate() else { return };
    let Ok(estimate) = JsFuture::from(promise).await else { return };
    let number = |key: &str| js_sys::Reflect::get(&estimate, &key.into()).ok().and_then(|v| v.as_f64());
    if let (Some(usage), Some(quota)) = (number("usage"), number("quota"))
        && quota > 0.0
        && usage > FULL_SHARE * quota
    {
        drop_confirmed().await;
    }
}

/// Drops the bytes and thumbnails of photos `wanted` says no record or
/// draft names any more: photos taken in a form that was thrown away, or
/// removed before they were sent.
pub async fn sweep(wanted: impl Fn(&str) -> bool) {
    for name in [FULL, THUMB] {
        let Ok(s) = store(name, IdbTransactionMode::Readwrite).await else { continue };
        let Ok(request) = s.get_all_keys() else { continue };
        let Ok(keys) = finish(&request).await else { continue };
        for key in js_sys::Array::from(&keys).iter() {
            if key.as_string().is_some_and(|k| !wanted(&k))
                && let Ok(request) = s.delete(&key)
            {
                let _ = finish(&request).await;
            }
        }
    }
}

/// Removes everything (logout), like the documents in localStorage.
pub async fn clear() {
    for name in [FULL, THUMB, SENT] {
        if let Ok(s) = store(name, IdbTransactionMode::Readwrite).await
            && let Ok(request) = s.clear()
        {
            let _ = finish(&request).await;
        }
    }
}
