//! The backend conformance suite: every backend in `backends::NAMES` goes
//! through the same storms and oracle checks on the real kernel. Exact
//! strategies count every exec of a 20,000-exec storm, streams account for
//! every event, racy updates lose some and say so, bpf_stats agree with the
//! oracles, counts reset to zero, and nothing is left behind; what a
//! backend's loader library cannot do (a perf buffer woken in batches, in
//! libbpf-rs and aya) or its tool's language cannot say (bpftrace) is
//! checked to be refused, typed, never skipped. A backend added to the
//! registry is covered without edits (tests/attach.rs does the same for
//! every attach point).

use std::time::Duration;

use bpfstorm::backends::{self, NAMES};
use bpfstorm::bpf_stats;
use bpfstorm::cgroup::StormCgroup;
use bpfstorm::leaks;
use bpfstorm::measure::{measure, measure_in, Cell, FilterKind, Instruments, MeasureError};
use bpfstorm::oracle::PerfTracepoint;
use bpfstorm::storm::{run_storm, SpawnMethod, StormSpec, Target};
use bpfstorm_common::{
    AttachPoint, Backend, Counter, CounterError, Filter, MapKind, ReadPath, Reading, Strategy,
    UpdateMode,
};
use libbpf_rs::libbpf_sys::BPF_F_MMAPABLE;
use libbpf_rs::{MapCore, MapHandle};

mod common;

fn each_backend() -> impl Iterator<Item = Box<dyn Backend>> {
    NAMES
        .iter()
        .map(|name| backends::by_name(name).expect("NAMES lists registered backends"))
}

fn storm(workers: u32, execs: u64) -> StormSpec {
    StormSpec::new(
        workers,
        execs,
        Target::Tiny,
        SpawnMethod::Fork,
        Duration::from_secs(120),
    )
    .unwrap()
}

fn strategy(attach: AttachPoint, map: MapKind, update: UpdateMode) -> Strategy {
    Strategy::new(attach, map, update, Filter::All).unwrap()
}

fn run(backend: &dyn Backend, strategy: Strategy, spec: &StormSpec) -> Cell {
    let what = format!("{} {strategy}", backend.name());
    let cell = measure(backend, strategy, FilterKind::Cgroup, spec)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let left = leaks::find(&cell.prog_ids);
    assert!(left.is_clean(), "{what} left {left:?}");
    cell
}

fn on_execve(map: MapKind, update: UpdateMode) -> Strategy {
    strategy(AttachPoint::TpSysEnterExecve, map, update)
}

/// Whether bpftrace has words for `s`: a probe for its attach point, and
/// a statement whose map is its map kind (`@ = count()` percpu_array,
/// `@ = sum(1)` and keyed `count()` percpu_hash, `@++` hash, racy).
fn bpftrace_says(s: &Strategy) -> bool {
    let probe = common::bpftrace_has_probe(s.attach());
    let keyed = s.keys().count > 1;
    let statement = matches!(
        (s.map(), s.update(), keyed),
        (MapKind::PercpuArray, UpdateMode::Percpu, false)
            | (MapKind::PercpuHash, UpdateMode::Percpu, _)
            | (MapKind::Hash, UpdateMode::Racy, _)
    );
    probe && statement && s.read() == ReadPath::Syscall
}

/// Whether `backend` refuses `s` before anything loads: libbpf-rs and aya
/// open every perf buffer woken on each record, with no way to set its
/// `wakeup_events` (the c backend, on libbpf's own API, does it); bpftrace
/// runs only what its language says. Every other backend must run every
/// strategy.
fn refuses(backend: &str, s: &Strategy) -> bool {
    match backend {
        "libbpf" | "aya" => {
            (s.map(), s.update()) == (MapKind::PerfEventArray, UpdateMode::BatchWakeup)
        }
        "bpftrace" => !bpftrace_says(s),
        _ => false,
    }
}

