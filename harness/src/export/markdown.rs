//! A run's markdown report: the table, SVG charts of in-kernel cost with
//! intervals, and the recommendation. Beside the run's CSV, at a path the
//! user names, or from several runs or hosts together (`bpfstorm report`).

use std::path::{Path, PathBuf};

use super::chart::{self, charts, Chart, Item};
use super::csv::{Row, Timing};
use super::escape::{code, name, terminal, text};
use crate::aggregate::{aggregate, distinct, tool_peers, Aggregate, Interval, Ranking, TOOL};
use crate::hot::Method;
use crate::recommend;
use crate::secure_fs::{Dir, FsError};

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

/// What tells cells of different native machines apart, where the rows
/// have several: guests are told apart by their kernel already.
#[derive(Clone, Copy)]
struct Labels {
    host: bool,
    kernel: bool,
}

impl Labels {
    fn of(rows: &[Row]) -> Labels {
        let native = || rows.iter().filter(|r| r.timing == Timing::Native);
        Labels {
            host: distinct(native().map(|r| &r.host)).len() > 1,
            kernel: distinct(native().map(|r| &r.kernel)).len() > 1,
        }
    }

    /// A chart line's host and kernel, where they tell cells apart.
    fn chart(self, a: &Aggregate) -> String {
        let r = &a.first;
        let mut label = Vec::new();
        if self.host {
            label.push(r.host.as_str());
        }
        if self.kernel {
            label.push(r.kernel.as_str());
        }
        label.join(" ")
    }
}

/// The cells of `rows`, host by host: repetitions of one host fold
/// together (across its runs too), never with another host's.
fn cells(rows: &[Row]) -> Vec<Aggregate> {
    distinct(rows.iter().map(|r| &r.host))
        .into_iter()
        .flat_map(|host| {
            let theirs: Vec<Row> = rows.iter().filter(|r| &r.host == host).cloned().collect();
            aggregate(&theirs)
        })
        .collect()
}

/// A markdown link to the CSV `csv` from a report in `dir`: its file name
/// beside it, else its absolute path.
fn data_link(dir: &Path, csv: &Path) -> String {
    let file = csv
        .file_name()
        .map_or("csv".into(), |n| n.to_string_lossy());
    let same_dir = match csv.parent() {
        Some(p) if !p.as_os_str().is_empty() => {
            p == dir
                || p.canonicalize()
                    .ok()
                    .is_some_and(|p| dir.canonicalize().ok() == Some(p))
        }
        _ => dir.canonicalize().ok() == Path::new(".").canonicalize().ok(),
    };
    let target = if same_dir {
        file.to_string()
    } else {
        std::path::absolute(csv)
            .unwrap_or_else(|_| csv.to_path_buf())
            .to_string_lossy()
            .into_owned()
    };
    let plain = target
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._/+-@:".contains(c));
    let target = if plain {
        target
    } else {
        // Angle brackets take any character but `<`, `>` and line ends.
        format!(
            "<{}>",
            terminal(&target).replace('<', "\\<").replace('>', "\\>")
        )
    };
    format!("[{}]({target})", text(&file))
}

/// One sentence on where and how `r` was measured, with every worker
/// count of its host and method in `rows` (a sweep's are one sentence).
fn machine(r: &Row, rows: &[&Row]) -> String {
    let counts = crate::contention::ascending(
        rows.iter()
            .filter(|o| o.host == r.host && o.method == r.method)
            .map(|o| o.workers),
    );
    let workers: Vec<String> = counts.iter().map(u32::to_string).collect();
    let workers = workers.join(", ");
    let how = match r.method {
        Method::Hot => format!(
            "Hot: {workers} workers fire a failing exec syscall, rounds with and without the program until +-{:.0}%",
            r.precision_target.unwrap_or(0.0) * 100.0
        ),
        Method::Storm => format!(
            "Storm: {workers} workers x {} execs of {} ({})",
            r.execs_per_worker,
            code(&r.target),
            name(&r.spawn)
        ),
    };
    format!(
        "Host {}, kernel {}, {} CPUs ({}), bpfstorm {}. {how}, filter {}.",
        text(&r.host),
        text(&r.kernel),
        r.cpus,
        text(&r.cpu_model),
        text(&r.git_rev),
        name(&r.filter),
    )
}

