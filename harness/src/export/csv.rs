//! The run CSV, schema v7: one row per cell, columns documented in the
//! README. The file is rewritten (write, then rename) after every cell, so a
//! later failure or Ctrl-C loses nothing measured and never leaves it
//! half-written.

use std::fmt;
use std::path::{Path, PathBuf};

use bpfstorm_common::{
    AttachPoint, Keys, LoadTimings, MapKind, ProgInsns, ProgStats, ReadPath, Reading, Strategy,
    UpdateMode, Wakeup,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::host::Host;
use crate::hot::{HotCell, Method};
use crate::measure::Cell;
use crate::sample::Estimate;
use crate::secure_fs::{Dir, FsError};
use crate::storm::StormSpec;

pub const SCHEMA_VERSION: u32 = 7;

#[derive(Debug, Error)]
pub enum CsvError {
    #[error("cannot write results: {0}; pick a writable folder with --results-dir")]
    Write(#[from] FsError),
    #[error("encoding a CSV row: {0}")]
    Encode(#[from] ::csv::Error),
}

/// What is the same for every row of a run.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub run_id: String,
    pub timestamp_utc: String,
    pub host: Host,
}

impl RunInfo {
    /// Stamps a run starting now on this host.
    pub fn start() -> RunInfo {
        let now = crate::timestamp::now_utc();
        RunInfo {
            run_id: format!("{}-{}", now.compact, std::process::id()),
            timestamp_utc: now.rfc3339,
            host: Host::detect(),
        }
    }
}

/// Whether a row's times are this CPU's.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Timing {
    #[default]
    Native,
    /// Measured in a `--kernel` guest: QEMU's software emulation, not this CPU.
    Emulated,
}

impl Timing {
    pub fn name(self) -> &'static str {
        match self {
            Timing::Native => "native",
            Timing::Emulated => "emulated",
        }
    }
}

impl fmt::Display for Timing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What became of a cell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Ok,
    /// Measured, but the storm was cut short: its counts are partial.
    Timeout,
    /// The kernel refused the strategy.
    Unsupported,
    Error,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Timeout => "timeout",
            Status::Unsupported => "unsupported",
            Status::Error => "error",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Serde for the strategy types of `bpfstorm_common` (which has no serde):
