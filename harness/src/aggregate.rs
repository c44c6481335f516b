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

use crate::compare::Key;
use crate::export::csv::Row;
use crate::sample::{Estimate, MeanEstimate};

/// One cell over all its repetitions.
#[derive(Debug, Clone)]
pub struct Aggregate {
    /// The first repetition's row, with counts summed and timings folded.
    pub row: Row,
    pub repetitions: usize,
    /// What the row's timing intervals are.
    pub bracket: Bracket,
    /// End-to-end ns added per exec: the mean of the paired (with probe -
    /// without) differences and its 95% interval; none below two.
    pub e2e_ns_per_exec: Option<MeanEstimate>,
    /// Repetitions whose ns/run median lies outside Tukey's fences of the others.
    pub outliers: Vec<u32>,
}

/// What a folded cell's timing brackets (`*_median`, `*_ci95_lo/hi`) are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bracket {
    /// One repetition: the median of the storm's ~50 ms slices and its 95%
    /// order-statistic interval.
    Slices,
    /// The mean over this many repetitions of their medians, and its 95%
    /// Student-t interval (the point is then a mean, not a median).
    Repetitions(usize),
}

impl Bracket {
    /// Says what the bracket is, for a table's footnote.
    pub fn describe(self) -> String {
        match self {
            Bracket::Slices => "median of one storm's ~50 ms slices [its 95% interval]".into(),
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
fn outliers(rows: &[&Row]) -> Vec<u32> {
    let mut medians: Vec<f64> = rows.iter().filter_map(|r| r.ns_per_run_median).collect();
    if medians.len() < 4 {
        return Vec::new();
    }
    medians.sort_by(f64::total_cmp);
    let q = |p: f64| medians[((medians.len() - 1) as f64 * p).round() as usize];
    let (q1, q3) = (q(0.25), q(0.75));
    let (lo, hi) = (q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1));
    rows.iter()
        .filter(|r| r.ns_per_run_median.is_some_and(|m| m < lo || m > hi))
        .map(|r| r.repetition)
        .collect()
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
        let key = Key::of(r);
        if !cells.contains_key(&key) {
            order.push(key.clone());
        }
        cells.entry(key).or_default().push((index, r));
    }
    let mut first_overflow = None;
    let folded = order
        .into_iter()
        .map(|key| {
            let reps = &cells[&key];
            let measured: Vec<(usize, &Row)> = reps
                .iter()
                .copied()
                .filter(|(_, r)| r.status != "error")
                .collect();
            let mut row = reps[0].1.clone();
            if let Some((_, failed)) = reps.iter().find(|(_, r)| r.status != "ok") {
                row.status = failed.status.clone();
                row.error = failed.error.clone();
            }
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
            row.counted = count("counted", |r| r.counted);
            row.expected = count("expected", |r| r.expected);
            row.dropped = count("dropped", |r| r.dropped);
            row.issued = count("issued", |r| r.issued);
            row.missing = sum("missing", &measured, |r| r.missing, 0, i64::checked_add)
                .unwrap_or_else(|o| {
                    overflows.push(o);
                    None
                });
            if let Some(o) = overflows.first() {
                row.status = "error".into();
                row.error = format!("{o}: a count was edited by hand?");
                first_overflow.get_or_insert_with(|| o.clone());
            }
            row.exact = measured
                .iter()
                .map(|(_, r)| r.exact)
                .collect::<Option<Vec<bool>>>()
                .map(|v| v.iter().all(|&e| e));
            // Two or more repetitions: the mean of their medians and its 95%
            // t-interval; one: that storm's own median and interval.
            let timed = field(|r| r.ns_per_run_median).len();
            let bracket = if timed >= 2 {
                Bracket::Repetitions(timed)
            } else {
                Bracket::Slices
            };
            if timed >= 2 {
                let fold =
                    |m: Option<MeanEstimate>| (m.map(|m| m.mean), m.map(|m| m.lo), m.map(|m| m.hi));
                (
                    row.ns_per_run_median,
                    row.ns_per_run_ci95_lo,
                    row.ns_per_run_ci95_hi,
                ) = fold(MeanEstimate::from_samples(&field(|r| r.ns_per_run_median)));
                (
                    row.ns_per_event_median,
                    row.ns_per_event_ci95_lo,
                    row.ns_per_event_ci95_hi,
                ) = fold(MeanEstimate::from_samples(&field(|r| {
                    r.ns_per_event_median
                })));
                (row.read_us_median, row.read_us_ci95_lo, row.read_us_ci95_hi) =
                    fold(MeanEstimate::from_samples(&field(|r| r.read_us_median)));
            }
            row.open_ms = median(&field(|r| r.open_ms));
            row.load_ms = median(&field(|r| r.load_ms));
            row.attach_ms = median(&field(|r| r.attach_ms));
            row.execs_per_s = median(&field(|r| r.execs_per_s));
            let measured: Vec<&Row> = measured.iter().map(|(_, r)| *r).collect();
            Aggregate {
                bracket,
                e2e_ns_per_exec: MeanEstimate::from_samples(&field(|r| r.e2e_ns_per_exec)),
                outliers: outliers(&measured),
                repetitions: reps.len(),
                row,
            }
        })
        .collect();
    (folded, first_overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(repetition: u32, counted: u64, missing: i64) -> Row {
        Row {
            schema_version: 2,
            backend: "libbpf".into(),
            attach: "tp_sys_enter_execve".into(),
            map: "array".into(),
            update: "atomic".into(),
            status: "ok".into(),
            repetition,
            counted: Some(counted),
            expected: Some(counted),
            missing: Some(missing),
            exact: Some(missing == 0),
            ..Row::default()
        }
    }

    #[test]
    fn counts_add_up_over_repetitions() {
        let cells = try_aggregate(&[rep(1, 10, 0), rep(2, 20, 0)]).unwrap();
        assert_eq!(cells.len(), 1);
        assert_eq!(cells[0].row.counted, Some(30));
        assert_eq!(cells[0].row.missing, Some(0));
        assert_eq!(cells[0].row.status, "ok");
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
        let cell = &aggregate(&rows)[0].row;
        assert_eq!(cell.status, "error");
        assert!(cell.error.contains("`counted`"), "{}", cell.error);
        assert_eq!(cell.counted, None);

        let rows = [rep(1, 0, i64::MIN), rep(2, 0, -1)];
        assert_eq!(try_aggregate(&rows).unwrap_err().column, "missing");
        assert_eq!(aggregate(&rows)[0].row.missing, None);
    }

    #[test]
    fn distinct_keeps_first_seen_order() {
        assert_eq!(distinct(["b", "a", "b", "c", "a"]), ["b", "a", "c"]);
    }
}
