//! The run table: one line per cell, units in the headers, an interval on
//! every timing, and a closing line that only ranks what the noise allows.

use crate::aggregate::{aggregate, distinct, Aggregate};
use crate::export::csv::Row;
use crate::output::table::{Align, Table};

fn interval(median: Option<f64>, lo: Option<f64>, hi: Option<f64>, digits: usize) -> String {
    match (median, lo, hi) {
        (Some(m), Some(l), Some(h)) => format!("{m:.digits$} [{l:.digits$}, {h:.digits$}]"),
        _ => "-".into(),
    }
}

fn verdict(row: &Row) -> String {
    if row.status != "ok" {
        return row.status.clone();
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

/// End-to-end cost per exec over the repetitions, or why it cannot be told.
fn e2e(a: &Aggregate) -> String {
    let Some(e) = a.e2e_ns_per_exec else {
        return "-".into();
    };
    let range = if e.coverage() < 0.95 {
        format!(" (range of {}: too few repetitions for 95%)", e.n)
    } else {
        String::new()
    };
    if e.lo <= 0.0 && e.hi >= 0.0 {
        let per_exec = a.row.baseline_wall_s.unwrap_or(0.0) * 1e9
            / (u64::from(a.row.workers) * a.row.execs_per_worker).max(1) as f64;
        let noise = (e.hi - e.lo) / 2.0 / per_exec.max(f64::MIN_POSITIVE) * 100.0;
        return format!("not resolvable at this noise (+-{noise:.0}%){range}");
    }
    format!("{:.0} [{:.0}, {:.0}]{range}", e.median, e.lo, e.hi)
}

/// The table, one section per kernel when the run spans several.
pub fn render(all: &[Row]) -> String {
    let kernels = distinct(all.iter().map(|r| (&r.kernel, &r.timing)));
    if kernels.len() < 2 {
        return render_kernel(all);
    }
    let mut out = String::new();
    for (kernel, clock) in kernels {
        let rows: Vec<Row> = all
            .iter()
            .filter(|r| r.kernel == *kernel && r.timing == *clock)
            .cloned()
            .collect();
        out.push_str(&format!("\n== kernel {kernel} ({}) ==\n", timing(&rows[0])));
        out.push_str(&render_kernel(&rows));
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
        first.workers, first.execs_per_worker, first.target, first.spawn, first.filter
    )];
    if first.timing == "emulated" {
        title.push(format!("kernel {} ({})", first.kernel, timing(first)));
    }
    title.extend(backend.map(|b| format!("backend {b} ({})", first.backend_version)));
    title.extend(attach.map(|a| format!("attach {a}")));

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
        ("ns/run median [95% CI]", Align::Right),
        ("insns verified/xlated, JIT B", Align::Right),
        ("load+attach ms (1 run)", Align::Right),
        ("read us median [95% CI]", Align::Right),
        ("e2e ns/exec [95% CI]", Align::Right),
        ("map KiB", Align::Right),
        ("loader heap KiB", Align::Right),
    ]);
    let mut table = Table::new(&columns);
    for (r, a) in rows.iter().zip(&cells) {
        let mut cells = Vec::new();
        if backend.is_none() {
            cells.push(r.backend.clone());
        }
        if attach.is_none() {
            cells.push(r.attach.clone());
        }
        cells.extend([
            r.map.clone(),
            r.update.clone(),
            count(r.counted),
            count(r.expected),
            count(r.dropped),
            verdict(r),
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
            match (r.load_ms, r.attach_ms) {
                (Some(l), Some(a)) => format!("{:.1}", l + a),
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
            r.backend, r.attach, r.map, r.update, r.error
        ));
    }
    for a in cells.iter().filter(|a| !a.outliers.is_empty()) {
        out.push_str(&format!(
            "warning: {}: repetition(s) {:?} are outliers in ns/run (outside 1.5 IQR of the others): was the machine busy?\n",
            label(&a.row),
            a.outliers
        ));
    }
    out.push_str(
        "ns/run: bpf_stats time per program run, stats' own clock reads included (`bpfstorm collateral` measures that bias); \
         e2e: storm wall time with minus without the probe, per exec, paired per repetition.\n",
    );
    if first.timing == "emulated" {
        out.push_str("times above are QEMU's software emulation, not this CPU's: not ranked\n");
    } else if let Some(line) = cheapest(rows) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn label(r: &Row) -> String {
    format!("{} {} {}/{}", r.backend, r.attach, r.map, r.update)
}

/// Names the cheapest cell in-kernel, and every cell whose 95% interval
/// overlaps its own: those differences are inside the noise.
fn cheapest(rows: &[Row]) -> Option<String> {
    let timed: Vec<(&Row, f64, f64, f64)> = rows
        .iter()
        .filter_map(|r| {
            Some((
                r,
                r.ns_per_run_median?,
                r.ns_per_run_ci95_lo?,
                r.ns_per_run_ci95_hi?,
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
        "cheapest in-kernel: {} at {:.0} ns/run [{:.0}, {:.0}]",
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
    line.push_str(" (each interval spans one storm; drift between cells can exceed it)");
    Some(line)
}