/// `e` is the typed refusal of [`refuses`], naming what is missing.
fn assert_refusal(what: &str, e: &CounterError) {
    let text = e.to_string();
    let typed = match e {
        CounterError::Unsupported { errno: None, .. } => text.contains("wakeup_events"),
        CounterError::Inexpressible { backend, .. } => {
            *backend == "bpftrace" && text.starts_with("bpftrace cannot express ")
        }
        _ => false,
    };
    assert!(
        typed && e.is_unsupported(),
        "{what}: expected the backend's typed refusal, got {e:?}"
    );
}

/// Whether `backend` runs `s`; where it refuses it (see [`refuses`]),
/// checks that the refusal comes back from open, typed.
fn runs(backend: &dyn Backend, s: &Strategy) -> bool {
    if !refuses(backend.name(), s) {
        return true;
    }
    let what = format!("{} {s}", backend.name());
    match backend.open(s) {
        Err(e) => assert_refusal(&what, &e),
        Ok(_) => panic!("{what}: loaded, but the backend refuses it"),
    }
    false
}

#[test]
fn exact_strategies_count_every_exec_of_a_20k_storm() {
    assert!(
        !bpf_stats::enabled().unwrap(),
        "bpf stats already on before the test"
    );
    let spec = storm(2, 10_000);
    for backend in each_backend() {
        for (map, update) in [
            (MapKind::Array, UpdateMode::Atomic),
            (MapKind::Hash, UpdateMode::Atomic),
            (MapKind::PercpuArray, UpdateMode::Percpu),
            (MapKind::PercpuHash, UpdateMode::Percpu),
        ] {
            if !runs(backend.as_ref(), &on_execve(map, update)) {
                continue;
            }
            let c = run(backend.as_ref(), on_execve(map, update), &spec);
            let what = format!("{} {map}/{update}", backend.name());
            assert_eq!(c.storm.issued, 20_000, "{what}");
            assert_eq!(c.storm.succeeded, 20_000, "{what}");
            assert_eq!(c.reading.count, 20_000, "{what}: counted vs issued");
            assert_eq!(c.reading.dropped, 0, "{what}");
            assert_eq!(c.perf_sys_enter_execve, 20_000, "{what}: perf oracle");
            assert_eq!(c.perf_sched_process_exec, 20_000, "{what}: perf oracle");
            assert!(c.is_exact(), "{what}");
            // Every exec of the storm ran the program (the filter is inside
            // it), and so did any other exec on the machine meanwhile: the
            // stats are read inside the oracle's window, so run_cnt lies
            // between the storm's count and the machine's.
            assert!(
                c.perf_sys_enter_execve <= c.prog.run_cnt
                    && c.prog.run_cnt <= c.perf_sys_enter_execve_system,
                "{what}: run_cnt {} outside [{}, {}]",
                c.prog.run_cnt,
                c.perf_sys_enter_execve,
                c.perf_sys_enter_execve_system
            );
            let ns = c.ns_per_event().unwrap();
            assert!(ns.is_finite() && ns > 0.0, "{what}: {ns} ns/event");
            let per_run = c
                .ns_per_run
                .expect("the storm spans several stats intervals");
            assert!(
                per_run.lo > 0.0 && per_run.lo <= per_run.median && per_run.median <= per_run.hi,
                "{what}: {per_run:?}"
            );
            assert!(c.map_bytes > 0, "{what}: map memory");
            assert!(!bpf_stats::enabled().unwrap(), "{what}: stats left on");
        }
    }
}

