//! The worker side of a storm. It runs in a process forked from the
//! multi-threaded harness, so everything here is async-signal-safe: raw libc
//! calls on data prepared before fork, no allocation, no locks, no std I/O.

use std::ffi::{c_char, c_int, c_void};
use std::os::fd::RawFd;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use nix::errno::Errno;

use super::target::MAX_TARGET_FDS;
use super::{SpawnMethod, StormError, Trigger};
use crate::cgroup::JoinFds;

const EXIT_ORPHANED: i32 = 10;
const EXIT_JOIN: i32 = 11;
const EXIT_GO: i32 = 12;
const EXIT_PLAN: i32 = 14;

/// What a target child exits with when it cannot exec (never the target's
/// own status: targets that run exit 0).
const CHILD_EXEC_FAILED: i32 = 127;
const CHILD_CLONE_FAILED: i32 = 126;

/// Why a worker exited with `code`.
pub(super) fn describe_exit(code: i32) -> &'static str {
    match code {
        EXIT_ORPHANED => "lost its parent before starting",
        EXIT_JOIN => "could not join the storm cgroup",
        EXIT_GO => "could not wait for the start",
        EXIT_PLAN => "was given a target its spawn method cannot start",
        _ => "exited unexpectedly",
    }
}

/// How a forked target child execs. posix_spawn and vfork support only
/// `Execve`.
#[derive(Clone, Copy)]
pub(super) enum Exec {
    /// execve(path, argv, envp).
    Execve,
    /// execveat(fd, "", argv, envp, AT_EMPTY_PATH).
    Execveat(RawFd),
    /// Starts a second thread on this stack top, then execve as above.
    Threaded(*mut c_void),
}

/// Size of a [`ChildStack`]: what runs on it only waits in ppoll(2) until
/// an exec kills it, or calls execve.
const CHILD_STACK_LEN: usize = 64 * 1024;

/// A stack allocated before fork, for the second thread of a `threaded`
/// target (each target child gets its own copy of it through fork), or for
/// a `vfork` child, which runs on it in its worker's memory until it execs.
pub(super) struct ChildStack(Vec<u8>);

impl ChildStack {
    /// An empty one unless `target` is `threaded` or `spawn` is `vfork`.
    pub fn new(target: super::Target, spawn: SpawnMethod) -> ChildStack {
        let needed = target == super::Target::Threaded || spawn == SpawnMethod::Vfork;
        ChildStack(if needed {
            vec![0; CHILD_STACK_LEN]
        } else {
            Vec::new()
        })
    }

    /// Its top (stacks grow down), 16-byte aligned as the ABI wants.
    pub fn top(&mut self) -> *mut c_void {
        let len = self.0.len();
        let end = self.0.as_mut_ptr().wrapping_add(len);
        end.wrapping_sub(end as usize % 16).cast()
    }
}

/// One worker's running counts for the storm under way, in memory it
/// shares with the harness, so that a worker killed on timeout still tells
/// what it did; and its CPU time (its own and its reaped targets', in
/// microseconds) when the storm started and when it last arrived at the
/// gate. The worker writes the counts and `cpu_seen` (relaxed stores: plain
/// moves, async-signal-safe); the harness reads them once the worker waits
/// at the gate again, or is gone, and rearms the slot while every worker
/// waits there. A cache line each.
#[repr(C, align(64))]
pub(super) struct Slot {
    issued: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    cpu_start: [AtomicU64; 2],
    cpu_seen: [AtomicU64; 2],
}

/// User and system CPU time, in microseconds.
pub(super) type CpuMicros = [u64; 2];

fn load(cpu: &[AtomicU64; 2]) -> CpuMicros {
    cpu.each_ref().map(|at| at.load(Ordering::Relaxed))
}

fn store(cpu: &[AtomicU64; 2], value: CpuMicros) {
    for (at, value) in cpu.iter().zip(value) {
        at.store(value, Ordering::Relaxed);
    }
}

