//! Where the phone is, when the volunteer asks: one fix from the browser's
//! geolocation (GPS, which needs no network), with a 20 s limit. A
//! location is never required, so every failure is only told.

use js_sys::{Promise, Reflect};
use kheo_shared::evidence::{Location, limits};
use kheo_shared::scalars::Timestamp;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

const TIMEOUT_MS: u32 = 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeoError {
    /// The person (or the browser's settings) said no.
    Denied,
    /// No fix within the time limit.
    Timeout,
    /// No position to be had (no GPS signal, location off, no support).
    Unavailable,
}

fn number(value: &JsValue, key: &str) -> Option<f64> {
    Reflect::get(value, &key.into()).ok()?.as_f64()
}

pub async fn locate() -> Result<Location, GeoError> {
    let geolocation = web_sys::window().and_then(|w| w.navigator().geolocation().ok()).ok_or(GeoError::Unavailable)?;
    let options = web_sys::PositionOptions::new();
    options.set_enable_high_accuracy(true);
    options.set_timeout(TIMEOUT_MS);
    let mut started = true;
    let fix = Promise::new(&mut |resolve, reject| {
        started =
            geolocation.get_current_position_with_error_callback_and_options(&resolve, Some(&reject), &options).is_ok();
    });
    if !started {
        return Err(GeoError::Unavailable);
    }
    let position = JsFuture::from(fix).await.map_err(|e| match number(&e, "code") {
        Some(1.0) => GeoError::Denied,
        Some(3.0) => GeoError::Timeout,
        _ => GeoError::Unavailable,
    })?;
    let coords = Reflect::get(&position, &"coords".into()).map_err(|_| GeoError::Unavailable)?;
    let latitude = number(&coords, "latitude").filter(|v| (-90.0..=90.0).contains(v));
    let longitude = number(&coords, "longitude").filter(|v| (-180.0..=180.0).contains(v));
    let (Some(latitude), Some(longitude)) = (latitude, longitude) else { return Err(GeoError::Unavailable) };
    // A fix vaguer than the schema takes says nothing of where the team was.
    let accuracy_m = number(&coords, "accuracy")
        .filter(|a| (0.0..=limits::MAX_ACCURACY_M).contains(a))
        .ok_or(GeoError::Unavailable)?;
    let taken_at = number(&position, "timestamp").map_or_else(crate::device::now, |t| Timestamp(t as i64));
    Ok(Location { latitude, longitude, accuracy_m, taken_at })
}
