//! The organisation tree as the phone knows it: fetched from the server
//! when online, kept in storage for offline use, and used to put names on
//! unit codes and to list the units under the account's own.

use std::cell::RefCell;
use std::collections::HashMap;

use gloo_storage::{LocalStorage, Storage};
use serde::{Deserialize, Serialize};

const ORG_KEY: &str = "kheo.org";
/// The tree changes a few times a year; once an hour is plenty.
const REFRESH_AFTER_MS: f64 = 3_600_000.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    pub code: String,
    pub name: String,
    /// `province`, `district`, `commune`, `village` or `agency`.
    pub level: String,
    #[serde(default)]
    pub parent: Option<String>,
    /// Last day the unit existed (`YYYY-MM-DD`), for units ended by the 2025 reform.
    #[serde(default)]
    pub valid_to: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Stored {
    units: Vec<Unit>,
    fetched_at: f64,
}

#[derive(Debug, Default)]
pub struct Org {
    units: Vec<Unit>,
    by_code: HashMap<String, usize>,
}

thread_local! {
    static ORG: RefCell<Option<(Org, f64)>> = const { RefCell::new(None) };
}

impl Org {
    pub fn new(units: Vec<Unit>) -> Self {
        let by_code = units.iter().enumerate().map(|(i, u)| (u.code.clone(), i)).collect();
        Org { units, by_code }
    }

    pub fn unit(&self, code: &str) -> Option<&Unit> {
        self.by_code.get(code).map(|&i| &self.units[i])
    }

    /// The unit's name, or its code when the tree does not know it.
    pub fn name(&self, code: &str) -> String {
        self.unit(code).map_or_else(|| code.to_owned(), |u| u.name.clone())
    }

    /// Whether `code` is `scope` or lies under it.
    pub fn within(&self, code: &str, scope: &str) -> bool {
        let mut at = Some(code.to_owned());
        // The depth bound guards against a cycle in a damaged tree.
        for _ in 0..16 {
            match at {
                Some(c) if c == scope => return true,
                Some(c) => at = self.unit(&c).and_then(|u| u.parent.clone()),
                None => return false,
            }
        }
        false
    }

    /// Every unit, past and present, in the order the server gave them.
    pub fn units(&self) -> &[Unit] {
        &self.units
    }

    /// Units still in existence under `scope` (itself included), by name.
    pub fn units_within(&self, scope: &str) -> Vec<Unit> {
        let mut out: Vec<Unit> =
            self.units.iter().filter(|u| u.valid_to.is_none() && self.within(&u.code, scope)).cloned().collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

/// Runs `f` on the tree the phone holds (empty before the first fetch).
pub fn with<R>(f: impl FnOnce(&Org) -> R) -> R {
    ORG.with(|o| {
        let mut slot = o.borrow_mut();
        if slot.is_none() {
            let stored: Stored = LocalStorage::get(ORG_KEY).unwrap_or_default();
            *slot = Some((Org::new(stored.units), stored.fetched_at));
        }
        let (org, _) = slot.as_ref().unwrap_or_else(|| unreachable!("filled above"));
        f(org)
    })
}

fn fetched_at() -> f64 {
    with(|_| ());
    ORG.with(|o| o.borrow().as_ref().map_or(0.0, |(_, at)| *at))
}

/// Fetches the tree when the copy held is old. Failures keep the old copy:
/// names are a convenience, never a reason to stop work.
pub async fn refresh_if_stale(token: &str) -> bool {
    let now = js_sys::Date::now();
    if now - fetched_at() < REFRESH_AFTER_MS {
        return false;
    }
    let Ok(units) = crate::api::org(token).await else { return false };
    let stored = Stored { units, fetched_at: now };
    // A full storage only costs the names; the documents matter more.
    let _ = LocalStorage::set(ORG_KEY, &stored);
    ORG.with(|o| *o.borrow_mut() = Some((Org::new(stored.units), now)));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(code: &str, parent: Option<&str>, valid_to: Option<&str>) -> Unit {
        Unit {
            code: code.into(),
            name: format!("Tên {code}"),
            level: "village".into(),
            parent: parent.map(str::to_owned),
            valid_to: valid_to.map(str::to_owned),
        }
    }

    #[test]
    fn units_under_a_scope_are_found_through_their_parents() {
        let org = Org::new(vec![
            unit("P", None, None),
            unit("P.C", Some("P"), None),
            unit("P.C.V1", Some("P.C"), None),
            unit("P.C.V2", Some("P.C"), Some("2025-06-30")),
            unit("P.D", Some("P"), None),
        ]);
        assert!(org.within("P.C.V1", "P"));
        assert!(!org.within("P.D", "P.C"));
        let codes: Vec<String> = org.units_within("P.C").into_iter().map(|u| u.code).collect();
        assert_eq!(codes, vec!["P.C", "P.C.V1"]);
        assert_eq!(org.name("nowhere"), "nowhere");
    }
}
