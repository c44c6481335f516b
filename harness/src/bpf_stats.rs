//! Kernel BPF run-time statistics, switched on for as long as a guard lives.
//! BPF_ENABLE_STATS returns an fd that keeps stats on until it is closed, so
//! no global sysctl is touched and a crash cannot leave them on.

use std::fs;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

const BPF_ENABLE_STATS: libc::c_long = 32;
const BPF_STATS_RUN_TIME: u32 = 0;
const SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// Keeps `run_time_ns` counting for every BPF program while alive.
#[derive(Debug)]
pub struct StatsGuard {
    _fd: OwnedFd,
}

impl StatsGuard {
    pub fn enable() -> io::Result<StatsGuard> {
        // union bpf_attr { struct { __u32 type; } enable_stats; ... }
        let mut attr = [0u8; 64];
        attr[..4].copy_from_slice(&BPF_STATS_RUN_TIME.to_ne_bytes());
        let fd = bpf_fd(BPF_ENABLE_STATS, &mut attr).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!(
                    "BPF_ENABLE_STATS failed ({err}): needs root (CAP_SYS_ADMIN) and Linux >= 5.8"
                ),
            )
        })?;
        Ok(StatsGuard { _fd: fd })
    }
}

/// bpf(2) with a command that returns a new fd, `attr` its `union bpf_attr`.
pub(crate) fn bpf_fd(cmd: libc::c_long, attr: &mut [u8]) -> io::Result<OwnedFd> {
    // SAFETY: bpf(2) reads (and may write) `attr`, of the given size, and
    // whatever the caller made it point at, alive for the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            attr.len() as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Whether BPF run-time stats are on machine-wide right now (by any means).
pub fn enabled() -> io::Result<bool> {
    Ok(fs::read_to_string(SYSCTL)?.trim() == "1")
}