/// A markdown report and its charts, to be written together.
pub struct Report {
    /// The markdown's file name.
    name: String,
    markdown: String,
    /// None without a native timing.
    charts: Vec<Chart>,
}

impl Report {
    /// The report of `rows`, read from `csvs`, to be written as
    /// `file_name` in the folder `dir` (its links are relative to it).
    pub fn render(
        title: &str,
        file_name: &str,
        dir: &Path,
        csvs: &[&Path],
        rows: &[Row],
    ) -> Report {
        let labels = Labels::of(rows);
        let cells = cells(rows);
        let brackets = distinct(cells.iter().map(|a| a.bracket.describe()));
        let stem = file_name.strip_suffix(".md").unwrap_or(file_name);
        // Emulated times (guest kernels) would dwarf native ones on one axis.
        // One method on a chart: its figures answer one question.
        let ranking = Ranking::of(&cells);
        let method = ranking.method;
        let items: Vec<Item> = cells
            .iter()
            .filter(|a| a.first.timing == Timing::Native && ranking.admits(a))
            .filter_map(|a| {
                let i = a.ns_per_event?;
                Some(Item {
                    machine: labels.chart(a),
                    backend: a.first.backend.clone(),
                    attach: a.first.attach,
                    map: a.first.map,
                    update: a.first.update,
                    variant: a.first.variant(),
                    interval: i,
                })
            })
            .collect();
        let drawn = charts(
            &format!("{stem}-ns_per_event"),
            &format!("In-kernel cost per counted event, {method} method ({title})"),
            "ns per event",
            &items,
        );

        let mut md = format!("# bpfstorm {}\n\n", text(title));
        let native: Vec<&Row> = rows.iter().filter(|r| r.timing == Timing::Native).collect();
        let described = if native.is_empty() {
            rows.iter().collect()
        } else {
            native
        };
        let machines = distinct(described.iter().map(|r| machine(r, &described)));
        let data: Vec<String> = csvs.iter().map(|csv| data_link(dir, csv)).collect();
        match machines.as_slice() {
            [] => {}
            [one] => md.push_str(&format!("{one} Data: {}.\n\n", data.join(", "))),
            several => {
                for m in several {
                    md.push_str(&format!("- {m}\n"));
                }
                md.push_str(&format!("\nData: {}.\n\n", data.join(", ")));
            }
        }
        if let Some(filter) = crate::output::summary::filter_cost(rows) {
            md.push_str(&format!("{}.\n\n", text(&filter)));
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
        md.push_str(&format!(
            "| {} | backend | attach | method | workers | map | update | status | counted | oracle | dropped | missing | ns/event [95% CI] | ns/run [95% CI] | read us [95% CI] | startup ms (median of the repetitions) |\n",
            if labels.host { "host / kernel" } else { "kernel" }
        ));
        md.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for a in &cells {
            let r = &a.first;
            md.push_str(&format!(
                "| {}{}{} | {} | {} | {} | {} | {} | {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                if labels.host && r.timing == Timing::Native {
                    format!("{} / ", text(&r.host))
                } else {
                    String::new()
                },
                text(&r.kernel),
                match r.timing {
                    Timing::Emulated => " (guest, emulated times)",
                    Timing::Native => "",
                },
                name(&r.backend),
                r.attach,
                r.method,
                r.workers,
                r.map,
                r.update,
                r.variant().suffix(),
                a.status,
                a.counted.map_or("-".into(), |v| v.to_string()),
                a.expected.map_or("-".into(), |v| v.to_string()),
                a.dropped.map_or("-".into(), |v| v.to_string()),
                a.missing.map_or("-".into(), |v| v.to_string()),
                Interval::text(a.ns_per_event, 0),
                Interval::text(a.ns_per_run, 0),
                Interval::text(a.read_us, 2),
                cell(a.startup_ms, 1),
            ));
        }
        md.push_str(&format!(
            "\nTimings: the {}. ns/event counts filtered-out runs too (hooks on every syscall pay for them), \
             with bpf_stats' own clock cost (`stats_bias_ns`) taken out. Startup: from nothing \
             to a counting program, a loader's open+load+attach or a tool's spawn to its probes \
             attached.\n",
            brackets.join("; or the ")
        ));
        // A chart that fails to draw must not cost the report.
        let charts = match drawn {
            Ok(charts) => charts,
            Err(e) => {
                md.push_str(&format!("\nNo chart: {e}.\n"));
                Vec::new()
            }
        };
        for chart in &charts {
            md.push_str(&format!("\n![{}]({})\n", chart.alt, chart.file));
        }
        md.push('\n');
        let mut charts = charts;
        md.push_str(&contention(&cells, labels, stem, &mut charts));
        md.push_str(&tool_versus_loaders(&cells, labels));
        md.push_str(&recommendations(rows, labels));
        Report {
            name: file_name.to_string(),
            markdown: md,
            charts,
        }
    }