impl Slot {
    /// Harness side, its worker at the gate: zero counts for the next
    /// storm, which starts from the CPU time the worker arrived with.
    fn rearm(&self) {
        for count in [&self.issued, &self.succeeded, &self.failed] {
            count.store(0, Ordering::Relaxed);
        }
        store(&self.cpu_start, load(&self.cpu_seen));
    }

    /// The CPU time this worker had when the storm started.
    pub fn cpu_start(&self) -> CpuMicros {
        load(&self.cpu_start)
    }

    /// The CPU time of the storm, for a worker that finished it.
    fn cpu_spent(&self) -> CpuMicros {
        let [start, seen] = [self.cpu_start(), load(&self.cpu_seen)];
        [
            seen[0].saturating_sub(start[0]),
            seen[1].saturating_sub(start[1]),
        ]
    }
}

/// What releases the workers into a storm at once, and what the storm is:
/// a round number they wait on with a futex. Not a pipe's EOF: closing a
/// pipe wakes its readers "sync", which puts every one of them on the
/// closing CPU, where they queue behind each other while other CPUs idle
/// until the load balancer moves them (a third of a short storm's time
/// here). A futex wake sends each to the CPU it waits on (see [`Spread`]).
#[repr(C, align(64))]
pub(super) struct Gate {
    /// Bumped to start a storm; a worker waits while it holds the round it
    /// ran last.
    round: AtomicU32,
    /// Workers waiting at the gate, and how many there are: the last to
    /// arrive wakes the harness (one wake, not one per worker). A worker
    /// arrives when it starts and after each storm, so the storm is over
    /// when all have arrived again.
    ready: AtomicU32,
    expected: AtomicU32,
    /// The storm's [`Trigger`] (see [`trigger_code`]), and spawns or calls
    /// per worker; set before the round is bumped.
    trigger: AtomicU32,
    execs: AtomicU64,
}

const FUTEX_WAIT: c_int = 0;
const FUTEX_WAKE: c_int = 1;

/// A futex call on `word`: FUTEX_WAIT while it holds `value` (for at most
/// `timeout`), or FUTEX_WAKE of `value` waiters. Shared across processes
/// (no FUTEX_PRIVATE_FLAG): the word lies in memory the workers share.
fn futex(word: &AtomicU32, op: c_int, value: u32, timeout: Option<&libc::timespec>) -> c_int {
    let timeout = timeout.map_or(ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: a futex call on a live, aligned word.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), op, value, timeout) as c_int }
}

fn trigger_code(trigger: Option<Trigger>) -> u32 {
    match trigger {
        None => 0,
        Some(Trigger::Execve) => 1,
        Some(Trigger::Execveat) => 2,
    }
}

fn trigger_of(code: u32) -> Option<Trigger> {
    match code {
        1 => Some(Trigger::Execve),
        2 => Some(Trigger::Execveat),
        _ => None,
    }
}

impl Gate {
    /// Worker side: says it waits at the gate.
    fn arrive(&self) {
        let arrived = self.ready.fetch_add(1, Ordering::Release) + 1;
        if arrived == self.expected.load(Ordering::Relaxed) {
            futex(&self.ready, FUTEX_WAKE, 1, None);
        }
    }

    /// Harness side: how many workers wait at the gate now.
    pub fn arrived(&self) -> u32 {
        self.ready.load(Ordering::Acquire)
    }

    /// Harness side: how many workers wait at the gate, after waiting up to
    /// `at_most` for the last.
    pub fn ready(&self, at_most: std::time::Duration) -> u32 {
        let seen = self.ready.load(Ordering::Acquire);
        if seen < self.expected.load(Ordering::Relaxed) {
            let timeout = libc::timespec {
                tv_sec: at_most.as_secs().try_into().unwrap_or(libc::time_t::MAX),
                tv_nsec: at_most.subsec_nanos().into(),
            };
            futex(&self.ready, FUTEX_WAIT, seen, Some(&timeout));
        }
        self.ready.load(Ordering::Acquire)
    }

