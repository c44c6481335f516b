//! The foundation's promises, on the real kernel: exact strategies count
//! every exec of a 20,000-exec storm, streams account for every event,
//! racy updates lose some and say so, bpf_stats agree with the oracles, and
//! nothing is left behind.

use std::time::Duration;

use bpfstorm::bpf_stats;
use bpfstorm::leaks;
use bpfstorm::measure::{measure, Cell, FilterKind};
use bpfstorm::storm::{SpawnMethod, StormSpec, Target};
use bpfstorm_common::{AttachPoint, Backend, Filter, MapKind, Strategy, UpdateMode};
use bpfstorm_libbpf::Libbpf;

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

fn strategy(map: MapKind, update: UpdateMode) -> Strategy {
    Strategy::new(AttachPoint::TpSysEnterExecve, map, update, Filter::All).unwrap()
}

fn run(map: MapKind, update: UpdateMode, spec: &StormSpec) -> Cell {
    let cell = measure(&Libbpf, strategy(map, update), FilterKind::Cgroup, spec)
        .unwrap_or_else(|e| panic!("{map}/{update}: {e}"));
    let left = leaks::find(&cell.prog_ids);
    assert!(left.is_clean(), "{map}/{update} left {left:?}");
    cell
}

#[test]
fn exact_strategies_count_every_exec_of_a_20k_storm() {
    assert!(
        !bpf_stats::enabled().unwrap(),
        "bpf stats already on before the test"
    );
    let spec = storm(2, 10_000);
    for (map, update) in [
        (MapKind::Array, UpdateMode::Atomic),
        (MapKind::Hash, UpdateMode::Atomic),
        (MapKind::PercpuArray, UpdateMode::Percpu),
        (MapKind::PercpuHash, UpdateMode::Percpu),
    ] {
        let c = run(map, update, &spec);
        let what = format!("{map}/{update}");
        assert_eq!(c.storm.issued, 20_000, "{what}");
        assert_eq!(c.storm.succeeded, 20_000, "{what}");
        assert_eq!(c.reading.count, 20_000, "{what}: counted vs issued");
        assert_eq!(c.reading.dropped, 0, "{what}");
        assert_eq!(c.perf_sys_enter_execve, 20_000, "{what}: perf oracle");
        assert_eq!(c.perf_sched_process_exec, 20_000, "{what}: perf oracle");
        assert!(c.is_exact(), "{what}");
        // Every exec on the machine ran the program once (the filter is inside it).
        assert_eq!(
            c.prog.run_cnt, c.perf_sys_enter_execve_system,
            "{what}: run_cnt"
        );
        let ns = c.ns_per_event().unwrap();
        assert!(ns.is_finite() && ns > 0.0, "{what}: {ns} ns/event");
        let per_run = c
            .ns_per_run
            .expect("the storm spans several stats intervals");
        assert!(per_run.lo > 0.0 && per_run.lo <= per_run.median && per_run.median <= per_run.hi);
        assert!(!bpf_stats::enabled().unwrap(), "{what}: stats left on");
    }
}

#[test]
fn streams_account_for_every_event_as_counted_or_dropped() {
    let spec = storm(2, 10_000);
    for map in [MapKind::Ringbuf, MapKind::PerfEventArray] {
        let c = run(map, UpdateMode::Stream, &spec);
        assert_eq!(c.storm.issued, 20_000, "{map}");
        assert_eq!(
            c.reading.count + c.reading.dropped,
            20_000,
            "{map}: counted {} + dropped {}",
            c.reading.count,
            c.reading.dropped
        );
        assert_eq!(c.perf_sys_enter_execve, 20_000, "{map}");
    }
}

#[test]
fn racy_updates_never_overcount_and_report_the_shortfall() {
    let spec = storm(2, 10_000);
    for map in [MapKind::Array, MapKind::Hash] {
        let c = run(map, UpdateMode::Racy, &spec);
        assert_eq!(c.storm.issued, 20_000, "{map}");
        assert!(c.reading.count <= 20_000, "{map}: {}", c.reading.count);
        assert_eq!(c.missing(), 20_000 - c.reading.count as i64, "{map}");
        println!("{map}/racy lost {} of 20000 updates", c.missing());
    }
}

#[test]
fn filter_all_counts_at_least_the_storm() {
    let c = measure(
        &Libbpf,
        strategy(MapKind::Array, UpdateMode::Atomic),
        FilterKind::All,
        &storm(1, 500),
    )
    .unwrap();
    assert!(c.reading.count >= 500, "{}", c.reading.count);
    assert_eq!(c.reading.count, c.expected, "machine-wide oracle");
}

#[test]
fn backend_reports_its_version() {
    assert!(Libbpf.version().contains("libbpf"));
}
