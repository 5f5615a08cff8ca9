//! Photos on screen: a thumbnail (from the phone, or fetched once and
//! kept), the full photo on tap, and the form's photo field (take or pick
//! up to 6, a caption each, remove).

use std::collections::BTreeSet;

use kheo_shared::evidence::{Attachment, AttachmentId, ContentHash, limits};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

use crate::i18n::*;
use crate::photos::{self, TakeError};

/// Bytes shown through an object URL, revoked when the view goes.
fn shown(load: impl Future<Output = Option<Vec<u8>>> + 'static) -> (RwSignal<Option<String>>, RwSignal<bool>) {
    let url = RwSignal::new(None::<String>);
    let missing = RwSignal::new(false);
    spawn_local(async move {
        match load.await.and_then(|bytes| photos::object_url(&bytes, "image/jpeg")) {
            // The view may have gone while the bytes were read.
            Some(u) => {
                if url.try_set(Some(u.clone())).is_some() {
                    photos::revoke(&u);
                }
            }
            None => {
                let _ = missing.try_set(true);
            }
        }
    });
    on_cleanup(move || {
        if let Some(u) = url.try_get_untracked().flatten() {
            photos::revoke(&u);
        }
    });
    (url, missing)
}

/// A photo's thumbnail. With `zoom`, a tap shows the full photo.
#[component]
pub fn Thumb(sha: ContentHash, #[prop(optional)] zoom: bool, #[prop(optional)] caption: String) -> impl IntoView {
    let i18n = use_i18n();
    let (url, missing) = shown({
        let sha = sha.clone();
        async move { photos::thumbnail(&sha).await }
    });
    let open = RwSignal::new(false);
    let image = move || match url.get() {
        Some(src) => {
            view! { <img class="thumb" src=src alt=move || t_string!(i18n, photos.thumbnail).to_string()/> }.into_any()
        }
        None => view! {
            <span class="thumb placeholder" data-missing=move || missing.get().then_some("1")></span>
        }
        .into_any(),
    };
    let sha_text = sha.to_string();
    if !zoom {
        return view! { <span class="thumb-box" data-sha=sha_text>{image}</span> }.into_any();
    }
    view! {
        <button type="button" class="thumb-box" data-sha=sha_text on:click=move |_| open.set(true)
            aria-label=move || t_string!(i18n, photos.open).to_string()>
            {image}
        </button>
        <Show when=move || open.get()>
            <FullPhoto sha=sha.clone() caption=caption.clone() close=move || open.set(false)/>
        </Show>
    }
    .into_any()
}

/// The full photo over the screen, fetched when the phone does not hold it.
#[component]
fn FullPhoto(sha: ContentHash, caption: String, close: impl Fn() + Send + Sync + 'static) -> impl IntoView {
    let i18n = use_i18n();
    let (url, missing) = shown(async move { photos::full(&sha).await });
    view! {
        <div class="photo-full" id="photo-full" role="dialog" aria-modal="true">
            <button type="button" class="primary close" id="photo-close" on:click=move |_| close()>
                {t!(i18n, photos.close)}
            </button>
            {move || match (url.get(), missing.get()) {
                (Some(src), _) => view! { <img src=src id="photo-full-img" alt=""/> }.into_any(),
                (None, true) => view! { <p class="hint">{t!(i18n, photos.unavailable)}</p> }.into_any(),
                (None, false) => view! { <p class="hint">{t!(i18n, photos.loading)}</p> }.into_any(),
            }}
            {(!caption.is_empty()).then(|| view! { <p class="caption">{caption}</p> })}
        </div>
    }
}

/// A record's photos as a row of thumbnails; `zoom` opens them full size.
#[component]
pub fn PhotoStrip(photos: Vec<Attachment>, #[prop(optional)] zoom: bool) -> impl IntoView {
    (!photos.is_empty()).then(|| {
        view! {
            <span class="photo-strip">
                {photos.into_iter().map(|a| view! { <Thumb sha=a.sha256 zoom caption=a.caption/> }).collect_view()}
            </span>
        }
    })
}

