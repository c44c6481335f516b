//! The run table: one line per cell, units in the headers, an interval on
//! every timing, and a closing line that only ranks what the noise allows.

use crate::aggregate::{aggregate, distinct, Aggregate};
use crate::export::csv::Row;
use crate::export::escape::terminal as t;
use crate::output::table::{Align, Table};

fn interval(median: Option<f64>, lo: Option<f64>, hi: Option<f64>, digits: usize) -> String {
    match (median, lo, hi) {
        (Some(m), Some(l), Some(h)) => format!("{m:.digits$} [{l:.digits$}, {h:.digits$}]"),
        _ => "-".into(),
    }
}

fn verdict(row: &Row) -> String {
    if row.status != "ok" {
        return t(&row.status);
    }
    let missing = row.missing.unwrap_or(0);
    let expected = row.expected.unwrap_or(0);
    match (row.update.as_str(), missing) {
        ("racy", 0) => "exact (no race hit)".into(),
        ("racy", n) if n > 0 => format!(
            "lost {n} updates ({:.2}%)",
            n as f64 * 100.0 / expected.max(1) as f64
        ),
        (_, 0) => "exact".into(),
        (_, n) => format!("MISMATCH {n:+}"),
    }
}

fn count(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// The value every row shares in a column, if they all share one.
fn shared(rows: &[Row], field: fn(&Row) -> &str) -> Option<&str> {
    let first = field(rows.first()?);
    rows.iter().all(|r| field(r) == first).then_some(first)
}

/// End-to-end cost per exec over the repetitions: the mean and its 95%
/// interval when that leaves out zero; otherwise the smallest effect this
/// noise could have shown (the interval's half-width), never a point value.
fn e2e(a: &Aggregate) -> String {
    if a.row.baseline_wall_s.is_none() {
        return "-".into();
    }
    let Some(e) = a.e2e_ns_per_exec else {
        return "one pair: no interval".into();
    };
    if e.excludes_zero() {
        format!("{:.0} [{:.0}, {:.0}]", e.mean, e.lo, e.hi)
    } else {
        format!("< {:.0} at this noise", e.half_width())
    }
}

/// The table, one section per kernel when the run spans several.
pub fn render(all: &[Row]) -> String {
    let kernels = distinct(all.iter().map(|r| (&r.kernel, &r.timing)));
    if kernels.len() < 2 {
        return render_kernel(all);
    }
    let mut by_kernel: std::collections::BTreeMap<(&String, &String), Vec<Row>> =
        Default::default();
    for r in all {
        by_kernel
            .entry((&r.kernel, &r.timing))
            .or_default()
            .push(r.clone());
    }
    let mut out = String::new();
    for key in kernels {
        let rows = &by_kernel[&key];
        out.push_str(&format!(
            "\n== kernel {} ({}) ==\n",
            t(key.0),
            timing(&rows[0])
        ));
        out.push_str(&render_kernel(rows));
    }
    out
}

fn timing(r: &Row) -> &'static str {
    if r.timing == "emulated" {
        "guest under software emulation: counts are real, times are emulation's"
    } else {
        "native"
    }
}

