//! Who is who: the display names of the accounts whose records and reviews
//! the phone shows (records carry the login name of who logged them),
//! fetched from the server when online and kept in storage for offline use.
//! A name the phone has not learned yet shows as the login name.

use std::cell::RefCell;
use std::collections::HashMap;

use gloo_storage::{LocalStorage, Storage};
use serde::{Deserialize, Serialize};

const PEOPLE_KEY: &str = "kheo.people";
/// New volunteers join now and then; a quarter of an hour is soon enough.
const REFRESH_AFTER_MS: f64 = 900_000.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub username: String,
    pub display_name: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Stored {
    people: Vec<Person>,
    fetched_at: f64,
}

thread_local! {
    static PEOPLE: RefCell<Option<(HashMap<String, String>, f64)>> = const { RefCell::new(None) };
}

fn index(people: Vec<Person>) -> HashMap<String, String> {
    people.into_iter().map(|p| (p.username, p.display_name)).collect()
}

fn with<R>(f: impl FnOnce(&HashMap<String, String>, f64) -> R) -> R {
    PEOPLE.with(|p| {
        let mut slot = p.borrow_mut();
        let (names, at) = slot.get_or_insert_with(|| {
            let stored: Stored = LocalStorage::get(PEOPLE_KEY).unwrap_or_default();
            (index(stored.people), stored.fetched_at)
        });
        f(names, *at)
    })
}

/// The name to show for a login name: the display name when known, else
/// the login name itself.
pub fn name(username: &str) -> String {
    with(|names, _| names.get(username).cloned()).unwrap_or_else(|| username.to_owned())
}

/// The logged-in account's own name is known before any fetch.
pub fn remember(account: &kheo_shared::protocol::AccountInfo) {
    with(|_, _| ());
    PEOPLE.with(|p| {
        if let Some((names, _)) = p.borrow_mut().as_mut() {
            names.insert(account.username.clone(), account.display_name.clone());
        }
    });
}

/// Fetches the names when the copy held is old; a failure keeps the old
/// copy (names are a convenience, never a reason to stop work).
pub async fn refresh_if_stale(token: &str) -> bool {
    let now = js_sys::Date::now();
    if now - with(|_, at| at) < REFRESH_AFTER_MS {
        return false;
    }
    let Ok(people) = crate::api::get_json::<Vec<Person>>(token, "/api/v1/people").await else { return false };
    let stored = Stored { people, fetched_at: now };
    let _ = LocalStorage::set(PEOPLE_KEY, &stored);
    PEOPLE.with(|p| *p.borrow_mut() = Some((index(stored.people), now)));
    if let Some(session) = crate::store::load_session() {
        remember(&session.account);
    }
    true
}

/// Forgets the names held in memory (at logout, with the stored copy:
/// the next account may see other people).
pub fn forget() {
    PEOPLE.with(|p| *p.borrow_mut() = None);
}