    /// Writes the charts, then the report, into `dir`; returns the report's
    /// path.
    pub fn write(&self, dir: &Dir) -> Result<PathBuf, FsError> {
        for chart in &self.charts {
            dir.replace(&chart.file, chart.svg.as_bytes())?;
        }
        dir.replace(&self.name, self.markdown.as_bytes())?;
        Ok(dir.path().join(&self.name))
    }
}

/// The hot strategies measured at several worker counts: a table of
/// ns/event by workers, and their chart (added to `charts`).
fn contention(cells: &[Aggregate], labels: Labels, stem: &str, charts: &mut Vec<Chart>) -> String {
    let curves: Vec<_> = crate::contention::curves(cells)
        .into_iter()
        .filter(|c| c.first.first.timing == Timing::Native)
        .collect();
    if curves.is_empty() {
        return String::new();
    }
    let counts = crate::contention::worker_counts(&curves);
    let (fewest, most) = (counts[0], counts[counts.len() - 1]);
    let cpus = distinct(curves.iter().map(|c| c.first.first.cpus));
    let cpus_text: Vec<String> = cpus.iter().map(usize::to_string).collect();
    let mut md = format!(
        "## Contention\n\nHot ns/event [95% interval] of each strategy by the number of workers \
         firing the hook at once, on {} CPUs: past that count, workers share CPUs. \
         {most} vs {fewest}: ns/event at {most} workers over that at {fewest} (+- both \
         intervals' relative half-widths in quadrature); *in noise* where the two intervals \
         overlap or the +- reaches 1.\n\n| cell |",
        cpus_text.join(" / ")
    );
    for &n in &counts {
        md.push_str(&format!(" {} |", crate::contention::workers(n)));
    }
    md.push_str(&format!(" {most} vs {fewest} |\n|---|"));
    md.push_str(&"---|".repeat(counts.len() + 1));
    md.push('\n');
    // The chart's text is raw (the SVG escapes it); the table's is markdown.
    let raw = |a: &Aggregate| {
        let cell = a.label(str::to_string);
        match labels.chart(a) {
            machine if machine.is_empty() => cell,
            machine => format!("{machine} {cell}"),
        }
    };
    let label = |a: &Aggregate| {
        let cell = a.label(|s| name(s).into_owned());
        match labels.chart(a) {
            machine if machine.is_empty() => cell,
            machine => format!("{} {cell}", text(&machine)),
        }
    };
    for curve in &curves {
        md.push_str(&format!("| {} |", label(curve.first)));
        for &n in &counts {
            md.push_str(&format!(" {} |", Interval::text(curve.at(n), 0)));
        }
        let growth = crate::contention::describe_growth(curve, fewest, most);
        md.push_str(&format!(
            " {} |\n",
            growth.replace("in noise", "*in noise*")
        ));
    }
    let lines: Vec<chart::Curve> = curves
        .iter()
        .map(|c| chart::Curve {
            label: raw(c.first),
            points: c.points.clone(),
        })
        .collect();
    // Hosts of different sizes share no CPU count to mark (0 marks none).
    let cpus = match cpus.as_slice() {
        [one] => u32::try_from(*one).unwrap_or(0),
        _ => 0,
    };
    match chart::contention(stem, "Hot cost by workers", "ns per event", cpus, &lines) {
        Ok(Some(drawn)) => {
            md.push_str(&format!("\n![{}]({})\n", drawn.alt, drawn.file));
            charts.push(drawn);
        }
        Ok(None) => {}
        Err(e) => md.push_str(&format!("\nNo chart: {e}.\n")),
    }
    md.push('\n');
    md
}

