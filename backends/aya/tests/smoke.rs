//! The Rust-made programs on the real kernel, without the harness: every
//! map kind and update mode loads, counts execs, reports its size and
//! resets; a count spread over keys lands at each exec's tgid mod the keys,
//! exactly, or is reported dropped where the map has no room; attach
//! points the kernel refuses come back typed.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bpfstorm_aya::Aya;
use bpfstorm_common::count::possible_cpus;
use bpfstorm_common::{
    AttachPoint, Backend, Counter, CounterError, Filter, Introspection, MapKind, ReadPath, Reading,
    Strategy, UpdateMode,
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

/// A cgroup v2 of this test's own, so that a keyed count sees only the
/// execs the test makes (the other tests exec in parallel). Named as the
/// harness names its storms' (`bpfstorm-<pid>-<seq>`), so that a killed
/// run's is swept. Dropping it removes it.
struct TestCgroup {
    path: PathBuf,
    id: u64,
    /// `cgroup.procs`, opened before fork: a child joins by writing to it.
    procs: File,
}

impl TestCgroup {
    fn create() -> TestCgroup {
        static SEQ: AtomicU64 = AtomicU64::new(1_000_000);
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
        // `<id> <parent> <dev> <root> <mount point> ... - <fstype> ...`
        let root = mountinfo
            .lines()
            .find_map(|line| {
                let (mount, fs) = line.split_once(" - ")?;
                (fs.split(' ').next()? == "cgroup2").then(|| mount.split(' ').nth(4))?
            })
            .expect("a cgroup2 mount");
        let name = format!(
            "bpfstorm-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let path = PathBuf::from(root).join(name);
        fs::create_dir(&path).unwrap();
        let id = fs::metadata(&path).unwrap().ino();
        let procs = OpenOptions::new()
            .write(true)
            .open(path.join("cgroup.procs"))
            .unwrap();
        TestCgroup { path, id, procs }
    }

    /// Runs `n` execs of /bin/true inside the cgroup, one after another,
    /// each from a process of its own; returns their tgids, in order.
    fn execs(&self, n: usize) -> Vec<u32> {
        (0..n)
            .map(|_| {
                let procs = self.procs.as_raw_fd();
                let mut command = Command::new("/bin/true");
                // SAFETY: only write(2) between fork and exec.
                unsafe {
                    command.pre_exec(move || {
                        // "0": the writing process itself.
                        if libc::write(procs, b"0".as_ptr().cast(), 1) == 1 {
                            Ok(())
                        } else {
                            Err(io::Error::last_os_error())
                        }
                    })
                };
                let mut child = command.spawn().unwrap();
                let tgid = child.id();
                assert!(child.wait().unwrap().success());
                tgid
            })
            .collect()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // Its reaped children may take a moment to leave it.
        let deadline = Instant::now() + Duration::from_secs(2);
        while fs::remove_dir(&self.path).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The keys a keyed program counts `tgids` at: each tgid mod `keys`.
fn keys_of(tgids: &[u32], keys: u32) -> Vec<u32> {
    tgids.iter().map(|tgid| tgid % keys).collect()
}

fn distinct(keys: &[u32]) -> u64 {
    keys.iter().collect::<HashSet<_>>().len() as u64
}

/// tp_sys_enter_execve/<kind>/<classic update>/cgroup at `keys` keys in a
/// map of `entries`, read through `read`.
fn keyed(kind: MapKind, cg: &TestCgroup, keys: u32, entries: u32, read: ReadPath) -> Strategy {
    Strategy::new(
        AttachPoint::TpSysEnterExecve,
        kind,
        kind.classic_update(),
        Filter::Cgroup(cg.id),
    )
    .unwrap()
    .with_keys(keys, entries)
    .unwrap()
    .with_read(read)
    .unwrap()
}

fn assert_reset(c: &mut dyn Counter, s: &Strategy) {
    c.reset().unwrap();
    assert_eq!(c.read().unwrap(), Reading::default(), "{s}: after reset");
}

const KEYED_KINDS: [MapKind; 6] = [
    MapKind::Array,
    MapKind::Hash,
    MapKind::PercpuArray,
    MapKind::PercpuHash,
    MapKind::LruHash,
    MapKind::LruPercpuHash,
];

#[test]
fn a_keyed_count_lands_at_each_tgid_mod_the_keys_exactly() {
    if bpfstorm_aya::unavailable().is_some() {
        return;
    }
    const KEYS: u32 = 64;
    const EXECS: usize = 40;
    let cpus = possible_cpus().unwrap();
    let cg = TestCgroup::create();
    for kind in KEYED_KINDS {
        assert!(kind.takes_keys(), "{kind}");
        for read in [ReadPath::Syscall, ReadPath::Batch] {
            let s = keyed(kind, &cg, KEYS, kind.entries_for(KEYS, cpus), read);
            assert!(s.program_name().ends_with("__keyed"), "{s}");
            let mut c = Aya.open(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
            let insns = Introspection::open(c.loaded())
                .unwrap()
                .prog_insns()
                .unwrap();
            let keys = keys_of(&cg.execs(EXECS), KEYS);
            let r = c.read().unwrap();
            println!("{s}: {r:?} {insns:?}");
            // The map holds every key: nothing is dropped, and each exec
            // counts at its own tgid's key (with `key_count` left at 1, or
            // the map left at one entry, every exec would share one key).
            assert_eq!(r.count + r.dropped, EXECS as u64, "{s}: {r:?}");
            assert_eq!((r.count, r.dropped), (EXECS as u64, 0), "{s}: {r:?}");
            assert_eq!(r.keys_live, distinct(&keys), "{s}: {r:?} {keys:?}");
            assert!((2..=u64::from(KEYS)).contains(&r.keys_live), "{s}: {r:?}");
            assert_reset(c.as_mut(), &s);
            // A reset map counts on (a keyed hash's keys were deleted).
            let keys = keys_of(&cg.execs(10), KEYS);
            let r = c.read().unwrap();
            assert_eq!((r.count, r.dropped), (10, 0), "{s}: {r:?}");
            assert_eq!(r.keys_live, distinct(&keys), "{s}: {r:?} {keys:?}");
            assert_reset(c.as_mut(), &s);
        }
    }
}

#[test]
fn a_keyed_map_too_small_for_its_keys_reports_what_it_had_no_room_for() {
    if bpfstorm_aya::unavailable().is_some() {
        return;
    }
    const KEYS: u32 = 64;
    const ENTRIES: u32 = 4;
    const EXECS: usize = 40;
    let cg = TestCgroup::create();
    for kind in [
        MapKind::Hash,
        MapKind::PercpuHash,
        MapKind::Array,
        MapKind::PercpuArray,
    ] {
        for read in [ReadPath::Syscall, ReadPath::Batch] {
            let s = keyed(kind, &cg, KEYS, ENTRIES, read);
            let mut c = Aya.open(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
            for round in 0..2 {
                let keys = keys_of(&cg.execs(EXECS), KEYS);
                // The execs come one after another: a hash's first ENTRIES
                // distinct keys take it, an array has keys 0..ENTRIES; an
                // exec at any other key is dropped.
                let mut held = Vec::new();
                for &key in &keys {
                    let room = if kind.inserts_keys() {
                        held.len() < ENTRIES as usize
                    } else {
                        key < ENTRIES
                    };
                    if room && !held.contains(&key) {
                        held.push(key);
                    }
                }
                let counted = keys.iter().filter(|k| held.contains(k)).count() as u64;
                let r = c.read().unwrap();
                println!("{s} (round {round}): {r:?}, keys {keys:?}");
                assert_eq!(r.count + r.dropped, EXECS as u64, "{s}: {r:?}");
                assert!(r.dropped > 0, "{s}: {r:?}");
                assert!(r.keys_live <= u64::from(ENTRIES), "{s}: {r:?}");
                assert_eq!(
                    (r.count, r.dropped, r.keys_live),
                    (counted, EXECS as u64 - counted, held.len() as u64),
                    "{s}: {keys:?}"
                );
                // A reset deletes a hash's keys: the next round finds room
                // again.
                assert_reset(c.as_mut(), &s);
            }
        }
    }
}

#[test]
fn a_keyed_lru_hash_too_small_for_its_keys_evicts_counts() {
    if bpfstorm_aya::unavailable().is_some() {
        return;
    }
    // Fewer entries than the kernel hands a CPU at a time (128): inserting
    // a new key pushes out an old one, count and all.
    const KEYS: u32 = 4096;
    const ENTRIES: u32 = 8;
    const EXECS: usize = 40;
    let cg = TestCgroup::create();
    for kind in [MapKind::LruHash, MapKind::LruPercpuHash] {
        for read in [ReadPath::Syscall, ReadPath::Batch] {
            let s = keyed(kind, &cg, KEYS, ENTRIES, read);
            assert!(!s.is_exact(), "{s}: an evicting map loses counts by design");
            let mut c = Aya.open(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
            let keys = keys_of(&cg.execs(EXECS), KEYS);
            let r = c.read().unwrap();
            println!("{s}: {r:?}, {} distinct keys", distinct(&keys));
            assert!(distinct(&keys) > u64::from(ENTRIES), "{s}: {keys:?}");
            assert!(r.count + r.dropped <= EXECS as u64, "{s}: {r:?}");
            assert!(r.count < EXECS as u64, "{s}: nothing evicted: {r:?}");
            assert!(r.count > 0, "{s}: {r:?}");
            assert!(
                (1..=u64::from(ENTRIES)).contains(&r.keys_live),
                "{s}: {r:?}"
            );
            assert_reset(c.as_mut(), &s);
        }
    }
}