/// a column holds the name, the one the CLI and the BPF source use.
pub(crate) mod named {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<T: Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

/// One CSV row. Units are in the column names; empty means "not measured".
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Row {
    pub schema_version: u32,
    pub run_id: String,
    pub timestamp_utc: String,
    pub host: String,
    pub kernel: String,
    pub cpus: usize,
    pub cpu_model: String,
    /// Absent from v1 files, which were all native.
    #[serde(default)]
    pub timing: Timing,
    pub git_rev: String,
    pub backend: String,
    pub backend_version: String,
    #[serde(with = "named")]
    pub attach: AttachPoint,
    #[serde(with = "named")]
    pub map: MapKind,
    #[serde(with = "named")]
    pub update: UpdateMode,
    /// Buffers only (v5): when the program wakes the reader (`adaptive`,
    /// `every_record`, `batch_<n>`, `poll_<ms>ms`), which the update mode
    /// decides; empty for counts in a map. Filled in on reading older
    /// files, whose buffers had their default.
    #[serde(default)]
    pub wakeup: String,
    /// (v5) How user space read the count: `syscall`, or `mmap` (array and
    /// globals); `syscall` in older files, which knew no other.
    #[serde(default, with = "named")]
    pub read: ReadPath,
    /// (v6) Keys the count is spread over: the program counts an event at
    /// its task's tgid mod `keys`; 1 (the classic single key) in older
    /// files.
    #[serde(default)]
    pub keys: KeyCount,
    /// (v6) Entries of the map that holds the count; empty for globals
    /// and buffers, and in older files.
    pub max_entries: Option<u32>,
    pub filter: String,
    /// `hot` or `storm` (v4; earlier files hold storms only).
    #[serde(default)]
    pub method: Method,
    pub target: String,
    pub spawn: String,
    pub workers: u32,
    pub execs_per_worker: u64,
    /// 1-based; every cell is measured `--repeat` times.
    pub repetition: u32,
    pub status: Status,
    pub error: String,
    pub issued: Option<u64>,
    pub succeeded: Option<u64>,
    pub failed: Option<u64>,
    pub timed_out: Option<bool>,
    pub counted: Option<u64>,
    pub dropped: Option<u64>,
    /// Perf buffer only (v3): lost-sample records perf delivered, a
    /// cross-check of `dropped` (which the program counts itself); they
    /// arrive late or never, so this may trail it.
    pub perf_lost_records: Option<u64>,
    /// (v6) Keys holding a count at the cell's last read; empty for
    /// buffers and in older files.
    pub keys_live: Option<u64>,
    pub expected_oracle: String,
    pub expected: Option<u64>,
    pub missing: Option<i64>,
    pub exact: Option<bool>,
    pub perf_sys_enter_execve: Option<u64>,
    pub perf_sched_process_exec: Option<u64>,
    pub perf_sys_enter_execveat: Option<u64>,
    pub perf_sys_enter_execve_system: Option<u64>,
    pub forks_procfs: Option<u64>,
    pub run_cnt: Option<u64>,
    pub run_time_ns: Option<u64>,
    pub recursion_misses: Option<u64>,
    pub ns_per_run_median: Option<f64>,
    pub ns_per_run_ci95_lo: Option<f64>,
    pub ns_per_run_ci95_hi: Option<f64>,
    pub ns_per_run_samples: Option<usize>,
    pub ns_per_event_mean: Option<f64>,
    /// In-kernel time per counted event (v3): the ns/run figures scaled by
    /// `run_cnt / counted`, so hooks that run on every syscall pay for the
    /// runs they filter out. What `recommend` and the summary rank by.
    pub ns_per_event_median: Option<f64>,
    pub ns_per_event_ci95_lo: Option<f64>,
    pub ns_per_event_ci95_hi: Option<f64>,
    pub open_ms: Option<f64>,
    pub load_ms: Option<f64>,
    pub attach_ms: Option<f64>,
    /// (v7) From nothing to a counting program: open + load + attach for
    /// a library loader; for a tool (bpftrace), from spawning it to its
    /// report that its probes are attached. Older files read as the sum
    /// of the three phases.
    pub startup_ms: Option<f64>,
    pub read_us_median: Option<f64>,
    pub read_us_ci95_lo: Option<f64>,
    pub read_us_ci95_hi: Option<f64>,
    pub map_bytes: Option<u64>,
    pub verified_insns: Option<u32>,
    pub xlated_insns: Option<u32>,
    pub jited_bytes: Option<u32>,
    pub loader_heap_bytes: Option<i64>,
    pub storm_wall_s: Option<f64>,
    pub storm_cpu_user_s: Option<f64>,
    pub storm_cpu_sys_s: Option<f64>,
    pub system_cpu_s: Option<f64>,
    pub execs_per_s: Option<f64>,
    /// Wall time of the same storm without any probe, run next to this one.
    pub baseline_wall_s: Option<f64>,
    /// (storm_wall_s - baseline_wall_s) / issued: what the probe added to each
    /// exec end to end, in ns; one paired difference, noisy on its own.
    pub e2e_ns_per_exec: Option<f64>,
    /// What else ran on the hook during the cell (foreign execs, another
    /// bpfstorm): its timings include that work. Empty when nothing did.
    /// New in v3.
    #[serde(default)]
    pub interference: String,
    /// The ns/run an empty program shows on the same hook (bpf_stats' own
    /// clock reads), already taken out of `ns_per_event_*` (v4).
    pub stats_bias_ns: Option<f64>,
    /// Hot only (v4): wall ns per call with the program minus without,
    /// median over the pairs of rounds and its 95% interval.
    pub throughput_ns_per_event_median: Option<f64>,
    pub throughput_ns_per_event_ci95_lo: Option<f64>,
    pub throughput_ns_per_event_ci95_hi: Option<f64>,
    /// Hot only (v4): whether the throughput figure and `ns_per_event` (plus
    /// the two clock reads per run that stats add to wall time) overlap.
    pub methods_agree: Option<bool>,
    /// Hot only (v4): wall ns per failing call per worker, no program.
    pub trigger_ns_per_call: Option<f64>,
    /// Hot only (v4): pairs of rounds (with and without the program).
    pub rounds: Option<usize>,
    /// Hot only (v4): `--precision`, and the half-width over median that
    /// the `ns_per_event` interval reached.
    pub precision_target: Option<f64>,
    pub precision_reached: Option<f64>,
    /// Coefficient of variation of the calibration workload (see `noise`)
    /// sampled during the cell (v4).
    pub machine_noise_cv: Option<f64>,
    /// Median ns per call of the calibration workload during the cell (v4):
    /// its change from the first row to the last is the run's drift.
    pub machine_calibration_ns: Option<f64>,
    /// (v4) What the cgroup filter adds per event, measured once per run
    /// with the hot method on its first hot counter cell: the median of
    /// paired (filtered - unfiltered) ns/event and its 95% interval.
    pub filter_cost_ns_median: Option<f64>,
    pub filter_cost_ns_ci95_lo: Option<f64>,
    pub filter_cost_ns_ci95_hi: Option<f64>,
}

/// The `keys_live` column: a count in a map's keys that hold one.
fn keys_live(strategy: &Strategy, reading: &Reading) -> Option<u64> {
    (!strategy.map().is_stream()).then_some(reading.keys_live)
}

/// The `keys` column: 1 unless a count is spread over keys, also in a
/// row built from `Row::default()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyCount(pub u32);

impl KeyCount {
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for KeyCount {
    fn default() -> Self {
        KeyCount(1)
    }
}

/// The `wakeup` column of `update` on `map`: its policy's name, empty for
/// a count in a map.
pub fn wakeup_column(map: MapKind, update: UpdateMode) -> String {
    Wakeup::of(map, update).map_or_else(String::new, Wakeup::name)
}

/// What sets a count apart beyond its map and update mode: the keys it
/// is spread over and how user space reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Variant {
    pub keys: u32,
    /// Only where the map has fewer entries than keys (`--max-entries`):
    /// room for every key is one variant, whatever its size.
    pub max_entries: Option<u32>,
    pub read: ReadPath,
}

impl Variant {
    pub const CLASSIC: Variant = Variant {
        keys: 1,
        max_entries: None,
        read: ReadPath::Syscall,
    };