/// A run keeps one set of instruments for cell after cell: each cell's
/// counts are its own storm's, and each program is detached when its cell
/// returns (the kernel no longer lists it on the tracepoint), its links
/// closing on a thread; dropping the instruments waits for them, so nothing
/// is left.
#[test]
fn one_set_of_instruments_serves_cell_after_cell_and_unloads_each_program() {
    let spec = storm(2, 1_000);
    let hook = PerfTracepoint::sys_enter_execve(None).unwrap();
    for backend in each_backend() {
        let instruments = Instruments::set_up(&spec, FilterKind::Cgroup).unwrap();
        // The query sees a program while it is attached...
        let live = backend
            .open(&instruments.scope(on_execve(MapKind::PercpuArray, UpdateMode::Percpu)))
            .unwrap_or_else(|e| panic!("{}: {e}", backend.name()));
        let attached = hook.attached_progs().unwrap();
        assert!(
            live.loaded().progs.iter().all(|p| attached.contains(p)),
            "{}: {:?} not in {attached:?}",
            backend.name(),
            live.loaded().progs
        );
        drop(live);
        let mut progs = Vec::new();
        for map in [MapKind::Array, MapKind::PercpuArray, MapKind::Ringbuf] {
            let s = on_execve(map, map.classic_update());
            if !runs(backend.as_ref(), &s) {
                continue;
            }
            let what = format!("{} {map}", backend.name());
            let c = measure_in(&instruments, backend.as_ref(), s, &spec)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(c.reading.count, 2_000, "{what}: this storm's count alone");
            assert!(c.is_exact(), "{what}");
            // ...and no longer once its cell returned.
            let attached = hook.attached_progs().unwrap();
            assert!(
                c.prog_ids.iter().all(|p| !attached.contains(p)),
                "{what}: {:?} still attached: {attached:?}",
                c.prog_ids
            );
            progs.extend(c.prog_ids);
        }
        drop(instruments);
        let left = leaks::find(&progs);
        assert!(left.is_clean(), "{} left {left:?}", backend.name());
    }
}

/// The LRU maps and the global variables count as exactly as the classic
/// maps, in every backend; their racy updates never overcount.
#[test]
fn lru_maps_and_globals_count_every_exec() {
    let spec = storm(2, 3_000);
    for backend in each_backend() {
        for (map, update) in [
            (MapKind::LruHash, UpdateMode::Atomic),
            (MapKind::LruPercpuHash, UpdateMode::Percpu),
            (MapKind::Global, UpdateMode::Atomic),
            (MapKind::GlobalPercpu, UpdateMode::Percpu),
            (MapKind::LruHash, UpdateMode::Racy),
            (MapKind::Global, UpdateMode::Racy),
        ] {
            if !runs(backend.as_ref(), &on_execve(map, update)) {
                continue;
            }
            let c = run(backend.as_ref(), on_execve(map, update), &spec);
            let what = format!("{} {map}/{update}", backend.name());
            assert_eq!(c.storm.issued, 6_000, "{what}");
            assert_eq!(c.perf_sys_enter_execve, 6_000, "{what}: perf oracle");
            if update.is_exact() {
                assert_eq!(c.reading.count, 6_000, "{what}: counted vs issued");
                assert!(c.is_exact(), "{what}");
            } else {
                assert!(c.reading.count <= 6_000, "{what}: {}", c.reading.count);
            }
            assert!(c.map_bytes > 0, "{what}: map memory");
        }
    }
}

