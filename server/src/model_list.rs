//! The staff's list of models (`GET /api/v1/models`): search by name,
//! filters by field, status and unit (a district or commune and what lies
//! below it, successions of the 2025 reform included), counts of what
//! matches, and pages, over the read model's models in the reader's scope.
//!
//! A province holds about 6,540 models: too many for a phone to read one
//! by one, few enough that the server filters them in memory per request.
//! Only the models of the page shown are counted in the records table.
//!
//! Search ignores case and Vietnamese diacritics ("dien phuoc" finds
//! "Điện Phước"), because staff type on phones without a Vietnamese keyboard.

use std::collections::BTreeMap;

use kheo_shared::codes::{Code, Field, ModelStatus};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::error::AppError;
use crate::org::OrgTree;
use crate::store::ReportStore;

pub const DEFAULT_PER_PAGE: usize = 20;
pub const MAX_PER_PAGE: usize = 100;
/// Longer than any model name people would type to find one.
pub const MAX_QUERY_CHARS: usize = 100;

/// What the list is asked for, as the query string gives it.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ModelSearch {
    /// Words that must all occur in the name, ignoring case and diacritics.
    #[param(max_length = 100)]
    pub q: Option<String>,
    /// A field code; empty for any.
    pub field: Option<String>,
    /// A model status code; empty for any.
    pub status: Option<String>,
    /// A unit code: models of that unit and below it, successions included; empty for any.
    pub unit: Option<String>,
    /// From 1; a page past the last is empty.
    #[param(minimum = 1, default = 1)]
    pub page: Option<usize>,
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub per_page: Option<usize>,
}

/// One page of the list.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ModelPage {
    /// Models that match every filter.
    pub total: usize,
    pub page: usize,
    pub per_page: usize,
    pub pages: usize,
    /// The matching models by status code and by field code.
    pub by_status: BTreeMap<String, usize>,
    pub by_field: BTreeMap<String, usize>,
    pub models: Vec<ModelListItem>,
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ModelListItem {
    pub id: String,
    pub name: String,
    pub field: String,
    pub status: String,
    pub unit: String,
    pub unit_name: String,
    /// Records not deleted.
    pub records: i64,
    /// Records the commune returned and nobody has edited since.
    pub returned: i64,
}

/// The filters of a search, checked.
struct Filters {
    words: Vec<String>,
    field: Option<Field>,
    status: Option<ModelStatus>,
    unit: Option<String>,
    page: usize,
    per_page: usize,
}

fn filters(search: &ModelSearch, org: &OrgTree) -> Result<Filters, AppError> {
    let q = search.q.as_deref().unwrap_or("");
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(AppError::BadQuery(format!("q is at most {MAX_QUERY_CHARS} characters")));
    }
    // An empty value is no filter: what a form's "all" option sends.
    let code = |value: &Option<String>| value.as_deref().filter(|v| !v.is_empty()).map(str::to_owned);
    let field = code(&search.field)
        .map(|f| Field::from_code(&f).ok_or_else(|| AppError::BadQuery(format!("field {f:?} is not a field code"))))
        .transpose()?;
    let status = code(&search.status)
        .map(|s| {
            ModelStatus::from_code(&s).ok_or_else(|| AppError::BadQuery(format!("status {s:?} is not a status code")))
        })
        .transpose()?;
    let unit = code(&search.unit);
    if let Some(u) = &unit
        && org.get(u).is_none()
    {
        return Err(AppError::BadQuery(format!("unit {u:?} is not in the organisation tree")));
    }
    let per_page = search.per_page.unwrap_or(DEFAULT_PER_PAGE);
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(AppError::BadQuery(format!("per_page is 1 to {MAX_PER_PAGE}, not {per_page}")));
    }
    let page = search.page.unwrap_or(1);
    if page == 0 {
        return Err(AppError::BadQuery("page counts from 1".into()));
    }
    Ok(Filters { words: fold(q).split_whitespace().map(str::to_owned).collect(), field, status, unit, page, per_page })
}

