//! The device this tab is: the login session and the [`Replica`] of its
//! documents, held for the page's lifetime (WebAssembly in a page is one
//! thread, so a thread-local is the whole of it), and the writes screens
//! make, each saved to storage before it is reported done.

use std::cell::RefCell;
use std::collections::BTreeMap;

use kheo_shared::client::Replica;
use kheo_shared::evidence::{Attachment, AttachmentId};
use kheo_shared::ids::{DocId, ModelId};
use kheo_shared::record::Record;
use kheo_shared::scalars::Timestamp;

use crate::catalog::{self, SaveError};
use crate::store::{self, Session, StoreError};

pub struct Device {
    pub session: Session,
    pub replica: Replica,
}

thread_local! {
    static DEVICE: RefCell<Option<Device>> = const { RefCell::new(None) };
}

#[derive(Debug, thiserror::Error)]
pub enum WriteFailure {
    #[error("not logged in")]
    NoSession,
    #[error(transparent)]
    Invalid(#[from] SaveError),
    #[error(transparent)]
    Storage(#[from] StoreError),
}

/// Runs `f` on the device, if someone is logged in. Never call it from
/// inside itself, and never hold it across an `.await`.
pub fn with<R>(f: impl FnOnce(&mut Device) -> R) -> Option<R> {
    DEVICE.with(|d| d.borrow_mut().as_mut().map(f))
}

/// Opens the device of a session from storage. Returns the ids of stored
/// documents that could not be read (set aside, see [`store`]).
pub fn open(session: Session) -> Vec<String> {
    let actor = session.actor.parse::<automerge::ActorId>().unwrap_or_else(|_| {
        // The server always sends hex; a damaged session still opens with a
        // fresh actor, which the server will refuse until the next login.
        automerge::ActorId::random()
    });
    let mut replica = Replica::new(actor);
    crate::held::apply_rule(&mut replica, session.account.role);
    let damaged = store::load_replica(&mut replica);
    DEVICE.with(|d| *d.borrow_mut() = Some(Device { session, replica }));
    damaged
}

/// Loads the documents `open` left for later, a few per turn of the
/// event loop so the first screen paints and answers meanwhile; says which
/// failed to load (set aside, as at open). The sync waits for it.
pub async fn load_rest(ui: crate::state::Ui) {
    use leptos::prelude::Set;
    const PER_TURN: usize = 4;
    loop {
        gloo_timers::future::sleep(std::time::Duration::from_millis(10)).await;
        match with(|d| d.replica.load_some(PER_TURN)) {
            Some(0) | None => break,
            Some(_) => {}
        }
    }
    let damaged = with(|d| store::set_aside_damaged(&mut d.replica)).unwrap_or_default();
    if !damaged.is_empty() {
        ui.notice.set(Some(crate::state::Notice::Error(damaged.join(", "))));
    }
    ui.changed();
    // Only now do the logs name every photo the phone must keep.
    crate::uploads::sweep();
}

pub fn close() {
    DEVICE.with(|d| *d.borrow_mut() = None);
}

pub fn now() -> Timestamp {
    Timestamp(js_sys::Date::now() as i64)
}

/// Saves a record from a form. For an existing record, only what a form
/// edits is taken from `draft`; the rest (review, author, creation) is
/// read from the document as it is now, so a review that arrived while the
/// form was open is kept rather than overwritten; so are photos (see
/// [`with_photos`]). Locations are part of the activity the form shows and
/// writes back, so an edit keeps them unless the person cleared them.
pub fn save_record(model: ModelId, draft: Record) -> Result<(), WriteFailure> {
    with(|d| {
        let now = now();
        let record = match catalog::record(&d.replica, model, draft.id) {
            Some(current) => Record {
                attachments: with_photos(&current, draft.attachments),
                occurred_on: draft.occurred_on,
                note: draft.note,
                activity: draft.activity,
                deleted: draft.deleted,
                updated_at: now,
                ..current
            },
            None => Record {
                author: d.session.account.username.clone(),
                device: d.session.device_id.clone(),
                created_at: now,
                updated_at: now,
                ..draft
            },
        };
        let doc = catalog::save_record(&mut d.replica, model, &record, now)?;
        persist(d, doc)
    })
    .unwrap_or(Err(WriteFailure::NoSession))
}

/// The record's attachments with the form's over them: a photo another
/// phone added while the form was open is kept (the form never knew of it),
/// and what the form added, captioned or removed wins for its own.
fn with_photos(current: &Record, form: BTreeMap<AttachmentId, Attachment>) -> BTreeMap<AttachmentId, Attachment> {
    let mut all = current.attachments.clone();
    all.extend(form);
    all
}

/// Marks a record deleted (a tombstone: it stays, and syncs as deleted).
pub fn delete_record(model: ModelId, id: kheo_shared::ids::RecordId) -> Result<(), WriteFailure> {
    let current = with(|d| catalog::record(&d.replica, model, id)).flatten();
    match current {
        Some(record) => save_record(model, Record { deleted: true, ..record }),
        None => Ok(()),
    }
}

/// Saves one changed document, or undoes the change in memory when storage
/// refuses it. Every write of the app ends here.
pub(crate) fn persist(d: &mut Device, doc: DocId) -> Result<(), WriteFailure> {
    if let Err(e) = store::save_doc(&mut d.replica, &doc) {
        store::revert_doc(&mut d.replica, &doc);
        return Err(e.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use kheo_shared::evidence::{Attachment, AttachmentId};
    use kheo_shared::ids::RecordId;
    use kheo_shared::testdata;

    use super::with_photos;

    #[test]
    fn an_edit_keeps_photos_another_phone_added_and_its_own_changes_win() {
        let (mine, theirs) = (AttachmentId::new_random(), AttachmentId::new_random());
        let mut current = testdata::patrol(RecordId::new_random(), "2025-03-01", 0);
        current.attachments.insert(mine, testdata::photo(1, 1000));
        current.attachments.insert(theirs, testdata::photo(2, 1000));
        // The form opened before `theirs` arrived, and removed `mine`.
        let form = [(mine, Attachment { deleted: true, ..testdata::photo(1, 1000) })].into_iter().collect();
        let kept = with_photos(&current, form);
        assert_eq!(kept.len(), 2);
        assert!(kept[&mine].deleted && !kept[&theirs].deleted);
    }
}
