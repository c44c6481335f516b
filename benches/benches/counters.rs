//! What each backend and strategy costs, by criterion: load+attach per
//! backend, read latency per map kind (per-CPU reads grow with CPU count),
//! the getppid trigger per attach point (what a hook adds to a syscall), and
//! a storm per strategy timed by the storm itself.

use std::time::{Duration, Instant};

use bpfstorm::backends;
use bpfstorm::measure::{measure, FilterKind};
use bpfstorm::storm::{SpawnMethod, StormSpec, Target};
use bpfstorm_common::{
    AttachPoint, Backend, Counter, CounterError, Filter, MapKind, Strategy, UpdateMode,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn strategy(attach: AttachPoint, map: MapKind) -> Strategy {
    Strategy::new(attach, map, map.valid_updates()[0], Filter::All).expect("a valid pair")
}

fn all_backends() -> Vec<Box<dyn Backend>> {
    backends::NAMES
        .iter()
        .map(|n| backends::by_name(n).expect("registered"))
        .collect()
}

/// The counter of `s`, or `None` where `backend` has no words for it (a
/// tool's language: bpftrace's).
fn open(backend: &dyn Backend, s: &Strategy) -> Option<Box<dyn Counter>> {
    match backend.open(s) {
        Ok(counter) => Some(counter),
        Err(CounterError::Inexpressible { .. }) => None,
        Err(e) => panic!("{} {s}: {e}", backend.name()),
    }
}

fn load_attach(c: &mut Criterion) {
    let mut group = c.benchmark_group("load_attach");
    group.sample_size(20);
    for backend in all_backends() {
        for map in [MapKind::Array, MapKind::PercpuArray, MapKind::Ringbuf] {
            let s = strategy(AttachPoint::TpSysEnterExecve, map);
            if open(backend.as_ref(), &s).is_none() {
                continue;
            }
            group.bench_function(BenchmarkId::new(backend.name(), map), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let started = Instant::now();
                        let counter = backend.open(&s).expect("load and attach");
                        total += started.elapsed();
                        drop(counter);
                    }
                    total
                })
            });
        }
    }
    group.finish();
}

fn read(c: &mut Criterion) {
    let mut group = c.benchmark_group("read");
    for backend in all_backends() {
        for &map in MapKind::ALL {
            let s = strategy(AttachPoint::TpSysEnterExecve, map);
            let Some(mut counter) = open(backend.as_ref(), &s) else {
                continue;
            };
            group.bench_function(BenchmarkId::new(backend.name(), map), |b| {
                b.iter(|| counter.read().expect("read"))
            });
        }
    }
    group.finish();
}

fn getppid_calls(iters: u64) -> Duration {
    let started = Instant::now();
    for _ in 0..iters {
        // SAFETY: getppid takes no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
    started.elapsed()
}

fn trigger(c: &mut Criterion) {
    let mut group = c.benchmark_group("trigger_getppid");
    group.bench_function("no_hook", |b| b.iter_custom(getppid_calls));
    let libbpf = backends::by_name("libbpf").expect("registered");
    for attach in [
        AttachPoint::RawTpSysEnter,
        AttachPoint::TpBtfSysEnter,
        AttachPoint::TpSysEnterExecve,
        AttachPoint::TpSchedProcessExec,
    ] {
        let Ok(_hook) = libbpf.open(&strategy(attach, MapKind::Array)) else {
            continue;
        };
        group.bench_function(attach.name(), |b| b.iter_custom(getppid_calls));
    }
    group.finish();
}

fn storm(c: &mut Criterion) {
    let mut group = c.benchmark_group("storm_per_exec");
    group.sample_size(10);
    let libbpf = backends::by_name("libbpf").expect("registered");
    let c_loader = backends::by_name("c").expect("registered");
    for s in Strategy::all_for(AttachPoint::TpSysEnterExecve, Filter::All) {
        if s.update() == UpdateMode::Racy {
            continue;
        }
        // What libbpf-rs cannot open (a perf buffer woken in batches), the
        // C loader measures, and the id says so.
        let (backend, id) = match libbpf.open(&s) {
            Err(e) if e.is_unsupported() => (&c_loader, format!("{}/{} (c)", s.map(), s.update())),
            _ => (&libbpf, format!("{}/{}", s.map(), s.update())),
        };
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let spec = StormSpec::new(
                    1,
                    iters.max(1),
                    Target::Tiny,
                    SpawnMethod::Fork,
                    Duration::from_secs(600),
                )
                .expect("a valid storm");
                let cell = measure(backend.as_ref(), s, FilterKind::Cgroup, &spec).expect("storm");
                assert!(cell.is_exact(), "{s}: not exact");
                cell.storm.wall
            })
        });
    }
    group.finish();
}

criterion_group!(benches, load_attach, read, trigger, storm);
criterion_main!(benches);
