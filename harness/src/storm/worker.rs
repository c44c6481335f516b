//! The worker side of a storm. It runs in a process forked from the
//! multi-threaded harness, so everything here is async-signal-safe: raw libc
//! calls on data prepared before fork, no allocation, no locks, no std I/O.

use std::ffi::c_char;
use std::os::fd::RawFd;
use std::ptr;

use nix::errno::Errno;

use super::SpawnMethod;
use crate::cgroup::JoinFds;

/// What a worker reports when done: pid, issued, succeeded, failed (u64 each,
/// native endian). Shorter than PIPE_BUF, so each write is atomic.
pub(super) const RECORD_LEN: usize = 32;

const EXIT_ORPHANED: i32 = 10;
const EXIT_JOIN: i32 = 11;
const EXIT_GO: i32 = 12;
const EXIT_RESULTS: i32 = 13;

/// Why a worker exited with `code`.
pub(super) fn describe_exit(code: i32) -> &'static str {
    match code {
        EXIT_ORPHANED => "lost its parent before starting",
        EXIT_JOIN => "could not join the storm cgroup",
        EXIT_GO => "could not read the go pipe",
        EXIT_RESULTS => "could not write its counts",
        _ => "exited unexpectedly",
    }
}

/// Everything a worker needs, prepared before fork.
pub(super) struct Plan<'a> {
    pub path: *const c_char,
    /// NULL-terminated, as execve and posix_spawn want them.
    pub argv: *const *mut c_char,
    pub envp: *const *mut c_char,
    pub method: SpawnMethod,
    pub execs: u64,
    pub join: &'a JoinFds,
    /// Read end of the go pipe: EOF means start.
    pub go: RawFd,
    /// Write end of the results pipe.
    pub results: RawFd,
    pub parent: libc::pid_t,
}

#[derive(Default)]
struct Counts {
    issued: u64,
    succeeded: u64,
    failed: u64,
}

impl Counts {
    fn record(&mut self, ok: bool) {
        self.issued += 1;
        if ok {
            self.succeeded += 1;
        } else {
            self.failed += 1;
        }
    }
}

/// Body of a worker process; never returns.
pub(super) fn run(plan: &Plan) -> ! {
    let code = work(plan);
    // SAFETY: _exit skips atexit handlers and std's buffers, which belong to
    // the parent's state copied by fork.
    unsafe { libc::_exit(code) }
}

fn work(plan: &Plan) -> i32 {
    reset_signals();
    // Die with the harness thread that forked us rather than storm on alone;
    // that thread waits in run_storm until every worker is reaped.
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
    close_fds_except([plan.go, plan.results]);
    if !wait_for_go(plan.go) {
        return EXIT_GO;
    }

    let counts = match plan.method {
        SpawnMethod::Fork => fork_loop(plan),
        SpawnMethod::PosixSpawn => spawn_loop(plan),
    };

    // SAFETY: plain getpid syscall.
    let pid = unsafe { libc::getpid() };
    let mut record = [0u8; RECORD_LEN];
    let values = [pid as u64, counts.issued, counts.succeeded, counts.failed];
    for (chunk, value) in record.chunks_exact_mut(8).zip(values) {
        chunk.copy_from_slice(&value.to_ne_bytes());
    }
    if write_all(plan.results, &record) {
        0
    } else {
        EXIT_RESULTS
    }
}

fn fork_loop(plan: &Plan) -> Counts {
    let mut counts = Counts::default();
    for _ in 0..plan.execs {
        // SAFETY: the child only calls execve and _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: path, argv and envp point at NUL-terminated data that
            // outlives the storm.
            unsafe {
                libc::execve(plan.path, plan.argv.cast(), plan.envp.cast());
                libc::_exit(127);
            }
        }
        counts.record(pid > 0 && exited_ok(pid));
    }
    counts
}

fn spawn_loop(plan: &Plan) -> Counts {
    let mut counts = Counts::default();
    for _ in 0..plan.execs {
        let mut pid: libc::pid_t = 0;
        // SAFETY: as in fork_loop; NULL file actions and attributes ask for
        // the defaults. glibc reaps the child itself when exec fails.
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
        counts.record(rc == 0 && exited_ok(pid));
    }
    counts
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

/// Closes every inherited fd but stdio and `keep`. The harness's other fds
/// (other storms' pipes, a concurrently written executable) must not stay
/// open for the storm's length: a held pipe end delays EOF for its owner, a
/// held writable executable fails its execve with ETXTBSY.
fn close_fds_except(mut keep: [RawFd; 2]) {
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

/// Blocks until the parent closes its end of the go pipe.
fn wait_for_go(fd: RawFd) -> bool {
    let mut byte = 0u8;
    loop {
        // SAFETY: reads at most one byte into a local.
        let n = unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) };
        if n >= 0 {
            return true;
        }
        if Errno::last() != Errno::EINTR {
            return false;
        }
    }
}

fn write_all(fd: RawFd, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        // SAFETY: writes from a live slice.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        match usize::try_from(n) {
            Ok(n) => buf = buf.get(n..).unwrap_or_default(),
            Err(_) if Errno::last() == Errno::EINTR => {}
            Err(_) => return false,
        }
    }
    true
}
