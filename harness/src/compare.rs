//! `bpfstorm compare BASE.csv NEW.csv...`: per cell, the change in
//! in-kernel cost and accuracy, judged with both runs' intervals.

use std::collections::{BTreeMap, BTreeSet};

use crate::aggregate::{aggregate, distinct};
use crate::export::csv::Row;
use crate::export::escape;

/// The most kernels the by-kernel view sets side by side; the rest are
/// named as left out (a table a column per kernel is unreadable past it).
pub const MAX_KERNEL_COLUMNS: usize = 32;

/// The cell a row measured, whatever run it came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// Kernel and timing are empty when comparing one kernel with another
    /// (base vs new machine); a host can run the same kernel as a guest.
    pub kernel: String,
    pub timing: String,
    pub backend: String,
    pub attach: String,
    pub map: String,
    pub update: String,
    pub filter: String,
    pub target: String,
    pub spawn: String,
}

impl Key {
    /// The same cell with kernel and timing left out: the strategy and storm.
    pub fn strategy(mut self) -> Key {
        self.kernel.clear();
        self.timing.clear();
        self
    }

    pub fn of(row: &Row) -> Key {
        Key {
            kernel: row.kernel.clone(),
            timing: row.timing.clone(),
            backend: row.backend.clone(),
            attach: row.attach.clone(),
            map: row.map.clone(),
            update: row.update.clone(),
            filter: row.filter.clone(),
            target: row.target.clone(),
            spawn: row.spawn.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Faster,
    Slower,
    /// Intervals overlap, or the change is under the threshold.
    Same,
    /// Exact before, not now (or it stopped working): always a regression.
    AccuracyRegressed(String),
    AccuracyImproved,
    /// Not measured in one of the runs (or no timing to compare).
    NotComparable(String),
}

impl Verdict {
    pub fn is_regression(&self) -> bool {
        matches!(self, Verdict::Slower | Verdict::AccuracyRegressed(_))
    }

    pub fn describe(&self) -> String {
        match self {
            Verdict::Faster => "faster".into(),
            Verdict::Slower => "SLOWER (regression)".into(),
            Verdict::Same => "same within noise".into(),
            Verdict::AccuracyRegressed(why) => format!("ACCURACY REGRESSED: {why}"),
            Verdict::AccuracyImproved => "accuracy improved".into(),
            Verdict::NotComparable(why) => format!("not comparable: {why}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Change {
    pub key: Key,
    pub base: Option<Row>,
    pub new: Option<Row>,
    /// Relative change of the ns/run median, in percent.
    pub change_pct: Option<f64>,
    pub verdict: Verdict,
}

fn interval(r: &Row) -> Option<(f64, f64, f64)> {
    Some((
        r.ns_per_run_median?,
        r.ns_per_run_ci95_lo?,
        r.ns_per_run_ci95_hi?,
    ))
}

/// Judges one cell. `threshold_pct`: smaller changes count as the same even
/// when the intervals do not overlap.
pub fn judge(base: &Row, new: &Row, threshold_pct: f64) -> (Option<f64>, Verdict) {
    let measured = |r: &Row| r.status == "ok";
    if measured(base) && !measured(new) {
        return (
            None,
            Verdict::AccuracyRegressed(format!("now {}: {}", new.status, new.error)),
        );
    }
    if !measured(base) || !measured(new) {
        return (
            None,
            Verdict::NotComparable(format!("base {}, new {}", base.status, new.status)),
        );
    }
    let (times_comparable, timing_note) = if base.timing == new.timing {
        (true, String::new())
    } else {
        (false, format!("ns/run {} vs {}", base.timing, new.timing))
    };
    // Racy updates lose counts by design; only exact strategies must stay exact.
    if base.update != "racy" {
        match (base.exact, new.exact) {
            (Some(true), Some(false)) => {
                return (
                    None,
                    Verdict::AccuracyRegressed(format!(
                        "missed {} events where it missed none",
                        new.missing.unwrap_or(0)
                    )),
                )
            }
            (Some(false), Some(true)) => return (None, Verdict::AccuracyImproved),
            _ => {}
        }
    }
    if !times_comparable {
        return (None, Verdict::NotComparable(timing_note));
    }
    let (Some((bm, blo, bhi)), Some((nm, nlo, nhi))) = (interval(base), interval(new)) else {
        return (None, Verdict::NotComparable("no ns/run interval".into()));
    };
    let overlap = nlo <= bhi && blo <= nhi;
    // No relative change from a zero base: the intervals alone judge it.
    let change = (bm > 0.0)
        .then(|| (nm - bm) / bm * 100.0)
        .filter(|c| c.is_finite());
    let verdict = if overlap || change.is_some_and(|c| c.abs() < threshold_pct) || nm == bm {
        Verdict::Same
    } else if nm > bm {
        Verdict::Slower
    } else {
        Verdict::Faster
    };
    (change, verdict)
}

fn kernels(rows: &[Row]) -> BTreeSet<(&str, &str)> {
    rows.iter()
        .map(|r| (r.kernel.as_str(), r.timing.as_str()))
        .collect()
}

/// The native CPU models of a run's rows.
fn cpu_models(rows: &[Row]) -> BTreeSet<&str> {
    rows.iter()
        .filter(|r| r.timing == "native")
        .map(|r| r.cpu_model.as_str())
        .collect()
}

/// What differs between the machines of two runs (host, CPU model, kernel),
/// one line each; empty when they ran on the same.
pub fn machine_differences(base: &[Row], new: &[Row]) -> Vec<String> {
    let set = |rows: &[Row], f: fn(&Row) -> &str| -> Vec<String> {
        let mut v: Vec<String> = rows.iter().map(|r| f(r).to_string()).collect();
        v.sort();
        v.dedup();
        v
    };
    let mut out = Vec::new();
    for (what, f) in [
        ("host", (|r: &Row| r.host.as_str()) as fn(&Row) -> &str),
        ("CPU", |r: &Row| r.cpu_model.as_str()),
        ("kernel", |r: &Row| r.kernel.as_str()),
    ] {
        let (b, n) = (set(base, f), set(new, f));
        if b != n {
            out.push(format!(
                "{what}: base {} vs new {}",
                b.join(", "),
                n.join(", ")
            ));
        }
    }
    out
}

/// [`compare_judged`] with timings judged only between runs on the same CPU
/// model (accuracy is always judged).
pub fn compare(base: &[Row], new: &[Row], threshold_pct: f64) -> Vec<Change> {
    compare_judged(base, new, threshold_pct, false)
}

/// Every cell of either run (repetitions folded), in a stable order. Runs
/// of one kernel each are matched cell by cell whatever their kernels (a
/// new machine, a new kernel); runs spanning several kernels are matched
/// kernel by kernel. Timings from different CPU models are judged only with
/// `across_cpus`: otherwise those cells are "not comparable" for time.
pub fn compare_judged(
    base: &[Row],
    new: &[Row],
    threshold_pct: f64,
    across_cpus: bool,
) -> Vec<Change> {
    let other_cpu = !across_cpus && cpu_models(base) != cpu_models(new);
    let across = kernels(base).len() <= 1 && kernels(new).len() <= 1;
    let key = |r: &Row| {
        let key = Key::of(r);
        if across {
            key.strategy()
        } else {
            key
        }
    };
    let mut cells: BTreeMap<Key, (Option<Row>, Option<Row>)> = BTreeMap::new();
    for a in aggregate(base) {
        let k = key(&a.row);
        cells.entry(k).or_default().0 = Some(a.row);
    }
    for a in aggregate(new) {
        let k = key(&a.row);
        cells.entry(k).or_default().1 = Some(a.row);
    }
    cells
        .into_iter()
        .map(|(key, (base, new))| {
            let (change_pct, verdict) = match (&base, &new) {
                (Some(b), Some(n)) => match judge(b, n, threshold_pct) {
                    (_, Verdict::Faster | Verdict::Slower | Verdict::Same) if other_cpu => (
                        None,
                        Verdict::NotComparable(format!(
                            "ns/run from different CPUs ({} vs {}); --across-cpus judges them",
                            b.cpu_model, n.cpu_model
                        )),
                    ),
                    judged => judged,
                },
                (None, _) => (None, Verdict::NotComparable("only in the new run".into())),
                (_, None) => (None, Verdict::NotComparable("only in the base run".into())),
            };
            Change {
                key,
                base,
                new,
                change_pct,
                verdict,
            }
        })
        .collect()
}

fn ns(r: &Option<Row>) -> String {
    r.as_ref()
        .and_then(interval)
        .map_or("-".into(), |(m, lo, hi)| {
            format!("{m:.0} [{lo:.0}, {hi:.0}]")
        })
}

fn accuracy(r: &Option<Row>) -> String {
    match r {
        Some(r) if r.status != "ok" => escape::name(&r.status).into_owned(),
        Some(r) => match r.missing {
            Some(0) => "exact".into(),
            Some(n) => format!("missing {n}"),
            None => "-".into(),
        },
        None => "-".into(),
    }
}

/// A markdown section for one comparison.
pub fn render_markdown(
    title: &str,
    machines: &[String],
    changes: &[Change],
    threshold_pct: f64,
) -> String {
    let title = escape::text(title);
    let mut out = format!("## {title}\n\n");
    if !machines.is_empty() {
        out.push_str("**The runs come from different machines**:\n\n");
        for m in machines {
            out.push_str(&format!("- {}\n", escape::text(m)));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "ns/run: in-kernel time per program run [95% interval]. \
         A change counts only when the intervals do not overlap and it exceeds {threshold_pct}%.\n\n"
    ));
    let kernels = |pick: fn(&Change) -> &Option<Row>| {
        let mut k: Vec<String> = changes
            .iter()
            .filter_map(|c| pick(c).as_ref().map(|r| escape::text(&r.kernel)))
            .collect();
        k.sort();
        k.dedup();
        k.join(", ")
    };
    out.push_str(&format!(
        "Kernels: base {}; new {}.\n\n",
        kernels(|c| &c.base),
        kernels(|c| &c.new)
    ));
    out.push_str("| kernel | backend | attach | map | update | base ns/run | new ns/run | change | base accuracy | new accuracy | verdict |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for c in changes {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            if c.key.kernel.is_empty() {
                "(each run's)".into()
            } else {
                escape::text(&c.key.kernel)
            },
            escape::name(&c.key.backend),
            escape::name(&c.key.attach),
            escape::name(&c.key.map),
            escape::name(&c.key.update),
            ns(&c.base),
            ns(&c.new),
            c.change_pct.map_or("-".into(), |p| format!("{p:+.1}%")),
            accuracy(&c.base),
            accuracy(&c.new),
            escape::text(&c.verdict.describe())
        ));
    }
    let regressions = changes.iter().filter(|c| c.verdict.is_regression()).count();
    out.push_str(&format!("\n{regressions} regression(s).\n"));
    out
}

/// The same strategies on several kernels, a column per kernel: accuracy,
/// then in-kernel time (marked where a guest's emulation measured it).
/// Past [`MAX_KERNEL_COLUMNS`] kernels, the rest are named as left out.
pub fn render_by_kernel(rows: &[Row]) -> String {
    let cells = aggregate(rows);
    let mut kernels = distinct(
        cells
            .iter()
            .map(|a| (a.row.kernel.clone(), a.row.timing.clone())),
    );
    let left_out = kernels.split_off(kernels.len().min(MAX_KERNEL_COLUMNS));
    let strategies = distinct(cells.iter().map(|a| Key::of(&a.row).strategy()));
    // Each cell's row by (kernel, timing, strategy): the first one seen.
    let mut by_cell: BTreeMap<(&str, &str, Key), &Row> = BTreeMap::new();
    for a in &cells {
        let r = &a.row;
        by_cell
            .entry((&r.kernel, &r.timing, Key::of(r).strategy()))
            .or_insert(r);
    }
    let mut out = String::from(
        "## By kernel\n\nEach cell: accuracy (counted/oracle), in-kernel ns/run median [95% \
         interval], and the program's size after the kernel's verifier rewrote it (xlated \
         instructions: kernels inline some helpers, e.g. per-CPU array lookups). \
         Times measured in a guest are QEMU's software emulation (marked *emulated*): compare \
         them with each other, never with native ones.\n\n",
    );
    if !left_out.is_empty() {
        out.push_str(&format!(
            "{} more kernel(s) left out (at most {MAX_KERNEL_COLUMNS} side by side): {}.\n\n",
            left_out.len(),
            left_out
                .iter()
                .map(|(k, t)| format!("{} ({})", escape::code(k), escape::name(t)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out.push_str("| backend | attach | map | update |");
    let mut rule = String::from("|---|---|---|---|");
    for (kernel, timing) in &kernels {
        out.push_str(&format!(
            " {} ({}) |",
            escape::code(kernel),
            escape::name(timing)
        ));
        rule.push_str("---|");
    }
    out.push_str(&format!("\n{rule}\n"));
    for key in &strategies {
        out.push_str(&format!(
            "| {} | {} | {} | {} |",
            escape::name(&key.backend),
            escape::name(&key.attach),
            escape::name(&key.map),
            escape::name(&key.update)
        ));
        for (kernel, timing) in &kernels {
            let row = by_cell.get(&(kernel.as_str(), timing.as_str(), key.clone()));
            out.push_str(&match row {
                None => " - |".into(),
                Some(r) if r.status != "ok" => format!(" {} |", escape::name(&r.status)),
                Some(r) => format!(
                    " {} {}/{}; {} ns/run{}; {} insns |",
                    accuracy(&Some((*r).clone())),
                    r.counted.map_or("-".into(), |c| c.to_string()),
                    r.expected.map_or("-".into(), |c| c.to_string()),
                    ns(&Some((*r).clone())),
                    if timing == "emulated" {
                        " *emulated*"
                    } else {
                        ""
                    },
                    r.xlated_insns.map_or("-".into(), |n| n.to_string()),
                ),
            });
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timed(median: f64, lo: f64, hi: f64) -> Row {
        Row {
            status: "ok".into(),
            timing: "native".into(),
            update: "atomic".into(),
            exact: Some(true),
            ns_per_run_median: Some(median),
            ns_per_run_ci95_lo: Some(lo),
            ns_per_run_ci95_hi: Some(hi),
            ..Row::default()
        }
    }

    #[test]
    fn a_zero_base_has_no_relative_change_and_no_nan_verdict() {
        let (change, verdict) = judge(&timed(0.0, 0.0, 0.0), &timed(50.0, 40.0, 60.0), 5.0);
        assert_eq!((change, verdict), (None, Verdict::Slower));
        let (change, verdict) = judge(&timed(0.0, 0.0, 0.0), &timed(0.0, 0.0, 0.0), 5.0);
        assert_eq!((change, verdict), (None, Verdict::Same));
        let (change, verdict) = judge(&timed(100.0, 90.0, 110.0), &timed(50.0, 40.0, 60.0), 5.0);
        assert_eq!((change, verdict), (Some(-50.0), Verdict::Faster));
    }

    #[test]
    fn free_text_in_a_verdict_is_escaped_in_the_table() {
        let base = timed(10.0, 9.0, 11.0);
        let new = Row {
            status: "error".into(),
            error: "a|b\n# <i>x</i>".into(),
            ..base.clone()
        };
        let md = render_markdown("t", &[], &compare(&[base], &[new], 5.0), 5.0);
        let line = md.lines().find(|l| l.contains("ACCURACY")).unwrap();
        assert!(
            line.contains("a\\|b\\\\n\\# &lt;i&gt;x&lt;/i&gt;"),
            "{line}"
        );
    }
}
