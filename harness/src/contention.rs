//! Contention: one hot strategy measured at several worker counts
//! (`--workers sweep`), as a curve of ns/event against workers, and how
//! much it grows from the fewest workers to the most.

use crate::aggregate::{distinct, Aggregate, Interval};
use crate::hot::Method;

/// One strategy on one backend and kernel, at each worker count measured.
pub struct Curve<'a> {
    /// The cell at the fewest workers: what the curve is of.
    pub first: &'a Aggregate,
    /// (workers, ns/event), by workers ascending.
    pub points: Vec<(u32, Interval)>,
}

impl Curve<'_> {
    /// ns/event at `workers`, where the curve has it.
    pub fn at(&self, workers: u32) -> Option<Interval> {
        self.points.iter().find(|p| p.0 == workers).map(|p| p.1)
    }
}

/// The curves in `cells`: hot exact-or-racy counters and streams measured
/// without error at two worker counts or more, in the order first seen.
pub fn curves(cells: &[Aggregate]) -> Vec<Curve<'_>> {
    let hot: Vec<&Aggregate> = cells
        .iter()
        .filter(|a| a.first.method == Method::Hot && a.is_ok() && a.ns_per_event.is_some())
        .collect();
    let strategy = |a: &Aggregate| {
        let key = a.key();
        (
            a.first.host.clone(),
            key.kernel,
            key.backend,
            key.attach,
            key.map,
            key.update,
            key.variant,
            key.filter,
        )
    };
    distinct(hot.iter().map(|a| strategy(a)))
        .into_iter()
        .filter_map(|s| {
            let mut members: Vec<&Aggregate> =
                hot.iter().copied().filter(|a| strategy(a) == s).collect();
            members.sort_by_key(|a| a.first.workers);
            let points: Vec<(u32, Interval)> = members
                .iter()
                .filter_map(|a| Some((a.first.workers, a.ns_per_event?)))
                .collect();
            (points.len() > 1).then(|| Curve {
                first: members[0],
                points,
            })
        })
        .collect()
}

/// `counts` ascending, each once.
pub fn ascending(counts: impl IntoIterator<Item = u32>) -> Vec<u32> {
    let mut counts: Vec<u32> = counts.into_iter().collect();
    counts.sort_unstable();
    counts.dedup();
    counts
}

/// The worker counts of `curves`, ascending.
pub fn worker_counts(curves: &[Curve<'_>]) -> Vec<u32> {
    ascending(curves.iter().flat_map(|c| c.points.iter().map(|p| p.0)))
}

/// "1 worker", "4 workers".
pub fn workers(n: u32) -> String {
    if n == 1 {
        "1 worker".into()
    } else {
        format!("{n} workers")
    }
}

/// How a curve's ns/event grows from `fewest` workers to `most`, in words:
/// "2.10 +- 0.15 x" where the two are apart (see [`Interval::apart_from`]),
/// the ratio and "in noise" where they are not, "-" where the curve lacks
/// either point (a cell that failed).
pub fn describe_growth(curve: &Curve<'_>, fewest: u32, most: u32) -> String {
    let (Some(from), Some(to)) = (curve.at(fewest), curve.at(most)) else {
        return "-".into();
    };
    match (to.apart_from(&from), to.ratio_to(&from)) {
        (Some((r, u)), _) => format!("{r:.2} +- {u:.2} x"),
        (None, Some((r, _))) => format!("{r:.2} x, in noise"),
        (None, None) => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use bpfstorm_common::{MapKind, UpdateMode};

    use super::*;
    use crate::aggregate::aggregate;
    use crate::export::csv::Row;

    fn hot(map: MapKind, workers: u32, ns: f64, half: f64) -> Row {
        Row {
            backend: "libbpf".into(),
            method: Method::Hot,
            map,
            update: if map == MapKind::PercpuArray {
                UpdateMode::Percpu
            } else {
                UpdateMode::Atomic
            },
            workers,
            ns_per_event_median: Some(ns),
            ns_per_event_ci95_lo: Some(ns - half),
            ns_per_event_ci95_hi: Some(ns + half),
            ..Row::default()
        }
    }

    #[test]
    fn a_curve_per_strategy_by_workers_ascending() {
        let rows = [
            hot(MapKind::Array, 4, 300.0, 10.0),
            hot(MapKind::Array, 1, 100.0, 5.0),
            hot(MapKind::PercpuArray, 1, 60.0, 3.0),
            hot(MapKind::PercpuArray, 4, 62.0, 3.0),
            hot(MapKind::Hash, 2, 150.0, 5.0),
            Row {
                ns_per_event_ci95_lo: Some(20.0),
                ..hot(MapKind::PercpuHash, 1, 50.0, 2.0)
            },
            hot(MapKind::PercpuHash, 4, 150.0, 50.0),
        ];
        let cells = aggregate(&rows);
        let curves = curves(&cells);
        assert_eq!(curves.len(), 3, "hash has one worker count: no curve");
        let array = &curves[0];
        assert_eq!(array.first.first.map, MapKind::Array);
        let workers: Vec<u32> = array.points.iter().map(|p| p.0).collect();
        assert_eq!(workers, [1, 4]);
        assert!(describe_growth(array, 1, 4).starts_with("3.00 +- "));
        assert_eq!(describe_growth(&curves[1], 1, 4), "1.03 x, in noise");
        assert_eq!(worker_counts(&curves), [1, 4]);
        assert_eq!(
            describe_growth(&curves[2], 1, 4),
            "3.00 x, in noise",
            "apart, but 3.00 +- 2.10: the +- reaches 1"
        );
        assert_eq!(describe_growth(array, 1, 8), "-", "no point at 8 workers");
    }

    #[test]
    fn storm_and_failed_cells_make_no_curve() {
        let mut storm = hot(MapKind::Array, 2, 300.0, 10.0);
        storm.method = Method::Storm;
        let mut failed = hot(MapKind::Array, 4, 300.0, 10.0);
        failed.status = crate::export::csv::Status::Error;
        let rows = [hot(MapKind::Array, 1, 100.0, 5.0), storm, failed];
        assert!(curves(&aggregate(&rows)).is_empty());
    }
}
