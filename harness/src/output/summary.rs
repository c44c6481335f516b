//! The run summary. By default a table that fits the terminal (100
//! columns, `--columns`): per cell its verdict, ns/event with its interval,
//! and its cost against the cheapest exact cell of its group (counters and
//! streams apart, per attach point); footnotes say what each figure is.
//! `--wide` prints every column, one line per cell. Units in the headers,
//! an interval on every timing, and only the ranking the noise allows.

use bpfstorm_common::Wakeup;

use crate::aggregate::{aggregate, distinct, tool_peers, Aggregate, Interval, Ranking, TOOL};
use crate::contention::{self, ascending};
use crate::export::csv::{Kernel, Row, Status, Timing};
use crate::export::escape::terminal as t;
use crate::hot::Method;
use crate::output::table::{Align, Paint, Style, Table};

/// Columns the summary fits by default: readable beside another window,
/// and what most terminals open with or more.
pub const DEFAULT_COLUMNS: usize = 100;

/// How the summary is laid out.
#[derive(Debug, Clone, Copy)]
pub struct View {
    /// Characters a line may take; `None`: every column, however wide.
    pub columns: Option<usize>,
    pub paint: Paint,
}

impl Default for View {
    fn default() -> View {
        View {
            columns: Some(DEFAULT_COLUMNS),
            paint: Paint::PLAIN,
        }
    }
}

/// A cell's accuracy in words, and its colour: updates that may race report
/// what they lost; the others are exact or a mismatch. `short` leaves out
/// the word "updates", for the narrow table.
fn verdict(a: &Aggregate, short: bool) -> (String, Style) {
    if !a.is_ok() {
        let style = match a.status {
            Status::Unsupported => Style::Yellow,
            _ => Style::Red,
        };
        return (a.status.to_string(), style);
    }
    let missing = a.missing.unwrap_or(0);
    let expected = a.expected.unwrap_or(0);
    // A map with fewer entries than keys: accounted for, but not counted.
    let dropped = a.dropped.unwrap_or(0);
    if a.first.keys.get() > 1 && dropped > 0 && missing == 0 {
        return (
            format!(
                "{dropped} found no slot ({:.2}%)",
                dropped as f64 * 100.0 / expected.max(1) as f64
            ),
            Style::Yellow,
        );
    }
    // Racy updates lose counts to races, a full LRU map to evictions.
    let (lost, none_lost) = if a.first.update.is_exact() {
        (" evicted", "exact (none evicted)")
    } else {
        (" updates", "exact (no race hit)")
    };
    match (a.first.expects_exact(), missing) {
        (false, 0) => (none_lost.into(), Style::Green),
        (false, n) if n > 0 => (
            format!(
                "lost {n}{} ({:.2}%)",
                if short { "" } else { lost },
                n as f64 * 100.0 / expected.max(1) as f64
            ),
            Style::Yellow,
        ),
        (_, 0) => ("exact".into(), Style::Green),
        (_, n) => (format!("MISMATCH {n:+}"), Style::Red),
    }
}

fn count(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// The value every cell shares in a column, if they all share one.
fn shared<T: PartialEq>(cells: &[Aggregate], field: fn(&Row) -> T) -> Option<T> {
    let first = field(&cells.first()?.first);
    cells
        .iter()
        .all(|a| field(&a.first) == first)
        .then_some(first)
}

/// End-to-end cost per exec over the repetitions: the mean and its 95%
/// interval when that leaves out zero; otherwise the smallest effect this
/// noise could have shown (the interval's half-width), never a point value.
/// `None` where there is no interval: no probe-free storm, or one pair.
fn e2e(a: &Aggregate, short: bool) -> Option<String> {
    let e = a.e2e_ns_per_exec?;
    Some(if e.excludes_zero() {
        format!("{:.0} [{:.0}, {:.0}]", e.mean, e.lo, e.hi)
    } else if short {
        format!("< {:.0}", e.half_width())
    } else {
        format!("< {:.0} at this noise", e.half_width())
    })
}

/// The summary, one section per kernel when the run spans several.
pub fn render(all: &[Row], view: View) -> String {
    let kernels = distinct(all.iter().map(Row::kernel_id));
    if kernels.len() < 2 {
        return render_kernel(all, view);
    }
    let mut by_kernel: std::collections::BTreeMap<Kernel, Vec<Row>> = Default::default();
    for r in all {
        by_kernel.entry(r.kernel_id()).or_default().push(r.clone());
    }
    let mut out = String::new();
    for kernel in kernels {
        let heading = format!(
            "== kernel {} ({}) ==",
            t(&kernel.release),
            timing(kernel.timing)
        );
        out.push('\n');
        out.push_str(&lines(&heading, view, Style::Bold));
        out.push_str(&render_kernel(&by_kernel[&kernel], view));
    }
    out
}

fn timing(timing: Timing) -> &'static str {
    match timing {
        Timing::Emulated => {
            "guest under software emulation: counts are real, times are emulation's"
        }
        Timing::Native => "native",
    }
}

/// `text` as lines of the view: wrapped to its columns, if it has any.
fn lines(text: &str, view: View, style: Style) -> String {
    let wrapped = match view.columns {
        Some(width) => wrap(text, width),
        None => text.to_string(),
    };
    wrapped
        .lines()
        .map(|l| view.paint.paint(style, l) + "\n")
        .collect()
}

/// `text` broken at spaces into lines of at most `width` characters, the
/// lines after the first indented by two; a word longer than a line keeps
/// a line of its own.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    // Split at every space, so runs of spaces inside a line are kept.
    for word in text.split(' ') {
        let has_word = !line.trim().is_empty();
        if has_word && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = "  ".into();
        } else if has_word {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(line.trim_end());
    out
}

