//! Folding the repetitions of a cell into one line: counts add up, exact
//! means exact every time, timings become the mean of the repetitions'
//! medians with its 95% t-interval (a real interval of that mean, where
//! the widest of the per-storm intervals was not one), and end-to-end exec
//! cost becomes the mean of the paired with/without-probe differences with
//! its interval.
//! Sums are checked: one that does not fit is an error, never a wrapped
//! number.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use crate::export::csv::{Key, Row, Status, Timing, Workers};
use crate::hot::Method;
use crate::sample::{Estimate, MeanEstimate};

/// A timing and its 95% interval, `lo <= point <= hi`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// A median, or a mean of medians (see [`Bracket`]).
    pub point: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    /// `point [lo, hi]`, with `digits` decimals; `-` for none.
    pub fn text(interval: Option<Interval>, digits: usize) -> String {
        interval.map_or("-".into(), |i| {
            format!(
                "{:.digits$} [{:.digits$}, {:.digits$}]",
                i.point, i.lo, i.hi
            )
        })
    }

    /// The interval of a row's `*_median`, `*_ci95_lo`, `*_ci95_hi` columns.
    fn of(point: Option<f64>, lo: Option<f64>, hi: Option<f64>) -> Option<Interval> {
        Some(Interval {
            point: point?,
            lo: lo?,
            hi: hi?,
        })
    }

    /// `self / base` and its uncertainty: the two intervals' relative
    /// half-widths (each the wider side, so an uneven interval is never
    /// understated) added in quadrature, as for independent errors.
    pub fn ratio_to(&self, base: &Interval) -> Option<(f64, f64)> {
        if self.point <= 0.0 || base.point <= 0.0 {
            return None;
        }
        let relative = |i: &Interval| (i.hi - i.point).max(i.point - i.lo) / i.point;
        let r = self.point / base.point;
        Some((r, r * relative(self).hypot(relative(base))))
    }

    /// Whether the two could be the same figure at this noise.
    pub fn overlaps(&self, other: &Interval) -> bool {
        self.lo <= other.hi && other.lo <= self.hi
    }

    /// `self / base` with its +- (see [`Interval::ratio_to`]) where the two
    /// are apart: their intervals do not overlap and the ratio's own
    /// interval leaves out 1. `None` inside the noise.
    pub fn apart_from(&self, base: &Interval) -> Option<(f64, f64)> {
        let (r, u) = self.ratio_to(base)?;
        (!self.overlaps(base) && !(r - u..=r + u).contains(&1.0)).then_some((r, u))
    }

    fn mean_of(samples: &[f64]) -> Option<Interval> {
        MeanEstimate::from_samples(samples).map(|m| Interval {
            point: m.mean,
            lo: m.lo,
            hi: m.hi,
        })
    }
}

/// One cell over all its repetitions. Counts are summed over the measured
/// repetitions (`None` where one has none, or where the sum overflows).
#[derive(Debug, Clone)]
pub struct Aggregate {
    /// The first repetition: where and what was measured, the storm, the
    /// program's size; its own counts and timings are that repetition's only.
    pub first: Row,
    pub repetitions: usize,
    /// The first status that is not ok and its error, else ok; `error` where
    /// a sum overflowed.
    pub status: Status,
    pub error: String,
    pub issued: Option<u64>,
    pub counted: Option<u64>,
    pub expected: Option<u64>,
    pub dropped: Option<u64>,
    pub missing: Option<i64>,
    /// Exact in every measured repetition.
    pub exact: Option<bool>,
    pub ns_per_run: Option<Interval>,
    pub ns_per_event: Option<Interval>,
    pub read_us: Option<Interval>,
    /// Medians over the repetitions.
    pub open_ms: Option<f64>,
    pub load_ms: Option<f64>,
    pub attach_ms: Option<f64>,
    /// From nothing to a counting program (the CSV's `startup_ms`), median
    /// over the repetitions.
    pub startup_ms: Option<f64>,
    /// What the timing intervals are.
    pub bracket: Bracket,
    /// End-to-end ns added per exec: the mean of the paired (with probe -
    /// without) differences and its 95% interval; none below two.
    pub e2e_ns_per_exec: Option<MeanEstimate>,
    /// Repetitions whose ns/run median lies outside Tukey's fences of the others.
    pub outliers: Vec<u32>,
}

