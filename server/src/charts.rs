//! Charts as SVG, drawn on the server from the same figures as the reports,
//! so any screen (or a printed report) can show them with nothing loaded
//! from elsewhere. One chart shape: labelled bars, optionally with a target
//! mark per bar.

use std::fmt::Write;

/// One bar: its label, its value and, for progress charts, its target.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub target: Option<f64>,
}

/// Drawn at about a phone's width (a 360 px screen shows it near 1:1), so
/// its text keeps the size it is given: 14 px labels, a 15 px title. Each
/// bar has a row of its own under its label, which keeps long unit names
/// whole and leaves the bars the full width.
const WIDTH: f64 = 340.0;
const FONT: f64 = 14.0;
const ROW: f64 = 46.0;
const TOP: f64 = 34.0;
const LEFT: f64 = 6.0;
/// Room right of the longest bar for its figure.
const FIGURE: f64 = 92.0;
// Shown 336 px wide on a 360 px phone, the text keeps at least 12 px.
const _: () = assert!(336.0 / WIDTH * FONT >= 12.0);
/// A bar of zero is still drawn, this wide, so that it reads as zero, not as missing.
const STUB: f64 = 2.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Figures grouped by dots, as Vietnamese writes them (1.234.567).
pub fn group_digits(v: f64) -> String {
    let whole = v.round() as i64;
    let digits = whole.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    if whole < 0 { format!("-{out}") } else { out }
}

/// A month as people write it: `2025-01` is `01/2025`; anything else as it is.
pub fn month_label(month: &str) -> String {
    match month.split_once('-') {
        Some((y, m)) if y.len() == 4 && m.len() == 2 => format!("{m}/{y}"),
        _ => month.to_owned(),
    }
}

/// Horizontal bars, one row each, the label above its bar; a bar that
/// misses its target is drawn in the warning colour and its target marked.
/// `empty` is what the chart says when there are no bars.
pub fn bars(title: &str, empty: &str, bars: &[Bar]) -> String {
    let max = bars.iter().flat_map(|b| [b.value, b.target.unwrap_or(0.0)]).fold(1.0_f64, f64::max);
    let height = TOP + ROW * bars.len().max(1) as f64 + 8.0;
    let span = WIDTH - LEFT - FIGURE;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="{FONT}" role="img" aria-label="{t}"><title>{t}</title><text x="{LEFT}" y="22" font-size="15" font-weight="bold">{t}</text>"#,
        t = escape(title)
    );
    if bars.is_empty() {
        let _ = write!(svg, r##"<text x="{LEFT}" y="{}" fill="#555">{}</text>"##, TOP + 18.0, escape(empty));
    }
    for (i, b) in bars.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let w = (b.value / max * span).max(STUB);
        let behind = b.target.is_some_and(|t| b.value < t);
        let colour = if behind { "#d9480f" } else { "#1c7ed6" };
        let _ = write!(
            svg,
            r#"<text x="{LEFT}" y="{}"><title>{}</title>{}</text><rect x="{LEFT}" y="{}" width="{w:.1}" height="16" fill="{colour}"/><text x="{:.1}" y="{}">{}</text>"#,
            y + 14.0,
            escape(&b.label),
            escape(&fit_label(&b.label)),
            y + 21.0,
            LEFT + w + 6.0,
            y + 34.0,
            match b.target {
                Some(t) => format!("{} / {}", group_digits(b.value), group_digits(t)),
                None => group_digits(b.value),
            }
        );
        if let Some(t) = b.target {
            let x = LEFT + t / max * span;
            let _ = write!(
                svg,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{}" stroke="#212529" stroke-width="2"/>"##,
                y + 18.0,
                y + 40.0
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Most characters of a label that fit the chart's width at its font
/// size; longer names (a provincial agency's full title) end in an
/// ellipsis, whole in the tooltip.
const LABEL_CHARS: usize = 40;

fn fit_label(label: &str) -> String {
    if label.chars().count() <= LABEL_CHARS {
        return label.to_owned();
    }
    let mut short: String = label.chars().take(LABEL_CHARS - 1).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_labels_are_shortened_and_kept_whole_in_the_tooltip() {
        let name = "Ủy ban Mặt trận Tổ quốc Việt Nam tỉnh Quảng Nam, khóa XI";
        let svg = bars("t", "", &[Bar { label: name.into(), value: 1.0, target: None }]);
        assert!(svg.contains(&format!("<title>{name}</title>")));
        assert!(svg.contains("Ủy ban Mặt trận Tổ quốc Việt Nam tỉnh Q…<"));
        assert_eq!(fit_label("Xã Tam Thăng"), "Xã Tam Thăng");
    }

    #[test]
    fn draws_every_bar_escapes_labels_and_marks_targets() {
        let svg = bars(
            "Tiến độ <2025>",
            "",
            &[
                Bar { label: "Xã Tam Thăng".into(), value: 3.0, target: Some(2.0) },
                Bar { label: "A & B".into(), value: 1.0, target: Some(2.0) },
            ],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("Tiến độ &lt;2025&gt;") && svg.contains("A &amp; B"));
        assert_eq!(svg.matches("<rect").count(), 2);
        assert_eq!(svg.matches("<line").count(), 2);
        assert_eq!(svg.matches("#d9480f").count(), 1, "only the unit behind target is highlighted");
    }

    #[test]
    fn text_keeps_its_size_on_a_phone_and_a_zero_bar_shows() {
        let svg = bars(
            "Số hoạt động theo tháng",
            "Không có số liệu",
            &[
                Bar { label: month_label("2025-01"), value: 0.0, target: None },
                Bar { label: month_label("2025-02"), value: 12.0, target: None },
            ],
        );
        assert!(svg.contains(">01/2025<") && svg.contains(">02/2025<"), "months as mm/yyyy: {svg}");
        assert!(svg.contains(&format!(r#"width="{STUB:.1}""#)), "a zero bar is drawn: {svg}");
        assert!(bars("t", "No data", &[]).contains(">No data<"));
        assert_eq!(month_label("not a month"), "not a month");
    }

    #[test]
    fn groups_digits_with_dots() {
        assert_eq!(group_digits(60_000_000.0), "60.000.000");
        assert_eq!(group_digits(999.0), "999");
        assert_eq!(group_digits(-1234.0), "-1.234");
    }
}
