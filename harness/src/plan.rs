//! The matrix a run measures: backends x strategies, one storm spec.

use std::fmt;
use std::time::Duration;

use bpfstorm_common::{
    AttachPoint, Filter, InvalidStrategy, MapKind, ReadPath, Strategy, UpdateMode,
};
use clap::ValueEnum;

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
    let counts = worker_counts(&args.workers, cpus);
    let methods = args.methods(inside_guest);
    // Named explicitly, the hot method must reach every attach point asked for.
    if args.method.contains(&Method::Hot) {
        for &attach in &args.attach {
            hot::trigger(attach)?;
        }
    }
    Ok(RunOptions {
        backends: backends::by_names(&args.backend),
        strategies: strategies(
            &args.attach,
            &args.map,
            &args.update,
            &args.read,
            args.matrix,
        )?,
        methods,
        precision: Precision {
            target: args.precision,
            max_time: Duration::from_secs_f64(args.max_time),
        },
        filter: args.filter.into(),
        main_spec: counts
            .iter()
            .position(|&n| n == cpus)
            .unwrap_or(counts.len() - 1),
        specs: counts
            .iter()
            .map(|&workers| {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Matrix {
    /// The classic maps, the ring and perf buffers and the global
    /// variables, each with its classic update mode (buffers: one record
    /// per event, woken as the kernel does by default); racy updates on
    /// the array only (what the classic tutorial's slot loses).
    Default,
    /// Every map kind, the LRU maps too, with every valid update mode
    /// (the buffers' wakeup policies and `bpf_ringbuf_output` too).
    Full,
}

impl Matrix {
    pub fn maps(self) -> &'static [MapKind] {
        match self {
            Matrix::Default => MapKind::DEFAULT,
            Matrix::Full => MapKind::ALL,
        }
    }

    /// Whether the matrix takes `update` on `map` when neither was named.
    fn takes(self, map: MapKind, update: UpdateMode) -> bool {
        self == Matrix::Full || update == map.classic_update() || map == MapKind::Array
    }
}

impl fmt::Display for Matrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Matrix::Default => "default",
            Matrix::Full => "full",
        })
    }
}