impl Aggregate {
    /// `backend attach map/update`; the backend, the one free text read
    /// from a CSV, goes through `escape` for where the label is shown.
    pub fn label(&self, escape: impl Fn(&str) -> String) -> String {
        let r = &self.first;
        format!("{} {} {}", escape(&r.backend), r.attach, r.strategy_name())
    }

    pub fn key(&self) -> Key {
        self.first.key()
    }

    /// Measured, and not cut short.
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }

    /// Measured exact, with a strategy that must be: what may be ranked.
    pub fn is_exact_counter(&self) -> bool {
        self.is_ok() && self.exact == Some(true) && self.first.expects_exact()
    }
}

/// What a folded cell's timing intervals are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bracket {
    /// One repetition: the median of the storm's ~50 ms slices and its 95%
    /// order-statistic interval.
    Slices,
    /// A hot cell: the median over its rounds with the program (each loaded
    /// afresh, paired with one without; column `rounds`) and its 95%
    /// order-statistic interval.
    Rounds,
    /// The mean over this many repetitions of their medians, and its 95%
    /// Student-t interval (the point is then a mean, not a median).
    Repetitions(usize),
}

impl Bracket {
    /// Says what the bracket is, for a table's footnote.
    pub fn describe(self) -> String {
        match self {
            Bracket::Slices => "median of one storm's ~50 ms slices [its 95% interval]".into(),
            Bracket::Rounds => {
                "median of a hot cell's rounds (column `rounds`) [its 95% interval]".into()
            }
            Bracket::Repetitions(n) => {
                format!("mean of {n} repetitions' medians [its 95% t-interval]")
            }
        }
    }
}

/// A count whose sum over a cell's repetitions does not fit its type.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("summing `{column}` over the repetitions of a cell overflows a 64-bit count")]
pub struct Overflow {
    /// The CSV column.
    pub column: &'static str,
    /// The index, in the rows given, of the row whose value overflowed it.
    pub row: usize,
}

/// The distinct items, in the order first seen.
pub fn distinct<T: Ord + Clone>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for item in items {
        if seen.insert(item.clone()) {
            out.push(item);
        }
    }
    out
}

fn median(values: &[f64]) -> Option<f64> {
    Estimate::from_samples(values).map(|e| e.median)
}

/// The sum of a column over rows, `None` when one row has no value, or
/// where it overflows.
fn sum<T: Copy>(
    column: &'static str,
    rows: &[(usize, &Row)],
    pick: fn(&Row) -> Option<T>,
    zero: T,
    add: fn(T, T) -> Option<T>,
) -> Result<Option<T>, Overflow> {
    let mut total = zero;
    for &(index, r) in rows {
        let Some(v) = pick(r) else {
            return Ok(None);
        };
        total = add(total, v).ok_or(Overflow { column, row: index })?;
    }
    Ok(Some(total))
}

/// Tukey's fences (1.5 IQR) over the repetitions' medians.
fn outliers(rows: &[(usize, &Row)]) -> Vec<u32> {
    let mut medians: Vec<f64> = rows
        .iter()
        .filter_map(|(_, r)| r.ns_per_run_median)
        .collect();
    if medians.len() < 4 {
        return Vec::new();
    }
    medians.sort_by(f64::total_cmp);
    let q = |p: f64| medians[((medians.len() - 1) as f64 * p).round() as usize];
    let (q1, q3) = (q(0.25), q(0.75));
    let (lo, hi) = (q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1));
    rows.iter()
        .filter(|(_, r)| r.ns_per_run_median.is_some_and(|m| m < lo || m > hi))
        .map(|(_, r)| r.repetition)
        .collect()
}

/// The cells that rank strategies against each other: one method (hot
/// where a native hot cell was measured: its figures are warm and precise;
/// else the storms) and, on each host, one worker count (one per CPU where
/// it was measured, else the most): a sweep's other counts answer how a
/// strategy scales, not which is cheapest.
pub struct Ranking {
    pub method: Method,
    workers: BTreeMap<String, u32>,
    /// The most workers each host measured at once.
    most: BTreeMap<String, u32>,
}