    /// Releases every worker (all waiting at the gate) into a storm of
    /// `execs` spawns each, or calls of `trigger`.
    fn open(&self, execs: u64, trigger: Option<Trigger>) {
        // No worker can arrive before the round changes.
        self.ready.store(0, Ordering::Relaxed);
        self.execs.store(execs, Ordering::Relaxed);
        self.trigger.store(trigger_code(trigger), Ordering::Relaxed);
        self.round.fetch_add(1, Ordering::Release);
        futex(&self.round, FUTEX_WAKE, u32::MAX >> 1, None);
    }

    /// Blocks until a round other than `last` opens, and returns it with
    /// its storm; `None` if the futex fails otherwise.
    fn wait(&self, last: u32) -> Option<(u32, u64, Option<Trigger>)> {
        loop {
            let round = self.round.load(Ordering::Acquire);
            if round != last {
                let execs = self.execs.load(Ordering::Relaxed);
                let trigger = trigger_of(self.trigger.load(Ordering::Relaxed));
                return Some((round, execs, trigger));
            }
            let r = futex(&self.round, FUTEX_WAIT, last, None);
            // EAGAIN: opened before the wait began.
            if r != 0 && !matches!(Errno::last(), Errno::EAGAIN | Errno::EINTR) {
                return None;
            }
        }
    }
}

/// Where the workers start: each on a CPU of its own (round robin over the
/// CPUs the harness may use), until the gate opens. Woken together, workers
/// left to the scheduler could land on one CPU (their last, or the
/// waker's), and wait there for the balancer while another CPU idles.
pub(super) struct Spread {
    /// The CPUs allowed, each a set of its own, and all of them.
    each: Vec<libc::cpu_set_t>,
    all: libc::cpu_set_t,
}

impl Spread {
    /// The CPUs the calling thread may run on (the thread that forks the
    /// workers, whose mask they inherit); none known: no pinning.
    pub fn of_this_process() -> Spread {
        // SAFETY: all-zero is an empty cpu_set_t; sched_getaffinity fills it.
        let mut all: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: a valid set of that size.
        if unsafe { libc::sched_getaffinity(0, size, &mut all) } != 0 {
            return Spread {
                each: Vec::new(),
                all,
            };
        }
        let each = (0..libc::CPU_SETSIZE as usize)
            // SAFETY: CPU_ISSET and CPU_SET on valid sets, within their size.
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &all) })
            .map(|cpu| {
                let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
                unsafe { libc::CPU_SET(cpu, &mut one) };
                one
            })
            .collect();
        Spread { each, all }
    }

    fn set(set: &libc::cpu_set_t) {
        // SAFETY: a valid set; a failure only leaves the placement as it was.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) };
    }

    /// Worker `index`'s CPU until the start.
    fn pin(&self, index: usize) {
        if !self.each.is_empty() {
            Self::set(&self.each[index % self.each.len()]);
        }
    }

    /// Every CPU again, once running: from there the scheduler decides.
    fn release(&self) {
        if !self.each.is_empty() {
            Self::set(&self.all);
        }
    }
}

/// The start [`Gate`] and the workers' [`Slot`]s, one after the other in a
/// MAP_SHARED anonymous mapping made before fork, so each worker's writes
/// reach the harness and the harness's opening reaches every worker.
pub(super) struct Progress {
    gate: NonNull<Gate>,
    len: usize,
}

impl Progress {
    fn bytes(len: usize) -> usize {
        std::mem::size_of::<Gate>() + len * std::mem::size_of::<Slot>()
    }

