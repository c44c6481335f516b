//! The storm engine: W worker processes inside a [`StormCgroup`], each
//! spawning and reaping a target N times as fast as it can.

mod target;
mod worker;

use std::ffi::c_char;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::ptr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{pipe2, Pid};

use crate::cgroup::{CgroupError, StormCgroup};
pub use target::{sweep_stale_dirs, TargetBinary};
use worker::{Exec, Plan, Progress, ThreadStack, RECORD_LEN};

pub const MAX_WORKERS: u32 = 1024;
pub const MAX_EXECS_PER_WORKER: u64 = 10_000_000;
/// How often `run_storm` calls `on_tick`.
pub const TICK: Duration = Duration::from_millis(50);

/// What each storm iteration execs. Each variant's doc says what one
/// iteration shows to the exec tracepoints and hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// A static, libc-free binary that exits at once: the cheapest exec.
    /// One execve, one successful exec.
    Tiny,
    /// /bin/true: a typical small dynamically linked program. One execve,
    /// one successful exec.
    BinTrue,
    /// A `#!` script whose interpreter is the tiny binary. One execve, one
    /// successful exec (sched_process_exec), but two passes through binfmt
    /// (the script, then its interpreter), so a bprm_check_security hook
    /// runs twice.
    Script,
    /// A path that does not exist: one execve that fails with ENOENT, no
    /// exec. Counted as failed.
    Missing,
    /// An existing regular file without any exec bit: one execve that fails
    /// with EACCES, no exec. Counted as failed.
    NotExecutable,
    /// execveat(fd, "", AT_EMPTY_PATH) on an fd of the tiny binary opened
    /// before the workers fork: one execveat (not execve), one successful
    /// exec. Fork spawning only (posix_spawn has no execveat).
    Fexecve,
    /// The tiny binary exec'd by a process with a second thread (made with
    /// a raw clone(CLONE_THREAD) right after fork), which the exec kills
    /// (de_thread). One execve, one successful exec. Fork spawning only.
    Threaded,
}

impl Target {
    pub const ALL: [Target; 7] = [
        Target::Tiny,
        Target::BinTrue,
        Target::Script,
        Target::Missing,
        Target::NotExecutable,
        Target::Fexecve,
        Target::Threaded,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::Tiny => "tiny",
            Target::BinTrue => "true",
            Target::Script => "script",
            Target::Missing => "missing",
            Target::NotExecutable => "noexec",
            Target::Fexecve => "fexecve",
            Target::Threaded => "threaded",
        }
    }

    /// Whether each exec is expected to succeed and the target to exit 0
    /// (`succeeded == issued`); otherwise every one fails (`failed ==
    /// issued`) and there is no exec.
    pub fn expect_success(self) -> bool {
        !matches!(self, Target::Missing | Target::NotExecutable)
    }

    /// The system call each iteration makes once: `execve` or `execveat`
    /// (the `syscalls:sys_enter_<name>` tracepoint that sees it).
    pub fn syscall(self) -> &'static str {
        match self {
            Target::Fexecve => "execveat",
            _ => "execve",
        }
    }

    /// Whether `spawn` can start this target. posix_spawn only runs execve
    /// on a path, in a child it controls: no execveat, no extra thread.
    pub fn supports(self, spawn: SpawnMethod) -> bool {
        match spawn {
            SpawnMethod::Fork => true,
            SpawnMethod::PosixSpawn => !matches!(self, Target::Fexecve | Target::Threaded),
        }
    }

    /// Tasks each worker has alive at once: itself, its target and, for
    /// `threaded`, the target's second thread.
    pub fn tasks_per_worker(self) -> u64 {
        match self {
            Target::Threaded => 3,
            _ => 2,
        }
    }
}

/// How a worker starts each target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpawnMethod {
    /// fork, then execve in the child.
    Fork,
    /// glibc's posix_spawn (clone with CLONE_VM | CLONE_VFORK).
    PosixSpawn,
}

impl SpawnMethod {
    pub const ALL: [SpawnMethod; 2] = [SpawnMethod::Fork, SpawnMethod::PosixSpawn];

    pub fn name(self) -> &'static str {
        match self {
            SpawnMethod::Fork => "fork",
            SpawnMethod::PosixSpawn => "posix_spawn",
        }
    }
}

/// A name that is none of the choices.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{given}`; choose one of: {choices}")]
pub struct UnknownName {
    pub what: &'static str,
    pub given: String,
    pub choices: String,
}

fn parse_name<T: Copy>(
    given: &str,
    what: &'static str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<T, UnknownName> {
    all.iter()
        .copied()
        .find(|&t| name(t) == given)
        .ok_or_else(|| UnknownName {
            what,
            given: given.to_owned(),
            choices: all.iter().map(|&t| name(t)).collect::<Vec<_>>().join(", "),
        })
}

