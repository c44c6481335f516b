//! System-wide fork count and CPU time from /proc/stat. procfs has no exec
//! counter, so this cross-checks forks and measures cost, not exec counts.

use std::time::Duration;

use ::procfs::{ticks_per_second, CurrentSI, KernelStats};

use super::OracleError;

/// /proc/stat at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemSnapshot {
    /// Forks (threads included) since boot: the `processes` line.
    pub forks: u64,
    /// CPU time of all CPUs not idle: user, nice, system, irq and softirq
    /// (guest time is part of user; steal, idle and iowait are left out).
    pub cpu_time: Duration,
}

/// The change between two snapshots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemDelta {
    pub forks: u64,
    pub cpu_time: Duration,
}

impl SystemSnapshot {
    pub fn take() -> Result<SystemSnapshot, OracleError> {
        let stat = KernelStats::current()?;
        let t = &stat.total;
        let ticks = t.user + t.nice + t.system + t.irq.unwrap_or(0) + t.softirq.unwrap_or(0);
        Ok(SystemSnapshot {
            forks: stat.processes,
            cpu_time: ticks_to_duration(ticks, ticks_per_second()),
        })
    }

    /// What happened between `earlier` and this snapshot.
    pub fn since(&self, earlier: &SystemSnapshot) -> SystemDelta {
        SystemDelta {
            forks: self.forks.saturating_sub(earlier.forks),
            cpu_time: self.cpu_time.saturating_sub(earlier.cpu_time),
        }
    }
}

fn ticks_to_duration(ticks: u64, per_second: u64) -> Duration {
    let per_second = per_second.max(1);
    // Split so that ticks * 1e9 cannot overflow on long uptimes.
    Duration::from_secs(ticks / per_second)
        + Duration::from_nanos((ticks % per_second) * 1_000_000_000 / per_second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_ticks() {
        assert_eq!(ticks_to_duration(250, 100), Duration::from_millis(2500));
        assert_eq!(ticks_to_duration(u64::MAX, 100).as_secs(), u64::MAX / 100);
    }
}
