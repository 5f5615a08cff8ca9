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

const WIDTH: f64 = 640.0;
const ROW: f64 = 28.0;
const LABEL: f64 = 200.0;
const TOP: f64 = 40.0;

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

/// Horizontal bars, one row each; a bar that misses its target is drawn in
/// the warning colour and its target marked.
pub fn bars(title: &str, bars: &[Bar]) -> String {
    let max = bars.iter().flat_map(|b| [b.value, b.target.unwrap_or(0.0)]).fold(1.0_f64, f64::max);
    let height = TOP + ROW * bars.len().max(1) as f64 + 16.0;
    let span = WIDTH - LABEL - 70.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="13" role="img" aria-label="{t}"><title>{t}</title><text x="8" y="22" font-size="15" font-weight="bold">{t}</text>"#,
        t = escape(title)
    );
    if bars.is_empty() {
        let _ = write!(svg, r##"<text x="8" y="{}" fill="#666">Không có số liệu</text>"##, TOP + 18.0);
    }
    for (i, b) in bars.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let w = (b.value / max * span).max(0.0);
        let behind = b.target.is_some_and(|t| b.value < t);
        let colour = if behind { "#d9480f" } else { "#1c7ed6" };
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end"><title>{}</title>{}</text><rect x="{LABEL}" y="{}" width="{w:.1}" height="{}" fill="{colour}"/><text x="{:.1}" y="{}">{}</text>"#,
            LABEL - 8.0,
            y + 18.0,
            escape(&b.label),
            escape(&fit_label(&b.label)),
            y + 4.0,
            ROW - 8.0,
            LABEL + w + 6.0,
            y + 18.0,
            match b.target {
                Some(t) => format!("{} / {}", group_digits(b.value), group_digits(t)),
                None => group_digits(b.value),
            }
        );
        if let Some(t) = b.target {
            let x = LABEL + t / max * span;
            let _ = write!(
                svg,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{}" stroke="#212529" stroke-width="2"/>"##,
                y + 1.0,
                y + ROW - 1.0
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Most characters of a label that fit left of the bars; longer names (a
/// provincial agency's full title) end in an ellipsis, whole in the tooltip.
const LABEL_CHARS: usize = 27;

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
        let name = "Ủy ban Mặt trận Tổ quốc Việt Nam tỉnh Quảng Nam";
        let svg = bars("t", &[Bar { label: name.into(), value: 1.0, target: None }]);
        assert!(svg.contains(&format!("<title>{name}</title>")));
        assert!(svg.contains("Ủy ban Mặt trận Tổ quốc Vi…<"));
        assert_eq!(fit_label("Xã Tam Thăng"), "Xã Tam Thăng");
    }

    #[test]
    fn draws_every_bar_escapes_labels_and_marks_targets() {
        let svg = bars(
            "Tiến độ <2025>",
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
    fn groups_digits_with_dots() {
        assert_eq!(group_digits(60_000_000.0), "60.000.000");
        assert_eq!(group_digits(999.0), "999");
        assert_eq!(group_digits(-1234.0), "-1.234");
    }
}
