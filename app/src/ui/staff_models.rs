//! The staff's model list: a commune, a district or the whole province
//! (about 6,540 models), so it is searched (by name, without diacritics
//! too), filtered (field, status, district or commune), counted and paged
//! by the server (`GET /api/v1/models`). Offline it lists the models on the
//! phone with the same filters and says so.

use kheo_shared::codes::{Code, Field, ModelStatus};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Deserialize;

use super::labels;
use crate::api::{self, ApiError};
use crate::catalog;
use crate::device;
use crate::i18n::*;
use crate::state::{Screen, use_ui};

const PER_PAGE: usize = 20;

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
struct ModelPage {
    total: usize,
    page: usize,
    pages: usize,
    models: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Item {
    id: String,
    name: String,
    field: String,
    status: String,
    unit: String,
    unit_name: String,
    records: i64,
    returned: i64,
}

/// What the person asked for.
#[derive(Debug, Clone, PartialEq, Default)]
struct Query {
    q: String,
    field: String,
    status: String,
    unit: String,
    page: usize,
}

impl Query {
    fn path(&self) -> String {
        let enc = |s: &str| String::from(js_sys::encode_uri_component(s));
        format!(
            "/api/v1/models?q={}&field={}&status={}&unit={}&page={}&per_page={PER_PAGE}",
            enc(self.q.trim()),
            enc(&self.field),
            enc(&self.status),
            enc(&self.unit),
            self.page.max(1)
        )
    }
}

/// Lower case without diacritics, as the server searches.
fn fold(text: &str) -> String {
    let decomposed: String = js_sys::JsString::from(text).normalize("NFD").into();
    decomposed
        .chars()
        .filter(|c| !('\u{300}'..='\u{36f}').contains(c))
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'đ' { 'd' } else { c })
        .collect()
}

/// The same page from the models on the phone, when the server is out of reach.
fn local_page(query: &Query) -> ModelPage {
    let words: Vec<String> = fold(&query.q).split_whitespace().map(str::to_owned).collect();
    let mut found: Vec<Item> = device::with(|d| {
        catalog::models(&d.replica)
            .into_iter()
            .filter(|m| query.field.is_empty() || m.field.code() == query.field)
            .filter(|m| query.status.is_empty() || m.status.code() == query.status)
            .filter(|m| query.unit.is_empty() || crate::org::with(|o| o.within(&m.unit, &query.unit)))
            .filter(|m| {
                let name = fold(&m.name);
                words.iter().all(|w| name.contains(w.as_str()))
            })
            .map(|m| {
                // Counted, not read: the phone may hold thousands of records.
                let records = catalog::record_count(&d.replica, m.id);
                Item {
                    id: m.id.to_string(),
                    field: m.field.code().to_owned(),
                    status: m.status.code().to_owned(),
                    unit_name: crate::org::with(|o| o.name(&m.unit)),
                    unit: m.unit,
                    records: records as i64,
                    returned: 0,
                    name: m.name,
                }
            })
            .collect()
    })
    .unwrap_or_default();
    found.sort_by_key(|m| fold(&m.name));
    let total = found.len();
    let page = query.page.max(1);
    let models = found.into_iter().skip((page - 1) * PER_PAGE).take(PER_PAGE).collect();
    ModelPage { total, page, pages: total.div_ceil(PER_PAGE), models }
}

thread_local! {
    /// The last search, so that coming back from a model finds the list as it was left.
    static REMEMBERED: std::cell::RefCell<Query> = std::cell::RefCell::new(Query { page: 1, ..Query::default() });
}

