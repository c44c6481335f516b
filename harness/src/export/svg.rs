//! Interval charts as plain SVG: one line per cell, a dot at the median and
//! a bar across the 95% interval, on a shared axis starting at zero.

/// One line of a chart.
pub struct Item {
    pub label: String,
    pub median: f64,
    pub lo: f64,
    pub hi: f64,
}

const ROW: f64 = 22.0;
const LABEL_W: f64 = 330.0;
const PLOT_W: f64 = 420.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 40.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A "nice" axis end (1, 2 or 5 times a power of ten) at or above `max`.
fn axis_end(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|&end| end >= max)
        .unwrap_or(10.0 * power)
}

pub fn interval_chart(title: &str, unit: &str, items: &[Item]) -> String {
    let end = axis_end(items.iter().map(|i| i.hi).fold(0.0, f64::max));
    let x = |v: f64| LABEL_W + v.max(0.0) / end * PLOT_W;
    let height = TOP + BOTTOM + ROW * items.len() as f64;
    let width = LABEL_W + PLOT_W + 40.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"22\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
        escape(title)
    );
    for (i, item) in items.iter().enumerate() {
        let y = TOP + ROW * i as f64 + ROW / 2.0;
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n\
             <line x1=\"{:.1}\" y1=\"{y}\" x2=\"{:.1}\" y2=\"{y}\" stroke=\"#4a7ab5\" stroke-width=\"3\"/>\n\
             <circle cx=\"{:.1}\" cy=\"{y}\" r=\"4\" fill=\"#1d3d66\"/>\n\
             <text x=\"{:.1}\" y=\"{}\" fill=\"#555\">{:.0}</text>\n",
            LABEL_W - 8.0,
            y + 4.0,
            escape(&item.label),
            x(item.lo),
            x(item.hi),
            x(item.median),
            x(item.hi) + 6.0,
            y + 4.0,
            item.median
        ));
    }
    let axis_y = TOP + ROW * items.len() as f64 + 6.0;
    svg.push_str(&format!(
        "<line x1=\"{LABEL_W}\" y1=\"{axis_y}\" x2=\"{}\" y2=\"{axis_y}\" stroke=\"black\"/>\n",
        LABEL_W + PLOT_W
    ));
    for tick in 0..=5 {
        let v = end * f64::from(tick) / 5.0;
        svg.push_str(&format!(
            "<line x1=\"{0:.1}\" y1=\"{axis_y}\" x2=\"{0:.1}\" y2=\"{1}\" stroke=\"black\"/>\n\
             <text x=\"{0:.1}\" y=\"{2}\" text-anchor=\"middle\">{3}</text>\n",
            x(v),
            axis_y + 4.0,
            axis_y + 18.0,
            v
        ));
    }
    svg.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{} (dot: median, bar: 95% interval)</text>\n</svg>\n",
        LABEL_W + PLOT_W / 2.0,
        axis_y + 34.0,
        escape(unit)
    ));
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_ends_are_round() {
        assert_eq!(axis_end(283.0), 500.0);
        assert_eq!(axis_end(25_000.0), 50_000.0);
        assert_eq!(axis_end(0.0), 1.0);
    }

    #[test]
    fn chart_has_a_line_per_item_and_escapes_labels() {
        let items = [
            Item {
                label: "a<b".into(),
                median: 10.0,
                lo: 8.0,
                hi: 12.0,
            },
            Item {
                label: "c".into(),
                median: 20.0,
                lo: 15.0,
                hi: 30.0,
            },
        ];
        let svg = interval_chart("t", "ns/run", &items);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("a&lt;b"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
    }
}