    /// A closed gate and zeroed slots for `workers` workers.
    pub fn new(workers: u32) -> Result<Progress, StormError> {
        let len = workers as usize;
        let bytes = Self::bytes(len);
        // SAFETY: a fresh anonymous mapping; nothing else refers to it.
        let addr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(StormError::Sys {
                call: "mmap",
                source: Errno::last(),
            });
        }
        let gate = NonNull::new(addr.cast::<Gate>()).ok_or(StormError::Sys {
            call: "mmap",
            source: Errno::EINVAL,
        })?;
        let progress = Progress { gate, len };
        progress.gate().expected.store(workers, Ordering::Relaxed);
        Ok(progress)
    }

    pub fn gate(&self) -> &Gate {
        // SAFETY: the mapping starts with a zeroed (closed) gate, alive
        // until drop.
        unsafe { self.gate.as_ref() }
    }

    /// One slot per worker.
    pub fn slots(&self) -> &[Slot] {
        // SAFETY: after the gate (64 bytes, so the slots stay aligned), the
        // mapping holds `len` zero-initialized slots (all-zero atomics are
        // valid), alive until drop.
        unsafe {
            let first = self.gate.as_ptr().add(1).cast::<Slot>();
            std::slice::from_raw_parts(first, self.len)
        }
    }

    /// Issued, succeeded and failed over every slot.
    pub fn totals(&self) -> (u64, u64, u64) {
        self.slots().iter().fold((0, 0, 0), |(i, s, f), slot| {
            (
                i + slot.issued.load(Ordering::Relaxed),
                s + slot.succeeded.load(Ordering::Relaxed),
                f + slot.failed.load(Ordering::Relaxed),
            )
        })
    }

    /// Rearms every slot and releases every worker (all waiting at the
    /// gate) into a storm of `execs` spawns each, or calls of `trigger`.
    pub fn open(&self, execs: u64, trigger: Option<Trigger>) {
        for slot in self.slots() {
            slot.rearm();
        }
        self.gate().open(execs, trigger);
    }

    /// The storm's CPU time over every slot, once every worker finished it.
    pub fn cpu_spent(&self) -> CpuMicros {
        self.slots().iter().fold([0, 0], |[user, sys], slot| {
            let [u, s] = slot.cpu_spent();
            [user + u, sys + s]
        })
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in new, which no slice outlives.
        unsafe { libc::munmap(self.gate.as_ptr().cast(), Self::bytes(self.len)) };
    }
}

/// Everything a worker needs, prepared before fork; what each storm asks
/// of it comes through the [`Gate`].
pub(super) struct Plan<'a> {
    /// What execve and posix_spawn run (`/proc/self/fd/N`; NULL for workers
    /// that only fire triggers).
    pub path: *const c_char,
    /// The fds behind `path` and `exec`, kept open in the worker (-1: none).
    pub target_fds: [RawFd; MAX_TARGET_FDS],
    pub exec: Exec,
    /// NULL-terminated, as execve and posix_spawn want them.
    pub argv: *const *mut c_char,
    pub envp: *const *mut c_char,
    pub method: SpawnMethod,
    /// The top of the stack a `vfork` child runs on.
    pub child_stack: *mut c_void,
    pub join: &'a JoinFds,
    pub gate: &'a Gate,
    pub spread: &'a Spread,
    pub parent: libc::pid_t,
}

/// What this worker did in the storm under way, mirrored into its [`Slot`]
/// as it goes.
struct Counts<'a> {
    issued: u64,
    succeeded: u64,
    failed: u64,
    slot: &'a Slot,
}

