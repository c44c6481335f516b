//! The bpftrace program of a strategy: the one-liner a user would write,
//! in the language of bpftrace v0.17 (Debian 12's, what scripts/setup
//! installs). bpftrace picks its maps itself, so a strategy is expressible
//! only where the statement's map is the strategy's; the backend checks
//! the map the loaded program really uses.

use bpfstorm_common::{AttachPoint, CounterError, MapKind, ReadPath, Strategy, UpdateMode};

/// The probe of an attach point, or why bpftrace has none.
fn probe(attach: AttachPoint) -> Result<&'static str, &'static str> {
    use AttachPoint::*;
    Ok(match attach {
        TpSysEnterExecve => "tracepoint:syscalls:sys_enter_execve",
        TpSysEnterExecveat => "tracepoint:syscalls:sys_enter_execveat",
        TpSchedProcessExec => "tracepoint:sched:sched_process_exec",
        UprobeLibcExecve => "uprobe:libc:execve",
        KprobeSysExecve => "kprobe:__x64_sys_execve",
        // bpftrace v0.17's names for fentry and fexit.
        FentrySysExecve => "kfunc:__x64_sys_execve",
        FexitSysExecve => "kretfunc:__x64_sys_execve",
        RawTpSysEnter | TpBtfSysEnter | RawTpSchedProcessExec | TpBtfSchedProcessExec => {
            return Err("bpftrace v0.17 has no raw or BTF-typed tracepoint probes")
        }
        KsyscallExecve => {
            return Err("bpftrace has no ksyscall probes (kprobe_sys_execve is the same function)")
        }
        LsmBprmCheckSecurity | LsmBprmCommittedCreds => {
            return Err("bpftrace v0.17 has no LSM probes")
        }
    })
}

/// What bpftrace can count in, and the statement that counts there.
const STATEMENTS: &str = "percpu_array/percpu (`@ = count()`), percpu_hash/percpu (`@ = sum(1)`, \
     or `@[pid % K] = count()` over keys) and hash/racy (`@++`: a lookup, an add and an update, \
     not atomic)";

/// The counting statement of a map kind and update mode, keyed by `key`
/// (empty for one key).
fn statement(map: MapKind, update: UpdateMode, key: &str) -> Option<String> {
    match (map, update, key.is_empty()) {
        (MapKind::PercpuArray, UpdateMode::Percpu, true) => Some("@ = count()".into()),
        (MapKind::PercpuHash, UpdateMode::Percpu, true) => Some("@ = sum(1)".into()),
        (MapKind::PercpuHash, UpdateMode::Percpu, false) => Some(format!("@{key} = count()")),
        (MapKind::Hash, UpdateMode::Racy, _) => Some(format!("@{key}++")),
        _ => None,
    }
}

fn inexpressible(strategy: &Strategy, reason: impl Into<String>) -> CounterError {
    CounterError::Inexpressible {
        backend: "bpftrace",
        what: strategy.to_string(),
        reason: reason.into(),
    }
}

/// The bpftrace program for `strategy`, or why bpftrace cannot say it.
pub fn script(strategy: &Strategy) -> Result<String, CounterError> {
    let probe = probe(strategy.attach()).map_err(|reason| inexpressible(strategy, reason))?;
    if strategy.read() != ReadPath::Syscall {
        return Err(inexpressible(
            strategy,
            "bpftrace's maps are read a key at a time (read `syscall`)",
        ));
    }
    // bpftrace's `pid` is the thread group id, as the C programs key by.
    let keys = strategy.keys().count;
    let key = if keys > 1 {
        format!("[pid % {keys}]")
    } else {
        String::new()
    };
    let count = statement(strategy.map(), strategy.update(), &key).ok_or_else(|| {
        inexpressible(
            strategy,
            format!("bpftrace picks the map itself; it counts in {STATEMENTS}"),
        )
    })?;
    let predicate = match strategy.filter().cgroup_id() {
        Some(id) => format!(" /cgroup == {id}/"),
        None => String::new(),
    };
    Ok(format!("{probe}{predicate} {{ {count}; }}"))
}

#[cfg(test)]
mod tests {
    use bpfstorm_common::Filter;

    use super::*;

    fn strategy(attach: AttachPoint, map: MapKind, update: UpdateMode) -> Strategy {
        Strategy::new(attach, map, update, Filter::All).unwrap()
    }

    #[test]
    fn the_classic_count_is_the_one_liner() {
        let s = strategy(
            AttachPoint::TpSysEnterExecve,
            MapKind::PercpuArray,
            UpdateMode::Percpu,
        );
        assert_eq!(
            script(&s).unwrap(),
            "tracepoint:syscalls:sys_enter_execve { @ = count(); }"
        );
    }

    #[test]
    fn filter_keys_and_map_shape_the_statement() {
        let s = Strategy::new(
            AttachPoint::TpSchedProcessExec,
            MapKind::Hash,
            UpdateMode::Racy,
            Filter::Cgroup(4242),
        )
        .unwrap()
        .with_keys(8, 64)
        .unwrap();
        assert_eq!(
            script(&s).unwrap(),
            "tracepoint:sched:sched_process_exec /cgroup == 4242/ { @[pid % 8]++; }"
        );
        let sum = strategy(
            AttachPoint::UprobeLibcExecve,
            MapKind::PercpuHash,
            UpdateMode::Percpu,
        );
        assert_eq!(script(&sum).unwrap(), "uprobe:libc:execve { @ = sum(1); }");
    }

    #[test]
    fn what_bpftrace_cannot_say_is_refused_typed() {
        for (attach, map, update, says) in [
            (
                AttachPoint::TpSysEnterExecve,
                MapKind::Array,
                UpdateMode::Atomic,
                "picks the map itself",
            ),
            (
                AttachPoint::TpSysEnterExecve,
                MapKind::Ringbuf,
                UpdateMode::Stream,
                "picks the map itself",
            ),
            (
                AttachPoint::RawTpSysEnter,
                MapKind::PercpuArray,
                UpdateMode::Percpu,
                "no raw or BTF-typed tracepoint",
            ),
            (
                AttachPoint::LsmBprmCheckSecurity,
                MapKind::PercpuArray,
                UpdateMode::Percpu,
                "no LSM probes",
            ),
        ] {
            let err = script(&strategy(attach, map, update)).unwrap_err();
            assert!(err.is_unsupported(), "{err:?}");
            let text = err.to_string();
            assert!(text.starts_with("bpftrace cannot express "), "{text}");
            assert!(text.contains(says), "{text}");
        }
    }
}