fn render_kernel(all: &[Row], view: View) -> String {
    let cells = aggregate(all);
    let Some(first) = cells.first().map(|a| &a.first) else {
        return "no cells were measured\n".into();
    };
    // Columns that hold one value for the whole run move to the title line.
    let backend = shared(&cells, |r| r.backend.clone());
    let attach = shared(&cells, |r| r.attach);
    let mut title = Vec::new();
    if let Some(hot) = cells.iter().find(|a| a.first.method == Method::Hot) {
        let r = &hot.first;
        title.push(format!(
            "hot: {} workers fire a failing exec syscall in rounds with and without the program, \
             until each ns/event is within +-{:.0}% (or its time is up)",
            workers(&cells, Method::Hot),
            r.precision_target.unwrap_or(0.0) * 100.0
        ));
    }
    if let Some(storm) = cells.iter().find(|a| a.first.method == Method::Storm) {
        let r = &storm.first;
        let repetitions = cells
            .iter()
            .filter(|a| a.first.method == Method::Storm)
            .map(|a| a.repetitions)
            .max()
            .unwrap_or(1);
        title.push(format!(
            "storm: {} workers x {} execs of `{}` ({}), {repetitions} repetition(s) per cell (counts summed over them)",
            workers(&cells, Method::Storm), r.execs_per_worker, t(&r.target), t(&r.spawn)
        ));
    }
    title.push(format!("filter {}", t(&first.filter)));
    if first.timing == Timing::Emulated {
        title.push(format!(
            "kernel {} ({})",
            t(&first.kernel),
            timing(first.timing)
        ));
    }
    title.extend(
        backend
            .as_ref()
            .map(|b| format!("backend {} ({})", t(b), t(&first.backend_version))),
    );
    title.extend(attach.map(|a| format!("attach {a}")));
    let mut out = lines(&title.join("; "), view, Style::Bold);
    if let Some(machine) = machine_noise(all) {
        out.push_str(&lines(&machine, view, Style::Plain));
    }
    if let Some(filter) = filter_cost(all) {
        out.push_str(&lines(&filter, view, Style::Plain));
    }
    out.push('\n');
    let shared = Shared {
        backend: backend.is_some(),
        attach: attach.is_some(),
    };
    out.push_str(&match view.columns {
        Some(width) => narrow(&cells, shared, width, view.paint),
        None => wide(&cells, shared, view.paint),
    });
    out.push_str(&contention(&cells, shared, view));
    out.push_str(&tool_versus_loaders(&cells, shared, view));
    out
}

/// The worker counts of `method`'s cells: "2", or "1, 2, 4" for a sweep.
fn workers(cells: &[Aggregate], method: Method) -> String {
    let counts = ascending(
        cells
            .iter()
            .filter(|a| a.first.method == method)
            .map(|a| a.first.workers),
    );
    let counts: Vec<String> = counts.iter().map(u32::to_string).collect();
    counts.join(", ")
}

/// Whether the cells were measured at more than one worker count.
fn sweeps(cells: &[Aggregate]) -> bool {
    distinct(cells.iter().map(|a| a.first.workers)).len() > 1
}

/// A cell's label, with its worker count where the run swept them.
fn label(a: &Aggregate, sweep: bool) -> String {
    if sweep {
        format!("{} ({})", a.label(t), contention::workers(a.first.workers))
    } else {
        a.label(t)
    }
}

/// The hot strategies measured at several worker counts: ns/event at each
/// count, and how much it grows from the fewest workers to the most.
fn contention(cells: &[Aggregate], shared: Shared, view: View) -> String {
    let curves = contention::curves(cells);
    if curves.is_empty() {
        return String::new();
    }
    let counts = contention::worker_counts(&curves);
    let (fewest, most) = (counts[0], counts[counts.len() - 1]);
    let headers: Vec<String> = counts.iter().map(|&n| contention::workers(n)).collect();
    let growth = format!("{most} vs {fewest}");
    let mut columns = Vec::new();
    if !shared.backend {
        columns.push(("backend", Align::Left));
    }
    if !shared.attach {
        columns.push(("attach", Align::Left));
    }
    columns.push(("cell", Align::Left));
    columns.extend(headers.iter().map(|h| (h.as_str(), Align::Right)));
    columns.push((growth.as_str(), Align::Right));
    let mut table = Table::new(&columns);
    for curve in &curves {
        let r = &curve.first.first;
        let mut line = Vec::new();
        if !shared.backend {
            line.push(t(&r.backend));
        }
        if !shared.attach {
            line.push(r.attach.to_string());
        }
        line.push(r.strategy_name());
        for &n in &counts {
            line.push(Interval::text(curve.at(n), 0));
        }
        line.push(contention::describe_growth(curve, fewest, most));
        table.push(line);
    }
    let cpus = cells[0].first.cpus;
    // Too wide for the view: the counts between the ends go, one per CPU
    // last, the middle ones first.
    let mut left_out = Vec::new();
    if let Some(width) = view.columns {
        let mut middle: Vec<u32> = counts[1..counts.len() - 1].to_vec();
        middle.sort_by_key(|&n| (n as usize == cpus, n.abs_diff(most / 2)));
        for n in middle {
            if table.width() <= width {
                break;
            }
            table.drop_column(&contention::workers(n));
            left_out.push(n);
        }
    }
    let mut out = String::from("\n");
    out.push_str(&lines(
        &format!("contention (hot): ns/event [95% interval] by workers, on {cpus} CPUs"),
        view,
        Style::Bold,
    ));
    out.push_str(&table.render_painted(view.paint));
    if !left_out.is_empty() {
        let left_out: Vec<String> = ascending(left_out).iter().map(u32::to_string).collect();
        out.push_str(&lines(
            &format!(
                "left out to fit {} columns: {} workers (--wide shows every count)",
                view.columns.unwrap_or_default(),
                left_out.join(", ")
            ),
            view,
            Style::Plain,
        ));
    }
    out.push_str(&lines(
        &format!(
            "{growth}: ns/event at {most} workers over that at {fewest} [+- in quadrature]; in \
             noise: the intervals overlap, or the +- reaches 1. Past {cpus} workers, workers \
             share CPUs."
        ),
        view,
        Style::Plain,
    ));
    out
}

const STARTUP_MS: &str = "startup ms";

