use std::time::Duration;

use crate::{CounterError, ProgInsns, Strategy};

/// Turns a [`Strategy`] into a live, attached [`Counter`].
pub trait Backend {
    /// The name used on the CLI and in the CSV (`libbpf`, `c`, `aya`).
    fn name(&self) -> &'static str;
    /// Loader library and version, for the CSV.
    fn version(&self) -> String;
    /// Opens, loads and attaches the program for `strategy`.
    fn open(&self, strategy: &Strategy) -> Result<Box<dyn Counter>, CounterError>;
}

/// A loaded and attached counting program. Dropping it detaches and unloads.
pub trait Counter {
    fn strategy(&self) -> &Strategy;
    fn timings(&self) -> LoadTimings;
    /// The events counted so far (and those the kernel reported lost).
    fn read(&mut self) -> Result<Reading, CounterError>;
    /// Sets the count back to zero.
    fn reset(&mut self) -> Result<(), CounterError>;
    /// Cumulative kernel statistics of the attached program.
    fn prog_stats(&self) -> Result<ProgStats, CounterError>;
    /// Size of the loaded program: verified and translated instructions,
    /// JIT-ed bytes (see [`crate::prog_info::of_fd`]).
    fn prog_info(&self) -> Result<ProgInsns, CounterError>;
    /// Kernel memory charged for the maps in use, in bytes.
    fn map_memory_bytes(&self) -> Result<u64, CounterError>;
    /// Kernel ids of the loaded programs, to check they are gone afterwards.
    fn prog_ids(&self) -> Vec<u32>;
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadTimings {
    /// Parsing the object and setting it up before the kernel sees it.
    pub open: Duration,
    /// BPF_PROG_LOAD and map creation, verifier included.
    pub load: Duration,
    pub attach: Duration,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reading {
    pub count: u64,
    /// Events the program saw but could not hand over (ring full, perf buffer lost).
    pub dropped: u64,
}

/// Cumulative run statistics of a BPF program, as the kernel keeps them.
/// `run_time_ns` only grows while BPF stats are enabled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgStats {
    pub run_cnt: u64,
    pub run_time_ns: u64,
    pub recursion_misses: u64,
}

impl ProgStats {
    /// Statistics gathered since `earlier`.
    pub fn since(&self, earlier: &ProgStats) -> ProgStats {
        ProgStats {
            run_cnt: self.run_cnt.saturating_sub(earlier.run_cnt),
            run_time_ns: self.run_time_ns.saturating_sub(earlier.run_time_ns),
            recursion_misses: self
                .recursion_misses
                .saturating_sub(earlier.recursion_misses),
        }
    }

    /// Mean in-kernel time per run, in ns; `None` without runs.
    pub fn ns_per_run(&self) -> Option<f64> {
        (self.run_cnt > 0).then(|| self.run_time_ns as f64 / self.run_cnt as f64)
    }
}

impl std::ops::Add for ProgStats {
    type Output = ProgStats;

    fn add(self, other: ProgStats) -> ProgStats {
        ProgStats {
            run_cnt: self.run_cnt + other.run_cnt,
            run_time_ns: self.run_time_ns + other.run_time_ns,
            recursion_misses: self.recursion_misses + other.recursion_misses,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_and_mean_from_literal_values() {
        let before = ProgStats {
            run_cnt: 10,
            run_time_ns: 1_000,
            recursion_misses: 0,
        };
        let after = ProgStats {
            run_cnt: 30,
            run_time_ns: 9_000,
            recursion_misses: 2,
        };
        let d = after.since(&before);
        assert_eq!(d.run_cnt, 20);
        assert_eq!(d.recursion_misses, 2);
        assert_eq!(d.ns_per_run(), Some(400.0));
        assert_eq!(ProgStats::default().ns_per_run(), None);
        assert_eq!(before.since(&after).run_cnt, 0);
    }
}