/// Every update mode of both buffers (plain records, `bpf_ringbuf_output`,
/// the reader never woken, woken in batches) accounts for every event, in
/// every backend that runs it; the others refuse it, typed, before load.
#[test]
fn streams_account_for_every_event_as_counted_or_dropped() {
    for backend in each_backend() {
        for map in [MapKind::Ringbuf, MapKind::PerfEventArray] {
            for &update in map.valid_updates() {
                // The classic mode gets the full storm; the wakeup
                // policies, a quarter of it (each still 5,000 events).
                let per_worker = if update == map.classic_update() {
                    10_000
                } else {
                    2_500
                };
                let (spec, events) = (storm(2, per_worker), 2 * per_worker);
                let s = on_execve(map, update);
                let what = format!("{} {map}/{update}", backend.name());
                if refuses(backend.name(), &s) {
                    match measure(backend.as_ref(), s, FilterKind::Cgroup, &spec) {
                        Err(MeasureError::Counter(e)) => assert_refusal(&what, &e),
                        Err(e) => panic!("{what}: refused, but not by the backend: {e}"),
                        Ok(_) => panic!("{what}: measured, but the backend refuses it"),
                    }
                    continue;
                }
                let c = run(backend.as_ref(), s, &spec);
                assert_eq!(c.storm.issued, events, "{what}");
                // The stream answers for every event the perf oracle saw
                // at the hook. An exec can miss the hook only where the
                // storm or the kernel says so: a spawn that failed before
                // its exec (a refused fork), or a run the kernel skipped
                // (recursion_misses; it hides the event from perf too).
                let reached = c.perf_sys_enter_execve;
                let facts = format!(
                    "{what}: counted {} + dropped {} (lost records {}) against {reached} \
                     at the hook; storm {:?}; program {:?}",
                    c.reading.count, c.reading.dropped, c.reading.lost_records, c.storm, c.prog
                );
                assert!(reached <= events, "{facts}");
                assert!(
                    c.storm.succeeded <= reached + c.prog.recursion_misses,
                    "{facts}"
                );
                assert_eq!(c.reading.count + c.reading.dropped, reached, "{facts}");
                // The kernel reports a perf buffer's losses late, with
                // its next record, so they may trail the program's count.
                assert!(c.reading.lost_records <= c.reading.dropped, "{facts}");
            }
        }
    }
}

#[test]
fn racy_updates_never_overcount_and_report_the_shortfall() {
    let spec = storm(2, 10_000);
    for backend in each_backend() {
        for map in [MapKind::Array, MapKind::Hash] {
            if !runs(backend.as_ref(), &on_execve(map, UpdateMode::Racy)) {
                continue;
            }
            let c = run(backend.as_ref(), on_execve(map, UpdateMode::Racy), &spec);
            let what = format!("{} {map}", backend.name());
            assert_eq!(c.storm.issued, 20_000, "{what}");
            assert!(c.reading.count <= 20_000, "{what}: {}", c.reading.count);
            assert_eq!(c.missing(), 20_000 - c.reading.count as i64, "{what}");
            println!("{what}/racy lost {} of 20000 updates", c.missing());
        }
    }
}

#[test]
fn filter_all_counts_at_least_the_storm() {
    for backend in each_backend() {
        // The classic map, or the first of the per-CPU one where the
        // backend has no words for the classic.
        let s = [
            on_execve(MapKind::Array, UpdateMode::Atomic),
            on_execve(MapKind::PercpuArray, UpdateMode::Percpu),
        ]
        .into_iter()
        .find(|s| runs(backend.as_ref(), s))
        .expect("every backend counts in a per-CPU array");
        let c = measure(backend.as_ref(), s, FilterKind::All, &storm(1, 500))
            .unwrap_or_else(|e| panic!("{}: {e}", backend.name()));
        // The counter is read inside the machine-wide oracle's window: it
        // saw the whole storm, and no more than the machine did.
        assert!(
            500 <= c.reading.count && c.reading.count <= c.expected,
            "{}: counted {} outside [500, {}]",
            backend.name(),
            c.reading.count,
            c.expected
        );
    }
}