impl Ranking {
    pub fn of(cells: &[Aggregate]) -> Ranking {
        let hot = cells.iter().any(|a| {
            a.first.method == Method::Hot && a.is_ok() && a.first.timing == Timing::Native
        });
        let method = if hot { Method::Hot } else { Method::Storm };
        let mut workers: BTreeMap<String, u32> = BTreeMap::new();
        let mut most: BTreeMap<String, u32> = BTreeMap::new();
        for r in cells
            .iter()
            .map(|a| &a.first)
            .filter(|r| r.method == method)
        {
            let top = most.entry(r.host.clone()).or_insert(r.workers);
            *top = (*top).max(r.workers);
            let best = workers.entry(r.host.clone()).or_insert(r.workers);
            let per_cpu = Workers::of(r) == Workers::PerCpu;
            if *best as usize != r.cpus && (per_cpu || r.workers > *best) {
                *best = r.workers;
            }
        }
        Ranking {
            method,
            workers,
            most,
        }
    }

    /// Whether `a` was measured with its host's most workers, in a run
    /// that swept more than one count there: the cells that say which
    /// strategy holds up best under contention.
    pub fn admits_most_contended(&self, a: &Aggregate) -> bool {
        let host = &a.first.host;
        a.first.method == self.method
            && self.most.get(host) == Some(&a.first.workers)
            && self.workers.get(host) != self.most.get(host)
    }

    /// Whether `a` is one of the ranked cells.
    pub fn admits(&self, a: &Aggregate) -> bool {
        a.first.method == self.method && self.workers.get(&a.first.host) == Some(&a.first.workers)
    }

    /// The worker count ranked at, where the cells hold several of them on
    /// one host (a sweep): what a ranking must then say it is at.
    pub fn swept_at(&self, cells: &[Aggregate]) -> Option<u32> {
        let ranked = distinct(self.workers.values().copied());
        let counts = distinct(
            cells
                .iter()
                .filter(|a| a.first.method == self.method)
                .map(|a| (a.first.host.clone(), a.first.workers)),
        );
        match ranked.as_slice() {
            [one] if counts.len() > self.workers.len() => Some(*one),
            _ => None,
        }
    }
}

/// The one-liner tool's backend, whose cells are set beside those of the
/// hand-written loaders (`backends::LOADERS`).
pub const TOOL: &str = crate::backends::BackendName::Bpftrace.name();

/// A tool's cell beside a hand-written loader's that is the same cell
/// otherwise (host, kernel, strategy, method, workers, storm): what the
/// one-liner costs against the loader.
#[derive(Debug, Clone, Copy)]
pub struct Peers<'a> {
    pub tool: &'a Aggregate,
    pub loader: &'a Aggregate,
}

impl Peers<'_> {
    /// Both ns/event intervals, tool's first; `None` without both, or
    /// where a count spread over keys lost events (its figure per counted
    /// event then spreads over fewer events than it ran for).
    pub fn ns_per_event(&self) -> Option<(Interval, Interval)> {
        let whole = |a: &Aggregate| {
            a.first.keys.get() == 1 || (a.dropped.unwrap_or(0) == 0 && a.missing.unwrap_or(0) == 0)
        };
        if !(whole(self.tool) && whole(self.loader)) {
            return None;
        }
        Some((self.tool.ns_per_event?, self.loader.ns_per_event?))
    }

    /// The tool's startup over the loader's: one sample per repetition on
    /// each side (their medians where repeated), so no interval.
    pub fn startup_ratio(&self) -> Option<f64> {
        let (tool, loader) = (self.tool.startup_ms?, self.loader.startup_ms?);
        (loader > 0.0).then(|| tool / loader)
    }

    /// What tells this pair from others of `all` of the same strategy: its
    /// method, workers, filter, target and spawn, each where it varies
    /// among `all` (names the reader checked, safe to print).
    pub fn context(&self, all: &[Peers<'_>]) -> Vec<String> {
        let parts: [fn(&Row) -> String; 5] = [
            |r| r.method.to_string(),
            |r| crate::contention::workers(r.workers),
            |r| format!("filter {}", r.filter),
            |r| r.target.clone(),
            |r| r.spawn.clone(),
        ];
        parts
            .iter()
            .filter(|part| distinct(all.iter().map(|p| part(&p.tool.first))).len() > 1)
            .map(|part| part(&self.tool.first))
            .collect()
    }
}