impl<'a> Counts<'a> {
    /// The harness zeroed `slot` before the storm.
    fn new(slot: &'a Slot) -> Counts<'a> {
        Counts {
            issued: 0,
            succeeded: 0,
            failed: 0,
            slot,
        }
    }

    /// Before each spawn: a worker killed from here on has issued it.
    fn start(&mut self) {
        self.issued += 1;
        self.slot.issued.store(self.issued, Ordering::Relaxed);
    }

    /// After each spawn, with how it ended.
    fn finish(&mut self, ok: bool) {
        if ok {
            self.succeeded += 1;
            self.slot.succeeded.store(self.succeeded, Ordering::Relaxed);
        } else {
            self.failed += 1;
            self.slot.failed.store(self.failed, Ordering::Relaxed);
        }
    }
}

/// A timeval in microseconds; negative parts count as zero.
pub(super) fn micros(tv: libc::timeval) -> u64 {
    u64::try_from(tv.tv_sec).unwrap_or(0) * 1_000_000 + u64::try_from(tv.tv_usec).unwrap_or(0)
}

/// The CPU time of this process and the children it reaped.
fn cpu_now() -> CpuMicros {
    let mut total = [0; 2];
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        // SAFETY: an all-zero rusage is valid; getrusage fills it.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: a plain syscall with a valid out-pointer.
        unsafe { libc::getrusage(who, &mut usage) };
        total[0] += micros(usage.ru_utime);
        total[1] += micros(usage.ru_stime);
    }
    total
}

/// Body of worker process `index`; never returns. `slot` is its own.
pub(super) fn run(plan: &Plan, index: usize, slot: &Slot) -> ! {
    let code = work(plan, index, slot);
    // SAFETY: _exit skips atexit handlers and std's buffers, which belong to
    // the parent's state copied by fork.
    unsafe { libc::_exit(code) }
}

/// Joins the storm cgroup once, then runs every storm the gate opens, until
/// the harness kills it.
fn work(plan: &Plan, index: usize, slot: &Slot) -> i32 {
    reset_signals();
    // Die with the harness thread that forked us rather than storm on alone.
    // SAFETY: plain prctl/getppid syscalls.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != plan.parent {
            return EXIT_ORPHANED;
        }
    }
    if plan.join.join_self().is_err() {
        return EXIT_JOIN;
    }
    close_fds_except(plan.target_fds);
    let mut round = 0;
    loop {
        store(&slot.cpu_seen, cpu_now());
        plan.gate.arrive();
        // Outside the storm's clock, which has stopped if this was the
        // last worker to arrive.
        plan.spread.pin(index);
        let Some((next, execs, trigger)) = plan.gate.wait(round) else {
            return EXIT_GO;
        };
        round = next;
        plan.spread.release();
        if storm(plan, execs, trigger, Counts::new(slot)).is_none() {
            return EXIT_PLAN;
        }
    }
}

/// One storm: `execs` spawns of the target, or calls of `trigger`. `None`
/// for a target this worker's spawn method cannot start.
fn storm<'a>(
    plan: &Plan,
    execs: u64,
    trigger: Option<Trigger>,
    counts: Counts<'a>,
) -> Option<Counts<'a>> {
    // One loop per way of exec'ing, chosen once: the parent's side of each
    // is the same bare fork + waitpid, and the child's exec code is a cold
    // branch, so the plain fork+execve loop costs what it did before.
    Some(match (trigger, plan.method, plan.exec) {
        (Some(trigger), ..) => fire_loop(execs, counts, trigger),
        (None, SpawnMethod::Fork, Exec::Execve) => fork_loop(execs, counts, || {
            // SAFETY: path, argv and envp point at NUL-terminated data that
            // outlives the storm.
            unsafe { libc::execve(plan.path, plan.argv.cast(), plan.envp.cast()) };
        }),
        (None, SpawnMethod::Fork, Exec::Execveat(fd)) => fork_loop(execs, counts, || {
            // SAFETY: as above; fd is the target's O_PATH fd, kept open by
            // close_fds_except.
            unsafe {
                libc::syscall(
                    libc::SYS_execveat,
                    fd,
                    c"".as_ptr(),
                    plan.argv,
                    plan.envp,
                    libc::AT_EMPTY_PATH,
                )
            };
        }),
        (None, SpawnMethod::Fork, Exec::Threaded(stack)) => fork_loop(execs, counts, || {
            if !start_idle_thread(stack) {
                // SAFETY: leaves the child at once.
                unsafe { libc::_exit(CHILD_CLONE_FAILED) };
            }
            // SAFETY: as for Exec::Execve.
            unsafe { libc::execve(plan.path, plan.argv.cast(), plan.envp.cast()) };
        }),
        (None, SpawnMethod::PosixSpawn, Exec::Execve) => spawn_loop(plan, execs, counts),
        (None, SpawnMethod::Vfork, Exec::Execve) => vfork_loop(plan, execs, counts),
        // StormSpec::validate refuses these before any storm.
        (
            None,
            SpawnMethod::PosixSpawn | SpawnMethod::Vfork,
            Exec::Execveat(_) | Exec::Threaded(_),
        ) => return None,
    })
}