/// What the one-liner costs: each bpftrace cell against the same cell of
/// every hand-written loader measured, ns/event and startup, one line per
/// pair, grouped by attach point.
fn tool_versus_loaders(cells: &[Aggregate], shared: Shared, view: View) -> String {
    let pairs = tool_peers(cells);
    if pairs.is_empty() {
        return String::new();
    }
    let loaders = distinct(pairs.iter().map(|p| p.loader.first.backend.as_str()));
    let mut table = Table::new(&[
        ("cell", Align::Left),
        ("vs", Align::Left),
        ("ns/event", Align::Right),
        ("startup", Align::Right),
        (STARTUP_MS, Align::Right),
    ]);
    for attach in distinct(pairs.iter().map(|p| p.tool.first.attach)) {
        if !shared.attach {
            table.heading(attach.to_string());
        }
        for p in pairs.iter().filter(|p| p.tool.first.attach == attach) {
            let context = p.context(&pairs);
            let mut cell = p.tool.first.strategy_name();
            if !context.is_empty() {
                cell.push_str(&format!(" ({})", context.join(", ")));
            }
            let ns = match p.ns_per_event() {
                Some((tool, loader)) => match (tool.apart_from(&loader), tool.ratio_to(&loader)) {
                    (Some((r, u)), _) => times(r, Some(u)),
                    (None, Some(_)) => "inside the noise".into(),
                    (None, None) => "-".into(),
                },
                None => "-".into(),
            };
            let startup_ms = match (p.tool.startup_ms, p.loader.startup_ms) {
                (Some(tool), Some(loader)) => format!("{tool:.1} / {loader:.1}"),
                _ => "-".into(),
            };
            table.push(vec![
                cell,
                t(&p.loader.first.backend),
                ns,
                p.startup_ratio().map_or("-".into(), |r| times(r, None)),
                startup_ms,
            ]);
        }
    }
    let mut startup_note = format!("{STARTUP_MS}: {TOOL}'s / the loader's");
    if let Some(width) = view.columns.filter(|&w| table.width() > w) {
        table.drop_column(STARTUP_MS);
        startup_note = format!("{STARTUP_MS} left out to fit {width} columns (--wide shows it)");
    }
    let mut out = String::from("\n");
    out.push_str(&lines(
        &format!(
            "{TOOL} vs hand-written loaders ({}): {TOOL}'s figure over the loader's, same cell \
             otherwise",
            t(&loaders.join(", "))
        ),
        view,
        Style::Bold,
    ));
    out.push_str(&table.render_painted(view.paint));
    out.push_str(&lines(
        &format!(
            "ns/event: {TOOL}'s over the loader's (the figures above); +-: both intervals' \
             relative half-widths in quadrature (a spread, not a 95% interval); inside the noise: \
             the intervals overlap, or the +- reaches 1. startup: from nothing to a counting \
             program ({TOOL}: spawned to its probes attached; a loader: open+load+attach), one \
             sample per repetition (their median), so no interval; {startup_note}."
        ),
        view,
        Style::Plain,
    ));
    out
}

/// The machine's own noise over the run: the calibration workload's
/// scatter within cells (median over them) and its drift from the first
/// cell to the last.
fn machine_noise(rows: &[Row]) -> Option<String> {
    let cvs: Vec<f64> = rows.iter().filter_map(|r| r.machine_noise_cv).collect();
    let cv = crate::sample::Estimate::from_samples(&cvs)?;
    let mut line = format!(
        "machine noise: the calibration workload varies {:.1}% (cv, median over cells)",
        cv.median * 100.0
    );
    let levels: Vec<f64> = rows
        .iter()
        .filter_map(|r| r.machine_calibration_ns)
        .collect();
    if let (Some(first), Some(last)) = (levels.first(), levels.last()) {
        if levels.len() > 1 && *first > 0.0 {
            line.push_str(&format!(
                ", drifting {:+.1}% from the first cell to the last",
                (last / first - 1.0) * 100.0
            ));
        }
    }
    Some(line)
}

/// The cgroup filter's cost, as the run measured it once (see
/// `hot::filter_cost`), on the cell it names: the run's first hot counter.
pub fn filter_cost(rows: &[Row]) -> Option<String> {
    let r = rows.iter().find(|r| r.filter_cost_ns_median.is_some())?;
    let (m, lo, hi) = (
        r.filter_cost_ns_median?,
        r.filter_cost_ns_ci95_lo?,
        r.filter_cost_ns_ci95_hi?,
    );
    // The run's first hot counter, at one worker per CPU where the run has
    // that count, else at its most (`run::RunOptions::main_spec`).
    let hot: Vec<&Row> = rows
        .iter()
        .filter(|r| {
            r.method == Method::Hot && !r.map.is_stream() && r.keys.get() == 1 && r.expects_exact()
        })
        .collect();
    let workers = hot
        .iter()
        .find(|r| r.workers as usize == r.cpus)
        .or_else(|| hot.iter().max_by_key(|r| r.workers))
        .map(|r| r.workers);
    let on = hot
        .first()
        .zip(workers)
        .map(|(r, n)| {
            format!(
                " on {} {}, {}",
                t(&r.backend),
                r.strategy_name(),
                contention::workers(n)
            )
        })
        .unwrap_or_default();
    let verdict = if lo <= 0.0 && hi >= 0.0 {
        ": within the noise of zero"
    } else {
        ""
    };
    Some(format!(
        "cgroup filter: {m:+.1} ns/event [95% interval {lo:+.1}, {hi:+.1}]{verdict} (hot rounds \
         filtered by cgroup minus unfiltered, paired{on})"
    ))
}

/// Cells named one by one before they are counted in one line instead.
const SHORT_NAMED: usize = 4;

/// Hot cells that did not reach their precision, and why in one clause:
/// the machine itself when its noise is above the target. Past
/// [`SHORT_NAMED`] cells, one line counts them, with the ranges.
fn short_of_precision(cells: &[Aggregate]) -> Vec<String> {
    let sweep = sweeps(cells);
    // (cell, target, reached, the machine's cv when above the target)
    let short: Vec<(&Aggregate, f64, f64, Option<f64>)> = cells
        .iter()
        .filter(|a| a.is_ok())
        .filter_map(|a| {
            let r = &a.first;
            let (target, reached) = (r.precision_target?, r.precision_reached?);
            let noisy = r.machine_noise_cv.filter(|cv| *cv > target);
            (reached > target).then_some((a, target, reached, noisy))
        })
        .collect();
    if short.len() > SHORT_NAMED {
        let range = |values: &mut dyn Iterator<Item = f64>| {
            let v: Vec<f64> = values.collect();
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if hi - lo < 0.0005 {
                format!("{:.1}%", lo * 100.0)
            } else {
                format!("{:.1}-{:.1}%", lo * 100.0, hi * 100.0)
            }
        };
        let noisy: Vec<f64> = short.iter().filter_map(|s| s.3).collect();
        let targets = distinct(short.iter().map(|s| format!("{:.0}%", s.1 * 100.0)));
        let mut line = format!(
            "{} of {} hot cells did not reach +-{}: they reached +-{}",
            short.len(),
            cells
                .iter()
                .filter(|a| a.first.method == Method::Hot && a.is_ok())
                .count(),
            targets.join("/"),
            range(&mut short.iter().map(|s| s.2)),
        );
        if !noisy.is_empty() {
            line.push_str(&format!(
                "; in {} of them the machine itself varied more than the target ({} cv)",
                noisy.len(),
                range(&mut noisy.iter().copied())
            ));
        }
        if noisy.len() < short.len() {
            line.push_str(&format!(
                "; in {} their time (--max-time) ran out first",
                short.len() - noisy.len()
            ));
        }
        line.push_str(" (precision_reached and machine_noise_cv in the CSV)");
        return vec![line];
    }
    short
        .into_iter()
        .map(|(a, target, reached, noisy)| {
            let cause = match noisy {
                Some(cv) => format!(
                    "the machine itself varied {:.1}% (cv) during it, more than the target",
                    cv * 100.0
                ),
                None => "its time (--max-time) ran out first".to_string(),
            };
            format!(
                "{} reached +-{:.1}%, not +-{:.0}%: {cause}",
                label(a, sweep),
                reached * 100.0,
                target * 100.0
            )
        })
        .collect()
}

