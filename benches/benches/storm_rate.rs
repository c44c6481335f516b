//! The storm engine against the C yardstick (c/execloop.c): both run the
//! same tiny target, exec'd by the same path, with the same workers and
//! spawn method, side by side. Besides criterion's own report, interleaved
//! rounds print the engine/C exec-rate ratio with a 95% interval (the goal:
//! a median >= 0.97, the interval reaching 1.0), the absolute rates of both
//! sides, and the machine's noise (how much the C loop, the fixed
//! yardstick, varies between rounds), so that a slow engine can be told
//! from a slow machine. The hot method's trigger loop (a failing execve per
//! call, nothing spawned) gets the same yardstick (`fire`).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Command;
use std::time::Duration;

use bpfstorm::cgroup::StormCgroup;
use bpfstorm::sample::Estimate;
use bpfstorm::storm::{run_storm, SpawnMethod, StormSpec, Target, TargetBinary, Trigger};
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

/// What the engine runs: spawns of the tiny target, or the hot method's
/// trigger fired in place.
#[derive(Clone, Copy)]
enum Load {
    Spawn(SpawnMethod),
    Fire,
}

/// Wall time of a bpfstorm storm, as the engine measures it.
fn engine(load: Load, execs_per_worker: u64) -> Duration {
    let cgroup = StormCgroup::create(PIDS_MAX).expect("creating a storm cgroup (run as root)");
    let (storm, succeeds) = match load {
        Load::Spawn(spawn) => (spec(spawn, execs_per_worker), true),
        Load::Fire => (
            spec(SpawnMethod::Fork, 1)
                .fire(Trigger::Execve, execs_per_worker)
                .expect("a valid trigger storm"),
            false,
        ),
    };
    let report = run_storm(&storm, &cgroup, &mut || {}).expect("storm");
    let all = u64::from(WORKERS) * execs_per_worker;
    assert_eq!(
        (report.succeeded, report.failed),
        if succeeds { (all, 0) } else { (0, all) }
    );
    report.wall
}

/// How the C loop names the target to execve.
enum Path {
    /// By an fd it inherits, as the engine does (`/proc/self/fd/N`: the
    /// engine execs nothing by a path another user could swap).
    Fd(OwnedFd),
    /// By its path in the file system: what exec'ing through an fd costs
    /// is the difference.
    Plain,
}