/// What the one-liner costs: each bpftrace cell against the same cell of
/// every hand-written loader measured, ns/event and startup, a row per
/// pair.
fn tool_versus_loaders(cells: &[Aggregate], labels: Labels) -> String {
    let pairs = tool_peers(cells);
    if pairs.is_empty() {
        return String::new();
    }
    let loaders = distinct(
        pairs
            .iter()
            .map(|p| name(&p.loader.first.backend).into_owned()),
    );
    let mut md = format!(
        "## {TOOL} vs hand-written loaders\n\nEach {TOOL} cell beside the same cell (host, \
         kernel, strategy, method, workers, storm) of each hand-written loader measured ({}), \
         {TOOL}'s figure over the loader's. ns/event ratio: +- both intervals' relative \
         half-widths in quadrature (a spread, not a 95% interval); *inside the noise* where the \
         two intervals overlap or the +- reaches 1. Startup: from nothing to a counting program \
         ({TOOL}: spawned to its probes attached; a loader: open+load+attach), one sample per \
         repetition (their median), so no interval.\n\n\
         | cell | vs | {TOOL} ns/event | loader ns/event | ns/event ratio | {TOOL} startup ms \
         | loader startup ms | startup ratio |\n|---|---|---|---|---|---|---|---|\n",
        loaders.join(", ")
    );
    for p in &pairs {
        let r = &p.tool.first;
        let mut label = format!("{} {}", r.attach, r.strategy_name());
        let machine = labels.chart(p.tool);
        if !machine.is_empty() {
            label = format!("{} {label}", text(&machine));
        }
        let context = p.context(&pairs);
        if !context.is_empty() {
            label.push_str(&format!(" ({})", text(&context.join(", "))));
        }
        let ratio = match p.ns_per_event() {
            Some((tool, loader)) => match (tool.apart_from(&loader), tool.ratio_to(&loader)) {
                (Some((r, u)), _) => crate::output::summary::times(r, Some(u)),
                (None, Some(_)) => "*inside the noise*".into(),
                (None, None) => "-".into(),
            },
            None => "-".into(),
        };
        md.push_str(&format!(
            "| {label} | {} | {} | {} | {ratio} | {} | {} | {} |\n",
            name(&p.loader.first.backend),
            Interval::text(p.tool.ns_per_event, 0),
            Interval::text(p.loader.ns_per_event, 0),
            cell(p.tool.startup_ms, 1),
            cell(p.loader.startup_ms, 1),
            p.startup_ratio()
                .map_or("-".into(), |r| crate::output::summary::times(r, None)),
        ));
    }
    md.push('\n');
    md
}

