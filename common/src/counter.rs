use std::time::Duration;

use crate::introspect::Loaded;
use crate::{CounterError, Strategy};

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
/// It counts; what it loaded is looked at through [`Counter::loaded`] and
/// [`crate::Introspection`], the same for every backend.
pub trait Counter {
    fn strategy(&self) -> &Strategy;
    fn timings(&self) -> LoadTimings;
    /// The events counted so far, and those the program could not hand over.
    fn read(&mut self) -> Result<Reading, CounterError>;
    /// Sets the count back to zero.
    fn reset(&mut self) -> Result<(), CounterError>;
    /// Kernel ids of the programs and maps it holds until it drops.
    fn loaded(&self) -> &Loaded;
}

/// Where the time to a live counter went. The phases are each loader's own
/// (aya parses the kernel's BTF at open, libbpf at load), so only
/// [`LoadTimings::total`] compares across backends.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadTimings {
    /// Parsing the object and setting it up before the kernel sees it.
    pub open: Duration,
    /// BPF_PROG_LOAD and map creation, verifier included.
    pub load: Duration,
    pub attach: Duration,
}

impl LoadTimings {
    /// Open + load + attach: the time from nothing to a counting program.
    pub fn total(&self) -> Duration {
        self.open + self.load + self.attach
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reading {
    pub count: u64,
    /// Events the program saw but could not count, as the program itself
    /// counted them: its `dropped` global, bumped when
    /// `bpf_ringbuf_reserve` or `bpf_perf_event_output` fails, or when a
    /// count spread over keys finds no slot (a key past an array's
    /// entries, or a full hash refusing a new key). Always 0 for a count
    /// at one key (nothing there can fail).
    pub dropped: u64,
    /// Perf buffer only, a cross-check of `dropped`: the "lost" records
    /// the kernel wrote into the perf buffer, as consumed so far. They
    /// arrive late, or never when the buffer stays full, so this may trail
    /// `dropped`. 0 for every other map.
    pub lost_records: u64,
    /// Keys whose count is not zero (a count in a map; 0 for buffers).
    pub keys_live: u64,
}

impl Reading {
    /// What was counted, dropped and lost since `earlier` (0 where a reset
    /// came between).
    pub fn since(&self, earlier: &Reading) -> Reading {
        Reading {
            count: self.count.saturating_sub(earlier.count),
            dropped: self.dropped.saturating_sub(earlier.dropped),
            lost_records: self.lost_records.saturating_sub(earlier.lost_records),
            keys_live: self.keys_live,
        }
    }
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

    #[test]
    fn reading_since_subtracts_every_field() {
        let before = Reading {
            count: 10,
            dropped: 1,
            lost_records: 0,
            keys_live: 3,
        };
        let after = Reading {
            count: 25,
            dropped: 4,
            lost_records: 2,
            keys_live: 5,
        };
        let d = after.since(&before);
        assert_eq!((d.count, d.dropped, d.lost_records), (15, 3, 2));
        // Keys live are a state, not a count: the later reading's.
        assert_eq!(d.keys_live, 5);
        assert_eq!(
            before.since(&after),
            Reading {
                keys_live: 3,
                ..Reading::default()
            }
        );
    }

    #[test]
    fn total_load_time_is_open_plus_load_plus_attach() {
        let t = LoadTimings {
            open: Duration::from_millis(3),
            load: Duration::from_millis(20),
            attach: Duration::from_micros(500),
        };
        assert_eq!(t.total(), Duration::from_micros(23_500));
        assert_eq!(LoadTimings::default().total(), Duration::ZERO);
    }
}
