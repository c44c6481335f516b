//! The storm engine: W worker processes inside a [`StormCgroup`], each
//! spawning and reaping a target N times as fast as it can.

mod reap;
mod results;
mod spec;
mod target;
mod worker;

use std::ffi::c_char;
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::unistd::pipe2;

use crate::cgroup::{CgroupError, StormCgroup};
use reap::Workers;
use results::Results;
pub use spec::{
    SpawnMethod, StormSpec, Target, Trigger, UnknownName, MAX_EXECS_PER_WORKER, MAX_WORKERS,
};
pub use target::{sweep_stale_dirs, TargetBinary};
use worker::{ChildStack, Exec, Plan, Progress, Spread};

/// How often `run_storm` calls `on_tick`.
pub const TICK: Duration = Duration::from_millis(50);
/// How often the harness looks for a worker that died before the start.
const READY_POLL: Duration = Duration::from_millis(10);

/// What this process's storms spent starting their workers (from the first
/// fork until every worker waits at the gate, each worker's cgroup join
/// included): set-up, outside every storm's wall time.
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
    #[error("{missing} of {workers} storm workers exited without reporting their counts")]
    MissingResults { missing: u32, workers: u32 },
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
    /// From releasing the workers to reaping the last.
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

/// Runs the storm in `cgroup`, calling `on_tick` about every [`TICK`] while it
/// runs (to sample counters).
///
/// A storm that outlives `spec.timeout` is killed (the whole cgroup) and
/// returned as `Ok` with `timed_out: true`; its counts then include what the
/// killed workers did up to then (see [`StormReport::issued`]). Workers
/// killed by anyone else (say `cgroup.kill_all()` from `on_tick`) make it
/// [`StormError::Worker`]. On
/// every path, errors included, all workers are reaped and the cgroup's
/// tasks gone before this returns.
pub fn run_storm(
    spec: &StormSpec,
    cgroup: &StormCgroup,
    on_tick: &mut dyn FnMut(),
) -> Result<StormReport, StormError> {
    spec.validate()?;
    if let Some(pids_max) = cgroup.pids_max() {
        let needed = spec.tasks_per_worker() * u64::from(spec.workers);
        if pids_max < needed {
            return Err(StormError::PidsMaxTooLow {
                workers: spec.workers,
                pids_max,
                needed,
            });
        }
    }

    // Everything that allocates happens here, before the first fork.
    // A trigger storm execs nothing: no target to write.
    let target = match spec.trigger {
        None => Some(TargetBinary::prepare(spec.target)?),
        Some(_) => None,
    };
    let join = cgroup.join_handle()?;
    let (res_r, res_w) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
    fcntl(res_r.as_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(sys("fcntl"))?;
    let progress = Progress::new(spec.workers)?;
    let spread = Spread::of_this_process();
    let argv: [*mut c_char; 2] = [
        target
            .as_ref()
            .map_or(ptr::null_mut(), |t| t.path().as_ptr().cast_mut()),
        ptr::null_mut(),
    ];
    let envp: [*mut c_char; 1] = [ptr::null_mut()];
    let mut child_stack = ChildStack::new(spec.target, spec.spawn);
    let exec = match (spec.target, target.as_ref().and_then(TargetBinary::fd)) {
        (Target::Fexecve, Some(fd)) => Exec::Execveat(fd),
        (Target::Threaded, _) => Exec::Threaded(child_stack.top()),
        _ => Exec::Execve,
    };
    let plan = Plan {
        path: target
            .as_ref()
            .map_or(ptr::null(), |t| t.exec_path().as_ptr()),
        target_fds: target.as_ref().map_or([-1; 2], TargetBinary::keep_fds),
        exec,
        trigger: spec.trigger,
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        method: spec.spawn,
        child_stack: child_stack.top(),
        execs: spec.execs_per_worker,
        join: &join,
        gate: progress.gate(),
        spread: &spread,
        results: res_w.as_raw_fd(),
        // SAFETY: plain getpid syscall.
        parent: unsafe { libc::getpid() },
    };
    let mut workers = Workers::new(cgroup, spec.workers);
    // Every exec's fork copies its worker's page tables, which are this
    // process's: hand the heap's free pages back first. A harness that once
    // held a large map's keys would otherwise fork them all, each exec.
    // SAFETY: malloc_trim only releases free memory of glibc's arenas.
    unsafe { libc::malloc_trim(0) };

    let forking = Instant::now();
    for (index, slot) in progress.slots().iter().enumerate() {
        // SAFETY: the child runs only worker::run, which is async-signal-safe
        // and never returns.
        match unsafe { libc::fork() } {
            -1 => return Err(sys("fork")(Errno::last())),
            0 => worker::run(&plan, index, slot),
            pid => workers.live.push(pid),
        }
    }
    drop((res_w, join));

    // The clock starts once every worker waits at the gate: joining the
    // cgroup costs each an RCU grace period (cgroup_threadgroup_rwsem),
    // 10-20 ms here, which are the harness's, not the storm's. A worker
    // that could not join exits, and says why.
    let ready_by = Instant::now() + spec.timeout;
    loop {
        let ready = progress.gate().ready(READY_POLL);
        if ready >= spec.workers {
            break;
        }
        workers.reap_exited()?;
        if Instant::now() >= ready_by {
            return Err(StormError::NotReady {
                ready,
                workers: spec.workers,
                timeout: spec.timeout,
            });
        }
    }
    let start = Instant::now();
    let starting = u64::try_from((start - forking).as_nanos()).unwrap_or(u64::MAX);
    STARTING_NS.fetch_add(starting, Ordering::Relaxed);
    progress.gate().open();
    let mut results = Results::new(res_r);
    let timed_out = supervise(&mut workers, &mut results, start + spec.timeout, on_tick)?;
    let wall = start.elapsed();

    // Every worker has exited, so every record is in the pipe by now.
    results.drain(&mut workers)?;
    if !timed_out && results.reported < spec.workers {
        return Err(StormError::MissingResults {
            missing: spec.workers - results.reported,
            workers: spec.workers,
        });
    }
    // Killed workers never reported: their shared slots say what they did.
    let (issued, succeeded, failed) = if timed_out {
        progress.totals()
    } else {
        (results.issued, results.succeeded, results.failed)
    };
    Ok(StormReport {
        issued,
        succeeded,
        failed,
        wall,
        cpu_user: workers.cpu_user,
        cpu_sys: workers.cpu_sys,
        timed_out,
    })
}

/// Waits for the workers, ticking and enforcing the deadline; returns
/// whether the storm timed out.
fn supervise(
    workers: &mut Workers,
    results: &mut Results,
    deadline: Instant,
    on_tick: &mut dyn FnMut(),
) -> Result<bool, StormError> {
    let mut next_tick = Instant::now() + TICK;
    loop {
        results.drain(workers)?;
        workers.reap_exited()?;
        if workers.live.is_empty() {
            // Each worker reaped its targets before exiting.
            workers.settled = true;
            return Ok(false);
        }
        let now = Instant::now();
        if now >= deadline {
            workers.kill_and_reap();
            return Ok(true);
        }
        if now >= next_tick {
            on_tick();
            next_tick += TICK;
            // A slow on_tick skips ticks rather than running back to back.
            if next_tick <= now {
                next_tick = now + TICK;
            }
            continue;
        }
        // Round up so that a sub-millisecond wait does not spin.
        let wait = next_tick.min(deadline) - now;
        let wait_ms = libc::c_int::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
        let mut pfd = libc::pollfd {
            fd: results.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, wait_ms) } < 0 {
            let errno = Errno::last();
            if errno != Errno::EINTR {
                return Err(sys("poll")(errno));
            }
        }
    }
}