/// Forks `execs` children that each run `exec` (which returns only when
/// the exec failed) and reaps them.
#[inline(always)]
fn fork_loop<'a>(execs: u64, mut counts: Counts<'a>, exec: impl Fn()) -> Counts<'a> {
    for _ in 0..execs {
        counts.start();
        // SAFETY: the child only runs `exec`, which makes async-signal-safe
        // calls, and _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            exec();
            // SAFETY: the exec failed; leave without running any handler.
            unsafe { libc::_exit(CHILD_EXEC_FAILED) };
        }
        counts.finish(pid > 0 && exited_ok(pid));
    }
    counts
}

/// Fires `trigger` `execs` times; each call fails at once (ENOENT on the
/// empty path), after the syscall's entry hooks have run.
fn fire_loop(execs: u64, mut counts: Counts<'_>, trigger: Trigger) -> Counts<'_> {
    let empty = c"".as_ptr();
    for _ in 0..execs {
        counts.start();
        // SAFETY: an empty path (without AT_EMPTY_PATH) makes both calls fail
        // with ENOENT before they read argv or envp; nothing is exec'd.
        unsafe {
            match trigger {
                Trigger::Execve => libc::execve(empty, ptr::null(), ptr::null()),
                Trigger::Execveat => libc::syscall(
                    libc::SYS_execveat,
                    libc::AT_FDCWD,
                    empty,
                    ptr::null::<*const c_char>(),
                    ptr::null::<*const c_char>(),
                    0,
                ) as c_int,
            }
        };
        counts.finish(false);
    }
    counts
}

/// Starts a second thread in this (single-threaded, just forked) process,
/// on `stack`, that waits until the coming exec kills it. A raw
/// clone(CLONE_THREAD) through glibc's clone(), which is a bare syscall
/// stub: pthread_create is not async-signal-safe after fork, and the thread
/// needs no TLS of its own (it shares ours and never touches it).
fn start_idle_thread(stack: *mut c_void) -> bool {
    let flags = libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM;
    // SAFETY: `stack` is the top of a buffer copied into this process by
    // fork, used by no one else; idle_thread touches nothing but its stack.
    unsafe { libc::clone(idle_thread, stack, flags, ptr::null_mut()) > 0 }
}

/// The second thread of a `threaded` target: blocks until the exec's
/// de_thread SIGKILLs it. ppoll with no fds and no timeout (pause(2) is not
/// on every architecture), as a raw syscall; it returns only when a handler
/// the harness installed (SIGINT, SIGTERM: they store to an atomic) runs on
/// this thread, and then merely leaves EINTR in the TLS it shares with the
/// main thread, which execs next and reads no errno unless that fails.
extern "C" fn idle_thread(_: *mut c_void) -> c_int {
    let nfds: libc::nfds_t = 0;
    loop {
        // SAFETY: NULL fds with nfds 0, NULL timeout and NULL sigmask.
        unsafe {
            libc::syscall(
                libc::SYS_ppoll,
                ptr::null_mut::<libc::pollfd>(),
                nfds,
                ptr::null::<libc::timespec>(),
                ptr::null::<libc::sigset_t>(),
                0usize,
            )
        };
    }
}

fn spawn_loop<'a>(plan: &Plan, execs: u64, mut counts: Counts<'a>) -> Counts<'a> {
    for _ in 0..execs {
        counts.start();
        let mut pid: libc::pid_t = 0;
        // SAFETY: path, argv and envp point at NUL-terminated data that
        // outlives the storm; NULL file actions and attributes ask for the
        // defaults. glibc reaps the child itself when exec fails.
        let rc = unsafe {
            libc::posix_spawn(
                &mut pid,
                plan.path,
                ptr::null(),
                ptr::null(),
                plan.argv,
                plan.envp,
            )
        };
        counts.finish(rc == 0 && exited_ok(pid));
    }
    counts
}

