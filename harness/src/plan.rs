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
    #[error(transparent)]
    Machine(#[from] bpfstorm_common::CounterError),
}

/// The keys each count is spread over (`--keys`, `--max-entries`).
pub struct Keying<'a> {
    /// Empty: the single key.
    pub keys: &'a [u32],
    /// `None`: each map sized for its keys (`MapKind::entries_for`).
    pub max_entries: Option<u32>,
    pub possible_cpus: usize,
}

impl Keying<'_> {
    /// The classic single key.
    pub const ONE: Keying<'static> = Keying {
        keys: &[],
        max_entries: None,
        possible_cpus: 1,
    };

    fn keys(&self) -> &[u32] {
        if self.keys.is_empty() {
            &[1]
        } else {
            self.keys
        }
    }
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
            &Keying {
                keys: &args.keys,
                max_entries: args.max_entries,
                possible_cpus: if args.keys.iter().any(|&k| k > 1) {
                    bpfstorm_common::count::possible_cpus()?
                } else {
                    1
                },
            },
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

/// Every attach x map x update x read path x keys combination of the
/// choices. An empty `maps` means the `matrix`'s maps, an empty `updates`
/// every mode valid for each map (for the default matrix's own maps, the
/// modes it takes), an empty `reads` the syscall alone. A map takes the
/// modes, read paths and key counts it has among those named; one named
/// explicitly that has none of them is refused, saying what works, unless
/// the maps were left to default (then the maps that take them are kept),
/// so nothing the user asked for is silently dropped.
pub fn strategies(
    attach: &[AttachPoint],
    maps: &[MapKind],
    updates: &[UpdateMode],
    reads: &[ReadPath],
    matrix: Matrix,
    keying: &Keying<'_>,
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
            } else if updates.iter().any(|u| m.valid_updates().contains(u)) {
                // A map takes the modes it has among those named.
                updates
                    .iter()
                    .copied()
                    .filter(|u| m.valid_updates().contains(u))
                    .collect()
            } else {
                updates.to_vec()
            };
            for u in wanted {
                for &r in reads {
                    // Read by another path asked for, a map without this
                    // one is what the user asked for.
                    let paths = m.read_paths();
                    if !paths.contains(&r) && reads.iter().any(|r| paths.contains(r)) {
                        continue;
                    }
                    for &k in keying.keys() {
                        // Measured at its one key, a map without keys is
                        // what the user asked for.
                        if k > 1 && !m.takes_keys() && keying.keys().contains(&1) {
                            continue;
                        }
                        let entries = keying
                            .max_entries
                            .unwrap_or_else(|| m.entries_for(k, keying.possible_cpus));
                        match Strategy::new(a, m, u, Filter::All)
                            .and_then(|s| s.with_read(r))
                            .and_then(|s| s.with_keys(k, entries))
                        {
                            Ok(s) if out.contains(&s) => {}
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
    }
    if keying.max_entries.is_some() && !out.iter().any(Strategy::is_keyed) {
        return Err(InvalidStrategy::EntriesWithoutKeys);
    }
    if !all_maps {
        unused_choice(&out, attach, maps, updates, reads, keying)?;
    }
    match (out.is_empty(), first_error) {
        (true, Some(e)) => Err(e),
        _ => Ok(out),
    }
}

/// Refuses a mode, read path or key count named for maps named with
/// `--map` where none of them takes it (it would be dropped silently),
/// with the first map's reason.
fn unused_choice(
    out: &[Strategy],
    attach: &[AttachPoint],
    maps: &[MapKind],
    updates: &[UpdateMode],
    reads: &[ReadPath],
    keying: &Keying<'_>,
) -> Result<(), InvalidStrategy> {
    let Some(&a) = attach.first() else {
        return Ok(());
    };
    let classic = |m: MapKind| Strategy::new(a, m, m.classic_update(), Filter::All);
    let refusal = |build: &dyn Fn(MapKind) -> Result<Strategy, InvalidStrategy>| {
        maps.iter()
            .find_map(|&m| build(m).err())
            .map_or(Ok(()), Err)
    };
    for &u in updates
        .iter()
        .filter(|&&u| !out.iter().any(|s| s.update() == u))
    {
        refusal(&|m| Strategy::new(a, m, u, Filter::All))?;
    }
    for &r in reads
        .iter()
        .filter(|&&r| !out.iter().any(|s| s.read() == r))
    {
        refusal(&|m| classic(m)?.with_read(r))?;
    }
    for &k in keying
        .keys
        .iter()
        .filter(|&&k| !out.iter().any(|s| s.keys().count == k))
    {
        refusal(&|m| classic(m)?.with_keys(k, 1))?;
    }
    Ok(())
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
            &Keying::ONE,
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
            &Keying::ONE,
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
            &Keying::ONE,
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
            &Keying::ONE,
        )
        .unwrap_err();
        assert!(err.to_string().contains("map `array`"), "{err}");
        // Each map takes the modes it has among those named.
        let both = strategies(
            &[AttachPoint::TpSysEnterExecve],
            &[MapKind::Array, MapKind::PercpuArray],
            &[UpdateMode::Atomic, UpdateMode::Percpu],
            &[],
            Matrix::Default,
            &Keying::ONE,
        )
        .unwrap();
        let names: Vec<String> = both.iter().map(|s| s.program_name()).collect();
        // A choice no named map takes is refused, not dropped.
        for (maps, updates, reads, keys, max_entries, error) in [
            (
                &[MapKind::Array, MapKind::Hash][..],
                &[UpdateMode::Atomic, UpdateMode::Percpu][..],
                &[][..],
                &[][..],
                None,
                "update mode `percpu` does not work on map `array`",
            ),
            (
                &[MapKind::Hash],
                &[],
                &[ReadPath::Syscall, ReadPath::Mmap],
                &[],
                None,
                "map `hash` cannot be read by mmap",
            ),
            (
                &[MapKind::Global, MapKind::Ringbuf],
                &[],
                &[],
                &[1, 64],
                None,
                "map `global` cannot count at 64 keys",
            ),
            (
                &[MapKind::Hash],
                &[],
                &[],
                &[1],
                Some(16),
                "--max-entries sizes",
            ),
        ] {
            let err = strategies(
                &[AttachPoint::TpSysEnterExecve],
                maps,
                updates,
                reads,
                Matrix::Default,
                &Keying {
                    keys,
                    max_entries,
                    possible_cpus: 2,
                },
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains(error), "{err}");
        }
        assert_eq!(
            names,
            [
                "tp_sys_enter_execve__array__atomic__all",
                "tp_sys_enter_execve__percpu_array__percpu__all"
            ]
        );
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
                &Keying::ONE,
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
    fn keys_go_to_the_maps_looked_up_by_key_sized_for_them() {
        let keying = |keys: &'static [u32], max_entries| Keying {
            keys,
            max_entries,
            possible_cpus: 4,
        };
        let s = strategies(
            &[AttachPoint::TpSysEnterExecve],
            &[],
            &[],
            &[],
            Matrix::Full,
            &keying(&[64], None),
        )
        .unwrap();
        let cells: Vec<String> = s
            .iter()
            .map(|s| format!("{}/{} {:?}", s.map(), s.update(), s.map_entries()))
            .collect();
        assert_eq!(
            cells,
            [
                "array/atomic Some(64)",
                "array/racy Some(64)",
                "hash/atomic Some(64)",
                "hash/racy Some(64)",
                "percpu_array/percpu Some(64)",
                "percpu_hash/percpu Some(64)",
                "lru_hash/atomic Some(1024)",
                "lru_hash/racy Some(1024)",
                "lru_percpu_hash/percpu Some(1024)",
            ],
            "keys alone: the maps that take them; LRU at 64 + 128 x 4 CPUs, at least 1024"
        );
        assert!(s.iter().all(|s| s.is_keyed()));
        let both = strategies(
            &[AttachPoint::TpSysEnterExecve],
            &[MapKind::LruHash, MapKind::Ringbuf],
            &[],
            &[],
            Matrix::Default,
            &keying(&[1, 4096], Some(16)),
        )
        .unwrap();
        let cells: Vec<String> = both
            .iter()
            .map(|s| {
                format!(
                    "{} {} {:?}",
                    s.program_name(),
                    s.keys().count,
                    s.map_entries()
                )
            })
            .collect();
        assert_eq!(
            cells,
            [
                "tp_sys_enter_execve__lru_hash__atomic__all 1 Some(1024)",
                "tp_sys_enter_execve__lru_hash__atomic__all__keyed 4096 Some(16)",
                "tp_sys_enter_execve__lru_hash__racy__all 1 Some(1024)",
                "tp_sys_enter_execve__lru_hash__racy__all__keyed 4096 Some(16)",
                "tp_sys_enter_execve__ringbuf__stream__all 1 None",
                "tp_sys_enter_execve__ringbuf__output__all 1 None",
                "tp_sys_enter_execve__ringbuf__no_wakeup__all 1 None",
                "tp_sys_enter_execve__ringbuf__batch_wakeup__all 1 None",
            ],
            "a map without keys is measured at 1 key only"
        );
        let err = strategies(
            &[AttachPoint::TpSysEnterExecve],
            &[MapKind::Global],
            &[],
            &[],
            Matrix::Default,
            &keying(&[64], None),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("map `global` cannot count at 64 keys"),
            "{err}"
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
            &Keying::ONE,
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
            &Keying::ONE,
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
            &Keying::ONE,
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
            &Keying::ONE,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("does not work on map `array`"),
            "{err}"
        );
    }
}
