//! Every attach point on every backend: where this kernel allows it, it
//! counts exactly what its oracle sees; where the kernel refuses it, the
//! refusal is a typed "unsupported here" carrying the kernel's errno.

use std::time::Duration;

use bpfstorm::backends;
use bpfstorm::measure::{measure, FilterKind, MeasureError, Oracle};
use bpfstorm::storm::{SpawnMethod, StormSpec, Target};
use bpfstorm_common::{AttachPoint, CounterError, Filter, MapKind, Strategy, UpdateMode};

mod common;

fn outcome(
    backend: &str,
    attach: AttachPoint,
    spawn: SpawnMethod,
) -> Result<bpfstorm::measure::Cell, MeasureError> {
    outcome_of(backend, attach, Target::Tiny, spawn)
}

fn outcome_of(
    backend: &str,
    attach: AttachPoint,
    target: Target,
    spawn: SpawnMethod,
) -> Result<bpfstorm::measure::Cell, MeasureError> {
    // The classic array, or the per-CPU count where a tool has no words
    // for an atomic add (bpftrace's `count()`).
    let (map, update) = if backends::LOADERS.contains(&backend) {
        (MapKind::Array, UpdateMode::Atomic)
    } else {
        (MapKind::PercpuArray, UpdateMode::Percpu)
    };
    let backend = backends::by_name(backend).unwrap();
    let strategy = Strategy::new(attach, map, update, Filter::All).unwrap();
    let spec = StormSpec::new(2, 500, target, spawn, Duration::from_secs(60)).unwrap();
    measure(backend.as_ref(), strategy, FilterKind::Cgroup, &spec)
}

/// `e` is bpftrace's refusal of a hook it has no probe for (raw and BTF
/// tracepoints, ksyscall, LSM), typed before anything runs.
fn assert_no_probe(name: &str, attach: AttachPoint, e: &CounterError) {
    assert!(
        name == "bpftrace" && !common::bpftrace_has_probe(attach) && e.is_unsupported(),
        "{name} {attach}: {e}"
    );
    assert!(
        e.to_string().contains(attach.name()),
        "{name} {attach}: {e}"
    );
}

/// With execveat (the `fexecve` target), each attach point counts exactly
/// what its oracle sees: hooks on every syscall that keep both exec
/// syscalls are judged against execve + execveat, not execve alone.
#[test]
fn each_attach_point_matches_its_oracle_for_execveat_too() {
    for name in backends::NAMES {
        for &attach in AttachPoint::ALL {
            match outcome_of(name, attach, Target::Fexecve, SpawnMethod::Fork) {
                Ok(cell) => {
                    assert_eq!(cell.storm.succeeded, 1000, "{name} {attach}");
                    assert!(
                        cell.is_exact(),
                        "{name} {attach}: counted {} vs {} {}",
                        cell.reading.count,
                        cell.expected,
                        cell.expected_oracle
                    );
                    let sees_execveat = matches!(
                        Oracle::for_attach(attach),
                        Oracle::SysEnterExecveat
                            | Oracle::ExecveOrExecveat
                            | Oracle::SchedProcessExec
                    );
                    let want = if sees_execveat { 1000 } else { 0 };
                    assert_eq!(cell.expected, want, "{name} {attach}");
                }
                Err(MeasureError::Counter(CounterError::Unsupported { what, .. })) => {
                    assert_eq!(what, attach.name());
                }
                Err(MeasureError::Counter(e @ CounterError::Inexpressible { .. })) => {
                    assert_no_probe(name, attach, &e)
                }
                Err(e) => panic!("{name} {attach}: neither counted nor a typed refusal: {e}"),
            }
        }
    }
}

#[test]
fn each_attach_point_counts_exactly_or_is_refused_with_a_typed_error() {
    for name in backends::NAMES {
        for &attach in AttachPoint::ALL {
            match outcome(name, attach, SpawnMethod::Fork) {
                Ok(cell) => {
                    assert_eq!(cell.storm.succeeded, 1000, "{name} {attach}");
                    assert_eq!(
                        cell.reading.count, cell.expected,
                        "{name} {attach}: counted vs {}",
                        cell.expected_oracle
                    );
                    let storm_execs = if attach == AttachPoint::TpSysEnterExecveat {
                        0
                    } else {
                        1000
                    };
                    assert_eq!(cell.expected, storm_execs, "{name} {attach}");
                    println!(
                        "{name} {attach}: {} of {}",
                        cell.reading.count, cell.expected
                    );
                }
                Err(MeasureError::Counter(CounterError::Unsupported {
                    what,
                    reason,
                    errno,
                })) => {
                    assert_eq!(what, attach.name());
                    if backends::LOADERS.contains(name) {
                        let errno = errno.expect("a kernel refusal carries its errno");
                        assert!(reason.contains(&format!("errno {errno}")), "{reason}");
                        assert!(reason.contains("likely cause"), "{reason}");
                    } else {
                        // A tool's refusal is the tool's own words.
                        assert!(reason.starts_with(&format!("{name}: ")), "{reason}");
                        assert!(reason.contains("ERROR"), "{reason}");
                    }
                    println!("{name} {attach}: unsupported here: {reason}");
                }
                Err(MeasureError::Counter(e @ CounterError::Inexpressible { .. })) => {
                    assert_no_probe(name, attach, &e)
                }
                Err(e) => panic!("{name} {attach}: neither counted nor a typed refusal: {e}"),
            }
        }
    }
}

#[test]
fn uprobe_sees_execs_made_through_posix_spawn_too() {
    for name in backends::NAMES {
        let cell = outcome(name, AttachPoint::UprobeLibcExecve, SpawnMethod::PosixSpawn)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(cell.reading.count, cell.storm.issued, "{name}");
    }
}