/// Every attach x map x update x read path combination of the choices. An
/// empty `maps` means the `matrix`'s maps, an empty `updates` every mode
/// valid for each map (for the default matrix's own maps, the modes it
/// takes), an empty `reads` the syscall alone; a mode or read path named
/// explicitly for maps that cannot take it is refused, saying what works,
/// unless the maps were left to default (then the maps that take it are
/// kept), so nothing the user asked for is silently dropped.
pub fn strategies(
    attach: &[AttachPoint],
    maps: &[MapKind],
    updates: &[UpdateMode],
    reads: &[ReadPath],
    matrix: Matrix,
) -> Result<Vec<Strategy>, InvalidStrategy> {
    let all_maps = maps.is_empty();
    let maps = if all_maps { matrix.maps() } else { maps };
    let reads = if reads.is_empty() {
        &[ReadPath::Syscall]
    } else {
        reads
    };
    let mut out = Vec::new();
    let mut first_error = None;
    for &a in attach {
        for &m in maps {
            let wanted: Vec<UpdateMode> = if updates.is_empty() {
                let valid = m.valid_updates().iter().copied();
                valid.filter(|&u| !all_maps || matrix.takes(m, u)).collect()
            } else {
                updates.to_vec()
            };
            for u in wanted {
                for &r in reads {
                    match Strategy::new(a, m, u, Filter::All).and_then(|s| s.with_read(r)) {
                        Ok(s) => out.push(s),
                        Err(e) if all_maps => {
                            first_error.get_or_insert(e);
                        }
                        Err(e) => return Err(e),
                    }
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
    use crate::aggregate::distinct;

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
        let s = strategies(
            &[AttachPoint::TpSysEnterExecve],
            &[],
            &[],
            &[],
            Matrix::Full,
        )
        .unwrap();
        let pairs: usize = MapKind::ALL.iter().map(|m| m.valid_updates().len()).sum();
        assert_eq!(s.len(), pairs);
        assert!(
            s.iter().any(|s| s.update() == UpdateMode::Racy),
            "racy cells too"
        );
        let s = strategies(
            &[AttachPoint::TpSysEnterExecve],
            &[],
            &[],
            &[],
            Matrix::Default,
        )
        .unwrap();
        let racy: Vec<MapKind> = s
            .iter()
            .filter(|s| s.update() == UpdateMode::Racy)
            .map(|s| s.map())
            .collect();
        assert_eq!(racy, [MapKind::Array], "the default's one racy cell");
        let streams: Vec<UpdateMode> = s
            .iter()
            .filter(|s| s.map().is_stream())
            .map(|s| s.update())
            .collect();
        assert_eq!(
            streams,
            [UpdateMode::Stream, UpdateMode::Stream],
            "buffers in their classic mode only"
        );
        let maps = distinct(s.iter().map(|s| s.map()));
        assert_eq!(maps, MapKind::DEFAULT);
        let hash = strategies(
            &[AttachPoint::TpSysEnterExecve],
            &[MapKind::Hash],
            &[],
            &[],
            Matrix::Default,
        )
        .unwrap();
        assert_eq!(hash.len(), 2, "a map named gets every valid mode: {hash:?}");
    }

    #[test]
    fn a_mode_named_for_maps_that_cannot_take_it_is_refused() {
        let err = strategies(
            &[AttachPoint::TpSysEnterExecve],
            &[MapKind::Array, MapKind::Ringbuf],
            &[UpdateMode::Stream],
            &[],
            Matrix::Full,
        )
        .unwrap_err();
        assert!(err.to_string().contains("map `array`"), "{err}");
    }

    #[test]
    fn a_mode_alone_keeps_the_maps_that_take_it() {
        let percpu = |matrix| {
            let s = strategies(
                &[AttachPoint::TpSysEnterExecve],
                &[],
                &[UpdateMode::Percpu],
                &[],
                matrix,
            )
            .unwrap();
            s.iter().map(|s| s.map().to_string()).collect::<Vec<_>>()
        };
        assert_eq!(
            percpu(Matrix::Default),
            ["percpu_array", "percpu_hash", "global_percpu"]
        );
        assert_eq!(
            percpu(Matrix::Full),
            [
                "percpu_array",
                "percpu_hash",
                "lru_percpu_hash",
                "global_percpu"
            ]
        );
    }

    #[test]
    fn mmap_reads_go_to_the_maps_that_can_be_mapped() {
        let both = [ReadPath::Syscall, ReadPath::Mmap];
        let s = strategies(
            &[AttachPoint::TpSysEnterExecve],
            &[],
            &[],
            &both,
            Matrix::Default,
        )
        .unwrap();
        let mapped: Vec<String> = s
            .iter()
            .filter(|s| s.read() == ReadPath::Mmap)
            .map(|s| format!("{}/{}", s.map(), s.update()))
            .collect();
        assert_eq!(
            mapped,
            [
                "array/atomic",
                "array/racy",
                "global/atomic",
                "global_percpu/percpu"
            ]
        );
        let by_syscall = s.iter().filter(|s| s.read() == ReadPath::Syscall).count();
        assert_eq!(by_syscall, 9, "every strategy is still read by syscall");
        let alone = strategies(
            &[AttachPoint::TpSysEnterExecve],
            &[],
            &[],
            &[ReadPath::Mmap],
            Matrix::Default,
        )
        .unwrap();
        assert_eq!(alone.len(), 4, "mmap alone: the mappable maps only");
        assert!(alone.iter().all(|s| s.read() == ReadPath::Mmap));
        let err = strategies(
            &[AttachPoint::TpSysEnterExecve],
            &[MapKind::Array, MapKind::Hash],
            &[],
            &[ReadPath::Mmap],
            Matrix::Default,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("map `hash` cannot be read by mmap"),
            "{err}"
        );
    }

    #[test]
    fn nothing_valid_is_an_error() {
        let err = strategies(
            &[AttachPoint::TpSysEnterExecve],
            &[MapKind::Array],
            &[UpdateMode::Percpu],
            &[],
            Matrix::Full,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("does not work on map `array`"),
            "{err}"
        );
    }
}
