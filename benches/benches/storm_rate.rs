//! The storm engine against the C yardstick (c/execloop.c): both run the
//! same tiny target with the same workers, side by side. Besides criterion's
//! own report, interleaved rounds print the engine/C exec-rate ratio with a
//! 95% interval (the goal: >= 0.90).

use std::process::Command;
use std::time::Duration;

use bpfstorm::cgroup::StormCgroup;
use bpfstorm::sample::Estimate;
use bpfstorm::storm::{run_storm, SpawnMethod, StormSpec, Target, TargetBinary};
use criterion::{criterion_group, BenchmarkId, Criterion};

const WORKERS: u32 = 2;
const PIDS_MAX: u64 = 4096;

fn spec(spawn: SpawnMethod, execs_per_worker: u64) -> StormSpec {
    StormSpec::new(
        WORKERS,
        execs_per_worker,
        Target::Tiny,
        spawn,
        Duration::from_secs(600),
    )
    .expect("a valid storm")
}

/// Wall time of a bpfstorm storm, as the engine measures it.
fn engine(spawn: SpawnMethod, execs_per_worker: u64) -> Duration {
    let cgroup = StormCgroup::create(PIDS_MAX).expect("creating a storm cgroup (run as root)");
    let report = run_storm(&spec(spawn, execs_per_worker), &cgroup, &mut || {}).expect("storm");
    assert_eq!(report.succeeded, u64::from(WORKERS) * execs_per_worker);
    report.wall
}

/// Wall time of the C loop, as it measures itself.
fn yardstick(mode: &str, execs_per_worker: u64, target: &TargetBinary) -> Duration {
    let out = Command::new(env!("EXECLOOP"))
        .args([mode, &WORKERS.to_string(), &execs_per_worker.to_string()])
        .arg(target.path().to_str().expect("a UTF-8 temp path"))
        .output()
        .expect("running execloop");
    assert!(out.status.success(), "execloop failed: {out:?}");
    let ns: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("execloop prints nanoseconds");
    Duration::from_nanos(ns)
}

/// What criterion wants back from `iter_custom`: the time of `iters`
/// iterations (one exec each), from a storm of `per_worker(iters)` execs per
/// worker, which rounds `iters` up to a multiple of the workers.
fn time_of_iters(wall: Duration, iters: u64) -> Duration {
    let execs = per_worker(iters) * u64::from(WORKERS);
    wall.mul_f64(iters as f64 / execs as f64)
}

fn per_worker(iters: u64) -> u64 {
    iters.div_ceil(u64::from(WORKERS)).max(1)
}

/// Interleaved rounds, so drift hits both alike; prints the rate ratio and
/// the engine's own time per exec (criterion's `exec_rate/engine` figures
/// below must agree with it).
fn ratio_report(rounds: usize, execs_per_worker: u64, smoke: bool) {
    let target = TargetBinary::prepare(Target::Tiny).expect("tiny target");
    for (spawn, mode) in [
        (SpawnMethod::Fork, "fork"),
        (SpawnMethod::PosixSpawn, "vfork"),
    ] {
        let mut ratios = Vec::with_capacity(rounds);
        let mut engine_us = Vec::with_capacity(rounds);
        let execs = (u64::from(WORKERS) * execs_per_worker) as f64;
        for _ in 0..rounds {
            let c = yardstick(mode, execs_per_worker, &target);
            let e = engine(spawn, execs_per_worker);
            // rate ratio = (execs / e) / (execs / c)
            ratios.push(c.as_secs_f64() / e.as_secs_f64());
            engine_us.push(e.as_secs_f64() * 1e6 / execs);
        }
        if smoke {
            println!(
                "storm engine ({spawn}) vs C {mode}+exec loop: smoke run of `cargo test --benches` \
                 ({rounds} round of {WORKERS} x {execs_per_worker} execs): it runs; not a measurement"
            );
            continue;
        }
        if let (Some(ratio), Some(us)) = (
            Estimate::from_samples(&ratios),
            Estimate::from_samples(&engine_us),
        ) {
            println!(
                "storm engine ({spawn}) vs C {mode}+exec loop: exec rate ratio {:.3} [95% CI {:.3}, {:.3}] over {} rounds of {} x {} execs (goal >= 0.90); \
                 engine {:.1} us/exec [{:.1}, {:.1}] by its own wall time",
                ratio.median, ratio.lo, ratio.hi, ratio.n, WORKERS, execs_per_worker, us.median, us.lo, us.hi
            );
        }
    }
}

fn exec_rate(c: &mut Criterion) {
    let target = TargetBinary::prepare(Target::Tiny).expect("tiny target");
    let mut group = c.benchmark_group("exec_rate");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    // Each iteration is one exec: criterion's time per iteration is the
    // time per exec.
    group.bench_function(BenchmarkId::new("engine", "fork"), |b| {
        b.iter_custom(|iters| time_of_iters(engine(SpawnMethod::Fork, per_worker(iters)), iters))
    });
    group.bench_function(BenchmarkId::new("c_loop", "fork"), |b| {
        b.iter_custom(|iters| time_of_iters(yardstick("fork", per_worker(iters), &target), iters))
    });
    group.bench_function(BenchmarkId::new("engine", "posix_spawn"), |b| {
        b.iter_custom(|iters| {
            time_of_iters(engine(SpawnMethod::PosixSpawn, per_worker(iters)), iters)
        })
    });
    group.bench_function(BenchmarkId::new("c_loop", "vfork"), |b| {
        b.iter_custom(|iters| time_of_iters(yardstick("vfork", per_worker(iters), &target), iters))
    });
    group.finish();
}

criterion_group!(benches, exec_rate);

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not and only
    // needs to know the code still runs.
    let benchmarking = std::env::args().any(|a| a == "--bench");
    if benchmarking {
        ratio_report(9, 2000, false);
    } else {
        ratio_report(1, 50, true);
    }
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