fn render_kernel(all: &[Row]) -> String {
    let cells = aggregate(all);
    let rows: Vec<Row> = cells.iter().map(|a| a.row.clone()).collect();
    let rows = rows.as_slice();
    let Some(first) = rows.first() else {
        return "no cells were measured\n".into();
    };
    // Columns that hold one value for the whole run move to the title line.
    let backend = shared(rows, |r| &r.backend);
    let attach = shared(rows, |r| &r.attach);
    let repetitions = cells.iter().map(|a| a.repetitions).max().unwrap_or(1);
    let mut title = vec![format!(
        "storm: {} workers x {} execs of `{}` ({}), filter {}, {repetitions} repetition(s) per cell (counts summed over them)",
        first.workers, first.execs_per_worker, t(&first.target), t(&first.spawn), t(&first.filter)
    )];
    if first.timing == "emulated" {
        title.push(format!("kernel {} ({})", t(&first.kernel), timing(first)));
    }
    title.extend(backend.map(|b| format!("backend {} ({})", t(b), t(&first.backend_version))));
    title.extend(attach.map(|a| format!("attach {}", t(a))));

    let mut columns = Vec::new();
    if backend.is_none() {
        columns.push(("backend", Align::Left));
    }
    if attach.is_none() {
        columns.push(("attach", Align::Left));
    }
    columns.extend([
        ("map", Align::Left),
        ("update", Align::Left),
        ("counted", Align::Right),
        ("oracle", Align::Right),
        ("dropped", Align::Right),
        ("verdict", Align::Left),
        ("ns/event [95% CI]", Align::Right),
        ("ns/run [95% CI]", Align::Right),
        ("insns verified/xlated, JIT B", Align::Right),
        ("open+load+attach ms", Align::Right),
        ("read us [95% CI]", Align::Right),
        ("e2e ns/exec [95% CI]", Align::Right),
        ("map KiB", Align::Right),
        ("loader heap KiB", Align::Right),
    ]);
    let mut table = Table::new(&columns);
    for (r, a) in rows.iter().zip(&cells) {
        let mut cells = Vec::new();
        if backend.is_none() {
            cells.push(t(&r.backend));
        }
        if attach.is_none() {
            cells.push(t(&r.attach));
        }
        cells.extend([
            t(&r.map),
            t(&r.update),
            count(r.counted),
            count(r.expected),
            count(r.dropped),
            verdict(r),
            interval(
                r.ns_per_event_median,
                r.ns_per_event_ci95_lo,
                r.ns_per_event_ci95_hi,
                0,
            ),
            interval(
                r.ns_per_run_median,
                r.ns_per_run_ci95_lo,
                r.ns_per_run_ci95_hi,
                0,
            ),
            match (r.verified_insns, r.xlated_insns, r.jited_bytes) {
                (Some(v), Some(x), Some(j)) => format!("{v}/{x}, {j}"),
                _ => "-".into(),
            },
            match (r.open_ms, r.load_ms, r.attach_ms) {
                (Some(o), Some(l), Some(a)) => format!("{:.1}", o + l + a),
                _ => "-".into(),
            },
            interval(r.read_us_median, r.read_us_ci95_lo, r.read_us_ci95_hi, 1),
            e2e(a),
            r.map_bytes
                .map_or("-".into(), |b| format!("{:.1}", b as f64 / 1024.0)),
            r.loader_heap_bytes
                .map_or("-".into(), |b| format!("{:.1}", b as f64 / 1024.0)),
        ]);
        table.push(cells);
    }
    let mut out = title.join("; ");
    out.push_str("\n\n");
    out.push_str(&table.render());
    for r in rows.iter().filter(|r| !r.error.is_empty()) {
        out.push_str(&format!(
            "{} {}/{}/{}: {}\n",
            t(&r.backend),
            t(&r.attach),
            t(&r.map),
            t(&r.update),
            t(&r.error)
        ));
    }
    for a in cells.iter().filter(|a| !a.outliers.is_empty()) {
        out.push_str(&format!(
            "warning: {}: repetition(s) {:?} are outliers in ns/run (outside 1.5 IQR of the others): was the machine busy?\n",
            label(&a.row),
            a.outliers
        ));
    }
    let brackets = distinct(cells.iter().map(|a| a.bracket.describe()));
    out.push_str(&format!(
        "ns/event: in-kernel (bpf_stats) time per counted event, filtered-out runs included; ns/run: per program run; \
         both include the stats' own clock reads (`bpfstorm collateral` measures that bias). \
         Timings are the {}. e2e: storm wall time with minus without the probe, per exec, both storms under the same \
         oracles and stats; the mean over repetitions [95% t-interval], or `< X` when the interval holds zero \
         (X: the smallest effect this noise could show).\n",
        brackets.join("; or the ")
    ));
    if first.timing == "emulated" {
        out.push_str("times above are QEMU's software emulation, not this CPU's: not ranked\n");
    } else if let Some(line) = cheapest(rows) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn label(r: &Row) -> String {
    format!(
        "{} {} {}/{}",
        t(&r.backend),
        t(&r.attach),
        t(&r.map),
        t(&r.update)
    )
}

/// Names the cheapest cell in-kernel by ns per counted event, and every
/// cell whose 95% interval overlaps its own: those differences are inside
/// the noise.
fn cheapest(rows: &[Row]) -> Option<String> {
    let timed: Vec<(&Row, f64, f64, f64)> = rows
        .iter()
        .filter(|r| r.status == "ok" && r.exact == Some(true) && r.update != "racy")
        .filter_map(|r| {
            Some((
                r,
                r.ns_per_event_median?,
                r.ns_per_event_ci95_lo?,
                r.ns_per_event_ci95_hi?,
            ))
        })
        .collect();
    if timed.len() < 2 {
        return None;
    }
    let best = timed.iter().min_by(|a, b| a.1.total_cmp(&b.1))?;
    let ties: Vec<String> = timed
        .iter()
        .filter(|t| !std::ptr::eq(t.0, best.0) && t.2 <= best.3)
        .map(|t| label(t.0))
        .collect();
    let mut line = format!(
        "cheapest exact counter in-kernel: {} at {:.0} ns/event [{:.0}, {:.0}]",
        label(best.0),
        best.1,
        best.2,
        best.3
    );
    if ties.is_empty() {
        line.push_str("; its 95% interval overlaps no other cell's");
    } else {
        line.push_str(&format!(
            "; inside the noise of: {} (95% intervals overlap, no ranking among them)",
            ties.join(", ")
        ));
    }
    Some(line)
}