/// Every native tool cell that was measured beside each measured cell of
/// a hand-written loader that matches it but for the backend: tool cells
/// in the order given, loaders in `backends::LOADERS` order. Emulated times
/// say nothing of this CPU's.
pub fn tool_peers(cells: &[Aggregate]) -> Vec<Peers<'_>> {
    let same = |a: &Aggregate| {
        let key = Key {
            backend: String::new(),
            ..a.key()
        };
        (a.first.host.clone(), key)
    };
    let measured = |a: &&Aggregate| a.is_ok() && a.first.timing == Timing::Native;
    let mut out = Vec::new();
    for tool in cells
        .iter()
        .filter(measured)
        .filter(|a| a.first.backend == TOOL)
    {
        let cell = same(tool);
        for &loader in crate::backends::LOADERS {
            let peer = cells
                .iter()
                .filter(measured)
                .find(|a| a.first.backend == loader && same(a) == cell);
            out.extend(peer.map(|loader| Peers { tool, loader }));
        }
    }
    out
}

/// Every cell of `rows` folded, in the order first seen; a cell whose counts
/// overflow when summed is an error here.
pub fn try_aggregate(rows: &[Row]) -> Result<Vec<Aggregate>, Overflow> {
    let (cells, overflow) = fold(rows);
    match overflow {
        Some(o) => Err(o),
        None => Ok(cells),
    }
}

/// Every cell of `rows` folded, in the order first seen. A cell whose counts
/// overflow when summed becomes an `error` cell that says so, its sum
/// left empty: never a wrapped or clamped count.
pub fn aggregate(rows: &[Row]) -> Vec<Aggregate> {
    fold(rows).0
}

/// The cells, and the first overflow met (its cell is marked `error`).
fn fold(rows: &[Row]) -> (Vec<Aggregate>, Option<Overflow>) {
    let mut cells: BTreeMap<Key, Vec<(usize, &Row)>> = BTreeMap::new();
    let mut order = Vec::new();
    for (index, r) in rows.iter().enumerate() {
        let key = r.key();
        if !cells.contains_key(&key) {
            order.push(key.clone());
        }
        cells.entry(key).or_default().push((index, r));
    }
    let mut first_overflow = None;
    let folded = order
        .into_iter()
        .map(|key| {
            let (cell, overflow) = fold_cell(&cells[&key]);
            if let Some(o) = overflow {
                first_overflow.get_or_insert(o);
            }
            cell
        })
        .collect();
    (folded, first_overflow)
}

