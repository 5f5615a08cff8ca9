//! What this device holds of its account's scope, and how it gets the rest.
//!
//! A volunteer's scope is a few models: the phone holds all of it. A
//! commune's staff phone would hold every year of every model of the
//! commune, and a province staff browser the whole province (6,540 models),
//! far past localStorage's 5 MB. So each role has a rule ([`rule`]), sent
//! with every sync request (`Keep`, docs/PROTOCOL.md §6): commune staff
//! keep the profiles and this year's and last year's logs; province staff
//! and administrators keep only what they opened. Opening a model fetches
//! what the rule leaves out ([`open_model`], [`load_year`]); the review
//! screen fetches the logs of the records the server's queue lists.
//!
//! What a person opened is kept for [`OPENED_FOR_MS`] after they last looked
//! at it; after a sync, documents outside the rule that nobody opened
//! since then, or the least recently opened ones when storage passes
//! [`BUDGET_CHARS`], are released ([`to_release`]): dropped from storage and
//! named in the next request, so the server stops sending them. A document
//! with anything the server lacks is never released (`Replica::release`
//! refuses), and a release the page did not get to tell is told after a
//! reload (`store::save_releasing`).

use std::collections::BTreeMap;

use kheo_shared::codes::Role;
use kheo_shared::ids::{DocId, ModelId};
use kheo_shared::protocol::Keep;

use crate::device;
use crate::store;

/// The years of logs a commune staff phone keeps: this one and the last.
pub const RECENT_YEARS: i32 = 2;
/// How long a document outside the rule stays after it was last opened.
pub const OPENED_FOR_MS: i64 = 14 * 24 * 3600 * 1000;
/// Storage (in UTF-16 characters) past which documents outside the rule go
/// first, least recently opened first: room under the browser's 5 million
/// for drafts, settings and a sync's answers.
pub const BUDGET_CHARS: usize = 3_000_000;
/// Earliest year "earlier years" goes back to when a profile names none.
const MAX_EARLIER_YEARS: i32 = 10;

/// What a device of `role` keeps of its scope in `this_year`.
pub fn rule(role: Role, this_year: i32) -> Option<Keep> {
    match role {
        Role::Volunteer => None,
        Role::CommuneStaff => Some(Keep { logs_from: Some(this_year - (RECENT_YEARS - 1)), ..Keep::default() }),
        Role::ProvinceStaff | Role::Admin => Some(Keep { only_synced: true, ..Keep::default() }),
    }
}

/// The documents a model page shows at first: the profile and the recent
/// years' logs.
pub fn shown_on_open(model: ModelId, this_year: i32) -> Vec<DocId> {
    let logs = (this_year - (RECENT_YEARS - 1)..=this_year).filter_map(|y| DocId::log(model, y).ok());
    std::iter::once(DocId::Model(model)).chain(logs).collect()
}

/// The years before the recent ones that a model may have logs for, newest
/// first: from the year it started (at most [`MAX_EARLIER_YEARS`] back).
pub fn earlier_years(started: Option<i32>, this_year: i32) -> Vec<i32> {
    let last = this_year - RECENT_YEARS;
    let first = started.unwrap_or(last).max(last - MAX_EARLIER_YEARS + 1);
    (first..=last).rev().collect()
}

/// Documents to release: among those `held` (with the characters each
/// takes in storage), the ones the rule does not keep that were not opened
/// in the last [`OPENED_FOR_MS`], then, while storage is past
/// [`BUDGET_CHARS`], the least recently opened of the rest outside the rule.
pub fn to_release(keep: &Keep, held: &[(DocId, usize)], opened: &BTreeMap<DocId, i64>, now: i64) -> Vec<DocId> {
    let mut total: usize = held.iter().map(|(_, n)| n).sum();
    // Outside the rule: the server would not offer it to a device lacking it.
    let mut outside: Vec<(i64, DocId, usize)> = held
        .iter()
        .filter(|(id, _)| !keep.offers(id, false))
        .map(|(id, n)| (opened.get(id).copied().unwrap_or(i64::MIN), *id, *n))
        .collect();
    outside.sort();
    let mut out = Vec::new();
    for (at, id, n) in outside {
        let stale = at < now.saturating_sub(OPENED_FOR_MS);
        if stale || total > BUDGET_CHARS {
            out.push(id);
            total -= n;
        }
    }
    out
}