#[component]
pub fn StaffModels() -> impl IntoView {
    let i18n = use_i18n();
    let ui = use_ui();
    let query = RwSignal::new(REMEMBERED.with(|r| r.borrow().clone()));
    let typed = RwSignal::new(query.with_untracked(|q| q.q.clone()));
    Effect::new(move |_| {
        let q = query.get();
        REMEMBERED.with(|r| *r.borrow_mut() = q);
    });
    let shown = RwSignal::new(None::<ModelPage>);
    let offline = RwSignal::new(false);
    let generation = StoredValue::new(0u64);
    // The districts and communes of the reader's scope, by name.
    let units = move || {
        // The tree arrives after the first sync, which bumps the revision.
        ui.revision.track();
        let home = ui.account.with(|a| a.as_ref().map(|a| a.unit.clone())).unwrap_or_default();
        crate::org::with(|o| {
            o.units_within(&home)
                .into_iter()
                .filter(|u| matches!(u.level.as_str(), "district" | "commune"))
                .map(|u| (u.code, u.name))
                .collect::<Vec<_>>()
        })
    };
    Effect::new(move |_| {
        let q = query.get();
        // A sync may have brought new models or records.
        ui.revision.track();
        let this = generation.get_value() + 1;
        generation.set_value(this);
        let token = device::with(|d| d.session.token.clone());
        match token.filter(|_| ui.online.get()) {
            Some(token) => spawn_local(async move {
                let answer = api::get_json::<ModelPage>(&token, &q.path()).await;
                if generation.try_get_value() != Some(this) {
                    return;
                }
                match answer {
                    Ok(page) => {
                        offline.set(false);
                        shown.set(Some(page));
                    }
                    Err(ApiError::Network(_) | ApiError::Server(_)) => {
                        offline.set(true);
                        shown.set(Some(local_page(&q)));
                    }
                    Err(_) => shown.set(Some(local_page(&q))),
                }
            }),
            None => {
                offline.set(true);
                shown.set(Some(local_page(&q)));
            }
        }
    });
    let set = move |f: fn(&mut Query, String), value: String| {
        query.update(|q| {
            f(q, value);
            q.page = 1;
        })
    };
    let search = move || set(|q, v| q.q = v, typed.get_untracked());
    view! {
        <form class="model-search" id="model-search" on:submit=move |ev| {
            ev.prevent_default();
            search();
        }>
            <label for="models-q" class="visually-hidden">{t!(i18n, models.search_label)}</label>
            <input id="models-q" type="search" enterkeyhint="search" autocomplete="off"
                placeholder=move || t_string!(i18n, models.search_placeholder).to_string()
                prop:value=move || typed.get()
                on:input=move |ev| typed.set(event_target_value(&ev))/>
            <button type="submit" class="primary" id="models-search">{t!(i18n, models.search_button)}</button>
        </form>
        <div class="filters model-filters">
            <label>
                <span>{t!(i18n, models.field)}</span>
                <select id="models-field" on:change=move |ev| set(|q, v| q.field = v, event_target_value(&ev))>
                    <option value="">{t!(i18n, models.all_fields)}</option>
                    {Field::ALL.iter().map(|f| view! {
                        <option value=f.code() selected=move || query.with(|q| q.field == f.code())>{move || labels::field(i18n, *f)}</option>
                    }).collect_view()}
                </select>
            </label>
            <label>
                <span>{t!(i18n, models.status)}</span>
                <select id="models-status" on:change=move |ev| set(|q, v| q.status = v, event_target_value(&ev))>
                    <option value="">{t!(i18n, models.all_statuses)}</option>
                    {ModelStatus::ALL.iter().map(|s| view! {
                        <option value=s.code() selected=move || query.with(|q| q.status == s.code())>{move || labels::status(i18n, *s)}</option>
                    }).collect_view()}
                </select>
            </label>
            <label class="wide-filter">
                <span>{t!(i18n, models.unit)}</span>
                <select id="models-unit" on:change=move |ev| set(|q, v| q.unit = v, event_target_value(&ev))>
                    <option value="">{t!(i18n, models.all_units)}</option>
                    {move || units().into_iter().map(|(code, name)| {
                        let value = code.clone();
                        view! { <option value=code selected=move || query.with(|q| q.unit == value)>{name}</option> }
                    }).collect_view()}
                </select>
            </label>
        </div>
        {move || offline.get().then(|| view! { <p class="hint" id="models-offline">{t!(i18n, models.offline_list)}</p> })}
        {move || match shown.get() {
            None => view! { <p class="hint">{t!(i18n, loading)}</p> }.into_any(),
            Some(page) => {
                let total = page.total;
                let (at, pages) = (page.page, page.pages.max(1));
                view! {
                    <p class="count-line" id="models-total" data-total=total>
                        {move || t_string!(i18n, models.found_count, n = super::format::grouped(total as i64)).to_string()}
                    </p>
                    <ul class="cards" id="models">
                        {page.models.into_iter().map(|m| view! { <StaffModelCard item=m/> }).collect_view()}
                    </ul>
                    {(pages > 1).then(|| view! {
                        <nav class="pager" id="models-pager">
                            <button class="secondary" id="models-prev" disabled={at <= 1}
                                on:click=move |_| query.update(|q| q.page = at.saturating_sub(1).max(1))>
                                "← " {t!(i18n, models.previous)}
                            </button>
                            <span id="models-page">{move || t_string!(i18n, models.page_of, page = at, pages = pages).to_string()}</span>
                            <button class="secondary" id="models-next" disabled={at >= pages}
                                on:click=move |_| query.update(|q| q.page = at + 1)>
                                {t!(i18n, models.next)} " →"
                            </button>
                        </nav>
                    })}
                }.into_any()
            }
        }}
    }
}

#[component]
fn StaffModelCard(item: Item) -> impl IntoView {
    let i18n = use_i18n();
    let ui = use_ui();
    let id = item.id.parse::<kheo_shared::ids::ModelId>().ok();
    let field = Field::from_code(&item.field);
    let status = ModelStatus::from_code(&item.status);
    let (n, returned) = (item.records, item.returned);
    view! {
        <li>
            <button class="card model-card" data-model=item.id.clone() data-unit=item.unit.clone()
                on:click=move |_| if let Some(id) = id { ui.screen.set(Screen::Model(id)) }>
                <strong>{item.name.clone()}</strong>
                <span class="muted">{item.unit_name.clone()}</span>
                <span class="muted">{move || field.map(|f| labels::field(i18n, f)).unwrap_or_default()}</span>
                <span class="muted">{move || status.map(|s| labels::status(i18n, s)).unwrap_or_default()}</span>
                <super::model_list::CardCounts records=n returned=returned/>
            </button>
        </li>
    }
}