/// Which columns moved to the title.
#[derive(Clone, Copy)]
struct Shared {
    backend: bool,
    attach: bool,
}

/// Every column, one line per cell, as wide as it takes.
fn wide(cells: &[Aggregate], shared: Shared, paint: Paint) -> String {
    let first = &cells[0].first;
    let mut columns = Vec::new();
    if !shared.backend {
        columns.push(("backend", Align::Left));
    }
    if !shared.attach {
        columns.push(("attach", Align::Left));
    }
    let methods = distinct(cells.iter().map(|a| a.first.method)).len() > 1;
    if methods {
        columns.push(("method", Align::Left));
    }
    let sweep = sweeps(cells);
    if sweep {
        columns.push(("workers", Align::Right));
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
        ("startup ms", Align::Right),
        ("read us [95% CI]", Align::Right),
        ("e2e ns/exec [95% CI]", Align::Right),
        ("map KiB", Align::Right),
        ("loader heap KiB", Align::Right),
    ]);
    let mut table = Table::new(&columns);
    for a in cells {
        let r = &a.first;
        let mut line = Vec::new();
        if !shared.backend {
            line.push(t(&r.backend));
        }
        if !shared.attach {
            line.push(r.attach.to_string());
        }
        if methods {
            line.push(r.method.to_string());
        }
        if sweep {
            line.push(r.workers.to_string());
        }
        let (verdict, style) = verdict(a, false);
        let e2e = match (r.baseline_wall_s, e2e(a, false)) {
            (None, _) => "-".into(),
            (Some(_), None) => "one pair: no interval".into(),
            (Some(_), Some(e)) => e,
        };
        line.extend([
            r.map.to_string(),
            format!("{}{}", r.update, r.variant().suffix()),
            count(a.counted),
            count(a.expected),
            count(a.dropped),
        ]);
        let mut styled: Vec<(String, Style)> =
            line.into_iter().map(|c| (c, Style::Plain)).collect();
        styled.push((verdict, style));
        styled.extend(
            [
                Interval::text(a.ns_per_event, 0),
                Interval::text(a.ns_per_run, 0),
                match (r.verified_insns, r.xlated_insns, r.jited_bytes) {
                    (Some(v), Some(x), Some(j)) => format!("{v}/{x}, {j}"),
                    _ => "-".into(),
                },
                a.startup_ms.map_or("-".into(), |ms| format!("{ms:.1}")),
                Interval::text(a.read_us, 2),
                e2e,
                r.map_bytes
                    .map_or("-".into(), |b| format!("{:.1}", b as f64 / 1024.0)),
                r.loader_heap_bytes
                    .map_or("-".into(), |b| format!("{:.1}", b as f64 / 1024.0)),
            ]
            .map(|c| (c, Style::Plain)),
        );
        table.push_styled(styled);
    }
    let mut out = table.render_painted(paint);
    for a in cells.iter().filter(|a| !a.error.is_empty()) {
        out.push_str(&format!("{}: {}\n", label(a, sweep), t(&a.error)));
    }
    for a in cells.iter().filter(|a| !a.outliers.is_empty()) {
        out.push_str(&format!(
            "warning: {}: repetition(s) {:?} are outliers in ns/run (outside 1.5 IQR of the others): was the machine busy?\n",
            label(a, sweep),
            a.outliers
        ));
    }
    let brackets = distinct(cells.iter().map(|a| a.bracket.describe()));
    out.push_str(&format!(
        "ns/event: in-kernel (bpf_stats) time per counted event, filtered-out runs included; ns/run: per program run; \
         ns/event has the stats' own clock cost (an empty program's ns/run, \
         `stats_bias_ns` in the CSV) taken out, ns/run has not. \
         Timings are the {}. e2e: storm wall time with minus without the probe, per exec, both storms under the same \
         oracles and stats; the mean over repetitions [95% t-interval], or `< X` when the interval holds zero \
         (X: the smallest effect this noise could show). startup: ms from nothing to a counting \
         program (a loader's open+load+attach; a tool's spawn to its probes attached), median of \
         the repetitions.\n",
        brackets.join("; or the ")
    ));
    if first.timing == Timing::Emulated {
        out.push_str(NOT_RANKED);
    } else if let Some(line) = cheapest(cells) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

const NOT_RANKED: &str = "times above are QEMU's software emulation, not this CPU's: not ranked\n";

const VERSUS: &str = "vs cheapest";
const E2E: &str = "e2e ns/exec";

