//! The matrix a run measures: backends x strategies, one storm spec.

use std::time::Duration;

use bpfstorm_common::{AttachPoint, Filter, InvalidStrategy, MapKind, Strategy, UpdateMode};

use crate::backends;
use crate::cli::{RunArgs, WorkerCount};
use crate::hot::{self, Method, NoTrigger, Precision};
use crate::run::RunOptions;
use crate::storm::{StormError, StormSpec, MAX_WORKERS};

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Strategy(#[from] InvalidStrategy),
    #[error(transparent)]
    Storm(#[from] StormError),
    #[error(transparent)]
    NoTrigger(#[from] NoTrigger),
}

/// The run `args` ask for, with the defaults of where it runs: a guest
/// (`inside_guest`) measures fewer execs, once, and without the paired
/// probe-free storm, whose figure emulation would drown.
pub fn run_options(args: &RunArgs, inside_guest: bool) -> Result<RunOptions, PlanError> {
    let cpus = std::thread::available_parallelism()
        .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX));
    let methods = args.methods(inside_guest);
    // Named explicitly, the hot method must reach every attach point asked for.
    if args.method.contains(&Method::Hot) {
        for &attach in &args.attach {
            hot::trigger(attach)?;
        }
    }
    Ok(RunOptions {
        backends: backends::by_names(&args.backend),
        strategies: strategies(&args.attach, &args.map, &args.update)?,
        methods,
        precision: Precision {
            target: args.precision,
            max_time: Duration::from_secs_f64(args.max_time),
        },
        filter: args.filter.into(),
        specs: worker_counts(&args.workers, cpus)
            .into_iter()
            .map(|workers| {
                StormSpec::new(
                    workers,
                    args.execs(inside_guest),
                    args.target,
                    args.spawn,
                    Duration::from_secs(args.timeout),
                )
            })
            .collect::<Result<_, _>>()?,
        repeat: args.repeat(inside_guest),
        paired_baseline: !inside_guest,
    })
}

/// The worker counts `given` name on a machine of `cpus`, ascending and
/// each once: one per CPU when none is named; a sweep doubles from 1 to
/// twice the CPUs and takes in the CPU count itself.
pub fn worker_counts(given: &[WorkerCount], cpus: u32) -> Vec<u32> {
    let mut counts = Vec::new();
    for count in given {
        match *count {
            WorkerCount::Exactly(n) => counts.push(n),
            WorkerCount::Sweep => {
                let top = cpus.saturating_mul(2).min(MAX_WORKERS);
                counts.extend(
                    std::iter::successors(Some(1u32), |n| n.checked_mul(2))
                        .take_while(|&n| n < top),
                );
                counts.extend([cpus.min(top), top]);
            }
        }
    }
    if counts.is_empty() {
        counts.push(cpus.clamp(1, MAX_WORKERS));
    }
    counts.sort_unstable();
    counts.dedup();
    counts
}

/// Every attach x map x update combination of the choices. An empty `maps`
/// means all, an empty `updates` every mode valid for each map; a mode named
/// explicitly for maps that cannot take it is refused, saying what works,
/// unless the maps were left to default (then the maps that take it are
/// kept), so nothing the user asked for is silently dropped.
pub fn strategies(
    attach: &[AttachPoint],
    maps: &[MapKind],
    updates: &[UpdateMode],
) -> Result<Vec<Strategy>, InvalidStrategy> {
    let all_maps = maps.is_empty();
    let maps = if all_maps { MapKind::ALL } else { maps };
    let mut out = Vec::new();
    let mut first_error = None;
    for &a in attach {
        for &m in maps {
            let wanted: &[UpdateMode] = if updates.is_empty() {
                m.valid_updates()
            } else {
                updates
            };
            for &u in wanted {
                match Strategy::new(a, m, u, Filter::All) {
                    Ok(s) => out.push(s),
                    Err(e) if all_maps => {
                        first_error.get_or_insert(e);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
    match (out.is_empty(), first_error) {
        (true, Some(e)) => Err(e),
        _ => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_counts_default_to_the_cpus_and_sweep_to_twice_them() {
        use WorkerCount::{Exactly, Sweep};
        assert_eq!(worker_counts(&[], 16), [16]);
        assert_eq!(worker_counts(&[Sweep], 2), [1, 2, 4]);
        assert_eq!(worker_counts(&[Sweep], 16), [1, 2, 4, 8, 16, 32]);
        assert_eq!(worker_counts(&[Sweep], 6), [1, 2, 4, 6, 8, 12]);
        assert_eq!(worker_counts(&[Sweep], 1), [1, 2]);
        assert_eq!(
            worker_counts(&[Exactly(3), Sweep, Exactly(3)], 2),
            [1, 2, 3, 4]
        );
        assert_eq!(
            worker_counts(&[Sweep], 4096),
            [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
        );
    }

    #[test]
    fn default_matrix_is_every_valid_pair() {
        let s = strategies(&[AttachPoint::TpSysEnterExecve], &[], &[]).unwrap();
        let pairs: usize = MapKind::ALL.iter().map(|m| m.valid_updates().len()).sum();
        assert_eq!(s.len(), pairs);
        assert!(
            s.iter().any(|s| s.update() == UpdateMode::Racy),
            "racy cells too"
        );
    }

    #[test]
    fn a_mode_named_for_maps_that_cannot_take_it_is_refused() {
        let err = strategies(
            &[AttachPoint::TpSysEnterExecve],
            &[MapKind::Array, MapKind::Ringbuf],
            &[UpdateMode::Stream],
        )
        .unwrap_err();
        assert!(err.to_string().contains("map `array`"), "{err}");
    }

    #[test]
    fn a_mode_alone_keeps_the_maps_that_take_it() {
        let s = strategies(&[AttachPoint::TpSysEnterExecve], &[], &[UpdateMode::Percpu]).unwrap();
        let names: Vec<String> = s.iter().map(|s| s.map().to_string()).collect();
        assert_eq!(names, ["percpu_array", "percpu_hash"]);
    }

    #[test]
    fn nothing_valid_is_an_error() {
        let err = strategies(
            &[AttachPoint::TpSysEnterExecve],
            &[MapKind::Array],
            &[UpdateMode::Percpu],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("does not work on map `array`"),
            "{err}"
        );
    }
}