/// Starts each target as a C program's vfork would: a child that borrows
/// this worker's memory (the worker waits, as the kernel suspends it until
/// the child has exec'd or exited) and runs on its own stack.
fn vfork_loop<'a>(plan: &Plan, execs: u64, mut counts: Counts<'a>) -> Counts<'a> {
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
    let arg = (plan as *const Plan).cast_mut().cast::<c_void>();
    for _ in 0..execs {
        counts.start();
        // SAFETY: the child runs vfork_child on `child_stack`, which nothing
        // else uses while this worker is suspended; it reads `plan`, alive
        // for the whole storm, and leaves by execve or _exit.
        let pid = unsafe { libc::clone(vfork_child, plan.child_stack, flags, arg) };
        counts.finish(pid > 0 && exited_ok(pid));
    }
    counts
}

/// The vfork child: execve, or _exit if that fails. It must not return
/// (its stack is borrowed) nor touch its parent's state. What it shares
/// with its worker is harmless: a failed execve sets the worker's errno
/// (its TLS), which the worker reads no more; a signal meanwhile runs the
/// handler the harness installed (it stores to an atomic the worker never
/// reads).
extern "C" fn vfork_child(plan: *mut c_void) -> c_int {
    // SAFETY: `plan` is the worker's Plan (see vfork_loop); path, argv and
    // envp point at NUL-terminated data that outlives the storm.
    unsafe {
        let plan = &*plan.cast::<Plan>();
        libc::execve(plan.path, plan.argv.cast(), plan.envp.cast());
        libc::_exit(CHILD_EXEC_FAILED)
    }
}

/// Waits for `pid`; true if it exited with status 0.
fn exited_ok(pid: libc::pid_t) -> bool {
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        }
        if Errno::last() != Errno::EINTR {
            return false;
        }
    }
}

/// Undoes what the forking harness thread may have set: an ignored SIGCHLD
/// would make waitpid fail, Rust ignores SIGPIPE (inherited by targets), and
/// a blocked mask would pass on to every target.
fn reset_signals() {
    // SAFETY: sigaction and sigprocmask with valid arguments.
    unsafe {
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, ptr::null_mut());
    }
}

/// Closes every inherited fd but stdio and `keep` (-1 keeps nothing). The
/// harness's other fds (its pipes, programs and maps, a concurrently
/// written executable) must not stay open for the workers' life: a held
/// pipe end delays EOF for its owner, a held program outlives its unload,
/// a held writable executable fails its execve with ETXTBSY.
fn close_fds_except<const N: usize>(mut keep: [RawFd; N]) {
    keep.sort_unstable();
    let mut low: u32 = 3;
    for fd in keep {
        let Ok(fd) = u32::try_from(fd) else { continue };
        if fd >= low {
            if fd > low {
                close_range(low, fd - 1);
            }
            low = fd + 1;
        }
    }
    close_range(low, u32::MAX);
}

fn close_range(first: u32, last: u32) {
    // SAFETY: closes fds this process does not use. Before Linux 5.9 it
    // fails with ENOSYS and the fds simply stay open.
    unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timevals_become_microseconds_and_negative_parts_count_as_zero() {
        let tv = |tv_sec, tv_usec| libc::timeval { tv_sec, tv_usec };
        assert_eq!(micros(tv(2, 500)), 2_000_500);
        assert_eq!(micros(tv(-1, -1)), 0);
    }
}