/// The cells a ratio compares: one attach point's counters, its counters
/// at each count of keys (a key per event answers another question), its
/// streams woken as records come (a stream pays for a record and a wakeup),
/// or its streams seen late (batched or polled, which trade the wakeup for
/// latency; `recommend` ranks them apart too).
fn groups(cells: &[Aggregate], attach_shared: bool) -> Vec<(String, Vec<&Aggregate>)> {
    let mut out = Vec::new();
    let methods = distinct(cells.iter().map(|a| a.first.method));
    let workers = ascending(cells.iter().map(|a| a.first.workers));
    for method in &methods {
        for &count in &workers {
            for attach in distinct(cells.iter().map(|a| a.first.attach)) {
                let keyed = ascending(cells.iter().map(|a| a.first.keys.get()).filter(|&k| k > 1));
                let kinds = ["counters".to_string()]
                    .into_iter()
                    .chain(keyed.iter().map(|k| format!("counters per key ({k} keys)")))
                    .chain(["streams".to_string(), "streams seen late".to_string()]);
                for kind in kinds {
                    let members: Vec<&Aggregate> = cells
                        .iter()
                        .filter(|a| a.first.method == *method && a.first.attach == attach)
                        .filter(|a| a.first.workers == count)
                        .filter(|a| delivery(a) == kind)
                        .collect();
                    if members.is_empty() {
                        continue;
                    }
                    let mut name = Vec::new();
                    if methods.len() > 1 {
                        name.push(method.to_string());
                    }
                    if workers.len() > 1 {
                        name.push(contention::workers(count));
                    }
                    if !attach_shared {
                        name.push(attach.to_string());
                    }
                    name.push(kind);
                    out.push((name.join(": "), members));
                }
            }
        }
    }
    out
}

/// How a cell counts and its count reaches user space, as its group is
/// named.
fn delivery(a: &Aggregate) -> String {
    match (Wakeup::of(a.first.map, a.first.update), a.first.keys.get()) {
        (None, 1) => "counters".into(),
        (None, keys) => format!("counters per key ({keys} keys)"),
        (Some(w), _) if w.is_deferred() => "streams seen late".into(),
        (Some(_), _) => "streams".into(),
    }
}

/// The group's exact cell with the lowest ns/event, every event counted
/// (none refused by a full map): what the others are measured against.
fn baseline<'a>(members: &[&'a Aggregate]) -> Option<(&'a Aggregate, Interval)> {
    members
        .iter()
        .filter(|a| a.is_exact_counter() && a.dropped.unwrap_or(0) == 0)
        .filter_map(|a| Some((*a, a.ns_per_event?)))
        .min_by(|a, b| a.1.point.total_cmp(&b.1.point))
}

/// A cell's cost against its group's baseline, in words and colour.
fn versus(a: &Aggregate, base: Option<(&Aggregate, Interval)>) -> (String, Style) {
    let none = ("-".to_string(), Style::Plain);
    let (Some((base, base_ns)), Some(ns)) = (base, a.ns_per_event.filter(|_| a.is_ok())) else {
        return none;
    };
    if std::ptr::eq(a, base) {
        return ("cheapest".into(), Style::Bold);
    }
    // Per counted event, a full map's figure is spread over fewer events
    // than it ran for: not a cost to set beside the others.
    let lost = a.dropped.unwrap_or(0) > 0 || a.missing.unwrap_or(0) > 0;
    if a.first.keys.get() > 1 && lost {
        return none;
    }
    if ns.ratio_to(&base_ns).is_none() {
        return none;
    }
    // Overlapping intervals are a tie everywhere else (`recommend`, the
    // wide table); a ratio whose own interval holds 1 is one too.
    let Some((r, u)) = ns.apart_from(&base_ns) else {
        return ("~1x (in noise)".into(), Style::Plain);
    };
    (times(r, Some(u)), Style::Plain)
}

/// A ratio to about three figures, with its +- where it has one.
pub(crate) fn times(r: f64, u: Option<f64>) -> String {
    let digits = if r < 10.0 {
        2
    } else if r < 100.0 {
        1
    } else {
        0
    };
    match u {
        Some(u) => format!("{r:.digits$} +- {u:.digits$}x"),
        None => format!("{r:.digits$}x"),
    }
}

/// The cells that matter for choosing, in as few columns as fit `width`.
fn narrow(cells: &[Aggregate], shared: Shared, width: usize, paint: Paint) -> String {
    let ranked = cells[0].first.timing == Timing::Native;
    let mut columns = Vec::new();
    if !shared.backend {
        columns.push(("backend", Align::Left));
    }
    columns.extend([
        ("cell", Align::Left),
        ("verdict", Align::Left),
        ("ns/event", Align::Right),
    ]);
    if ranked {
        columns.push((VERSUS, Align::Right));
    }
    columns.push((E2E, Align::Right));
    let mut table = Table::new(&columns);
    let groups = groups(cells, shared.attach);
    let mut any_e2e = false;
    for (name, members) in &groups {
        if groups.len() > 1 {
            table.heading(name.clone());
        }
        let base = baseline(members);
        for a in members {
            let r = &a.first;
            let mut line = Vec::new();
            if !shared.backend {
                line.push((t(&r.backend), Style::Plain));
            }
            line.push((r.strategy_name(), Style::Plain));
            line.push(verdict(a, true));
            line.push((Interval::text(a.ns_per_event, 0), Style::Plain));
            if ranked {
                line.push(versus(a, base));
            }
            let e2e = e2e(a, true);
            any_e2e |= e2e.is_some();
            line.push((e2e.unwrap_or_else(|| "-".into()), Style::Plain));
            table.push_styled(line);
        }
    }
    let mut left_out = None;
    if !any_e2e {
        table.drop_column(E2E);
    } else if table.width() > width {
        table.drop_column(E2E);
        left_out = Some(format!(", and {E2E} (left out to fit {width} columns)"));
    }
    let mut out = table.render_painted(paint);
    let view = View {
        columns: Some(width),
        paint,
    };
    // A kernel that refuses a hook refuses it for every map: say it once.
    let refusals = distinct(
        cells
            .iter()
            .filter(|a| a.status == Status::Unsupported)
            .map(|a| (t(&a.first.backend), a.first.attach)),
    );
    for (backend, attach) in refusals {
        let refused: Vec<&Aggregate> = cells
            .iter()
            .filter(|a| a.status == Status::Unsupported)
            .filter(|a| t(&a.first.backend) == backend && a.first.attach == attach)
            .collect();
        let note = format!(
            "{backend} {attach} ({} cell(s)): {}",
            refused.len(),
            t(&refused[0].error)
        );
        out.push_str(&lines(&note, view, Style::Plain));
    }
    for a in cells
        .iter()
        .filter(|a| !a.error.is_empty() && a.status != Status::Unsupported)
    {
        out.push_str(&lines(
            &format!("{}: {}", label(a, sweeps(cells)), t(&a.error)),
            view,
            Style::Plain,
        ));
    }
    for short in short_of_precision(cells) {
        out.push_str(&lines(&format!("note: {short}"), view, Style::Yellow));
    }
    for a in cells.iter().filter(|a| !a.outliers.is_empty()) {
        let warning = format!(
            "warning: {}: repetition(s) {:?} are ns/run outliers (outside 1.5 IQR): was the machine busy?",
            label(a, sweeps(cells)),
            a.outliers
        );
        out.push_str(&lines(&warning, view, Style::Yellow));
    }
    // Refused cells have no timings: their bracket would say nothing.
    let brackets = distinct(
        cells
            .iter()
            .filter(|a| a.ns_per_event.is_some())
            .map(|a| a.bracket.describe()),
    );
    let mut notes = Vec::new();
    if !brackets.is_empty() {
        notes.push(format!(
            "ns/event: in-kernel time per counted event (bpf_stats, filtered-out runs included, \
             the stats' own clock cost taken out): the {}.",
            brackets.join("; or the ")
        ));
    }
    if ranked {
        notes.push(format!(
            "{VERSUS}: ns/event over that of its group's cheapest exact cell; +-: both 95% intervals' \
             relative half-widths in quadrature; in noise: the intervals overlap, or the +- reaches 1."
        ));
    }
    if any_e2e && left_out.is_none() {
        notes.push(format!(
            "{E2E}: storm wall time per exec with minus without the probe [95% t-interval]; \
             < X: inside the noise, X the smallest effect it could show."
        ));
    }
    notes.push(format!(
        "--wide adds counts, ns/run, program size, load, read and memory figures{}.",
        left_out.unwrap_or_default()
    ));
    for note in notes {
        out.push_str(&lines(&note, view, Style::Plain));
    }
    if !ranked {
        out.push_str(NOT_RANKED);
    }
    out
}

