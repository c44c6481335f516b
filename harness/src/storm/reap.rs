//! The harness side of the workers: reaping them, adding up their CPU time,
//! and making sure none outlives the storm.

use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{worker, StormError};
use crate::cgroup::StormCgroup;

/// The forked workers not yet reaped. Unless they all finished normally,
/// dropping it kills and reaps them and empties the cgroup, so that no error
/// path leaves a worker or a target behind.
pub(super) struct Workers<'a> {
    cgroup: &'a StormCgroup,
    pub(super) live: Vec<libc::pid_t>,
    /// No worker is left and no orphaned target can be.
    pub(super) settled: bool,
    pub(super) cpu_user: Duration,
    pub(super) cpu_sys: Duration,
}

impl<'a> Workers<'a> {
    pub(super) fn new(cgroup: &'a StormCgroup, workers: u32) -> Workers<'a> {
        Workers {
            cgroup,
            live: Vec::with_capacity(workers as usize),
            settled: false,
            cpu_user: Duration::ZERO,
            cpu_sys: Duration::ZERO,
        }
    }

    /// Reaps the workers that have exited; a worker that failed is an error.
    pub(super) fn reap_exited(&mut self) -> Result<(), StormError> {
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
    pub(super) fn reap_pid(&mut self, pid: libc::pid_t) -> Result<(), StormError> {
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
    pub(super) fn kill_and_reap(&mut self) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: libc::c_int) -> String {
        check_status(7, status).unwrap_err().to_string()
    }

    #[test]
    fn wait_statuses_say_how_a_worker_ended() {
        assert!(check_status(7, 0).is_ok());
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

    #[test]
    fn timevals_become_durations_and_negative_parts_count_as_zero() {
        let tv = |tv_sec, tv_usec| libc::timeval { tv_sec, tv_usec };
        assert_eq!(timeval(tv(2, 500)), Duration::from_micros(2_000_500));
        assert_eq!(timeval(tv(-1, -1)), Duration::ZERO);
    }
}