/// One cell's repetitions (with their indexes in the rows given) folded,
/// and the first of its sums that overflowed.
fn fold_cell(reps: &[(usize, &Row)]) -> (Aggregate, Option<Overflow>) {
    let measured: Vec<(usize, &Row)> = reps
        .iter()
        .copied()
        .filter(|(_, r)| r.status != Status::Error)
        .collect();
    let first = reps[0].1;
    let (mut status, mut error) = reps
        .iter()
        .find(|(_, r)| r.status != Status::Ok)
        .map_or((Status::Ok, String::new()), |(_, r)| {
            (r.status, r.error.clone())
        });
    let field = |f: fn(&Row) -> Option<f64>| -> Vec<f64> {
        measured.iter().filter_map(|(_, r)| f(r)).collect()
    };
    let mut overflows = Vec::new();
    let mut count = |column, pick: fn(&Row) -> Option<u64>| {
        sum(column, &measured, pick, 0, u64::checked_add).unwrap_or_else(|o| {
            overflows.push(o);
            None
        })
    };
    let counted = count("counted", |r| r.counted);
    let expected = count("expected", |r| r.expected);
    let dropped = count("dropped", |r| r.dropped);
    let issued = count("issued", |r| r.issued);
    let missing =
        sum("missing", &measured, |r| r.missing, 0, i64::checked_add).unwrap_or_else(|o| {
            overflows.push(o);
            None
        });
    let overflow = overflows.into_iter().next();
    if let Some(o) = &overflow {
        status = Status::Error;
        error = format!("{o}: a count was edited by hand?");
    }
    // Two or more repetitions: the mean of their medians and its 95%
    // t-interval; one: that storm's own median and interval.
    let timed = field(|r| r.ns_per_run_median).len();
    let one = measured
        .iter()
        .map(|(_, r)| *r)
        .find(|r| r.ns_per_run_median.is_some())
        .unwrap_or(first);
    let (bracket, ns_per_run, ns_per_event, read_us) = if timed >= 2 {
        (
            Bracket::Repetitions(timed),
            Interval::mean_of(&field(|r| r.ns_per_run_median)),
            Interval::mean_of(&field(|r| r.ns_per_event_median)),
            Interval::mean_of(&field(|r| r.read_us_median)),
        )
    } else {
        (
            match (one.method, one.rounds) {
                (Method::Hot, Some(_)) => Bracket::Rounds,
                _ => Bracket::Slices,
            },
            Interval::of(
                one.ns_per_run_median,
                one.ns_per_run_ci95_lo,
                one.ns_per_run_ci95_hi,
            ),
            Interval::of(
                one.ns_per_event_median,
                one.ns_per_event_ci95_lo,
                one.ns_per_event_ci95_hi,
            ),
            Interval::of(one.read_us_median, one.read_us_ci95_lo, one.read_us_ci95_hi),
        )
    };
    let cell = Aggregate {
        first: first.clone(),
        repetitions: reps.len(),
        status,
        error,
        issued,
        counted,
        expected,
        dropped,
        missing,
        exact: measured
            .iter()
            .map(|(_, r)| r.exact)
            .collect::<Option<Vec<bool>>>()
            .map(|v| v.iter().all(|&e| e)),
        ns_per_run,
        ns_per_event,
        read_us,
        open_ms: median(&field(|r| r.open_ms)),
        load_ms: median(&field(|r| r.load_ms)),
        attach_ms: median(&field(|r| r.attach_ms)),
        startup_ms: median(&field(|r| r.startup_ms)),
        bracket,
        e2e_ns_per_exec: MeanEstimate::from_samples(&field(|r| r.e2e_ns_per_exec)),
        outliers: outliers(&measured),
    };
    (cell, overflow)
}

#[cfg(test)]
mod tests {
    use bpfstorm_common::MapKind;

    use super::*;

    fn rep(repetition: u32, counted: u64, missing: i64) -> Row {
        Row {
            schema_version: 3,
            backend: "libbpf".into(),
            repetition,
            counted: Some(counted),
            expected: Some(counted),
            missing: Some(missing),
            exact: Some(missing == 0),
            ..Row::default()
        }
    }

    fn timed(repetition: u32, median: f64, lo: f64, hi: f64) -> Row {
        Row {
            ns_per_run_median: Some(median),
            ns_per_run_ci95_lo: Some(lo),
            ns_per_run_ci95_hi: Some(hi),
            ..rep(repetition, 10, 0)
        }
    }

    #[test]
    fn counts_add_up_over_repetitions() {
        let cells = try_aggregate(&[rep(1, 10, 0), rep(2, 20, 0)]).unwrap();
        assert_eq!(cells.len(), 1);
        assert_eq!(cells[0].repetitions, 2);
        assert_eq!(cells[0].counted, Some(30));
        assert_eq!(cells[0].missing, Some(0));
        assert_eq!(cells[0].exact, Some(true));
        assert_eq!(cells[0].status, Status::Ok);
    }

    #[test]
    fn one_inexact_repetition_makes_the_cell_inexact() {
        let cells = aggregate(&[rep(1, 10, 0), rep(2, 18, 2), rep(3, 10, 0)]);
        assert_eq!(cells[0].exact, Some(false));
        assert_eq!(cells[0].missing, Some(2));
        assert!(!cells[0].is_exact_counter());
    }

    #[test]
    fn a_failed_repetition_names_the_cell_and_is_left_out_of_the_sums() {
        let failed = Row {
            status: Status::Error,
            error: "load failed".into(),
            counted: None,
            ..rep(2, 0, 0)
        };
        let cells = aggregate(&[rep(1, 10, 0), failed, rep(3, 5, 0)]);
        assert_eq!(cells[0].status, Status::Error);
        assert_eq!(cells[0].error, "load failed");
        assert_eq!(cells[0].counted, Some(15));
        assert_eq!(cells[0].repetitions, 3);
    }