/// The page of models `search` asks for, among those in `scope` (`None`: all).
pub async fn search(
    store: &dyn ReportStore,
    org: &OrgTree,
    scope: Option<&str>,
    search: &ModelSearch,
) -> Result<ModelPage, AppError> {
    let f = filters(search, org)?;
    let mut matching: Vec<(String, crate::store::reports::ModelFacts)> = store
        .models()
        .await?
        .into_iter()
        .filter(|m| scope.is_none_or(|s| org.is_within(&m.unit, s)))
        .filter(|m| f.field.is_none_or(|x| x.code() == m.field))
        .filter(|m| f.status.is_none_or(|x| x.code() == m.status))
        .filter(|m| f.unit.as_deref().is_none_or(|u| org.is_within(&m.unit, u)))
        .map(|m| (fold(&m.name), m))
        .filter(|(name, _)| f.words.iter().all(|w| name.contains(w.as_str())))
        .collect();
    matching.sort_by(|(a, x), (b, y)| a.cmp(b).then_with(|| x.model.cmp(&y.model)));
    let mut by_status = BTreeMap::new();
    let mut by_field = BTreeMap::new();
    for (_, m) in &matching {
        *by_status.entry(m.status.clone()).or_insert(0) += 1;
        *by_field.entry(m.field.clone()).or_insert(0) += 1;
    }
    let total = matching.len();
    let shown: Vec<_> = matching.into_iter().skip((f.page - 1).saturating_mul(f.per_page)).take(f.per_page).collect();
    let ids: Vec<String> = shown.iter().map(|(_, m)| m.model.clone()).collect();
    let counts: BTreeMap<String, (i64, i64)> =
        store.record_counts(&ids).await?.into_iter().map(|c| (c.model, (c.records, c.returned))).collect();
    let models = shown
        .into_iter()
        .map(|(_, m)| {
            let (records, returned) = counts.get(&m.model).copied().unwrap_or((0, 0));
            ModelListItem {
                unit_name: org.get(&m.unit).map_or_else(|| m.unit.clone(), |u| u.name.clone()),
                id: m.model,
                name: m.name,
                field: m.field,
                status: m.status,
                unit: m.unit,
                records,
                returned,
            }
        })
        .collect();
    Ok(ModelPage {
        total,
        page: f.page,
        per_page: f.per_page,
        pages: total.div_ceil(f.per_page),
        by_status,
        by_field,
        models,
    })
}

/// Lower case without diacritics: "Điện Phước" reads "dien phuoc".
pub fn fold(text: &str) -> String {
    text.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'đ' { 'd' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_drops_case_and_vietnamese_diacritics() {
        assert_eq!(fold("Tổ tự quản Điện Phước"), "to tu quan dien phuoc");
        assert_eq!(fold("ĐƯỜNG LÀNG"), "duong lang");
        assert_eq!(fold("Hỗ trợ hộ nghèo"), "ho tro ho ngheo");
    }

    #[test]
    fn bad_filters_are_refused_with_the_reason() {
        let org = crate::org::demo();
        let bad = |s: ModelSearch| filters(&s, &org).err().map(|e| e.to_string());
        assert!(bad(ModelSearch { field: Some("lava".into()), ..Default::default() }).is_some());
        assert!(bad(ModelSearch { status: Some("x".into()), ..Default::default() }).is_some());
        assert!(bad(ModelSearch { unit: Some("NOWHERE".into()), ..Default::default() }).is_some());
        assert!(bad(ModelSearch { page: Some(0), ..Default::default() }).is_some());
        assert!(bad(ModelSearch { per_page: Some(101), ..Default::default() }).is_some());
        assert!(bad(ModelSearch { q: Some("a".repeat(101)), ..Default::default() }).is_some());
        assert!(bad(ModelSearch { field: Some(String::new()), q: Some("tổ".into()), ..Default::default() }).is_none());
    }
}
