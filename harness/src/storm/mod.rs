//! The storm engine: W worker processes inside a [`StormCgroup`], each
//! spawning and reaping a target N times as fast as it can.

mod pool;
mod reap;
mod spec;
mod target;
mod worker;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::errno::Errno;

use crate::cgroup::{CgroupError, StormCgroup};
pub use pool::WorkerPool;
pub use spec::{
    SpawnMethod, StormSpec, Target, Trigger, UnknownName, MAX_EXECS_PER_WORKER, MAX_WORKERS,
};
pub use target::{sweep_stale_dirs, TargetBinary};

/// How often `run_storm` calls `on_tick`.
pub const TICK: Duration = Duration::from_millis(50);

/// What this process's storms spent starting their workers (for new ones,
/// from writing their target until every worker waits at the gate, each
/// one's cgroup join included; for kept ones, waiting for the last to
/// arrive): set-up, outside every storm's wall time.
static STARTING_NS: AtomicU64 = AtomicU64::new(0);

/// The time this process's storms spent starting their workers.
pub fn time_starting() -> Duration {
    Duration::from_nanos(STARTING_NS.load(Ordering::Relaxed))
}

#[derive(Debug, thiserror::Error)]
pub enum StormError {
    #[error("workers must be between 1 and {MAX_WORKERS}, got {0}")]
    Workers(u32),
    #[error("execs per worker must be between 1 and {MAX_EXECS_PER_WORKER}, got {0}")]
    Execs(u64),
    #[error("the storm timeout must be longer than zero")]
    ZeroTimeout,
    #[error(
        "target `{target}` cannot be started with `{spawn}`: it needs fork \
         (posix_spawn and vfork only execve a path, with no execveat and no extra thread); \
         use the `fork` spawn method"
    )]
    Unsupported { target: Target, spawn: SpawnMethod },
    #[error(
        "only {ready} of {workers} storm workers were ready to start within {timeout:?} \
         (each joins the storm cgroup first); the machine may be overloaded"
    )]
    NotReady {
        ready: u32,
        workers: u32,
        timeout: Duration,
    },
    #[error(
        "the storm cgroup allows {pids_max} tasks, too few for {workers} workers \
         (each worker and its target need one, a `threaded` target two: at least {needed})"
    )]
    PidsMaxTooLow {
        workers: u32,
        pids_max: u64,
        needed: u64,
    },
    #[error("target {path} is missing or not executable ({source}); use the `tiny` target")]
    TargetMissing {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("writing the storm target {path}: {source}")]
    TargetWrite {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no temp folder can hold the storm's targets safely ({refused}); set TMPDIR to a \
         folder that allows exec and that only root can change"
    )]
    NoTargetDir { refused: String },
    #[error(
        "storm targets are exec'd through /proc/self/fd, which is not there ({source}); \
         mount procfs on /proc"
    )]
    NoProcFd {
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error("{call} failed: {source}")]
    Sys {
        call: &'static str,
        #[source]
        source: Errno,
    },
    #[error("storm worker {pid} {status}")]
    Worker { pid: i32, status: String },
}

fn sys(call: &'static str) -> impl FnOnce(Errno) -> StormError {
    move |source| StormError::Sys { call, source }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StormReport {
    /// Spawns attempted. On timeout, those of the killed workers too (read
    /// from memory they shared with the harness), including the one each was
    /// starting when killed, which may or may not have reached its exec: then
    /// `issued - succeeded - failed` (at most one per worker) is what was in
    /// flight.
    pub issued: u64,
    /// Targets that exited with status 0.
    pub succeeded: u64,
    /// Spawn errors and targets that exited nonzero or by a signal.
    pub failed: u64,
    /// From releasing the workers to the last one done (its targets
    /// reaped), or to the timeout.
    pub wall: Duration,
    /// CPU time of the workers and the targets they reaped.
    pub cpu_user: Duration,
    pub cpu_sys: Duration,
    pub timed_out: bool,
}

impl StormReport {
    /// Execs attempted per second of wall time (for targets that succeed,
    /// every one also succeeded; for `missing` and `noexec`, none did).
    pub fn execs_per_sec(&self) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs > 0.0 {
            self.issued as f64 / secs
        } else {
            0.0
        }
    }
}

/// Runs the storm in `cgroup` with workers of its own, calling `on_tick`
/// about every [`TICK`] while it runs (to sample counters). A
/// [`WorkerPool`] keeps its workers for the next storm.
///
/// A storm that outlives `spec.timeout` is killed (the whole cgroup) and
/// returned as `Ok` with `timed_out: true`; its counts then include what the
/// killed workers did up to then (see [`StormReport::issued`]). Workers
/// killed by anyone else (say `cgroup.kill_all()` from `on_tick`) before
/// they all finished make it [`StormError::Worker`]. On every path, errors
/// included, all workers are reaped and the cgroup's tasks gone before this
/// returns.
pub fn run_storm(
    spec: &StormSpec,
    cgroup: &StormCgroup,
    on_tick: &mut dyn FnMut(),
) -> Result<StormReport, StormError> {
    WorkerPool::default().run(spec, cgroup, on_tick)
}