#[test]
fn every_strategy_counts_a_small_storm_and_resets_to_zero() {
    let spec = storm(1, 20);
    for backend in each_backend() {
        for s in Strategy::all_for(AttachPoint::TpSysEnterExecve, Filter::All) {
            let what = format!("{} {s}", backend.name());
            let cgroup = StormCgroup::create(spec.pids_max()).unwrap();
            let s = s.with_filter(Filter::Cgroup(cgroup.id()));
            if refuses(backend.name(), &s) {
                match backend.open(&s) {
                    Err(e) => assert_refusal(&what, &e),
                    Ok(_) => panic!("{what}: loaded, but the backend refuses it"),
                }
                cgroup.remove().unwrap();
                continue;
            }
            let mut c = backend.open(&s).unwrap_or_else(|e| panic!("{what}: {e}"));
            run_storm(&spec, &cgroup, &mut || {}).unwrap();
            let r = c.read().unwrap();
            assert_eq!(r.count + r.dropped, 20, "{what}: {r:?}");
            assert_eq!(c.loaded().progs.len(), 1, "{what}");
            c.reset().unwrap();
            assert_eq!(c.read().unwrap(), Reading::default(), "{what}: after reset");
            run_storm(&spec, &cgroup, &mut || {}).unwrap();
            let r = c.read().unwrap();
            assert_eq!(
                r.count + r.dropped,
                20,
                "{what}: after reset and a storm: {r:?}"
            );
            let ids = c.loaded().progs.clone();
            drop(c);
            cgroup.remove().unwrap();
            let left = leaks::find(&ids);
            assert!(left.is_clean(), "{what} left {left:?}");
        }
    }
}

/// Whether `backend` refuses to read a count through a mapping: aya 0.14
/// cannot add `BPF_F_MMAPABLE` to a map before load, nor creates its data
/// sections with it. Every other backend must map every count it can.
fn refuses_mmap(backend: &str) -> bool {
    backend == "aya"
}

/// `e` is the typed refusal of [`refuses_mmap`], naming what is missing.
fn assert_mmap_refusal(what: &str, e: &CounterError) {
    let text = e.to_string();
    assert!(
        e.is_unsupported()
            && matches!(e, CounterError::Unsupported { errno: None, .. })
            && text.contains("BPF_F_MMAPABLE")
            && text.contains("aya 0.14"),
        "{what}: expected the typed refusal naming BPF_F_MMAPABLE, got {e:?}"
    );
}

/// The kernel's name and flags of each map a counter loaded.
fn map_flags(maps: &[u32]) -> Vec<(String, u32)> {
    maps.iter()
        .map(|&id| {
            let info = MapHandle::from_map_id(id)
                .and_then(|m| m.info())
                .unwrap_or_else(|e| panic!("map {id}: {e}"));
            (info.name().unwrap().to_string(), info.info.map_flags)
        })
        .collect()
}

/// The flags of the `array` map among `maps`.
fn array_flags(what: &str, maps: &[u32]) -> u32 {
    let flags = map_flags(maps);
    let arrays: Vec<u32> = flags
        .iter()
        .filter(|(name, _)| name == "array")
        .map(|&(_, f)| f)
        .collect();
    assert_eq!(arrays.len(), 1, "{what}: one `array` map in {flags:?}");
    arrays[0]
}