    #[test]
    fn rows_group_by_cell_and_kernel_in_first_seen_order() {
        let hash = Row {
            map: MapKind::Hash,
            ..rep(1, 7, 0)
        };
        let other_kernel = Row {
            kernel: "6.1".into(),
            ..rep(1, 3, 0)
        };
        let cells = aggregate(&[hash.clone(), rep(1, 1, 0), other_kernel, hash, rep(2, 1, 0)]);
        let summary: Vec<(MapKind, &str, Option<u64>)> = cells
            .iter()
            .map(|a| (a.first.map, a.first.kernel.as_str(), a.counted))
            .collect();
        assert_eq!(
            summary,
            [
                (MapKind::Hash, "", Some(14)),
                (MapKind::Array, "", Some(2)),
                (MapKind::Array, "6.1", Some(3)),
            ]
        );
    }

    #[test]
    fn one_repetition_keeps_its_slices_interval() {
        let cell = &aggregate(&[timed(1, 100.0, 90.0, 110.0)])[0];
        assert_eq!(cell.bracket, Bracket::Slices);
        assert_eq!(
            cell.ns_per_run,
            Some(Interval {
                point: 100.0,
                lo: 90.0,
                hi: 110.0
            })
        );
        assert_eq!(cell.ns_per_event, None);
    }

    #[test]
    fn repetitions_fold_to_the_mean_of_their_medians_with_a_t_interval() {
        let cell = &aggregate(&[timed(1, 100.0, 0.0, 200.0), timed(2, 110.0, 0.0, 200.0)])[0];
        assert_eq!(cell.bracket, Bracket::Repetitions(2));
        let i = cell.ns_per_run.unwrap();
        // Mean 105, standard error 5, t(1) = 12.706.
        assert_eq!(i.point, 105.0);
        assert!((i.lo - (105.0 - 63.53)).abs() < 1e-9, "{i:?}");
        assert!((i.hi - (105.0 + 63.53)).abs() < 1e-9, "{i:?}");
    }

    #[test]
    fn a_repetition_far_from_the_others_is_an_outlier() {
        let rows: Vec<Row> = [100.0, 101.0, 102.0, 103.0, 500.0]
            .iter()
            .zip(1..)
            .map(|(&m, rep)| timed(rep, m, m, m))
            .collect();
        assert_eq!(aggregate(&rows)[0].outliers, [5]);
        assert!(aggregate(&rows[..4])[0].outliers.is_empty());
    }

    #[test]
    fn an_overflowing_sum_is_an_error_never_a_wrap() {
        let rows = [rep(1, 1, 0), rep(2, u64::MAX, 0), rep(3, 1, 0)];
        assert_eq!(
            try_aggregate(&rows).unwrap_err(),
            Overflow {
                column: "counted",
                row: 1
            }
        );
        let cell = &aggregate(&rows)[0];
        assert_eq!(cell.status, Status::Error);
        assert!(cell.error.contains("`counted`"), "{}", cell.error);
        assert_eq!(cell.counted, None);

        let rows = [rep(1, 0, i64::MIN), rep(2, 0, -1)];
        assert_eq!(try_aggregate(&rows).unwrap_err().column, "missing");
        assert_eq!(aggregate(&rows)[0].missing, None);
    }

    #[test]
    fn intervals_overlap_when_they_share_a_point() {
        let i = |lo, hi| Interval { point: lo, lo, hi };
        assert!(i(1.0, 2.0).overlaps(&i(2.0, 3.0)));
        assert!(!i(1.0, 2.0).overlaps(&i(2.5, 3.0)));
        assert!(i(0.0, 10.0).overlaps(&i(4.0, 5.0)));
    }

