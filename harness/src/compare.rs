//! `bpfstorm compare BASE.csv NEW.csv...`: per cell, the change in
//! in-kernel cost and accuracy, judged with both runs' intervals.

use std::collections::{BTreeMap, BTreeSet};

use crate::aggregate::{aggregate, distinct, Aggregate};
use crate::export::csv::{Kernel, Key, Row, Timing};
use crate::export::escape;

/// The most kernels the by-kernel view sets side by side; the rest are
/// named as left out (a table a column per kernel is unreadable past it).
pub const MAX_KERNEL_COLUMNS: usize = 32;

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
    pub base: Option<Aggregate>,
    pub new: Option<Aggregate>,
    /// Relative change of the ns/run median, in percent.
    pub change_pct: Option<f64>,
    pub verdict: Verdict,
}

/// Judges one cell. `threshold_pct`: smaller changes count as the same even
/// when the intervals do not overlap.
pub fn judge(base: &Aggregate, new: &Aggregate, threshold_pct: f64) -> (Option<f64>, Verdict) {
    if base.is_ok() && !new.is_ok() {
        return (
            None,
            Verdict::AccuracyRegressed(format!("now {}: {}", new.status, new.error)),
        );
    }
    if !base.is_ok() || !new.is_ok() {
        return (
            None,
            Verdict::NotComparable(format!("base {}, new {}", base.status, new.status)),
        );
    }
    let (base_timing, new_timing) = (base.first.timing, new.first.timing);
    // Racy updates and full LRU maps lose counts by design; only exact
    // strategies must stay exact.
    if base.first.expects_exact() {
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
    if base_timing != new_timing {
        return (
            None,
            Verdict::NotComparable(format!("ns/run {base_timing} vs {new_timing}")),
        );
    }
    let (Some(b), Some(n)) = (base.ns_per_run, new.ns_per_run) else {
        return (None, Verdict::NotComparable("no ns/run interval".into()));
    };
    let (bm, nm) = (b.point, n.point);
    let overlap = b.overlaps(&n);
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

fn kernels(rows: &[Row]) -> BTreeSet<Kernel> {
    rows.iter().map(Row::kernel_id).collect()
}

/// The native CPU models of a run's rows.
fn cpu_models(rows: &[Row]) -> BTreeSet<&str> {
    rows.iter()
        .filter(|r| r.timing == Timing::Native)
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
    let key = |a: &Aggregate| {
        let key = a.key();
        if across {
            key.strategy()
        } else {
            key
        }
    };
    let mut cells: BTreeMap<Key, (Option<Aggregate>, Option<Aggregate>)> = BTreeMap::new();
    for a in aggregate(base) {
        let k = key(&a);
        cells.entry(k).or_default().0 = Some(a);
    }
    for a in aggregate(new) {
        let k = key(&a);
        cells.entry(k).or_default().1 = Some(a);
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
                            b.first.cpu_model, n.first.cpu_model
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

fn ns(a: Option<&Aggregate>) -> String {
    a.and_then(|a| a.ns_per_run).map_or("-".into(), |i| {
        format!("{:.0} [{:.0}, {:.0}]", i.point, i.lo, i.hi)
    })
}

fn accuracy(a: Option<&Aggregate>) -> String {
    match a {
        Some(a) if !a.is_ok() => a.status.to_string(),
        Some(a) => match a.missing {
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
    let kernels = |pick: fn(&Change) -> &Option<Aggregate>| {
        let mut k: Vec<String> = changes
            .iter()
            .filter_map(|c| pick(c).as_ref().map(|a| escape::text(&a.first.kernel)))
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
    out.push_str("| kernel | backend | attach | method | workers | map | update | base ns/run | new ns/run | change | base accuracy | new accuracy | verdict |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for c in changes {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {}{} | {} | {} | {} | {} | {} | {} |\n",
            c.key
                .kernel
                .as_ref()
                .map_or("(each run's)".into(), |k| escape::text(&k.release)),
            escape::name(&c.key.backend),
            c.key.attach,
            c.key.method,
            c.key.workers,
            c.key.map,
            c.key.update,
            c.key.variant.suffix(),
            ns(c.base.as_ref()),
            ns(c.new.as_ref()),
            c.change_pct.map_or("-".into(), |p| format!("{p:+.1}%")),
            accuracy(c.base.as_ref()),
            accuracy(c.new.as_ref()),
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
    let mut kernels = distinct(cells.iter().map(|a| a.first.kernel_id()));
    let left_out = kernels.split_off(kernels.len().min(MAX_KERNEL_COLUMNS));
    let strategies = distinct(cells.iter().map(|a| a.key().strategy()));
    // Each cell by its key (kernel and strategy): the first one seen.
    let mut by_cell: BTreeMap<Key, &Aggregate> = BTreeMap::new();
    for a in &cells {
        by_cell.entry(a.key()).or_insert(a);
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
                .map(|k| format!("{} ({})", escape::code(&k.release), k.timing))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out.push_str("| backend | attach | method | workers | map | update |");
    let mut rule = String::from("|---|---|---|---|---|---|");
    for k in &kernels {
        out.push_str(&format!(" {} ({}) |", escape::code(&k.release), k.timing));
        rule.push_str("---|");
    }
    out.push_str(&format!("\n{rule}\n"));
    for key in &strategies {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {}{} |",
            escape::name(&key.backend),
            key.attach,
            key.method,
            key.workers,
            key.map,
            key.update,
            key.variant.suffix()
        ));
        for k in &kernels {
            let cell = by_cell.get(&Key {
                kernel: Some(k.clone()),
                ..key.clone()
            });
            out.push_str(&match cell {
                None => " - |".into(),
                Some(a) if !a.is_ok() => format!(" {} |", a.status),
                Some(a) => format!(
                    " {} {}/{}; {} ns/run{}; {} insns |",
                    accuracy(Some(a)),
                    a.counted.map_or("-".into(), |c| c.to_string()),
                    a.expected.map_or("-".into(), |c| c.to_string()),
                    ns(Some(a)),
                    match k.timing {
                        Timing::Emulated => " *emulated*",
                        Timing::Native => "",
                    },
                    a.first.xlated_insns.map_or("-".into(), |n| n.to_string()),
                ),
            });
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use bpfstorm_common::UpdateMode;

    use super::*;
    use crate::export::csv::Status;

    fn timed(median: f64, lo: f64, hi: f64) -> Row {
        Row {
            kernel: "6.18".into(),
            cpu_model: "EPYC".into(),
            backend: "libbpf".into(),
            exact: Some(true),
            missing: Some(0),
            ns_per_run_median: Some(median),
            ns_per_run_ci95_lo: Some(lo),
            ns_per_run_ci95_hi: Some(hi),
            ..Row::default()
        }
    }

    fn cell(row: Row) -> Aggregate {
        aggregate(&[row]).remove(0)
    }

    fn verdict(base: Row, new: Row) -> (Option<f64>, Verdict) {
        judge(&cell(base), &cell(new), 5.0)
    }

    #[test]
    fn a_zero_base_has_no_relative_change_and_no_nan_verdict() {
        let (change, verdict) = judge(
            &cell(timed(0.0, 0.0, 0.0)),
            &cell(timed(50.0, 40.0, 60.0)),
            5.0,
        );
        assert_eq!((change, verdict), (None, Verdict::Slower));
        let (change, verdict) = judge(
            &cell(timed(0.0, 0.0, 0.0)),
            &cell(timed(0.0, 0.0, 0.0)),
            5.0,
        );
        assert_eq!((change, verdict), (None, Verdict::Same));
        let (change, verdict) = judge(
            &cell(timed(100.0, 90.0, 110.0)),
            &cell(timed(50.0, 40.0, 60.0)),
            5.0,
        );
        assert_eq!((change, verdict), (Some(-50.0), Verdict::Faster));
    }

    #[test]
    fn time_verdicts_need_apart_intervals_and_a_change_past_the_threshold() {
        let slower = verdict(timed(100.0, 95.0, 105.0), timed(150.0, 140.0, 160.0));
        assert_eq!(slower, (Some(50.0), Verdict::Slower));
        assert!(slower.1.is_regression());
        // Overlapping intervals: the same, whatever the change.
        let overlap = verdict(timed(100.0, 90.0, 110.0), timed(108.0, 105.0, 120.0));
        assert_eq!(overlap, (Some(8.0), Verdict::Same));
        // Apart, but under the 5% threshold.
        let small = verdict(timed(100.0, 99.0, 101.0), timed(103.0, 102.0, 104.0));
        assert_eq!(small, (Some(3.0), Verdict::Same));
        assert!(!small.1.is_regression());
    }

    #[test]
    fn an_exact_cell_that_misses_events_regressed_whatever_its_time() {
        let missed = Row {
            exact: Some(false),
            missing: Some(3),
            ..timed(50.0, 45.0, 55.0)
        };
        let (_, v) = verdict(timed(100.0, 95.0, 105.0), missed.clone());
        assert_eq!(
            v,
            Verdict::AccuracyRegressed("missed 3 events where it missed none".into())
        );
        assert!(v.is_regression());
        let (_, v) = verdict(missed, timed(100.0, 95.0, 105.0));
        assert_eq!(v, Verdict::AccuracyImproved);
    }

    #[test]
    fn racy_cells_may_lose_counts_and_are_judged_on_time() {
        let racy = |exact, median| Row {
            update: UpdateMode::Racy,
            exact: Some(exact),
            ..timed(median, median - 5.0, median + 5.0)
        };
        assert_eq!(
            verdict(racy(true, 100.0), racy(false, 200.0)),
            (Some(100.0), Verdict::Slower)
        );
    }

    #[test]
    fn a_cell_that_stopped_working_regressed_and_one_never_measured_is_not_comparable() {
        let broken = Row {
            status: Status::Error,
            error: "load failed".into(),
            ..timed(0.0, 0.0, 0.0)
        };
        let (_, v) = verdict(timed(100.0, 95.0, 105.0), broken.clone());
        assert_eq!(
            v,
            Verdict::AccuracyRegressed("now error: load failed".into())
        );
        let refused = Row {
            status: Status::Unsupported,
            ..broken.clone()
        };
        let (_, v) = verdict(refused, broken);
        assert_eq!(
            v,
            Verdict::NotComparable("base unsupported, new error".into())
        );
    }

    #[test]
    fn emulated_times_are_never_judged_against_native_ones() {
        let guest = Row {
            timing: Timing::Emulated,
            ..timed(900.0, 850.0, 950.0)
        };
        let (_, v) = verdict(timed(100.0, 95.0, 105.0), guest);
        assert_eq!(
            v,
            Verdict::NotComparable("ns/run native vs emulated".into())
        );
    }

    #[test]
    fn times_from_other_cpus_are_judged_only_when_asked() {
        let base = [timed(100.0, 95.0, 105.0)];
        let new = [Row {
            cpu_model: "Xeon".into(),
            ..timed(200.0, 190.0, 210.0)
        }];
        let changes = compare(&base, &new, 5.0);
        assert_eq!(changes.len(), 1);
        assert!(
            matches!(&changes[0].verdict, Verdict::NotComparable(why) if why.contains("--across-cpus")),
            "{:?}",
            changes[0].verdict
        );
        let changes = compare_judged(&base, &new, 5.0, true);
        assert_eq!(changes[0].verdict, Verdict::Slower);
        assert_eq!(
            machine_differences(&base, &new),
            ["CPU: base EPYC vs new Xeon"]
        );
    }

    #[test]
    fn runs_of_one_kernel_each_match_cell_by_cell() {
        let base = [timed(100.0, 95.0, 105.0)];
        let new = [Row {
            kernel: "6.1".into(),
            ..timed(100.0, 95.0, 105.0)
        }];
        let changes = compare(&base, &new, 5.0);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].key.kernel, None);
        assert_eq!(changes[0].verdict, Verdict::Same);

        let hash = [Row {
            map: bpfstorm_common::MapKind::Hash,
            ..timed(100.0, 95.0, 105.0)
        }];
        let verdicts: Vec<Verdict> = compare(&base, &hash, 5.0)
            .into_iter()
            .map(|c| c.verdict)
            .collect();
        assert_eq!(
            verdicts,
            [
                Verdict::NotComparable("only in the base run".into()),
                Verdict::NotComparable("only in the new run".into()),
            ]
        );
    }

    #[test]
    fn free_text_in_a_verdict_is_escaped_in_the_table() {
        let base = timed(10.0, 9.0, 11.0);
        let new = Row {
            status: Status::Error,
            error: "a|b\n# <i>x</i>".into(),
            ..base.clone()
        };
        let md = render_markdown("t", &[], &compare(&[base], &[new], 5.0), 5.0);
        let line = md.lines().find(|l| l.contains("ACCURACY")).unwrap();
        assert!(
            line.contains("a\\|b\\\\n\\# &lt;i&gt;x&lt;/i&gt;"),
            "{line}"
        );
        assert!(
            line.starts_with(
                "| (each run's) | libbpf | tp_sys_enter_execve | storm | 1 per CPU | array | atomic |"
            ),
            "{line}"
        );
    }
}