impl FromStr for Target {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Target, UnknownName> {
        parse_name(s, "target", &Target::ALL, Target::name)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SpawnMethod {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<SpawnMethod, UnknownName> {
        parse_name(s, "spawn method", &SpawnMethod::ALL, SpawnMethod::name)
    }
}

impl fmt::Display for SpawnMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StormSpec {
    pub workers: u32,
    pub execs_per_worker: u64,
    pub target: Target,
    pub spawn: SpawnMethod,
    /// Past this, the storm is killed and reported with `timed_out`.
    pub timeout: Duration,
}

impl StormSpec {
    /// A validated spec.
    pub fn new(
        workers: u32,
        execs_per_worker: u64,
        target: Target,
        spawn: SpawnMethod,
        timeout: Duration,
    ) -> Result<StormSpec, StormError> {
        let spec = StormSpec {
            workers,
            execs_per_worker,
            target,
            spawn,
            timeout,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// A pids limit for the storm's cgroup: each worker and its one target
    /// (and the target's second thread for `threaded`), with slack for a
    /// target that forks.
    pub fn pids_max(&self) -> u64 {
        self.target.tasks_per_worker() * u64::from(self.workers) + 16
    }

    pub fn validate(&self) -> Result<(), StormError> {
        if !(1..=MAX_WORKERS).contains(&self.workers) {
            return Err(StormError::Workers(self.workers));
        }
        if !(1..=MAX_EXECS_PER_WORKER).contains(&self.execs_per_worker) {
            return Err(StormError::Execs(self.execs_per_worker));
        }
        if self.timeout.is_zero() {
            return Err(StormError::ZeroTimeout);
        }
        if !self.target.supports(self.spawn) {
            return Err(StormError::Unsupported {
                target: self.target,
                spawn: self.spawn,
            });
        }
        Ok(())
    }
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
         (posix_spawn can only execve a path, with no execveat and no extra thread); \
         use the `fork` spawn method"
    )]
    Unsupported { target: Target, spawn: SpawnMethod },
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
        let needed = spec.target.tasks_per_worker() * u64::from(spec.workers);
        if pids_max < needed {
            return Err(StormError::PidsMaxTooLow {
                workers: spec.workers,
                pids_max,
                needed,
            });
        }
    }