impl Path {
    /// An fd on the target that the C loop and its children inherit.
    fn fd_of(target: &TargetBinary) -> Path {
        // SAFETY: opens a NUL-terminated path; no O_CLOEXEC, so that
        // execloop inherits it.
        let fd: RawFd = unsafe { libc::open(target.path().as_ptr(), libc::O_PATH) };
        assert!(fd >= 0, "opening the target");
        // SAFETY: the fd was just opened and is owned here alone.
        Path::Fd(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn arg(&self, target: &TargetBinary) -> String {
        match self {
            Path::Fd(fd) => format!("/proc/self/fd/{}", fd.as_raw_fd()),
            Path::Plain => target.path().to_str().expect("a UTF-8 temp path").into(),
        }
    }
}

/// Wall time of the C loop, as it measures itself.
fn yardstick(mode: &str, execs_per_worker: u64, target: &TargetBinary, path: &Path) -> Duration {
    let out = Command::new(env!("EXECLOOP"))
        .args([mode, &WORKERS.to_string(), &execs_per_worker.to_string()])
        .arg(path.arg(target))
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
/// below must agree with it), and for spawns what exec'ing through an fd
/// costs the C loop itself.
fn ratio_report(rounds: usize, execs_per_worker: u64, smoke: bool) {
    let target = TargetBinary::prepare(Target::Tiny).expect("tiny target");
    let by_fd = Path::fd_of(&target);
    // The trigger loop, as cheap per call as a syscall gets here, runs 50x
    // the calls in a round to last about as long.
    for (load, mode, scale) in [
        (Load::Spawn(SpawnMethod::Fork), "fork", 1),
        (Load::Spawn(SpawnMethod::Vfork), "vfork", 1),
        (Load::Spawn(SpawnMethod::PosixSpawn), "posix_spawn", 1),
        (Load::Fire, "fire", 50),
    ] {
        let execs_per_worker = execs_per_worker * scale;
        let what = match load {
            Load::Spawn(spawn) => format!("storm engine ({spawn})"),
            Load::Fire => "hot trigger (execve(\"\") per call)".into(),
        };
        let spawns = matches!(load, Load::Spawn(_));
        let mut ratios = Vec::with_capacity(rounds);
        let mut engine_rates = Vec::with_capacity(rounds);
        let mut c_rates = Vec::with_capacity(rounds);
        let mut fd_costs = Vec::with_capacity(rounds);
        let execs = (u64::from(WORKERS) * execs_per_worker) as f64;
        for _ in 0..rounds {
            let c = yardstick(mode, execs_per_worker, &target, &by_fd);
            let e = engine(load, execs_per_worker);
            if spawns {
                let plain = yardstick(mode, execs_per_worker, &target, &Path::Plain);
                fd_costs.push(c.as_secs_f64() / plain.as_secs_f64());
            }
            // rate ratio = (execs / e) / (execs / c)
            ratios.push(c.as_secs_f64() / e.as_secs_f64());
            engine_rates.push(execs / e.as_secs_f64());
            c_rates.push(execs / c.as_secs_f64());
        }
        if smoke {
            println!(
                "{what} vs C {mode} loop: smoke run of `cargo test --benches` \
                 ({rounds} round of {WORKERS} x {execs_per_worker} execs): it runs; not a measurement"
            );
            continue;
        }
        if let (Some(ratio), Some(engine), Some(c)) = (
            Estimate::from_samples(&ratios),
            Estimate::from_samples(&engine_rates),
            Estimate::from_samples(&c_rates),
        ) {
            let goal = if ratio.median >= 0.97 && ratio.hi >= 1.0 {
                "met"
            } else {
                "missed"
            };
            println!(
                "{what} vs C {mode} loop, {} interleaved rounds of {WORKERS} x {execs_per_worker} execs:\n  \
                 exec rate ratio {:.3} [95% CI {:.3}, {:.3}] (goal: median >= 0.97, interval reaching 1.0: {goal})\n  \
                 engine {:.0} execs/s [{:.0}, {:.0}] ({:.1} us/exec by its own wall time); C loop {:.0} execs/s [{:.0}, {:.0}]\n  \
                 machine noise: the C loop's rate varies by {:.1}% between rounds (coefficient of variation)",
                ratio.n,
                ratio.median,
                ratio.lo,
                ratio.hi,
                engine.median,
                engine.lo,
                engine.hi,
                1e6 / engine.median,
                c.median,
                c.lo,
                c.hi,
                100.0 * bpfstorm::noise::cv(&c_rates).unwrap_or(0.0),
            );
        }
        if let Some(cost) = Estimate::from_samples(&fd_costs) {
            println!(
                "  both exec the target through an fd (/proc/self/fd/N), as the engine must: \
                 the C loop takes {:.3}x [95% CI {:.3}, {:.3}] its time by the plain path",
                cost.median, cost.lo, cost.hi
            );
        }
    }
}

fn exec_rate(c: &mut Criterion) {
    let target = TargetBinary::prepare(Target::Tiny).expect("tiny target");
    let by_fd = Path::fd_of(&target);
    let mut group = c.benchmark_group("exec_rate");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    // Each iteration is one exec: criterion's time per iteration is the
    // time per exec.
    group.bench_function(BenchmarkId::new("engine", "fork"), |b| {
        b.iter_custom(|iters| {
            time_of_iters(
                engine(Load::Spawn(SpawnMethod::Fork), per_worker(iters)),
                iters,
            )
        })
    });
    group.bench_function(BenchmarkId::new("c_loop", "fork"), |b| {
        b.iter_custom(|iters| {
            time_of_iters(yardstick("fork", per_worker(iters), &target, &by_fd), iters)
        })
    });
    group.bench_function(BenchmarkId::new("engine", "posix_spawn"), |b| {
        b.iter_custom(|iters| {
            time_of_iters(
                engine(Load::Spawn(SpawnMethod::PosixSpawn), per_worker(iters)),
                iters,
            )
        })
    });
    group.bench_function(BenchmarkId::new("engine", "vfork"), |b| {
        b.iter_custom(|iters| {
            time_of_iters(
                engine(Load::Spawn(SpawnMethod::Vfork), per_worker(iters)),
                iters,
            )
        })
    });
    group.bench_function(BenchmarkId::new("engine", "fire"), |b| {
        b.iter_custom(|iters| time_of_iters(engine(Load::Fire, per_worker(iters)), iters))
    });
    for mode in ["vfork", "posix_spawn", "fire"] {
        group.bench_function(BenchmarkId::new("c_loop", mode), |b| {
            b.iter_custom(|iters| {
                time_of_iters(yardstick(mode, per_worker(iters), &target, &by_fd), iters)
            })
        });
    }
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