/// A count read through a mapping of its map (the array, the globals'
/// sections) counts every exec of a storm as exactly as a lookup, resets
/// to zero and counts again after it, in every backend that maps counts;
/// the others refuse it, typed, before load. The array is created
/// mappable only when it is read by mmap.
#[test]
fn mapped_reads_count_exactly_and_reset_to_zero() {
    let spec = storm(2, 2_500);
    let after_reset = storm(1, 100);
    for backend in each_backend() {
        let name = backend.name();
        for (map, update) in [
            (MapKind::Array, UpdateMode::Atomic),
            (MapKind::Global, UpdateMode::Atomic),
            (MapKind::GlobalPercpu, UpdateMode::Percpu),
        ] {
            let s = on_execve(map, update)
                .with_read(ReadPath::Mmap)
                .unwrap_or_else(|e| panic!("{map}/{update}: {e}"));
            assert_eq!(s.read(), ReadPath::Mmap);
            let what = format!("{name} {s}");
            if !runs(backend.as_ref(), &s) {
                continue;
            }
            if refuses_mmap(name) {
                match measure(backend.as_ref(), s, FilterKind::Cgroup, &spec) {
                    Err(MeasureError::Counter(e)) => assert_mmap_refusal(&what, &e),
                    Err(e) => panic!("{what}: refused, but not by the backend: {e}"),
                    Ok(_) => panic!("{what}: measured, but the backend refuses it"),
                }
                let cgroup = StormCgroup::create(spec.pids_max()).unwrap();
                match backend.open(&s.with_filter(Filter::Cgroup(cgroup.id()))) {
                    Err(e) => assert_mmap_refusal(&what, &e),
                    Ok(_) => panic!("{what}: loaded, but the backend refuses it"),
                }
                cgroup.remove().unwrap();
                continue;
            }

            let c = run(backend.as_ref(), s, &spec);
            assert_eq!(c.strategy.read(), ReadPath::Mmap, "{what}");
            assert_eq!(c.storm.issued, 5_000, "{what}");
            assert_eq!(c.storm.succeeded, 5_000, "{what}");
            assert_eq!(c.reading.count, 5_000, "{what}: counted vs issued");
            assert_eq!(c.reading.dropped, 0, "{what}");
            assert_eq!(c.perf_sys_enter_execve, 5_000, "{what}: perf oracle");
            assert_eq!(c.perf_sched_process_exec, 5_000, "{what}: perf oracle");
            assert!(c.is_exact(), "{what}");
            let read_us = c.read_us.expect("reads were timed");
            assert!(
                read_us.lo >= 0.0 && read_us.lo <= read_us.median && read_us.median <= read_us.hi,
                "{what}: {read_us:?}"
            );
            println!(
                "{what}: counted {} of 5000, read {:.3} us [{:.3}, {:.3}]",
                c.reading.count, read_us.median, read_us.lo, read_us.hi
            );

            let cgroup = StormCgroup::create(spec.pids_max()).unwrap();
            let s = s.with_filter(Filter::Cgroup(cgroup.id()));
            let mut counter = backend.open(&s).unwrap_or_else(|e| panic!("{what}: {e}"));
            if map == MapKind::Array {
                let flags = array_flags(&what, &counter.loaded().maps);
                assert_ne!(flags & BPF_F_MMAPABLE, 0, "{what}: flags {flags:#x}");
            }
            assert_eq!(counter.read().unwrap(), Reading::default(), "{what}");
            run_storm(&spec, &cgroup, &mut || {}).unwrap();
            let r = counter.read().unwrap();
            assert_eq!((r.count, r.dropped), (5_000, 0), "{what}: {r:?}");
            counter.reset().unwrap();
            assert_eq!(
                counter.read().unwrap(),
                Reading::default(),
                "{what}: after reset"
            );
            // The mapping sees what the program writes after the reset.
            run_storm(&after_reset, &cgroup, &mut || {}).unwrap();
            let r = counter.read().unwrap();
            assert_eq!(
                (r.count, r.dropped),
                (100, 0),
                "{what}: after reset and a storm: {r:?}"
            );
            let ids = counter.loaded().progs.clone();
            drop(counter);
            cgroup.remove().unwrap();
            let left = leaks::find(&ids);
            assert!(left.is_clean(), "{what} left {left:?}");
        }

        // Read by syscall, the array is created as before: not mappable.
        if !refuses_mmap(name) && !refuses(name, &on_execve(MapKind::Array, UpdateMode::Atomic)) {
            let s = on_execve(MapKind::Array, UpdateMode::Atomic);
            assert_eq!(s.read(), ReadPath::Syscall);
            let what = format!("{name} {s}");
            let counter = backend.open(&s).unwrap_or_else(|e| panic!("{what}: {e}"));
            let flags = array_flags(&what, &counter.loaded().maps);
            assert_eq!(flags & BPF_F_MMAPABLE, 0, "{what}: flags {flags:#x}");
            let ids = counter.loaded().progs.clone();
            drop(counter);
            let left = leaks::find(&ids);
            assert!(left.is_clean(), "{what} left {left:?}");
        }
    }
}

