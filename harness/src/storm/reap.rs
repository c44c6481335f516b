//! The harness side of the workers: noticing one that died, and making sure
//! none outlives its pool.

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::worker::{micros, CpuMicros};
use super::{worker, StormError};

/// The forked workers of a pool, in the order of their slots. Dropping it
/// kills and reaps those left.
pub(super) struct Workers {
    /// `None` once reaped.
    pids: Vec<Option<libc::pid_t>>,
}

impl Workers {
    pub(super) fn new(workers: u32) -> Workers {
        Workers {
            pids: Vec::with_capacity(workers as usize),
        }
    }

    pub(super) fn push(&mut self, pid: libc::pid_t) {
        self.pids.push(Some(pid));
    }

    /// Reaps the workers that have exited: every one is an error, since a
    /// worker only leaves when killed or when it failed.
    pub(super) fn reap_exited(&mut self) -> Result<(), StormError> {
        let mut failure = Ok(());
        for slot in &mut self.pids {
            let Some(pid) = *slot else { continue };
            if let Some((status, _)) = wait(pid, libc::WNOHANG) {
                *slot = None;
                failure = failure.and(Err(failed(pid, status)));
            }
        }
        failure
    }

    /// SIGKILLs the workers and reaps them; returns, per slot, the CPU time
    /// each had when reaped (its own and its reaped targets'), `None` for
    /// one reaped earlier.
    pub(super) fn kill_and_reap(&mut self) -> Vec<Option<CpuMicros>> {
        for pid in self.pids.iter().flatten() {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        self.pids
            .iter_mut()
            .map(|slot| slot.take().and_then(|pid| wait(pid, 0)).map(|(_, cpu)| cpu))
            .collect()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// wait4 on one worker: its status and CPU time, `None` while it runs. A
/// worker that cannot be waited for (ECHILD: someone else reaped it) counts
/// as gone, with status 0 and no CPU time.
fn wait(pid: libc::pid_t, flags: libc::c_int) -> Option<(libc::c_int, CpuMicros)> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 on our own child with valid out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        if r == pid {
            return Some((status, [micros(usage.ru_utime), micros(usage.ru_stime)]));
        }
        if r == 0 {
            return None;
        }
        if Errno::last() != Errno::EINTR {
            return Some((0, [0, 0]));
        }
    }
}

/// How a worker that left ended.
fn failed(pid: libc::pid_t, status: libc::c_int) -> StormError {
    let status = if libc::WIFEXITED(status) {
        let code = libc::WEXITSTATUS(status);
        format!("{} (exit status {code})", worker::describe_exit(code))
    } else if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        match Signal::try_from(signal) {
            Ok(s) => format!("was killed by {s}"),
            Err(_) => format!("was killed by signal {signal}"),
        }
    } else {
        format!("ended with wait status {status:#x}")
    };
    StormError::Worker { pid, status }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: libc::c_int) -> String {
        failed(7, status).to_string()
    }

    #[test]
    fn wait_statuses_say_how_a_worker_ended() {
        assert_eq!(
            failure(0),
            "storm worker 7 exited unexpectedly (exit status 0)"
        );
        assert_eq!(
            failure(11 << 8),
            "storm worker 7 could not join the storm cgroup (exit status 11)"
        );
        assert_eq!(
            failure(libc::SIGKILL),
            "storm worker 7 was killed by SIGKILL"
        );
        // Stopped by SIGSTOP: neither exited nor killed.
        assert_eq!(
            failure(0x137f),
            "storm worker 7 ended with wait status 0x137f"
        );
    }
}