fn this_year() -> i32 {
    js_sys::Date::new_0().get_full_year() as i32
}

/// Sets the replica's rule for the logged-in account (device open).
pub fn apply_rule(replica: &mut kheo_shared::client::Replica, role: Role) {
    replica.set_keep(rule(role, this_year()));
}

/// Marks documents as looked at now, so they stay for a while.
fn mark_opened(ids: &[DocId]) {
    let mut opened = store::opened();
    let now = js_sys::Date::now() as i64;
    for id in ids {
        opened.insert(*id, now);
    }
    let _ = store::save_opened(&opened);
}

/// Asks for `wanted` where the device lacks it; whether anything was asked.
fn fetch(wanted: &[DocId]) -> bool {
    // A device that keeps its whole scope has nothing to fetch or to remember.
    let asked = device::with(|d| {
        d.replica.keep()?;
        let lacking: Vec<DocId> = wanted.iter().filter(|id| d.replica.doc(id).is_none()).copied().collect();
        for id in &lacking {
            d.replica.fetch(*id);
        }
        Some(!lacking.is_empty())
    })
    .flatten();
    let Some(asked) = asked else { return false };
    mark_opened(wanted);
    if asked {
        crate::sync::wake();
    }
    asked
}

/// A model page opened: its profile and recent logs, fetched if absent.
pub fn open_model(model: ModelId) {
    // Stored logs not loaded yet (the phone just opened) load now, before the page reads them.
    device::with(|d| d.replica.load_now(|id| id.model() == model));
    let mut wanted = shown_on_open(model, this_year());
    // The earlier years already here were opened once: they stay while used.
    let held_logs: Vec<DocId> = device::with(|d| {
        d.replica.doc_ids().filter(|id| matches!(id, DocId::Log { model: m, .. } if *m == model)).copied().collect()
    })
    .unwrap_or_default();
    for id in held_logs {
        if !wanted.contains(&id) {
            wanted.push(id);
        }
    }
    fetch(&wanted);
}

/// "Earlier years": fetches one year's log of a model.
pub fn load_year(model: ModelId, year: i32) {
    if let Ok(id) = DocId::log(model, year) {
        fetch(&[id]);
    }
}

/// The review screen lists records the server holds in logs this device
/// lacks: fetches those logs (and the profiles naming their models).
pub fn fetch_for_review(logs: &[DocId]) -> bool {
    let mut wanted: Vec<DocId> = logs.to_vec();
    for id in logs {
        if let DocId::Log { model, .. } = id
            && !wanted.contains(&DocId::Model(*model))
        {
            wanted.push(DocId::Model(*model));
        }
    }
    fetch(&wanted)
}

/// Whether `id` was asked for and has not arrived: held, empty, and not
/// yet through a sync (the screen says it is on its way).
pub fn on_its_way(id: &DocId) -> bool {
    device::with(|d| waiting(&mut d.replica, id)).unwrap_or(false)
}

/// [`on_its_way`] inside a `device::with`.
pub fn waiting(replica: &mut kheo_shared::client::Replica, id: &DocId) -> bool {
    replica.doc(id).is_some() && !replica.synced(id) && replica.heads(id).is_empty()
}

