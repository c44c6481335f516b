//! A run's markdown report, beside its CSV: the table, an SVG chart of
//! in-kernel cost with intervals, and the recommendation.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::csv::Row;
use super::svg::{interval_chart, Item};
use crate::aggregate::{aggregate, distinct};
use crate::recommend;

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn interval(m: Option<f64>, lo: Option<f64>, hi: Option<f64>, digits: usize) -> String {
    match (m, lo, hi) {
        (Some(m), Some(lo), Some(hi)) => format!("{m:.digits$} [{lo:.digits$}, {hi:.digits$}]"),
        _ => "-".into(),
    }
}

fn label(r: &Row) -> String {
    format!("{} {} {}/{}", r.backend, r.attach, r.map, r.update)
}

/// Writes `<csv stem>.md` and `<csv stem>-ns_per_run.svg` beside the CSV.
pub fn write_report(csv: &Path, all: &[Row]) -> io::Result<PathBuf> {
    let folded: Vec<Row> = aggregate(all).into_iter().map(|a| a.row).collect();
    let rows = folded.as_slice();
    let stem = csv
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("run")
        .to_string();
    let svg_name = format!("{stem}-ns_per_run.svg");
    // Emulated times (guest kernels) would dwarf native ones on one axis.
    let items: Vec<Item> = rows
        .iter()
        .filter(|r| r.timing == "native")
        .filter_map(|r| {
            Some(Item {
                label: label(r),
                median: r.ns_per_run_median?,
                lo: r.ns_per_run_ci95_lo?,
                hi: r.ns_per_run_ci95_hi?,
            })
        })
        .collect();
    let dir = csv.parent().unwrap_or(Path::new("."));
    if !items.is_empty() {
        let title = format!("In-kernel cost per program run ({stem})");
        fs::write(
            dir.join(&svg_name),
            interval_chart(&title, "ns per run", &items),
        )?;
    }

    let mut md = format!("# bpfstorm {stem}\n\n");
    if let Some(first) = rows.first() {
        md.push_str(&format!(
            "Host {}, kernel {}, {} CPUs ({}), bpfstorm {}. Storm: {} workers x {} execs of `{}` ({}), filter {}. \
             Data: [{}]({}).\n\n",
            first.host,
            first.kernel,
            first.cpus,
            first.cpu_model,
            first.git_rev,
            first.workers,
            first.execs_per_worker,
            first.target,
            first.spawn,
            first.filter,
            csv.file_name().and_then(|n| n.to_str()).unwrap_or("csv"),
            csv.file_name().and_then(|n| n.to_str()).unwrap_or("csv"),
        ));
    }
    let guests = distinct(rows.iter().filter(|r| r.timing == "emulated").map(|r| {
        format!(
            "{} ({} workers x {} execs)",
            r.kernel, r.workers, r.execs_per_worker
        )
    }));
    if !guests.is_empty() {
        md.push_str(&format!(
            "Guest kernels, booted under QEMU's software emulation (counts are real; times are \
             emulation's, left out of the chart and the recommendation): {}.\n\n",
            guests.join(", ")
        ));
    }
    md.push_str("| kernel | backend | attach | map | update | status | counted | oracle | dropped | missing | ns/run median [95% CI] | read us median [95% CI] | load+attach ms (1 run) |\n");
    md.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        md.push_str(&format!(
            "| {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.kernel,
            if r.timing == "emulated" {
                " (guest, emulated times)"
            } else {
                ""
            },
            r.backend,
            r.attach,
            r.map,
            r.update,
            r.status,
            r.counted.map_or("-".into(), |v| v.to_string()),
            r.expected.map_or("-".into(), |v| v.to_string()),
            r.dropped.map_or("-".into(), |v| v.to_string()),
            r.missing.map_or("-".into(), |v| v.to_string()),
            interval(
                r.ns_per_run_median,
                r.ns_per_run_ci95_lo,
                r.ns_per_run_ci95_hi,
                0
            ),
            interval(r.read_us_median, r.read_us_ci95_lo, r.read_us_ci95_hi, 1),
            match (r.load_ms, r.attach_ms) {
                (Some(l), Some(a)) => cell(Some(l + a), 1),
                _ => "-".into(),
            },
        ));
    }
    if !items.is_empty() {
        md.push_str(&format!("\n![ns per run]({svg_name})\n\n"));
    }
    md.push_str(
        &recommend::render_markdown(&recommend::recommend(all))
            .replacen("# ", "## ", 1)
            .replace("\n## ", "\n### "),
    );
    let path = dir.join(format!("{stem}.md"));
    fs::write(&path, md)?;
    Ok(path)
}