    pub fn of(keys: u32, max_entries: Option<u32>, read: ReadPath) -> Variant {
        Variant {
            keys,
            // Only a map smaller than its keys is a cell of its own: a
            // default size follows the machine's CPUs (LRU maps).
            max_entries: max_entries.filter(|&n| keys > 1 && n < keys),
            read,
        }
    }

    /// What a strategy's name gains from it: `/k<keys>` for a count
    /// spread over keys (and `/max<entries>` when its map has room for
    /// fewer), then the read path unless it is the syscall every map
    /// takes; nothing for the classic single key read by syscall.
    pub fn suffix(self) -> String {
        let mut out = String::new();
        if self.keys > 1 {
            out.push_str(&format!("/k{}", self.keys));
        }
        if let Some(entries) = self.max_entries {
            out.push_str(&format!("/max{entries}"));
        }
        if self.read != ReadPath::Syscall {
            out.push_str(&format!("/{}", self.read));
        }
        out
    }
}

/// How tables name a strategy: `map/update` and its variant's suffix,
/// e.g. `hash/atomic/k64`, `array/atomic/mmap`.
pub fn strategy_name(map: MapKind, update: UpdateMode, variant: Variant) -> String {
    format!("{map}/{update}{}", variant.suffix())
}

/// A kernel rows were measured on, and whether their times are this CPU's
/// (a host can run the very kernel a guest boots).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Kernel {
    pub release: String,
    pub timing: Timing,
}

/// The cell a row measured, whatever run it came from: what its
/// repetitions share, and what compare matches runs on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// `None` when runs of one kernel each are compared (base vs new machine).
    pub kernel: Option<Kernel>,
    pub backend: String,
    pub attach: AttachPoint,
    pub map: MapKind,
    pub update: UpdateMode,
    pub variant: Variant,
    pub filter: String,
    pub method: Method,
    /// A sweep's points are cells of their own: contention is the finding.
    pub workers: Workers,
    pub target: String,
    pub spawn: String,
}

