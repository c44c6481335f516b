//! A run's markdown report, beside its CSV: the table, an SVG chart of
//! in-kernel cost with intervals, and the recommendation.

use std::path::{Path, PathBuf};

use super::csv::{Row, Timing};
use super::escape::text;
use super::svg::{interval_chart, Item};
use crate::aggregate::{aggregate, distinct, Aggregate, Interval};
use crate::recommend;
use crate::secure_fs::{Dir, FsError};

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn label(a: &Aggregate) -> String {
    let r = &a.first;
    format!("{} {} {}/{}", r.backend, r.attach, r.map, r.update)
}

/// Writes `<csv stem>.md` and `<csv stem>-ns_per_event.svg` beside the CSV
/// `csv` in `dir`; returns the report's path.
pub fn write_report(dir: &Dir, csv: &Path, all: &[Row]) -> Result<PathBuf, FsError> {
    let cells = aggregate(all);
    let brackets = distinct(cells.iter().map(|a| a.bracket.describe()));
    let stem = csv
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("run")
        .to_string();
    let svg_name = format!("{stem}-ns_per_event.svg");
    // Emulated times (guest kernels) would dwarf native ones on one axis.
    let items: Vec<Item> = cells
        .iter()
        .filter(|a| a.first.timing == Timing::Native)
        .filter_map(|a| {
            let i = a.ns_per_event?;
            Some(Item {
                label: label(a),
                median: i.point,
                lo: i.lo,
                hi: i.hi,
            })
        })
        .collect();
    if !items.is_empty() {
        let title = format!("In-kernel cost per counted event ({stem})");
        dir.replace(
            &svg_name,
            interval_chart(&title, "ns per event", &items).as_bytes(),
        )?;
    }

    let mut md = format!("# bpfstorm {stem}\n\n");
    if let Some(first) = cells.first().map(|a| &a.first) {
        md.push_str(&format!(
            "Host {}, kernel {}, {} CPUs ({}), bpfstorm {}. Storm: {} workers x {} execs of `{}` ({}), filter {}. \
             Data: [{}]({}).\n\n",
            text(&first.host),
            text(&first.kernel),
            first.cpus,
            text(&first.cpu_model),
            text(&first.git_rev),
            first.workers,
            first.execs_per_worker,
            first.target,
            first.spawn,
            first.filter,
            csv.file_name().and_then(|n| n.to_str()).unwrap_or("csv"),
            csv.file_name().and_then(|n| n.to_str()).unwrap_or("csv"),
        ));
    }
    let guests = distinct(
        cells
            .iter()
            .map(|a| &a.first)
            .filter(|r| r.timing == Timing::Emulated)
            .map(|r| {
                format!(
                    "{} ({} workers x {} execs)",
                    text(&r.kernel),
                    r.workers,
                    r.execs_per_worker
                )
            }),
    );
    if !guests.is_empty() {
        md.push_str(&format!(
            "Guest kernels, booted under QEMU's software emulation (counts are real; times are \
             emulation's, left out of the chart and the recommendation): {}.\n\n",
            guests.join(", ")
        ));
    }
    md.push_str("| kernel | backend | attach | map | update | status | counted | oracle | dropped | missing | ns/event [95% CI] | ns/run [95% CI] | read us [95% CI] | open+load+attach ms (median) |\n");
    md.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for a in &cells {
        let r = &a.first;
        md.push_str(&format!(
            "| {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            text(&r.kernel),
            match r.timing {
                Timing::Emulated => " (guest, emulated times)",
                Timing::Native => "",
            },
            r.backend,
            r.attach,
            r.map,
            r.update,
            a.status,
            a.counted.map_or("-".into(), |v| v.to_string()),
            a.expected.map_or("-".into(), |v| v.to_string()),
            a.dropped.map_or("-".into(), |v| v.to_string()),
            a.missing.map_or("-".into(), |v| v.to_string()),
            Interval::text(a.ns_per_event, 0),
            Interval::text(a.ns_per_run, 0),
            Interval::text(a.read_us, 1),
            match (a.open_ms, a.load_ms, a.attach_ms) {
                (Some(o), Some(l), Some(at)) => cell(Some(o + l + at), 1),
                _ => "-".into(),
            },
        ));
    }
    md.push_str(&format!(
        "\nTimings: the {}. ns/event counts filtered-out runs too (hooks on every syscall pay for them).\n",
        brackets.join("; or the ")
    ));
    if !items.is_empty() {
        md.push_str(&format!("\n![ns per event]({svg_name})\n\n"));
    }
    md.push_str(
        &recommend::render_markdown(&recommend::recommend(all))
            .replacen("# ", "## ", 1)
            .replace("\n## ", "\n### "),
    );
    let name = format!("{stem}.md");
    dir.replace(&name, md.as_bytes())?;
    Ok(dir.path().join(name))
}