/// The recommendation as sections of the report; one per host where the
/// rows have several (their times are different CPUs': never ranked
/// together).
fn recommendations(rows: &[Row], labels: Labels) -> String {
    let section = |rows: &[Row]| {
        recommend::render_markdown(&recommend::recommend(rows))
            .replacen("# ", "## ", 1)
            .replace("\n## ", "\n### ")
    };
    if !labels.host {
        return section(rows);
    }
    let hosts = distinct(
        rows.iter()
            .filter(|r| r.timing == Timing::Native)
            .map(|r| &r.host),
    );
    hosts
        .into_iter()
        .map(|host| {
            let theirs: Vec<Row> = rows
                .iter()
                .filter(|r| &r.host == host || r.timing == Timing::Emulated)
                .cloned()
                .collect();
            section(&theirs).replacen(
                "## Recommendation\n",
                &format!("## Recommendation for host {}\n", text(host)),
                1,
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes `<csv stem>.md` and its charts (`<csv stem>-ns_per_event*.svg`) beside the CSV
/// `csv` in `dir`; returns the report's path.
pub fn write_report(dir: &Dir, csv: &Path, all: &[Row]) -> Result<PathBuf, FsError> {
    let stem = csv.file_stem().and_then(|s| s.to_str()).unwrap_or("run");
    Report::render(stem, &format!("{stem}.md"), dir.path(), &[csv], all).write(dir)
}

#[cfg(test)]
mod tests {
    use bpfstorm_common::{MapKind, UpdateMode};

    use super::*;

    fn by(backend: &str, host: &str, map: MapKind, ns: f64, startup_ms: f64) -> Row {
        Row {
            backend: backend.into(),
            host: host.into(),
            map,
            update: match map {
                MapKind::PercpuArray | MapKind::PercpuHash => UpdateMode::Percpu,
                _ => UpdateMode::Racy,
            },
            expected: Some(1000),
            counted: Some(1000),
            missing: Some(0),
            exact: Some(true),
            ns_per_event_median: Some(ns),
            ns_per_event_ci95_lo: Some(ns - 5.0),
            ns_per_event_ci95_hi: Some(ns + 5.0),
            startup_ms: Some(startup_ms),
            ..Row::default()
        }
    }

    fn report(rows: &[Row]) -> String {
        Report::render("t", "t.md", Path::new("."), &[Path::new("t.csv")], rows).markdown
    }

    #[test]
    fn bpftrace_gets_a_row_per_hand_written_peer_on_its_own_host() {
        let rows = [
            by(TOOL, "a", MapKind::PercpuArray, 100.0, 812.0),
            by("libbpf", "a", MapKind::PercpuArray, 50.0, 20.3),
            by("aya", "a", MapKind::PercpuArray, 98.0, 30.0),
            by(TOOL, "b", MapKind::Hash, 60.0, 900.0),
            // Host a's cell: no peer of b's.
            by("libbpf", "a", MapKind::Hash, 58.0, 25.0),
        ];
        let md = report(&rows);
        let section = md
            .split("## bpftrace vs hand-written loaders\n")
            .nth(1)
            .unwrap_or_else(|| panic!("{md}"));
        assert!(section.contains("measured (libbpf, aya)"), "{section}");
        assert!(section.contains("not a 95% interval"), "{section}");
        let table: Vec<&str> = section
            .lines()
            .skip_while(|l| !l.starts_with("| cell |"))
            .take_while(|l| l.starts_with('|'))
            .collect();
        assert_eq!(
            table[2..],
            [
                "| a tp_sys_enter_execve percpu_array/percpu | libbpf | 100 [95, 105] \
                 | 50 [45, 55] | 2.00 +- 0.22x | 812.0 | 20.3 | 40.0x |",
                "| a tp_sys_enter_execve percpu_array/percpu | aya | 100 [95, 105] \
                 | 98 [93, 103] | *inside the noise* | 812.0 | 30.0 | 27.1x |",
            ],
            "{section}"
        );
        assert!(
            md.contains("| startup ms (median of the repetitions) |"),
            "{md}"
        );
        assert!(md.contains("| 812.0 |"), "the main table's startup: {md}");
    }

    #[test]
    fn no_bpftrace_or_no_peer_no_section() {
        let loaders = [
            by("libbpf", "a", MapKind::Hash, 58.0, 25.0),
            by("c", "a", MapKind::Hash, 50.0, 9.0),
        ];
        assert!(!report(&loaders).contains("hand-written"));
        let unpaired = [
            by(TOOL, "a", MapKind::PercpuArray, 100.0, 812.0),
            by("libbpf", "a", MapKind::Hash, 58.0, 25.0),
        ];
        assert!(!report(&unpaired).contains("hand-written"));
    }
}