    #[test]
    fn rankings_take_one_worker_count_per_host_one_per_cpu_first() {
        let hot = |host: &str, cpus: usize, workers: u32| Row {
            host: host.into(),
            cpus,
            workers,
            method: Method::Hot,
            ..rep(1, 100, 0)
        };
        let cells = aggregate(&[
            hot("a", 2, 1),
            hot("a", 2, 2),
            hot("a", 2, 4),
            hot("b", 16, 4),
            hot("b", 16, 8),
        ]);
        let ranking = Ranking::of(&cells);
        assert_eq!(ranking.method, Method::Hot);
        let admitted: Vec<(String, u32)> = cells
            .iter()
            .filter(|a| ranking.admits(a))
            .map(|a| (a.first.host.clone(), a.first.workers))
            .collect();
        assert_eq!(
            admitted,
            [("a".into(), 2), ("b".into(), 8)],
            "one per CPU on a; b never ran 16, so its most"
        );
        assert_eq!(ranking.swept_at(&cells), None, "two hosts, two counts");
        let one_host = aggregate(&[hot("a", 2, 1), hot("a", 2, 2)]);
        assert_eq!(Ranking::of(&one_host).swept_at(&one_host), Some(2));
        let unswept = aggregate(&[hot("a", 2, 2)]);
        assert_eq!(Ranking::of(&unswept).swept_at(&unswept), None);
    }

    fn backend(backend: &str, startup_ms: f64) -> Row {
        Row {
            backend: backend.into(),
            startup_ms: Some(startup_ms),
            ns_per_event_median: Some(100.0),
            ns_per_event_ci95_lo: Some(90.0),
            ns_per_event_ci95_hi: Some(110.0),
            ..rep(1, 10, 0)
        }
    }

    #[test]
    fn a_tool_cell_meets_each_loader_of_the_same_cell_in_order() {
        let other_host = Row {
            host: "b".into(),
            ..backend("libbpf", 1.0)
        };
        let other_workers = Row {
            workers: 7,
            ..backend("libbpf", 1.0)
        };
        let failed = Row {
            status: Status::Error,
            ..backend("c", 1.0)
        };
        // Hosts fold apart (as the report folds them), the other one first.
        let mut cells = aggregate(&[other_host]);
        cells.extend(aggregate(&[
            backend("aya", 40.0),
            other_workers,
            failed,
            backend(TOOL, 400.0),
            backend("libbpf", 20.0),
        ]));
        let pairs = tool_peers(&cells);
        let peers: Vec<(&str, Option<f64>)> = pairs
            .iter()
            .map(|p| (p.loader.first.backend.as_str(), p.startup_ratio()))
            .collect();
        assert_eq!(peers, [("libbpf", Some(20.0)), ("aya", Some(10.0))]);
        assert!(pairs[0].context(&pairs).is_empty(), "nothing varies");

        let guest = cells
            .iter()
            .map(|a| Aggregate {
                first: Row {
                    timing: Timing::Emulated,
                    ..a.first.clone()
                },
                ..a.clone()
            })
            .collect::<Vec<_>>();
        assert!(
            tool_peers(&guest).is_empty(),
            "emulated times compare nothing"
        );
        assert!(tool_peers(&cells[..4]).is_empty(), "no tool cell");
        assert!(tool_peers(&cells[4..5]).is_empty(), "no loader cell");
    }

    #[test]
    fn a_keyed_count_that_lost_events_has_no_ns_ratio() {
        let keyed = |backend_name: &str, dropped: u64| Row {
            keys: crate::export::csv::KeyCount(64),
            max_entries: Some(64),
            dropped: Some(dropped),
            ..backend(backend_name, 1.0)
        };
        let cells = aggregate(&[keyed(TOOL, 0), keyed("libbpf", 0)]);
        assert!(tool_peers(&cells)[0].ns_per_event().is_some());
        let cells = aggregate(&[keyed(TOOL, 0), keyed("libbpf", 3)]);
        assert_eq!(tool_peers(&cells)[0].ns_per_event(), None);
    }

    #[test]
    fn pairs_say_what_tells_them_apart() {
        let hot = |backend_name: &str| Row {
            method: Method::Hot,
            ..backend(backend_name, 1.0)
        };
        let cells = aggregate(&[
            backend(TOOL, 1.0),
            backend("libbpf", 1.0),
            hot(TOOL),
            hot("libbpf"),
        ]);
        let pairs = tool_peers(&cells);
        let context: Vec<Vec<String>> = pairs.iter().map(|p| p.context(&pairs)).collect();
        assert_eq!(context, [["storm"], ["hot"]]);
    }

    #[test]
    fn distinct_keeps_first_seen_order() {
        assert_eq!(distinct(["b", "a", "b", "c", "a"]), ["b", "a", "c"]);
    }
}
