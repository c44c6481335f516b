//! The C loader on the real kernel, without the harness: every map kind
//! and update mode loads, counts execs and resets. The c backend refuses
//! nothing: it is the one that opens a perf buffer woken in batches
//! (perf_event_array/batch_wakeup), which libbpf-rs and aya cannot. A
//! count spread over keys is summed by every read path, in C, and a map
//! too small for its keys drops (a hash) or evicts (an LRU) what it has no
//! room for.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use bpfstorm_common::count::possible_cpus;
use bpfstorm_common::{
    AttachPoint, Backend, Counter, Filter, Introspection, MapKind, ReadPath, Reading, Strategy,
};
use bpfstorm_ebpf_c::CLoader;

#[test]
fn every_strategy_loads_and_counts_some_execs() {
    for s in Strategy::all_for(AttachPoint::TpSysEnterExecve, Filter::All) {
        let mut c = CLoader.open(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
        for _ in 0..50 {
            assert!(Command::new("/bin/true").status().unwrap().success());
        }
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
        assert_eq!(c.loaded().progs.len(), 1, "{s}");
        assert!(
            insns.xlated_insns > 0 && insns.jited_bytes > 0,
            "{s}: {insns:?}"
        );
        c.reset().unwrap();
        assert_eq!(c.read().unwrap().count, 0, "{s}");
    }
}

/// A cgroup v2 of one test's own: a `cgroup` program counts only the execs
/// of the children [`TestCgroup::execs`] moves into it, so a count is exact
/// whatever else the machine (or another test) runs.
struct TestCgroup {
    dir: PathBuf,
    id: u64,
    procs: File,
}

impl TestCgroup {
    fn create(tag: &str) -> TestCgroup {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
        // "<id> <parent> <dev> <root> <mount point> <options> ... - <fstype> ..."
        let root = mountinfo
            .lines()
            .find_map(|line| {
                let (mount, fs) = line.split_once(" - ")?;
                (fs.split(' ').next()? == "cgroup2").then(|| mount.split(' ').nth(4))?
            })
            .expect("a cgroup2 mount");
        let dir =
            PathBuf::from(root).join(format!("bpfstorm-c-smoke-{}-{tag}", std::process::id()));
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let id = fs::metadata(&dir).unwrap().ino();
        let procs = OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
            .unwrap();
        TestCgroup { dir, id, procs }
    }

    fn filter(&self) -> Filter {
        Filter::Cgroup(self.id)
    }

    /// `n` execs, each by a process of its own (its own tgid, so its own
    /// key) that moved itself into the cgroup first; their pids.
    fn execs(&self, n: usize) -> Vec<u32> {
        let procs = self.procs.as_raw_fd();
        (0..n)
            .map(|_| {
                let mut cmd = Command::new("/bin/true");
                // SAFETY: only write(2), async-signal-safe, in the child
                // between fork and exec; "0" moves the writer itself.
                unsafe {
                    cmd.pre_exec(move || {
                        if libc::write(procs, b"0".as_ptr().cast(), 1) == 1 {
                            Ok(())
                        } else {
                            Err(io::Error::last_os_error())
                        }
                    });
                }
                let mut child = cmd.spawn().unwrap();
                let pid = child.id();
                assert!(child.wait().unwrap().success());
                pid
            })
            .collect()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // The children are reaped; the cgroup empties a moment later.
        let deadline = Instant::now() + Duration::from_secs(2);
        while fs::remove_dir(&self.dir).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The keys `pids` count at, as the keyed programs pick them.
fn keys_of(pids: &[u32], keys: u32) -> BTreeSet<u32> {
    pids.iter().map(|pid| pid % keys).collect()
}

/// `map` with its classic update, counting the cgroup's execs at `keys`
/// keys in a map of `entries`, read through `read`.
fn keyed(map: MapKind, read: ReadPath, keys: u32, entries: u32, cgroup: &TestCgroup) -> Strategy {
    Strategy::new(
        AttachPoint::TpSysEnterExecve,
        map,
        map.classic_update(),
        cgroup.filter(),
    )
    .and_then(|s| s.with_read(read))
    .and_then(|s| s.with_keys(keys, entries))
    .unwrap_or_else(|e| panic!("{map} by {read}: {e}"))
}

fn open(s: &Strategy) -> Box<dyn Counter> {
    CLoader.open(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

const KEYED_MAPS: &[MapKind] = &[
    MapKind::Array,
    MapKind::Hash,
    MapKind::PercpuArray,
    MapKind::PercpuHash,
    MapKind::LruHash,
    MapKind::LruPercpuHash,
];

/// 64 keys in maps with room for all: every exec counted at its key, by
/// every read path; a reset empties the map and it counts on.
#[test]
fn keyed_counts_sum_every_key_by_each_read_path() {
    const KEYS: u32 = 64;
    const EXECS: usize = 100;
    let cpus = possible_cpus().unwrap();
    let cgroup = TestCgroup::create("keyed");
    for &map in KEYED_MAPS {
        let entries = map.entries_for(KEYS, cpus);
        for &read in map.read_paths() {
            let s = keyed(map, read, KEYS, entries, &cgroup);
            let mut c = open(&s);
            assert_eq!(
                c.read().unwrap(),
                Reading::default(),
                "{s}: before any exec"
            );
            let pids = cgroup.execs(EXECS);
            let live = keys_of(&pids, KEYS).len() as u64;
            assert!(live >= 2, "{s}: {EXECS} processes at one key: {pids:?}");
            let r = c.read().unwrap();
            println!("{s}: {r:?}, {live} keys expected");
            assert_eq!(r.count + r.dropped, EXECS as u64, "{s}: {r:?}");
            // Room for every key: nothing dropped, every key there.
            assert_eq!((r.count, r.keys_live), (EXECS as u64, live), "{s}: {r:?}");
            assert!((2..=u64::from(KEYS)).contains(&r.keys_live), "{s}: {r:?}");
            c.reset().unwrap();
            assert_eq!(c.read().unwrap(), Reading::default(), "{s}: after reset");
            let pids = cgroup.execs(EXECS / 2);
            let r = c.read().unwrap();
            assert_eq!(r.count, (EXECS / 2) as u64, "{s}: after reset: {r:?}");
            assert_eq!(r.keys_live, keys_of(&pids, KEYS).len() as u64, "{s}: {r:?}");
        }
    }
}

/// A hash with room for 4 of 64 keys: what finds no entry is dropped,
/// and counted as such; a reset empties the map for new keys.
#[test]
fn a_full_hash_drops_what_it_has_no_room_for() {
    const EXECS: usize = 40;
    let cgroup = TestCgroup::create("full");
    for &read in MapKind::Hash.read_paths() {
        let s = keyed(MapKind::Hash, read, 64, 4, &cgroup);
        let mut c = open(&s);
        let pids = cgroup.execs(EXECS);
        let keys = keys_of(&pids, 64).len() as u64;
        assert!(keys > 4, "{s}: {EXECS} processes at {keys} keys: {pids:?}");
        let r = c.read().unwrap();
        println!("{s}: {r:?}");
        assert_eq!(r.count + r.dropped, EXECS as u64, "{s}: {r:?}");
        assert!(r.dropped > 0, "{s}: {r:?}");
        assert_eq!(r.keys_live, 4, "{s}: {r:?}");
        c.reset().unwrap();
        assert_eq!(c.read().unwrap(), Reading::default(), "{s}: after reset");
        // The deleted keys made room: the next execs count again.
        cgroup.execs(EXECS);
        let r = c.read().unwrap();
        assert_eq!(r.count + r.dropped, EXECS as u64, "{s}: {r:?}");
        assert!(r.count >= 4 && r.keys_live == 4, "{s}: after reset: {r:?}");
    }
}

/// An LRU map of 8 entries for 4096 keys: new keys push old ones out,
/// count and all, so the count falls short, with no drop to show for it.
#[test]
fn a_full_lru_hash_evicts_counts() {
    const EXECS: usize = 40;
    let cgroup = TestCgroup::create("lru");
    for &read in MapKind::LruHash.read_paths() {
        let s = keyed(MapKind::LruHash, read, 4096, 8, &cgroup);
        let mut c = open(&s);
        let pids = cgroup.execs(EXECS);
        let keys = keys_of(&pids, 4096).len();
        assert!(keys > 8, "{s}: {EXECS} processes at {keys} keys: {pids:?}");
        let r = c.read().unwrap();
        println!("{s}: {r:?}");
        assert!(r.count < EXECS as u64, "{s}: nothing evicted: {r:?}");
        assert!(r.count + r.dropped <= EXECS as u64, "{s}: {r:?}");
        assert!((1..=8).contains(&r.keys_live), "{s}: {r:?}");
        c.reset().unwrap();
        assert_eq!(c.read().unwrap(), Reading::default(), "{s}: after reset");
    }
}

/// More keys than a batch holds: a batched read goes on past its first
/// 4096 keys (a pid is its own key here wherever pids stay below 40000),
/// and a mapping covers every entry.
#[test]
fn keys_past_one_batch_are_read() {
    const KEYS: u32 = 40_000;
    const EXECS: usize = 50;
    let cgroup = TestCgroup::create("wide");
    for map in [MapKind::Array, MapKind::PercpuArray] {
        for &read in map.read_paths() {
            let s = keyed(map, read, KEYS, KEYS, &cgroup);
            let mut c = open(&s);
            let pids = cgroup.execs(EXECS);
            let keys = keys_of(&pids, KEYS);
            let r = c.read().unwrap();
            println!("{s}: {r:?}, keys {:?}..={:?}", keys.first(), keys.last());
            assert_eq!(
                (r.count, r.dropped, r.keys_live),
                (EXECS as u64, 0, keys.len() as u64),
                "{s}: {r:?}"
            );
            c.reset().unwrap();
            assert_eq!(c.read().unwrap(), Reading::default(), "{s}: after reset");
        }
    }
}