impl Key {
    /// The same cell on any kernel: the strategy and the storm.
    pub fn strategy(self) -> Key {
        Key {
            kernel: None,
            ..self
        }
    }
}

/// A cell's worker count as runs are matched on it: one per CPU (the
/// default, whatever the machine's size, so a default run on a 2-CPU
/// machine matches one on 16) or a count named apart from that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Workers {
    PerCpu,
    Count(u32),
}

impl Workers {
    pub fn of(r: &Row) -> Workers {
        if r.workers as usize == r.cpus {
            Workers::PerCpu
        } else {
            Workers::Count(r.workers)
        }
    }
}

impl fmt::Display for Workers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Workers::PerCpu => f.write_str("1 per CPU"),
            Workers::Count(n) => write!(f, "{n}"),
        }
    }
}

/// Identifies a cell in a row whether or not it could be measured.
pub struct CellId<'a> {
    pub backend: &'a str,
    pub backend_version: &'a str,
    pub attach: AttachPoint,
    pub map: MapKind,
    pub update: UpdateMode,
    pub keys: Keys,
    pub map_entries: Option<u32>,
    pub read: ReadPath,
    pub filter: &'a str,
    pub method: Method,
    pub spec: &'a StormSpec,
    pub repetition: u32,
}

pub(crate) fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

impl Row {
    pub fn kernel_id(&self) -> Kernel {
        Kernel {
            release: self.kernel.clone(),
            timing: self.timing,
        }
    }

    /// `map/update` and the variant's suffix (see [`Variant::suffix`]).
    pub fn strategy_name(&self) -> String {
        strategy_name(self.map, self.update, self.variant())
    }

    pub fn variant(&self) -> Variant {
        Variant::of(self.keys.get(), self.max_entries, self.read)
    }

    /// Whether the strategy must account for every event: not where the
    /// update races on purpose, nor where a full LRU map evicts keys.
    pub fn expects_exact(&self) -> bool {
        self.update.is_exact() && !(self.keys.get() > 1 && self.map.evicts())
    }

    pub fn key(&self) -> Key {
        Key {
            kernel: Some(self.kernel_id()),
            backend: self.backend.clone(),
            attach: self.attach,
            map: self.map,
            update: self.update,
            variant: self.variant(),
            filter: self.filter.clone(),
            method: self.method,
            workers: Workers::of(self),
            target: self.target.clone(),
            spawn: self.spawn.clone(),
        }
    }

    fn blank(run: &RunInfo, id: &CellId<'_>, status: Status, error: String) -> Row {
        Row {
            schema_version: SCHEMA_VERSION,
            run_id: run.run_id.clone(),
            timestamp_utc: run.timestamp_utc.clone(),
            host: run.host.host.clone(),
            kernel: run.host.kernel.clone(),
            cpus: run.host.cpus,
            cpu_model: run.host.cpu_model.clone(),
            timing: run.host.timing,
            git_rev: run.host.git_rev.clone(),
            backend: id.backend.to_string(),
            backend_version: id.backend_version.to_string(),
            attach: id.attach,
            map: id.map,
            update: id.update,
            wakeup: wakeup_column(id.map, id.update),
            read: id.read,
            keys: KeyCount(id.keys.count),
            max_entries: id.map_entries,
            filter: id.filter.to_string(),
            method: id.method,
            target: id.spec.target.to_string(),
            spawn: id.spec.spawn.to_string(),
            workers: id.spec.workers,
            execs_per_worker: id.spec.execs_per_worker,
            repetition: id.repetition,
            status,
            error,
            ..Row::default()
        }
    }

    /// A cell that could not be measured: `unsupported` when the kernel
    /// refused it, `error` otherwise.
    pub fn failed(run: &RunInfo, id: &CellId<'_>, unsupported: bool, error: String) -> Row {
        let status = if unsupported {
            Status::Unsupported
        } else {
            Status::Error
        };
        Row::blank(run, id, status, error)
    }

