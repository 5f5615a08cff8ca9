//! How values are written for people: dates dd/mm/yyyy, money grouped
//! with dots (60.000.000 đ), decimals with a comma, as Vietnamese writes
//! them; the English option keeps the same forms, which its users know too.

use kheo_shared::scalars::Day;

pub fn day(d: Day) -> String {
    format!("{:02}/{:02}/{}", d.0.day(), u8::from(d.0.month()), d.0.year())
}

/// The weekday and the day, in the app's language: "Thứ Hai, 01/12/2025".
pub fn day_long(i18n: super::labels::I18n, d: Day) -> String {
    use crate::i18n::*;
    use time::Weekday;
    let weekday = match d.0.weekday() {
        Weekday::Monday => t_string!(i18n, weekday.mon),
        Weekday::Tuesday => t_string!(i18n, weekday.tue),
        Weekday::Wednesday => t_string!(i18n, weekday.wed),
        Weekday::Thursday => t_string!(i18n, weekday.thu),
        Weekday::Friday => t_string!(i18n, weekday.fri),
        Weekday::Saturday => t_string!(i18n, weekday.sat),
        Weekday::Sunday => t_string!(i18n, weekday.sun),
    };
    format!("{weekday}, {}", day(d))
}

pub fn month(year: i32, month: u8) -> String {
    format!("{month:02}/{year}")
}

/// Local date and time of an instant (ms since the epoch), as the phone's clock shows it.
pub fn local_time(millis: i64) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(millis as f64));
    format!(
        "{:02}:{:02} {:02}/{:02}/{}",
        d.get_hours(),
        d.get_minutes(),
        d.get_date(),
        d.get_month() + 1,
        d.get_full_year()
    )
}

/// The time of an instant, with the day only when it is not today:
/// "15:20", or "15:20 28/11" (the sync bar's one line).
pub fn short_time(millis: i64) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(millis as f64));
    let today = js_sys::Date::new_0();
    let time = format!("{:02}:{:02}", d.get_hours(), d.get_minutes());
    let same_day = d.get_full_year() == today.get_full_year()
        && d.get_month() == today.get_month()
        && d.get_date() == today.get_date();
    if same_day { time } else { format!("{time} {:02}/{:02}", d.get_date(), d.get_month() + 1) }
}

pub fn vnd(amount: i64) -> String {
    format!("{} đ", grouped(amount))
}

pub fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    out
}

pub fn decimal(x: f64) -> String {
    let text = if x.fract() == 0.0 { format!("{x:.0}") } else { format!("{x}") };
    text.replace('.', ",")
}

/// Reads an amount typed with or without grouping (60.000.000, 60 000 000).
pub fn parse_amount(text: &str) -> Option<i64> {
    let digits: String = text.chars().filter(|c| !matches!(c, '.' | ',' | ' ' | '\u{a0}')).collect();
    if digits.is_empty() { Some(0) } else { digits.parse().ok() }
}

/// Reads a decimal typed with a comma or a dot.
pub fn parse_decimal(text: &str) -> Option<f64> {
    let t = text.trim().replace(',', ".");
    if t.is_empty() { Some(0.0) } else { t.parse().ok().filter(|x: &f64| x.is_finite()) }
}

pub fn parse_count(text: &str) -> Option<u32> {
    let t = text.trim();
    if t.is_empty() { Some(0) } else { t.parse().ok() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_grouped_with_dots() {
        assert_eq!(vnd(60_000_000), "60.000.000 đ");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1.000");
        assert_eq!(grouped(-1_234_567), "-1.234.567");
        assert_eq!(grouped(0), "0");
    }

    #[test]
    fn typed_numbers_are_read_the_vietnamese_way() {
        assert_eq!(parse_amount("60.000.000"), Some(60_000_000));
        assert_eq!(parse_amount("1 500 000"), Some(1_500_000));
        assert_eq!(parse_amount("abc"), None);
        assert_eq!(parse_decimal("1,5"), Some(1.5));
        assert_eq!(parse_decimal("2.25"), Some(2.25));
        assert_eq!(parse_decimal("NaN"), None);
        assert_eq!(decimal(1.5), "1,5");
        assert_eq!(decimal(3.0), "3");
        assert_eq!(parse_count("-1"), None);
    }

    #[test]
    fn days_are_dd_mm_yyyy() {
        assert_eq!(day(Day::parse("2025-07-01").unwrap()), "01/07/2025");
        assert_eq!(month(2025, 7), "07/2025");
    }
}
