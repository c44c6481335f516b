//! bpftrace on the real kernel, without the harness: each one-liner runs,
//! counts execs in the map its strategy names, agrees with what bpftrace
//! itself prints, resets, and leaves nothing behind; what the kernel
//! refuses comes back typed. (Exact counts against the oracles are the
//! harness's conformance suite.)

use std::process::Command;

use bpfstorm_bpftrace::{Bpftrace, BpftraceCounter};
use bpfstorm_common::introspect::prog_by_id;
use bpfstorm_common::{AttachPoint, Backend, Counter, CounterError, Filter, MapKind, Strategy};
use bpfstorm_common::{Introspection, UpdateMode};

fn execs(n: u64) {
    for _ in 0..n {
        assert!(Command::new("/bin/true").status().unwrap().success());
    }
}

fn strategy(attach: AttachPoint, map: MapKind, update: UpdateMode) -> Strategy {
    Strategy::new(attach, map, update, Filter::All).unwrap()
}

/// Under CI bpftrace must be installed (scripts/setup does it): a missing
/// tool there is a failure, never a skip.
#[test]
fn bpftrace_is_installed() {
    let version = Bpftrace.version();
    assert!(version.starts_with("bpftrace v"), "{version}");
}

#[test]
fn each_one_liner_counts_in_the_map_it_names_and_as_bpftrace_prints() {
    for (map, update, keys) in [
        (MapKind::PercpuArray, UpdateMode::Percpu, 1),
        (MapKind::PercpuHash, UpdateMode::Percpu, 1),
        (MapKind::Hash, UpdateMode::Racy, 1),
        (MapKind::PercpuHash, UpdateMode::Percpu, 8),
        (MapKind::Hash, UpdateMode::Racy, 8),
    ] {
        let s = strategy(AttachPoint::TpSchedProcessExec, map, update)
            .with_keys(keys, 64)
            .unwrap();
        let mut c = bpfstorm_bpftrace::open(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
        let timings = c.timings();
        assert!(timings.open > timings.load / 100, "{s}: {timings:?}");
        assert!(!timings.total().is_zero(), "{s}: {timings:?}");
        assert_eq!(c.loaded().progs.len(), 1, "{s}");
        let stats = Introspection::open(c.loaded()).unwrap();

        execs(20);
        let read = c.read().unwrap();
        let printed = c.printed().unwrap();
        // Other execs on the machine count too, and between the two.
        assert!(read.count >= 20, "{s}: {read:?}");
        assert!(
            printed >= read.count,
            "{s}: printed {printed}, read {read:?}"
        );
        assert!(
            printed - read.count < 1_000,
            "{s}: printed {printed}, read {read:?}"
        );
        assert!(
            read.keys_live >= 1 && read.keys_live <= u64::from(keys),
            "{s}: {read:?}"
        );
        assert!(stats.prog_insns().unwrap().xlated_insns > 0, "{s}");
        assert!(stats.map_memory_bytes().unwrap() > 0, "{s}");

        c.reset().unwrap();
        let after = c.read().unwrap();
        assert!(after.count < read.count, "{s}: {after:?} after reset");

        let prog = c.loaded().progs[0];
        drop(stats);
        drop(c);
        let gone = prog_by_id(prog).unwrap_err();
        assert_eq!(gone.kind(), std::io::ErrorKind::NotFound, "{s}: {gone}");
    }
}

#[test]
fn the_kernels_refusals_come_back_typed() {
    for attach in [AttachPoint::KprobeSysExecve, AttachPoint::FentrySysExecve] {
        let s = strategy(attach, MapKind::PercpuArray, UpdateMode::Percpu);
        match bpfstorm_bpftrace::open(&s) {
            // A kernel that allows the hook: then it counts.
            Ok(mut c) => {
                execs(3);
                assert!(c.read().unwrap().count >= 3, "{s}");
            }
            Err(e @ CounterError::Unsupported { .. }) => {
                let text = e.to_string();
                assert!(text.starts_with("unsupported here: "), "{text}");
                assert!(text.contains("bpftrace: "), "{text}");
                println!("{s}: {text}");
            }
            Err(e) => panic!("{s}: not a typed refusal: {e:?}"),
        }
    }
}

#[test]
fn a_counter_whose_bpftrace_died_says_so() {
    let s = strategy(
        AttachPoint::TpSysEnterExecve,
        MapKind::PercpuArray,
        UpdateMode::Percpu,
    );
    let mut c: BpftraceCounter = bpfstorm_bpftrace::open(&s).unwrap();
    let pid = bpftrace_pid(&c);
    // SAFETY: a signal to the test's own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let err = loop {
        match c.read() {
            Err(e) => break e,
            Ok(_) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "its death went unseen"
                );
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    };
    assert!(err.to_string().contains("bpftrace exited"), "{err}");
}

/// The pid of the bpftrace holding `c`'s program: the child of this test
/// whose fds hold it.
fn bpftrace_pid(c: &BpftraceCounter) -> libc::pid_t {
    let prog = c.loaded().progs[0];
    let me = std::process::id();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let parent = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().nth(1));
        if parent != Some(&me.to_string()) {
            continue;
        }
        let holds = bpfstorm_common::fdinfo::of_process(pid)
            .unwrap_or_default()
            .iter()
            .any(|fd| fd.get("prog_id") == Some(&u64::from(prog)));
        if holds {
            return pid as libc::pid_t;
        }
    }
    panic!("no child of this test holds program {prog}");
}