    // Everything that allocates happens here, before the first fork.
    let target = TargetBinary::prepare(spec.target)?;
    let join = cgroup.join_handle()?;
    let (go_r, go_w) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
    let (res_r, res_w) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
    fcntl(res_r.as_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(sys("fcntl"))?;
    let progress = Progress::new(spec.workers)?;
    let argv: [*mut c_char; 2] = [target.path().as_ptr().cast_mut(), ptr::null_mut()];
    let envp: [*mut c_char; 1] = [ptr::null_mut()];
    let mut thread_stack = ThreadStack::new(spec.target);
    let exec = match (spec.target, target.fd()) {
        (Target::Fexecve, Some(fd)) => Exec::Execveat(fd),
        (Target::Threaded, _) => Exec::Threaded(thread_stack.top()),
        _ => Exec::Execve,
    };
    let plan = Plan {
        path: target.exec_path().as_ptr(),
        target_fds: target.keep_fds(),
        exec,
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        method: spec.spawn,
        execs: spec.execs_per_worker,
        join: &join,
        go: go_r.as_raw_fd(),
        results: res_w.as_raw_fd(),
        // SAFETY: plain getpid syscall.
        parent: unsafe { libc::getpid() },
    };
    let mut workers = Workers::new(cgroup, spec.workers);

    for slot in progress.slots() {
        // SAFETY: the child runs only worker::run, which is async-signal-safe
        // and never returns.
        match unsafe { libc::fork() } {
            -1 => return Err(sys("fork")(Errno::last())),
            0 => worker::run(&plan, slot),
            pid => workers.live.push(pid),
        }
    }
    drop((go_r, res_w, join));

    let start = Instant::now();
    // EOF on the go pipe releases every worker at once.
    drop(go_w);
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

/// The read end of the results pipe and the totals read from it.
struct Results {
    fd: OwnedFd,
    buf: [u8; RECORD_LEN * 64],
    len: usize,
    reported: u32,
    issued: u64,
    succeeded: u64,
    failed: u64,
}

impl Results {
    fn new(fd: OwnedFd) -> Results {
        Results {
            fd,
            buf: [0; RECORD_LEN * 64],
            len: 0,
            reported: 0,
            issued: 0,
            succeeded: 0,
            failed: 0,
        }
    }

    /// Reads every record available without blocking and reaps the workers
    /// that sent them (they are exiting).
    fn drain(&mut self, workers: &mut Workers) -> Result<(), StormError> {
        loop {
            match nix::unistd::read(self.fd.as_fd(), &mut self.buf[self.len..]) {
                Ok(0) | Err(Errno::EAGAIN) => return Ok(()),
                Ok(n) => self.len += n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(sys("read of the results pipe")(e)),
            }
            let whole = self.len - self.len % RECORD_LEN;
            for record in self.buf[..whole].chunks_exact(RECORD_LEN) {
                let mut v = [0u64; 4];
                for (value, bytes) in v.iter_mut().zip(record.chunks_exact(8)) {
                    let mut word = [0u8; 8];
                    word.copy_from_slice(bytes);
                    *value = u64::from_ne_bytes(word);
                }
                self.reported += 1;
                self.issued += v[1];
                self.succeeded += v[2];
                self.failed += v[3];
                // A pid that does not fit is not one of ours; reap_pid ignores it.
                workers.reap_pid(libc::pid_t::try_from(v[0]).unwrap_or(-1))?;
            }
            self.buf.copy_within(whole..self.len, 0);
            self.len -= whole;
        }
    }
}

/// The forked workers not yet reaped. Unless they all finished normally,
/// dropping it kills and reaps them and empties the cgroup, so that no error
/// path leaves a worker or a target behind.
struct Workers<'a> {
    cgroup: &'a StormCgroup,
    live: Vec<libc::pid_t>,
    /// No worker is left and no orphaned target can be.
    settled: bool,
    cpu_user: Duration,
    cpu_sys: Duration,
}

impl<'a> Workers<'a> {
    fn new(cgroup: &'a StormCgroup, workers: u32) -> Workers<'a> {
        Workers {
            cgroup,
            live: Vec::with_capacity(workers as usize),
            settled: false,
            cpu_user: Duration::ZERO,
            cpu_sys: Duration::ZERO,
        }
    }

    /// Reaps the workers that have exited; a worker that failed is an error.
    fn reap_exited(&mut self) -> Result<(), StormError> {
        let mut i = 0;
        while i < self.live.len() {
            match self.wait(self.live[i], libc::WNOHANG) {
                Some(status) => {
                    self.live.swap_remove(i);
                    check_status(status.0, status.1)?;
                }
                None => i += 1,
            }
        }
        Ok(())
    }

    /// Reaps `pid`, which has reported and is exiting, blocking until it has.
    fn reap_pid(&mut self, pid: libc::pid_t) -> Result<(), StormError> {
        let Some(i) = self.live.iter().position(|&p| p == pid) else {
            return Ok(());
        };
        self.live.swap_remove(i);
        match self.wait(pid, 0) {
            Some((pid, status)) => check_status(pid, status),
            None => Ok(()),
        }
    }

    /// wait4 on one worker, adding its CPU time; `None` while it runs.
    /// A worker that cannot be waited for (ECHILD: someone else reaped it)
    /// counts as gone, with status 0.
    fn wait(&mut self, pid: libc::pid_t, flags: libc::c_int) -> Option<(libc::pid_t, libc::c_int)> {
        let mut status = 0;
        // SAFETY: an all-zero rusage is valid.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: wait4 on our own child with valid out-pointers.
            let r = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
            if r == pid {
                self.cpu_user += timeval(usage.ru_utime);
                self.cpu_sys += timeval(usage.ru_stime);
                return Some((pid, status));
            }
            if r == 0 {
                return None;
            }
            if Errno::last() != Errno::EINTR {
                return Some((pid, 0));
            }
        }
    }

    /// SIGKILLs the workers and everything in the cgroup, then reaps the
    /// workers.
    fn kill_and_reap(&mut self) {
        for &pid in &self.live {
            // A worker may not have joined the cgroup yet: signal it directly.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        // Also kills the targets, which the workers' deaths orphan, and waits
        // until they are gone (init reaps them).
        self.cgroup.kill_all();
        for pid in std::mem::take(&mut self.live) {
            let _ = self.wait(pid, 0);
        }
        self.settled = true;
    }
}

impl Drop for Workers<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.kill_and_reap();
        }
    }
}

fn check_status(pid: libc::pid_t, status: libc::c_int) -> Result<(), StormError> {
    let status = if libc::WIFEXITED(status) {
        match libc::WEXITSTATUS(status) {
            0 => return Ok(()),
            code => format!("{} (exit status {code})", worker::describe_exit(code)),
        }
    } else if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        match Signal::try_from(signal) {
            Ok(s) => format!("was killed by {s}"),
            Err(_) => format!("was killed by signal {signal}"),
        }
    } else {
        format!("ended with wait status {status:#x}")
    };
    Err(StormError::Worker { pid, status })
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(tv.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(tv.tv_usec).unwrap_or(0))
}