/// After a session that succeeded: drops what the rule does not keep and
/// nobody looks at, and what was fetched but does not exist on the server
/// (an earlier year with no log).
pub fn tidy() {
    let Some(keep) = device::with(|d| d.replica.keep().cloned()).flatten() else { return };
    let now = js_sys::Date::now() as i64;
    let mut opened = store::opened();
    let held = store::doc_sizes();
    let chosen = to_release(&keep, &held, &opened, now);
    device::with(|d| {
        let mut released = Vec::new();
        for id in &chosen {
            if d.replica.release(id) {
                released.push(*id);
            }
        }
        // Asked for, answered, still empty: the server has no such document.
        let asked: Vec<DocId> =
            d.replica.doc_ids().filter(|id| d.replica.in_session(id) && !d.replica.synced(id)).copied().collect();
        let empty: Vec<DocId> = asked.into_iter().filter(|id| d.replica.heads(id).is_empty()).collect();
        for id in &empty {
            d.replica.forget(id);
        }
        // The record of releases first: a page closed between the two
        // steps then tells the server about a document it still holds,
        // which `resume_release` ignores.
        if released.is_empty() && empty.is_empty() {
            return;
        }
        let _ = store::save_releasing(&d.replica);
        for id in released.iter().chain(&empty) {
            store::delete_doc(id);
            opened.remove(id);
        }
    });
    let still_held: std::collections::BTreeSet<DocId> =
        device::with(|d| d.replica.doc_ids().copied().collect()).unwrap_or_default();
    opened.retain(|id, at| *at >= now.saturating_sub(OPENED_FOR_MS) || still_held.contains(id));
    let _ = store::save_opened(&opened);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_keeps_what_it_works_on() {
        assert_eq!(rule(Role::Volunteer, 2026), None, "a volunteer's few models, every year");
        let commune = rule(Role::CommuneStaff, 2026).unwrap();
        assert_eq!(commune.logs_from, Some(2025));
        assert!(!commune.only_synced);
        for role in [Role::ProvinceStaff, Role::Admin] {
            assert!(rule(role, 2026).unwrap().only_synced, "{role:?} holds what it opened");
        }
    }

    #[test]
    fn a_model_opens_on_its_profile_and_recent_years_and_goes_back_from_its_start() {
        let model = ModelId::new_random();
        let shown = shown_on_open(model, 2026);
        assert_eq!(shown, [DocId::Model(model), DocId::log(model, 2025).unwrap(), DocId::log(model, 2026).unwrap()]);
        assert_eq!(earlier_years(Some(2022), 2026), [2024, 2023, 2022]);
        assert!(earlier_years(Some(2025), 2026).is_empty(), "started last year: nothing earlier");
        assert_eq!(earlier_years(None, 2026), [2024]);
        assert_eq!(earlier_years(Some(1990), 2026).len(), MAX_EARLIER_YEARS as usize);
    }

    #[test]
    fn what_the_rule_keeps_stays_and_the_rest_goes_when_unused_or_when_storage_is_short() {
        let keep = rule(Role::CommuneStaff, 2026).unwrap();
        let model = ModelId::new_random();
        let (profile, recent, old, older) = (
            DocId::Model(model),
            DocId::log(model, 2026).unwrap(),
            DocId::log(model, 2023).unwrap(),
            DocId::log(model, 2022).unwrap(),
        );
        let now = 100 * OPENED_FOR_MS;
        let held = [(profile, 1_000), (recent, 2_000), (old, 3_000), (older, 3_000)];
        let opened = BTreeMap::from([(old, now - 1_000), (older, now - OPENED_FOR_MS - 1)]);
        assert_eq!(to_release(&keep, &held, &opened, now), [older], "opened long ago");
        assert!(to_release(&keep, &held[..2], &BTreeMap::new(), now).is_empty(), "the rule keeps the recent");

        // Storage short: the least recently opened outside the rule go
        // first, until under budget; the rule's own documents never.
        let big = BUDGET_CHARS / 2;
        let held = [(profile, big), (recent, big), (old, 10), (older, 10)];
        let opened = BTreeMap::from([(old, now - 10), (older, now - 20)]);
        assert_eq!(to_release(&keep, &held, &opened, now), [older, old]);
        let held = [(profile, big), (old, big), (older, 10)];
        assert_eq!(to_release(&keep, &held, &opened, now), [older], "under budget once the older year went");
    }

    #[test]
    fn a_province_browser_keeps_only_what_was_opened_lately() {
        let keep = rule(Role::ProvinceStaff, 2026).unwrap();
        let (a, b) = (DocId::Model(ModelId::new_random()), DocId::Model(ModelId::new_random()));
        let now = 100 * OPENED_FOR_MS;
        let opened = BTreeMap::from([(a, now - 5)]);
        assert_eq!(
            to_release(&keep, &[(a, 10), (b, 10)], &opened, now),
            [b],
            "never opened here: synced before the rule"
        );
    }
}