/// The form's photos. `saved` are the attachments the record already has:
/// removing one of them leaves a tombstone (`deleted`), as the document's
/// keys are never removed; a photo added in this form is just dropped.
#[component]
pub fn PhotoField(photos: RwSignal<Vec<(AttachmentId, Attachment)>>, saved: BTreeSet<AttachmentId>) -> impl IntoView {
    let i18n = use_i18n();
    let saved = StoredValue::new(saved);
    let busy = RwSignal::new(0usize);
    let error = RwSignal::new(None::<String>);
    let live = move || photos.with(|v| v.iter().filter(|(_, a)| !a.deleted).count());
    let room = move || {
        photos.with(|v| {
            let live = v.iter().filter(|(_, a)| !a.deleted).count();
            limits::MAX_PHOTOS
                .saturating_sub(live + busy.get())
                .min(limits::MAX_ATTACHMENT_ENTRIES.saturating_sub(v.len()))
        })
    };
    let picked = move |ev: leptos::ev::Event| {
        let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) else { return };
        let files: Vec<web_sys::File> =
            input.files().map(|list| (0..list.length()).filter_map(|i| list.get(i)).collect()).unwrap_or_default();
        // The same photo may be picked again later.
        input.set_value("");
        let free = room();
        if files.len() > free {
            error.set(Some(t_string!(i18n, photos.too_many, max = limits::MAX_PHOTOS).to_string()));
        } else {
            error.set(None);
        }
        for file in files.into_iter().take(free) {
            busy.update(|n| *n += 1);
            spawn_local(async move {
                let taken = photos::take(&file, crate::device::now()).await;
                let _ = busy.try_update(|n| *n = n.saturating_sub(1));
                match taken {
                    Ok(a) => {
                        let _ = photos.try_update(|v| v.push((AttachmentId::new_random(), a)));
                    }
                    Err(e) => {
                        let text = match e {
                            TakeError::NotAnImage => t_string!(i18n, photos.not_an_image).to_string(),
                            TakeError::TooLarge => t_string!(i18n, photos.too_large).to_string(),
                            TakeError::Storage(crate::photo_store::PhotoStoreError::Full) => {
                                t_string!(i18n, storage_full).to_string()
                            }
                            other => t_string!(i18n, photos.failed, reason = other.to_string()).to_string(),
                        };
                        let _ = error.try_set(Some(text));
                    }
                }
            });
        }
    };
    let remove = move |id: AttachmentId| {
        let kept = saved.with_value(|s| s.contains(&id));
        photos.update(|v| {
            if kept {
                if let Some((_, a)) = v.iter_mut().find(|(i, _)| *i == id) {
                    a.deleted = true;
                }
            } else {
                v.retain(|(i, _)| *i != id);
            }
        });
    };
    let listed = move || photos.get().into_iter().filter(|(_, a)| !a.deleted).collect::<Vec<_>>();
    view! {
        <fieldset class="photos" id="photos" data-count=move || live().to_string()>
            <legend>{t!(i18n, photos.title)}</legend>
            <ul class="photo-list">
                <For each=listed key=|(id, _)| *id let:photo>
                    {
                        let (id, a) = photo;
                        let caption_id = format!("f-photo-{id}-caption");
                        view! {
                            <li class="photo" data-photo=id.to_string()>
                                <Thumb sha=a.sha256.clone() zoom=true caption=a.caption.clone()/>
                                <div class="photo-side">
                                    <label for=caption_id.clone() class="sr-only">{t!(i18n, photos.caption)}</label>
                                    <input id=caption_id class="caption" maxlength="200"
                                        placeholder=move || t_string!(i18n, photos.caption).to_string()
                                        prop:value=move || photos.with(|v| v.iter().find(|(i, _)| *i == id).map(|(_, a)| a.caption.clone()).unwrap_or_default())
                                        on:input=move |ev| {
                                            let text = event_target_value(&ev);
                                            photos.update(|v| if let Some((_, a)) = v.iter_mut().find(|(i, _)| *i == id) {
                                                a.caption = text.chars().take(200).collect();
                                            });
                                        }/>
                                    <button type="button" class="link danger remove-photo" on:click=move |_| remove(id)>
                                        {t!(i18n, photos.remove)}
                                    </button>
                                </div>
                            </li>
                        }
                    }
                </For>
            </ul>
            {move || (busy.get() > 0).then(|| view! { <p class="hint" id="photo-busy" role="status">{t!(i18n, photos.working)}</p> })}
            {move || error.get().map(|e| view! { <p class="field-error" id="photo-error" role="alert">{e}</p> })}
            <div class="photo-add" class:full=move || room() == 0>
                // A label opens its hidden input's picker: one for the
                // camera, one for photos already on the phone.
                <label for="f-photo-camera" class="button secondary" id="photo-camera">{t!(i18n, photos.camera)}</label>
                <input type="file" id="f-photo-camera" class="sr-only" accept="image/*" capture="environment"
                    disabled=move || room() == 0 on:change=picked/>
                <label for="f-photo-gallery" class="button secondary" id="photo-gallery">{t!(i18n, photos.gallery)}</label>
                <input type="file" id="f-photo-gallery" class="sr-only" accept="image/*" multiple
                    disabled=move || room() == 0 on:change=picked/>
            </div>
            <p class="hint photo-count">{move || t_string!(i18n, photos.count, n = live(), max = limits::MAX_PHOTOS).to_string()}</p>
        </fieldset>
    }
}