/// The keyed programs count an exec at its process's tgid mod K. Each
/// exec of a storm is a fresh process, so its 2,000 execs cover all 64
/// keys: every map that takes keys counts each exec once, by each read
/// path it has (aya maps none); a hash with room for 16 of 4,096 keys
/// counts what it refused as dropped, so counted + dropped is still the
/// oracle; an LRU map that small evicts keys and loses their counts, which
/// the cell reports as missing, not as an error.
#[test]
fn keyed_counts_cover_every_key_and_account_for_a_full_map() {
    let spec = storm(2, 1_000);
    let cpus = bpfstorm_common::count::possible_cpus().unwrap();
    for backend in each_backend() {
        let name = backend.name();
        for &map in MapKind::ALL.iter().filter(|m| m.takes_keys()) {
            for &read in map.read_paths() {
                if read == ReadPath::Mmap && refuses_mmap(name) {
                    continue; // checked to be refused in mapped_reads_...
                }
                let s = on_execve(map, map.classic_update())
                    .with_read(read)
                    .and_then(|s| s.with_keys(64, map.entries_for(64, cpus)))
                    .unwrap();
                let what = format!("{name} {s}");
                if !runs(backend.as_ref(), &s) {
                    continue;
                }
                let c = run(backend.as_ref(), s, &spec);
                if backends::LOADERS.contains(&name) {
                    assert!(c.strategy.program_name().ends_with("__keyed"), "{what}");
                }
                assert_eq!(c.storm.succeeded, 2_000, "{what}");
                assert_eq!(c.perf_sys_enter_execve, 2_000, "{what}: perf oracle");
                assert_eq!(
                    (c.reading.count, c.reading.dropped),
                    (2_000, 0),
                    "{what}: counted, dropped"
                );
                assert_eq!(c.reading.keys_live, 64, "{what}: keys live");
                assert!(c.is_exact(), "{what}");
            }
        }

        let small = |map: MapKind| {
            on_execve(map, map.classic_update())
                .with_keys(4096, 16)
                .unwrap()
        };
        let s = small(MapKind::Hash);
        let what = format!("{name} {s}");
        if runs(backend.as_ref(), &s) {
            let c = run(backend.as_ref(), s, &spec);
            assert_eq!(c.perf_sys_enter_execve, 2_000, "{what}: perf oracle");
            assert_eq!(
                c.reading.count + c.reading.dropped,
                2_000,
                "{what}: {:?}",
                c.reading
            );
            assert!(c.reading.dropped > 0, "{what}: a full map refuses keys");
            assert!(c.reading.keys_live <= 16, "{what}: {:?}", c.reading);
            assert!(c.is_exact(), "{what}: every event accounted for");
        }

        // bpftrace's `@[pid % K]++` in a map too small: the keys it
        // refuses go uncounted, and unreported (it has no `dropped`).
        let s = on_execve(MapKind::Hash, UpdateMode::Racy)
            .with_keys(4096, 16)
            .unwrap();
        if name == "bpftrace" && runs(backend.as_ref(), &s) {
            let what = format!("{name} {s}");
            let c = run(backend.as_ref(), s, &spec);
            assert_eq!(c.perf_sys_enter_execve, 2_000, "{what}: perf oracle");
            assert_eq!(c.reading.dropped, 0, "{what}: bpftrace counts no refusal");
            assert!(c.reading.keys_live <= 16, "{what}: {:?}", c.reading);
            assert!(
                c.reading.count < 1_000 && c.missing() > 1_000,
                "{what}: a full map loses counts: {:?}",
                c.reading
            );
            assert!(!c.is_exact(), "{what}");
        }

        let s = small(MapKind::LruHash);
        if !runs(backend.as_ref(), &s) {
            continue;
        }
        assert!(!s.is_exact(), "an LRU map may lose counts");
        let what = format!("{name} {s}");
        let c = run(backend.as_ref(), s, &spec);
        assert_eq!(c.perf_sys_enter_execve, 2_000, "{what}: perf oracle");
        assert_eq!(c.reading.dropped, 0, "{what}: an LRU map never refuses");
        assert!(c.reading.keys_live <= 16, "{what}: {:?}", c.reading);
        assert!(
            c.reading.count < 1_000 && c.missing() > 1_000,
            "{what}: evictions lose counts: {:?}",
            c.reading
        );
    }
}