    /// The row with the program's run statistics: summed, and ns per run
    /// over the cell's slices or rounds.
    fn ran(self, prog: &ProgStats, ns_per_run: Option<Estimate>) -> Row {
        Row {
            run_cnt: Some(prog.run_cnt),
            run_time_ns: Some(prog.run_time_ns),
            recursion_misses: Some(prog.recursion_misses),
            ns_per_run_median: ns_per_run.map(|e| round(e.median, 1)),
            ns_per_run_ci95_lo: ns_per_run.map(|e| round(e.lo, 1)),
            ns_per_run_ci95_hi: ns_per_run.map(|e| round(e.hi, 1)),
            ns_per_run_samples: ns_per_run.map(|e| e.n),
            ..self
        }
    }

    /// The row with what loading the counter showed: its times, read
    /// latency, map memory and program size.
    fn loaded(
        self,
        timings: &LoadTimings,
        read_us: Option<Estimate>,
        map_bytes: u64,
        insns: &ProgInsns,
    ) -> Row {
        let ms = |d: std::time::Duration| round(d.as_secs_f64() * 1e3, 3);
        Row {
            open_ms: Some(ms(timings.open)),
            load_ms: Some(ms(timings.load)),
            attach_ms: Some(ms(timings.attach)),
            startup_ms: Some(ms(timings.total())),
            // Three digits: a mapped read takes tens of ns.
            read_us_median: read_us.map(|e| round(e.median, 3)),
            read_us_ci95_lo: read_us.map(|e| round(e.lo, 3)),
            read_us_ci95_hi: read_us.map(|e| round(e.hi, 3)),
            map_bytes: Some(map_bytes),
            verified_insns: Some(insns.verified_insns),
            xlated_insns: Some(insns.xlated_insns),
            jited_bytes: Some(insns.jited_bytes),
            ..self
        }
    }

    /// Records the run's measure of the cgroup filter's cost.
    pub fn set_filter_cost(&mut self, cost: &Estimate) {
        self.filter_cost_ns_median = Some(round(cost.median, 1));
        self.filter_cost_ns_ci95_lo = Some(round(cost.lo, 1));
        self.filter_cost_ns_ci95_hi = Some(round(cost.hi, 1));
    }

    /// Records the calibration samples taken during the cell.
    pub fn set_machine_noise(&mut self, samples: &[f64]) {
        self.machine_noise_cv = crate::noise::cv(samples).map(|v| round(v, 4));
        self.machine_calibration_ns = Estimate::from_samples(samples).map(|e| round(e.median, 1));
    }

    /// Takes bpf_stats' own cost, `bias` ns per run, out of the per-event
    /// figures of a storm row, and records it.
    pub fn subtract_stats_bias(&mut self, bias: f64) {
        let (Some(runs), Some(counted)) = (self.run_cnt, self.counted) else {
            return;
        };
        if counted > 0 {
            let paid = bias * runs as f64 / counted as f64;
            for v in [
                &mut self.ns_per_event_mean,
                &mut self.ns_per_event_median,
                &mut self.ns_per_event_ci95_lo,
                &mut self.ns_per_event_ci95_hi,
            ] {
                *v = v.map(|x| round(x - paid, 1));
            }
        }
        self.stats_bias_ns = Some(round(bias, 1));
    }

