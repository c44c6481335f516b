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
    /// ns/event at the most workers over that at the fewest, and the
    /// ratio's uncertainty (see [`Interval::ratio_to`]).
    pub fn growth(&self) -> Option<(f64, f64)> {
        let (first, last) = (self.points.first()?.1, self.points.last()?.1);
        last.ratio_to(&first)
    }

    /// Whether the cost at the most workers is apart from that at the
    /// fewest, as the summary's `vs cheapest` judges: their 95% intervals
    /// do not overlap, and the ratio's +- does not reach 1.
    pub fn grows_beyond_noise(&self) -> bool {
        match (self.points.first(), self.points.last(), self.growth()) {
            (Some((_, first)), Some((_, last)), Some((r, u))) => {
                !first.overlaps(last) && (r - 1.0).abs() > u
            }
            _ => false,
        }
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

/// The worker counts of `curves`, ascending.
pub fn worker_counts(curves: &[Curve<'_>]) -> Vec<u32> {
    let mut counts: Vec<u32> = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.0))
        .collect();
    counts.sort_unstable();
    counts.dedup();
    counts
}

/// "1 worker", "4 workers".
pub fn workers(n: u32) -> String {
    if n == 1 {
        "1 worker".into()
    } else {
        format!("{n} workers")
    }
}

/// A curve's growth in words: "2.10 +- 0.15 x" when the two ends are
/// apart (see [`Curve::grows_beyond_noise`]), else that it is in the noise.
pub fn describe_growth(curve: &Curve<'_>) -> String {
    match curve.growth() {
        Some((r, u)) if curve.grows_beyond_noise() => format!("{r:.2} +- {u:.2} x"),
        Some((r, _)) => format!("{r:.2} x, in noise"),
        None => "-".into(),
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
        let (r, u) = array.growth().unwrap();
        assert!((r - 3.0).abs() < 1e-9 && u > 0.0, "{r} {u}");
        assert!(array.grows_beyond_noise());
        assert!(describe_growth(array).starts_with("3.00 +- "));
        assert!(!curves[1].grows_beyond_noise());
        assert!(describe_growth(&curves[1]).ends_with("in noise"));
        assert_eq!(worker_counts(&curves), [1, 4]);
        let wide = &curves[2];
        assert!(
            !wide.grows_beyond_noise(),
            "apart, but 3.00 +- 2.10: the +- reaches 1"
        );
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
