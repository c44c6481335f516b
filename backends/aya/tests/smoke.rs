//! The Rust-made programs on the real kernel, without the harness: every
//! map kind and update mode loads, counts execs, reports its size and
//! resets; attach points the kernel refuses come back typed.

use std::process::Command;

use bpfstorm_aya::Aya;
use bpfstorm_common::{
    AttachPoint, Backend, Counter, CounterError, Filter, Introspection, MapKind, Strategy,
    UpdateMode,
};

fn execs(n: usize) {
    for _ in 0..n {
        assert!(Command::new("/bin/true").status().unwrap().success());
    }
}

/// Opens `s` the way `open` does, or `None` where aya cannot run it: its
/// `PerfEventArray::open` opens every perf buffer woken on each record,
/// with no way to set `wakeup_events`, so the backend refuses
/// perf_event_array/batch_wakeup before load, typed; checked here.
fn open_unless_refused<C>(
    s: &Strategy,
    open: impl FnOnce(&Strategy) -> Result<C, CounterError>,
) -> Option<C> {
    let refused = (s.map(), s.update()) == (MapKind::PerfEventArray, UpdateMode::BatchWakeup);
    match open(s) {
        Ok(_) if refused => panic!("{s}: loaded, but aya cannot set wakeup_events"),
        Ok(c) => Some(c),
        Err(e @ CounterError::Unsupported { errno: None, .. }) if refused => {
            let e = e.to_string();
            assert!(
                e.contains("wakeup_events") && e.contains("PerfEventArray::open"),
                "{s}: {e}"
            );
            println!("{s}: refused: {e}");
            None
        }
        Err(e) if refused => panic!("{s}: not the typed refusal: {e:?}"),
        Err(e) => panic!("{s}: {e}"),
    }
}

/// Under CI the Rust BPF object must have been built: an "unavailable"
/// backend there is a failure, never a skip.
#[test]
fn the_rust_bpf_object_is_built_under_ci() {
    let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    if ci {
        assert_eq!(bpfstorm_aya::unavailable(), None, "CI=true");
    }
    if let Some(reason) = bpfstorm_aya::unavailable() {
        let s = Strategy::all_for(AttachPoint::TpSysEnterExecve, Filter::All)[0];
        let err = Aya
            .open(&s)
            .err()
            .expect("an unavailable backend opens nothing");
        assert!(err.to_string().contains("unavailable: "), "{err}");
        assert!(err.to_string().contains(reason), "{err}");
    }
}

#[test]
fn every_strategy_loads_and_counts_some_execs() {
    if bpfstorm_aya::unavailable().is_some() {
        return; // the test above says why, and fails under CI
    }
    for s in Strategy::all_for(AttachPoint::TpSysEnterExecve, Filter::All) {
        let Some(mut c) = open_unless_refused(&s, |s| Aya.open(s)) else {
            continue;
        };
        execs(50);
        let r = c.read().unwrap();
        let view = Introspection::open(c.loaded()).unwrap();
        let insns = view.prog_insns().unwrap();
        println!(
            "{s}: {r:?} {:?} {insns:?} mem={} {:?} t={:?}",
            view.prog_stats().unwrap(),
            view.map_memory_bytes().unwrap(),
            c.loaded(),
            c.timings()
        );
        assert!(r.count >= 50, "{s}: {r:?}");
        assert!(
            insns.xlated_insns > 0 && insns.jited_bytes > 0,
            "{s}: {insns:?}"
        );
        assert!(insns.verified_insns > 0, "{s}: {insns:?}");
        assert!(view.map_memory_bytes().unwrap() > 0, "{s}");
        c.reset().unwrap();
        assert_eq!(c.read().unwrap().count, 0, "{s}");
    }
}

#[test]
fn the_cgroup_filter_is_set_before_load() {
    if bpfstorm_aya::unavailable().is_some() {
        return;
    }
    // No cgroup has this id (ids are inode numbers): nothing counts, which
    // only holds if the loader's value reached the program.
    let s = Strategy::new(
        AttachPoint::TpSysEnterExecve,
        MapKind::Array,
        UpdateMode::Atomic,
        Filter::Cgroup(u64::MAX - 1),
    )
    .unwrap();
    let mut c = Aya.open(&s).unwrap();
    execs(20);
    assert_eq!(c.read().unwrap().count, 0);
}

#[test]
fn refused_attach_points_are_typed() {
    if bpfstorm_aya::unavailable().is_some() {
        return;
    }
    for &attach in AttachPoint::ALL {
        let s = Strategy::new(attach, MapKind::Array, UpdateMode::Atomic, Filter::All).unwrap();
        match Aya.open(&s) {
            Ok(_) => println!("{attach}: loads and attaches"),
            Err(CounterError::Unsupported { reason, errno, .. }) => {
                assert!(errno.is_some(), "{attach}: {reason}");
                println!("{attach}: unsupported here: {reason}");
            }
            Err(e) => panic!("{attach}: neither attached nor typed as unsupported: {e}"),
        }
    }
}

/// Whether the kernel still has a BPF object with this id (`cmd` is
/// BPF_PROG_GET_FD_BY_ID or BPF_MAP_GET_FD_BY_ID).
fn exists(cmd: libc::c_long, id: u32) -> bool {
    let attr = [id, 0, 0, 0];
    // SAFETY: bpf(2) reads 16 bytes of `attr`.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_ptr(), 16usize) };
    if fd >= 0 {
        // SAFETY: the fd was just returned to us.
        unsafe { libc::close(fd as i32) };
    }
    fd >= 0
}

#[test]
fn dropping_the_counter_leaves_no_program_and_no_map() {
    if bpfstorm_aya::unavailable().is_some() {
        return;
    }
    const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
    const BPF_MAP_GET_FD_BY_ID: libc::c_long = 14;
    for s in Strategy::all_for(AttachPoint::TpSysEnterExecve, Filter::All) {
        let Some(c) = open_unless_refused(&s, bpfstorm_aya::open) else {
            continue;
        };
        let (progs, maps) = (c.loaded().progs.clone(), c.object().map_ids().to_vec());
        // Every count map, .rodata and .bss: aya creates every map of the object.
        assert_eq!(maps.len(), MapKind::ALL.len() + 2, "{s}: {maps:?}");
        assert!(progs.iter().all(|&id| exists(BPF_PROG_GET_FD_BY_ID, id)));
        assert!(maps.iter().all(|&id| exists(BPF_MAP_GET_FD_BY_ID, id)));
        drop(c);
        // Programs and maps are freed after an RCU grace period.
        let gone = || {
            !progs.iter().any(|&id| exists(BPF_PROG_GET_FD_BY_ID, id))
                && !maps.iter().any(|&id| exists(BPF_MAP_GET_FD_BY_ID, id))
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !gone() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(gone(), "{s}: programs {progs:?} or maps {maps:?} left");
    }
}