    /// A cell measured by the hot method (see [`HotCell`]).
    pub fn hot(run: &RunInfo, id: &CellId<'_>, cell: &HotCell, precision_target: f64) -> Row {
        let missing = cell.missing();
        Row {
            execs_per_worker: cell.calls_per_round,
            issued: Some(cell.issued),
            succeeded: Some(0),
            failed: Some(cell.issued),
            timed_out: Some(false),
            counted: Some(cell.reading.count),
            dropped: Some(cell.reading.dropped),
            perf_lost_records: Some(cell.reading.lost_records),
            keys_live: keys_live(&cell.strategy, &cell.reading),
            expected_oracle: cell.expected_oracle.to_string(),
            expected: Some(cell.expected),
            missing: Some(missing),
            exact: Some(missing == 0),
            perf_sys_enter_execve: Some(cell.oracle.execve),
            perf_sched_process_exec: Some(cell.oracle.exec),
            perf_sys_enter_execveat: Some(cell.oracle.execveat),
            perf_sys_enter_execve_system: Some(cell.oracle.execve_system),
            ns_per_event_mean: (cell.reading.count > 0).then(|| {
                round(
                    (cell.prog.run_time_ns as f64 - cell.stats_bias_ns * cell.prog.run_cnt as f64)
                        / cell.reading.count as f64,
                    1,
                )
            }),
            ns_per_event_median: cell.ns_per_event.map(|e| round(e.median, 1)),
            ns_per_event_ci95_lo: cell.ns_per_event.map(|e| round(e.lo, 1)),
            ns_per_event_ci95_hi: cell.ns_per_event.map(|e| round(e.hi, 1)),
            storm_wall_s: Some(round(cell.wall_with.as_secs_f64(), 4)),
            baseline_wall_s: Some(round(cell.wall_without.as_secs_f64(), 4)),
            execs_per_s: Some(round(
                cell.issued as f64 / cell.wall_with.as_secs_f64().max(1e-9),
                1,
            )),
            stats_bias_ns: Some(round(cell.stats_bias_ns, 1)),
            throughput_ns_per_event_median: cell.throughput_ns.map(|e| round(e.median, 1)),
            throughput_ns_per_event_ci95_lo: cell.throughput_ns.map(|e| round(e.lo, 1)),
            throughput_ns_per_event_ci95_hi: cell.throughput_ns.map(|e| round(e.hi, 1)),
            methods_agree: cell.methods_agree(),
            trigger_ns_per_call: cell.trigger_ns.map(|e| round(e.median, 1)),
            rounds: Some(cell.pairs),
            precision_target: Some(precision_target),
            precision_reached: cell.precision_reached().map(|p| round(p, 4)),
            machine_noise_cv: cell.noise_cv.map(|v| round(v, 4)),
            machine_calibration_ns: cell.calibration_ns.map(|v| round(v, 1)),
            ..Row::blank(run, id, Status::Ok, String::new())
                .ran(&cell.prog, cell.ns_per_run)
                .loaded(
                    &cell.timings,
                    cell.read_us,
                    cell.map_bytes,
                    &cell.prog_insns,
                )
        }
    }

    pub fn measured(run: &RunInfo, id: &CellId<'_>, cell: &Cell) -> Row {
        Row {
            issued: Some(cell.storm.issued),
            succeeded: Some(cell.storm.succeeded),
            failed: Some(cell.storm.failed),
            timed_out: Some(cell.storm.timed_out),
            counted: Some(cell.reading.count),
            dropped: Some(cell.reading.dropped),
            perf_lost_records: Some(cell.reading.lost_records),
            keys_live: keys_live(&cell.strategy, &cell.reading),
            expected_oracle: cell.expected_oracle.to_string(),
            expected: Some(cell.expected),
            missing: Some(cell.missing()),
            exact: Some(cell.is_exact()),
            perf_sys_enter_execve: Some(cell.perf_sys_enter_execve),
            perf_sched_process_exec: Some(cell.perf_sched_process_exec),
            perf_sys_enter_execveat: Some(cell.perf_sys_enter_execveat),
            perf_sys_enter_execve_system: Some(cell.perf_sys_enter_execve_system),
            forks_procfs: Some(cell.forks_procfs),
            ns_per_event_mean: cell.ns_per_event().map(|v| round(v, 1)),
            ns_per_event_median: cell
                .runs_per_event()
                .zip(cell.ns_per_run)
                .map(|(k, e)| round(e.median * k, 1)),
            ns_per_event_ci95_lo: cell
                .runs_per_event()
                .zip(cell.ns_per_run)
                .map(|(k, e)| round(e.lo * k, 1)),
            ns_per_event_ci95_hi: cell
                .runs_per_event()
                .zip(cell.ns_per_run)
                .map(|(k, e)| round(e.hi * k, 1)),
            loader_heap_bytes: Some(cell.loader_heap_bytes),
            storm_wall_s: Some(round(cell.storm.wall.as_secs_f64(), 4)),
            storm_cpu_user_s: Some(round(cell.storm.cpu_user.as_secs_f64(), 4)),
            storm_cpu_sys_s: Some(round(cell.storm.cpu_sys.as_secs_f64(), 4)),
            system_cpu_s: Some(round(cell.system_cpu.as_secs_f64(), 3)),
            execs_per_s: Some(round(cell.storm.execs_per_sec(), 1)),
            ..Row::blank(
                run,
                id,
                if cell.storm.timed_out {
                    Status::Timeout
                } else {
                    Status::Ok
                },
                if cell.storm.timed_out {
                    "the storm ran past --timeout and was killed; its counts are partial".into()
                } else {
                    String::new()
                },
            )
            .ran(&cell.prog, cell.ns_per_run)
            .loaded(
                &cell.timings,
                cell.read_us,
                cell.map_bytes,
                &cell.prog_insns,
            )
        }
    }
}