/// Names the cheapest cell in-kernel by ns per counted event, and every
/// cell whose 95% interval overlaps its own: those differences are inside
/// the noise.
fn cheapest(cells: &[Aggregate]) -> Option<String> {
    let ranking = Ranking::of(cells);
    let sweep = sweeps(cells);
    let timed: Vec<(&Aggregate, Interval)> = cells
        .iter()
        .filter(|a| ranking.admits(a) && a.is_exact_counter())
        .filter_map(|a| Some((a, a.ns_per_event?)))
        .collect();
    if timed.len() < 2 {
        return None;
    }
    let (best, figure) = timed
        .iter()
        .min_by(|a, b| a.1.point.total_cmp(&b.1.point))?;
    let ties: Vec<String> = timed
        .iter()
        .filter(|(a, i)| !std::ptr::eq(*a, *best) && i.lo <= figure.hi)
        .map(|(a, _)| label(a, sweep))
        .collect();
    let mut line = format!(
        "cheapest exact counter in-kernel: {} at {:.0} ns/event [{:.0}, {:.0}]",
        label(best, sweep),
        figure.point,
        figure.lo,
        figure.hi
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

#[cfg(test)]
mod tests {
    use bpfstorm_common::{MapKind, UpdateMode};

    use super::*;
    use crate::export::csv::Status;

    fn row(map: MapKind, update: UpdateMode, missing: i64, ns: f64) -> Row {
        Row {
            backend: "libbpf".into(),
            map,
            update,
            expected: Some(1000),
            counted: Some((1000 - missing) as u64),
            missing: Some(missing),
            exact: Some(missing == 0),
            ns_per_event_median: Some(ns),
            ns_per_event_ci95_lo: Some(ns - 5.0),
            ns_per_event_ci95_hi: Some(ns + 5.0),
            ..Row::default()
        }
    }

    fn verdict_of(r: Row) -> String {
        verdict(&aggregate(&[r])[0], false).0
    }

    const WIDE: View = View {
        columns: None,
        paint: Paint::PLAIN,
    };

    #[test]
    fn verdicts_tell_races_from_mismatches() {
        assert_eq!(
            verdict_of(row(MapKind::Array, UpdateMode::Atomic, 0, 50.0)),
            "exact"
        );
        assert_eq!(
            verdict_of(row(MapKind::Array, UpdateMode::Atomic, -2, 50.0)),
            "MISMATCH -2"
        );
        assert_eq!(
            verdict_of(row(MapKind::Array, UpdateMode::Racy, 0, 50.0)),
            "exact (no race hit)"
        );
        assert_eq!(
            verdict_of(row(MapKind::Array, UpdateMode::Racy, 5, 50.0)),
            "lost 5 updates (0.50%)"
        );
        let refused = Row {
            status: Status::Unsupported,
            ..row(MapKind::Ringbuf, UpdateMode::Stream, 0, 50.0)
        };
        assert_eq!(verdict_of(refused), "unsupported");
    }

    #[test]
    fn the_cheapest_exact_counter_is_named_with_the_cells_inside_its_noise() {
        let cells = aggregate(&[
            row(MapKind::Array, UpdateMode::Atomic, 0, 100.0),
            row(MapKind::PercpuArray, UpdateMode::Percpu, 0, 50.0),
            row(MapKind::Hash, UpdateMode::Atomic, 0, 58.0),
            row(MapKind::Array, UpdateMode::Racy, 0, 10.0),
        ]);
        assert_eq!(
            cheapest(&cells).unwrap(),
            "cheapest exact counter in-kernel: libbpf tp_sys_enter_execve percpu_array/percpu at 50 \
             ns/event [45, 55]; inside the noise of: libbpf tp_sys_enter_execve hash/atomic \
             (95% intervals overlap, no ranking among them)"
        );
        let apart = aggregate(&[
            row(MapKind::Array, UpdateMode::Atomic, 0, 100.0),
            row(MapKind::PercpuArray, UpdateMode::Percpu, 0, 50.0),
        ]);
        assert!(cheapest(&apart)
            .unwrap()
            .ends_with("; its 95% interval overlaps no other cell's"));
        assert_eq!(cheapest(&apart[..1]), None, "one cell ranks nothing");
    }

    #[test]
    fn shared_columns_move_to_the_title_and_emulated_runs_are_not_ranked() {
        let rows = [
            row(MapKind::Array, UpdateMode::Atomic, 0, 100.0),
            row(MapKind::PercpuArray, UpdateMode::Percpu, 0, 50.0),
        ];
        let text = render(&rows, WIDE);
        let title = text.lines().next().unwrap();
        assert!(title.contains("; backend libbpf ("), "{title}");
        assert!(title.ends_with("; attach tp_sys_enter_execve"), "{title}");
        assert!(text.contains("cheapest exact counter in-kernel"), "{text}");

        let guest = rows.map(|r| Row {
            timing: Timing::Emulated,
            ..r
        });
        let text = render(&guest, WIDE);
        assert!(!text.contains("cheapest"), "{text}");
        assert!(text.contains("not ranked"), "{text}");
    }

    #[test]
    fn runs_over_several_kernels_get_a_section_each() {
        let host = row(MapKind::Array, UpdateMode::Atomic, 0, 100.0);
        let guest = Row {
            kernel: "6.1".into(),
            timing: Timing::Emulated,
            ..host.clone()
        };
        let text = render(&[host, guest], View::default());
        assert!(text.contains("\n== kernel  (native) ==\n"), "{text}");
        assert!(
            text.contains("\n== kernel 6.1 (guest under software emulation"),
            "{text}"
        );
    }

    fn interval(point: f64, lo: f64, hi: f64) -> Interval {
        Interval { point, lo, hi }
    }

    #[test]
    fn ratios_carry_both_intervals_in_quadrature() {
        let (r, u) = interval(100.0, 95.0, 105.0)
            .ratio_to(&interval(50.0, 45.0, 55.0))
            .unwrap();
        assert_eq!(r, 2.0);
        // 2 * sqrt(0.05^2 + 0.1^2)
        assert!((u - 0.2236).abs() < 1e-4, "{u}");
        // The wider side of an uneven interval counts.
        let (_, u) = interval(100.0, 99.0, 120.0)
            .ratio_to(&interval(100.0, 100.0, 100.0))
            .unwrap();
        assert!((u - 0.2).abs() < 1e-9, "{u}");
        assert_eq!(
            interval(1.0, 0.0, 2.0).ratio_to(&interval(0.0, -1.0, 1.0)),
            None
        );
    }

    #[test]
    fn costs_against_the_cheapest_say_when_they_are_inside_the_noise() {
        let cells = aggregate(&[
            row(MapKind::Array, UpdateMode::Atomic, 0, 100.0),
            row(MapKind::PercpuArray, UpdateMode::Percpu, 0, 50.0),
            row(MapKind::Hash, UpdateMode::Atomic, 0, 58.0),
            row(MapKind::Array, UpdateMode::Racy, 0, 10.0),
        ]);
        let members: Vec<&Aggregate> = cells.iter().collect();
        let base = baseline(&members);
        let text: Vec<String> = cells.iter().map(|a| versus(a, base).0).collect();
        assert_eq!(
            text,
            [
                "2.00 +- 0.22x",
                "cheapest",
                "~1x (in noise)",
                "0.20 +- 0.10x"
            ]
        );
    }

    #[test]
    fn words_wrap_at_the_width_and_keep_inner_spaces() {
        assert_eq!(wrap("aa bb  cc dd", 8), "aa bb\n  cc dd");
        assert_eq!(wrap("a  b", 80), "a  b");
        assert_eq!(wrap("abcdefghij k", 4), "abcdefghij\n  k");
    }

    #[test]
    fn the_narrow_table_fits_its_columns_and_groups_streams_apart() {
        let mut rows = vec![
            row(MapKind::Array, UpdateMode::Atomic, 0, 100.0),
            row(MapKind::Array, UpdateMode::Racy, 7, 40.0),
            row(MapKind::PercpuArray, UpdateMode::Percpu, 0, 50.0),
            row(MapKind::PerfEventArray, UpdateMode::Stream, 0, 900.0),
            row(MapKind::Ringbuf, UpdateMode::Stream, 0, 600.0),
        ];
        for r in &mut rows {
            r.baseline_wall_s = Some(1.0);
        }
        // A second repetition gives the end-to-end cost an interval.
        let again: Vec<Row> = rows
            .iter()
            .map(|r| Row {
                repetition: 1,
                ..r.clone()
            })
            .collect();
        rows.extend(again);
        for (i, r) in rows.iter_mut().enumerate() {
            r.e2e_ns_per_exec = Some(123_456.0 + i as f64 * 1000.0);
        }
        let text = render(&rows, View::default());
        assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
        let header = text.lines().find(|l| l.starts_with("cell ")).unwrap();
        for column in ["verdict", "ns/event", VERSUS, E2E] {
            assert!(header.contains(column), "{header}");
        }
        let line = |cell: &str| {
            text.lines()
                .find(|l| l.starts_with(cell))
                .unwrap_or_else(|| panic!("no {cell}:\n{text}"))
        };
        assert!(line("array/racy ").contains("lost 14 (0.70%)"), "{text}");
        assert!(line("percpu_array/percpu ").contains("cheapest"), "{text}");
        assert!(line("ringbuf/stream ").contains("cheapest"), "{text}");
        assert!(
            line("perf_event_array/stream ").contains("1.50 +- "),
            "{text}"
        );
        let streams = text.find("\nstreams\n").expect("a streams group");
        assert!(text.find("\ncounters\n").unwrap() < streams, "{text}");

        let narrow = render(
            &rows,
            View {
                columns: Some(60),
                ..View::default()
            },
        );
        let header = narrow.lines().find(|l| l.starts_with("cell ")).unwrap();
        assert!(!header.contains(E2E), "{narrow}");
        assert!(
            narrow.contains("e2e ns/exec (left out to fit 60"),
            "{narrow}"
        );
        assert!(!narrow.contains('\x1b'));
        let painted = render(
            &rows,
            View {
                paint: Paint { colour: true },
                ..View::default()
            },
        );
        assert!(painted.contains("\x1b[32mexact\x1b[0m"), "{painted}");
    }

    fn hot(map: MapKind, update: UpdateMode, workers: u32, ns: f64) -> Row {
        Row {
            method: Method::Hot,
            workers,
            cpus: 2,
            precision_target: Some(0.05),
            precision_reached: Some(0.2),
            machine_noise_cv: Some(0.1),
            ..row(map, update, 0, ns)
        }
    }

    #[test]
    fn a_sweep_groups_by_workers_and_shows_how_each_cost_grows() {
        let mut rows = Vec::new();
        for (workers, atomic, percpu) in [(1, 60.0, 50.0), (2, 100.0, 51.0), (4, 180.0, 52.0)] {
            rows.push(hot(MapKind::Array, UpdateMode::Atomic, workers, atomic));
            rows.push(hot(
                MapKind::PercpuArray,
                UpdateMode::Percpu,
                workers,
                percpu,
            ));
        }
        let text = render(&rows, View::default());
        assert!(text.contains("hot: 1, 2, 4 workers fire"), "{text}");
        for group in [
            "1 worker: counters",
            "2 workers: counters",
            "4 workers: counters",
        ] {
            assert!(text.contains(group), "{group}: {text}");
        }
        let contention = text.split("contention (hot)").nth(1).expect(&text);
        let line = |cell: &str| {
            contention
                .lines()
                .find(|l| l.starts_with(cell))
                .unwrap_or_else(|| panic!("{cell}: {text}"))
                .to_string()
        };
        assert!(line("array/atomic").contains("3.00 +- "), "{text}");
        assert!(
            line("percpu_array/percpu").ends_with("1.04 x, in noise"),
            "{text}"
        );
        assert!(contention.contains("4 vs 1"), "{text}");
        // Six cells short of precision are counted in one line, not named.
        assert!(
            text.contains("6 of 6 hot cells did not reach +-5%: they reached +-20.0%; in 6 of them the machine"),
            "{text}"
        );
        assert!(!text.contains("reached +-20.0%, not"), "{text}");
    }

    #[test]
    fn a_wide_sweep_leaves_out_middle_counts_to_fit_and_says_so() {
        let counts = [1, 2, 4, 8, 16, 32, 64, 128];
        let rows: Vec<Row> = counts
            .iter()
            .map(|&n| Row {
                cpus: 64,
                ..hot(MapKind::Array, UpdateMode::Atomic, n, 100.0 + n as f64)
            })
            .collect();
        let text = render(&rows, View::default());
        let contention = text.split("contention (hot)").nth(1).expect(&text);
        assert!(
            contention
                .lines()
                .all(|l| l.chars().count() <= DEFAULT_COLUMNS),
            "{text}"
        );
        let header = contention.lines().nth(1).unwrap();
        for kept in ["1 worker ", "64 workers", "128 workers", "128 vs 1"] {
            assert!(header.contains(kept), "{kept}: {header}");
        }
        assert!(
            contention.contains("left out to fit 100 columns: "),
            "{text}"
        );
        let wide = render(&rows, WIDE);
        let header = wide
            .split("contention (hot)")
            .nth(1)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap();
        assert!(
            header.contains("16 workers"),
            "--wide keeps every count: {header}"
        );
    }

    fn by(backend: &str, map: MapKind, update: UpdateMode, ns: f64, startup_ms: f64) -> Row {
        Row {
            backend: backend.into(),
            startup_ms: Some(startup_ms),
            ..row(map, update, 0, ns)
        }
    }

    #[test]
    fn bpftrace_is_set_beside_each_hand_written_loader_of_the_same_cell() {
        let rows = [
            by(TOOL, MapKind::PercpuArray, UpdateMode::Percpu, 100.0, 812.0),
            by(
                "libbpf",
                MapKind::PercpuArray,
                UpdateMode::Percpu,
                50.0,
                20.3,
            ),
            by("c", MapKind::PercpuArray, UpdateMode::Percpu, 52.0, 8.12),
            by(TOOL, MapKind::Hash, UpdateMode::Racy, 60.0, 900.0),
            by("libbpf", MapKind::Hash, UpdateMode::Racy, 58.0, 25.0),
            // No bpftrace peer: no line.
            by("libbpf", MapKind::Array, UpdateMode::Atomic, 40.0, 20.0),
        ];
        let text = render(&rows, View::default());
        assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
        let section = text
            .split("bpftrace vs hand-written loaders (libbpf, c): ")
            .nth(1)
            .unwrap_or_else(|| panic!("{text}"));
        let line = |cell: &str, vs: &str| {
            section
                .lines()
                .find(|l| l.starts_with(cell) && l.split_whitespace().nth(1) == Some(vs))
                .unwrap_or_else(|| panic!("{cell} vs {vs}: {text}"))
                .split_whitespace()
                .skip(2)
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            line("percpu_array/percpu", "libbpf"),
            "2.00 +- 0.22x 40.0x 812.0 / 20.3"
        );
        assert_eq!(
            line("percpu_array/percpu", "c"),
            "1.92 +- 0.21x 100x 812.0 / 8.1"
        );
        assert_eq!(
            line("hash/racy", "libbpf"),
            "inside the noise 36.0x 900.0 / 25.0"
        );
        assert!(!section.contains("array/atomic"), "{section}");
        assert!(section.contains("not a 95% interval"), "{section}");
        assert!(section.contains("so no interval"), "{section}");

        let narrow = render(
            &rows,
            View {
                columns: Some(60),
                ..View::default()
            },
        );
        let section = narrow.split("bpftrace vs hand-written").nth(1).unwrap();
        assert!(section.lines().all(|l| l.chars().count() <= 60), "{narrow}");
        assert!(!section.contains("812.0 / 20.3"), "{narrow}");
        let words = section.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            words.contains("startup ms left out to fit 60 columns"),
            "{narrow}"
        );
    }

    #[test]
    fn no_bpftrace_or_no_peer_no_section() {
        let loaders = [
            by("libbpf", MapKind::Array, UpdateMode::Atomic, 40.0, 20.0),
            by("c", MapKind::Array, UpdateMode::Atomic, 41.0, 9.0),
        ];
        assert!(!render(&loaders, WIDE).contains("hand-written"));
        let unpaired = [
            by(TOOL, MapKind::PercpuArray, UpdateMode::Percpu, 100.0, 812.0),
            by("libbpf", MapKind::Array, UpdateMode::Atomic, 40.0, 20.0),
        ];
        assert!(!render(&unpaired, WIDE).contains("hand-written"));
        let guest = [
            by(TOOL, MapKind::Array, UpdateMode::Atomic, 100.0, 812.0),
            by("libbpf", MapKind::Array, UpdateMode::Atomic, 40.0, 20.0),
        ]
        .map(|r| Row {
            timing: Timing::Emulated,
            ..r
        });
        assert!(!render(&guest, WIDE).contains("hand-written"));
    }

    #[test]
    fn one_worker_count_has_no_contention_table() {
        let rows = [
            hot(MapKind::Array, UpdateMode::Atomic, 2, 100.0),
            hot(MapKind::PercpuArray, UpdateMode::Percpu, 2, 50.0),
        ];
        let text = render(&rows, View::default());
        assert!(!text.contains("contention"), "{text}");
        assert!(!text.contains("2 workers: counters"), "{text}");
        assert!(text.contains("reached +-20.0%, not +-5%"), "{text}");
    }
}