/// What bpftrace prints for its map is what bpfstorm reads from it, and
/// both are the storm's exact count.
#[test]
fn bpftrace_prints_the_count_bpfstorm_reads() {
    let spec = storm(2, 1_000);
    for map in [MapKind::PercpuArray, MapKind::PercpuHash] {
        let cgroup = StormCgroup::create(spec.pids_max()).unwrap();
        let s = strategy(AttachPoint::TpSysEnterExecve, map, UpdateMode::Percpu)
            .with_filter(Filter::Cgroup(cgroup.id()));
        let mut c = bpfstorm_bpftrace::open(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
        let storm = run_storm(&spec, &cgroup, &mut || {}).unwrap();
        assert_eq!(storm.succeeded, 2_000, "{s}");
        let read = c.read().unwrap();
        assert_eq!(read.count, 2_000, "{s}: read {read:?}");
        assert_eq!(c.printed().unwrap(), 2_000, "{s}: as bpftrace prints it");
        let ids = c.loaded().progs.clone();
        drop(c);
        cgroup.remove().unwrap();
        let left = leaks::find(&ids);
        assert!(left.is_clean(), "{s} left {left:?}");
    }
}

#[test]
fn every_backend_reports_its_version() {
    for backend in each_backend() {
        assert!(!backend.version().is_empty(), "{}", backend.name());
    }
}

#[test]
fn c_and_libbpf_backends_run_on_one_libbpf() {
    let version = |name| backends::by_name(name).unwrap().version();
    let (c, libbpf) = (version("c"), version("libbpf"));
    let tail = |v: &str| v.rsplit_once("libbpf ").map(|(_, t)| t.to_string());
    assert!(tail(&c).is_some(), "{c}");
    assert_eq!(tail(&c), tail(&libbpf), "{c} vs {libbpf}");
}

#[test]
fn one_run_compares_c_and_libbpf_in_one_table() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bpfstorm"))
        .args(["run", "--backend", "c,libbpf", "--map", "array,ringbuf"])
        .args([
            "--workers",
            "2",
            "--execs",
            "200",
            "--repeat",
            "1",
            "--method",
            "storm",
        ])
        .arg("--wide")
        .arg("--results-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(table.contains("loader heap KiB"), "{table}");
    for backend in ["c", "libbpf"] {
        for map in ["array ", "ringbuf "] {
            let row = table
                .lines()
                .find(|l| l.starts_with(&format!("{backend:<7}")) && l.contains(map))
                .unwrap_or_else(|| panic!("no {backend} {map}row:\n{table}"));
            assert!(row.contains(" 400 ") && row.contains("exact"), "{row}");
        }
    }

    let csv = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "csv"))
        .expect("the run's CSV");
    let mut reader = csv::Reader::from_path(csv).unwrap();
    let header = reader.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    // array/atomic, array/racy and ringbuf's four modes (a map named gets
    // every mode it takes); each on both backends.
    assert_eq!(rows.len(), 12);
    for row in &rows {
        assert_eq!(&row[col("status")], "ok", "{row:?}");
        let heap: i64 = row[col("loader_heap_bytes")].parse().unwrap();
        // A live counter holds at least libbpf's object and skeleton.
        assert!(heap > 4096, "{row:?}");
    }
}