/// A CSV file under the results folder, rewritten whole after each row.
/// It is created with its header line before the first row, so an early
/// interrupt leaves a file that says what it is, never an empty one.
pub struct CsvReport<R: Serialize + Default = Row> {
    dir: Dir,
    name: String,
    rows: Vec<R>,
}

impl<R: Serialize + Default> CsvReport<R> {
    /// Creates `dir/file_name` now (failing if anything is there), so an
    /// unwritable or unsafe folder is reported before the first cell.
    pub fn create(dir: &Path, file_name: &str) -> Result<CsvReport<R>, CsvError> {
        CsvReport::create_in(Dir::results(dir)?, file_name)
    }

    /// As [`CsvReport::create`], in a folder already opened.
    pub fn create_in(dir: Dir, file_name: &str) -> Result<CsvReport<R>, CsvError> {
        dir.create_new(file_name, &header_line::<R>()?)?;
        Ok(CsvReport {
            dir,
            name: file_name.to_string(),
            rows: Vec::new(),
        })
    }

    /// Creates or replaces `dir/file_name` (a report of fixed name, made
    /// anew each time), header first.
    pub fn replace_in(dir: Dir, file_name: &str) -> Result<CsvReport<R>, CsvError> {
        dir.replace(file_name, &header_line::<R>()?)?;
        Ok(CsvReport {
            dir,
            name: file_name.to_string(),
            rows: Vec::new(),
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join(&self.name)
    }

    /// The folder it is written in.
    pub fn dir(&self) -> &Dir {
        &self.dir
    }

    pub fn push(&mut self, row: R) -> Result<(), CsvError> {
        self.rows.push(row);
        let mut writer = ::csv::Writer::from_writer(Vec::new());
        for row in &self.rows {
            writer.serialize(row)?;
        }
        let bytes = writer
            .into_inner()
            .map_err(|e| CsvError::Encode(e.into_error().into()))?;
        Ok(self.dir.replace(&self.name, &bytes)?)
    }
}

/// The header line of a CSV of `R` rows (serde knows the columns only from
/// a value, so a default one is serialized and its values dropped).
fn header_line<R: Serialize + Default>() -> Result<Vec<u8>, CsvError> {
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    writer.serialize(R::default())?;
    let bytes = writer
        .into_inner()
        .map_err(|e| CsvError::Encode(e.into_error().into()))?;
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |i| i + 1);
    Ok(bytes[..end].to_vec())
}

/// One row of a probe CSV: whether an attach point x map kind loads and
/// attaches on this kernel, and the kernel's reason when it does not.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProbeRow {
    pub schema_version: u32,
    pub run_id: String,
    pub timestamp_utc: String,
    pub host: String,
    pub kernel: String,
    pub cpus: usize,
    pub cpu_model: String,
    pub timing: Timing,
    pub git_rev: String,
    pub backend: String,
    pub backend_version: String,
    #[serde(with = "named")]
    pub attach: AttachPoint,
    #[serde(with = "named")]
    pub map: MapKind,
    pub supported: bool,
    pub reason: String,
}
