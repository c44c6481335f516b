//! Folding the repetitions of a cell into one line: counts add up, exact
//! means exact every time, timings become the median of the repetitions'
//! medians with the widest of their intervals, and end-to-end exec cost
//! becomes an interval over the paired with/without-probe differences.

use std::collections::BTreeMap;

use crate::compare::Key;
use crate::export::csv::Row;
use crate::sample::Estimate;

/// One cell over all its repetitions.
#[derive(Debug, Clone)]
pub struct Aggregate {
    /// The first repetition's row, with counts summed and timings folded.
    pub row: Row,
    pub repetitions: usize,
    /// End-to-end ns added per exec: paired (with probe - without) differences.
    pub e2e_ns_per_exec: Option<Estimate>,
    /// Repetitions whose ns/run median lies outside Tukey's fences of the others.
    pub outliers: Vec<u32>,
}

/// The distinct items, in the order first seen.
pub fn distinct<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut seen = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

fn median(values: &[f64]) -> Option<f64> {
    Estimate::from_samples(values).map(|e| e.median)
}

fn sum(values: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    values.sum()
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

pub fn aggregate(rows: &[Row]) -> Vec<Aggregate> {
    let mut cells: BTreeMap<Key, Vec<&Row>> = BTreeMap::new();
    let mut order = Vec::new();
    for r in rows {
        let key = Key::of(r);
        if !cells.contains_key(&key) {
            order.push(key.clone());
        }
        cells.entry(key).or_default().push(r);
    }
    order
        .into_iter()
        .map(|key| {
            let reps = &cells[&key];
            let measured: Vec<&Row> = reps
                .iter()
                .copied()
                .filter(|r| r.status != "error")
                .collect();
            let mut row = reps[0].clone();
            if let Some(failed) = reps.iter().find(|r| r.status != "ok") {
                row.status = failed.status.clone();
                row.error = failed.error.clone();
            }
            let field = |f: fn(&Row) -> Option<f64>| -> Vec<f64> {
                measured.iter().filter_map(|r| f(r)).collect()
            };
            row.counted = sum(measured.iter().map(|r| r.counted));
            row.expected = sum(measured.iter().map(|r| r.expected));
            row.dropped = sum(measured.iter().map(|r| r.dropped));
            row.issued = sum(measured.iter().map(|r| r.issued));
            row.missing = measured.iter().map(|r| r.missing).sum();
            row.exact = measured
                .iter()
                .map(|r| r.exact)
                .collect::<Option<Vec<bool>>>()
                .map(|v| v.iter().all(|&e| e));
            row.ns_per_run_median = median(&field(|r| r.ns_per_run_median));
            row.ns_per_run_ci95_lo = field(|r| r.ns_per_run_ci95_lo).into_iter().reduce(f64::min);
            row.ns_per_run_ci95_hi = field(|r| r.ns_per_run_ci95_hi).into_iter().reduce(f64::max);
            row.read_us_median = median(&field(|r| r.read_us_median));
            row.read_us_ci95_lo = field(|r| r.read_us_ci95_lo).into_iter().reduce(f64::min);
            row.read_us_ci95_hi = field(|r| r.read_us_ci95_hi).into_iter().reduce(f64::max);
            row.load_ms = median(&field(|r| r.load_ms));
            row.attach_ms = median(&field(|r| r.attach_ms));
            row.execs_per_s = median(&field(|r| r.execs_per_s));
            Aggregate {
                e2e_ns_per_exec: Estimate::from_samples(&field(|r| r.e2e_ns_per_exec)),
                outliers: outliers(&measured),
                repetitions: reps.len(),
                row,
            }
        })
        .collect()
}
