//! The hot method, after the kernel's own BPF benchmarks: every worker (one
//! per CPU by default) fires the hook in a tight loop with a syscall that
//! fails at once ([`Trigger`]), in rounds with and without the program,
//! interleaved until the cell's ns/event is as precise as asked. It gives
//! the warm per-event cost that ranks strategies; the storm gives the cost
//! inside real execs.

pub mod bias;

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use bpfstorm_common::{
    AttachPoint, Backend, Counter, Filter, Introspection, LoadTimings, ProgInsns, ProgStats,
    Reading, Strategy,
};
use serde::{Deserialize, Serialize};

use crate::interrupt;
use crate::measure::{time_reads, FilterKind, Instruments, MeasureError, Oracle, OracleCounts};
use crate::noise;
use crate::sample::Estimate;
use crate::storm::{StormSpec, Trigger, UnknownName};

/// Rounds of each arm before an interval is trusted: six values give their
/// range, which holds the median 97% of the time.
pub const MIN_PAIRS: usize = 6;
/// The length a round aims at: long against a round's fixed costs (fork,
/// reap), short enough to interleave often.
const ROUND: Duration = Duration::from_millis(40);
/// Calls per worker of the round that sizes the others.
const SIZING_CALLS: u64 = 2_000;

/// How a cell is measured.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// The hook fired in a tight loop by a failing syscall on every CPU,
    /// rounds with and without the program interleaved: the warm per-event
    /// cost, precise enough to rank strategies.
    Hot,
    /// Storms of real execs: the cost inside real work, and every exec
    /// semantics the oracles check. Files before schema v4 hold only these.
    #[default]
    Storm,
}

impl Method {
    pub const ALL: [Method; 2] = [Method::Hot, Method::Storm];

    pub fn name(self) -> &'static str {
        match self {
            Method::Hot => "hot",
            Method::Storm => "storm",
        }
    }

    /// What it is, in one line, for `--help`.
    pub fn help(self) -> &'static str {
        match self {
            Method::Hot => "the hook fired in a tight loop by a failing exec syscall on every CPU",
            Method::Storm => "storms of real execs of the target",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Method, UnknownName> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| UnknownName {
                what: "method",
                given: s.to_owned(),
                choices: "hot, storm".into(),
            })
    }
}

/// An attach point that no failing syscall reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` has no hot method: it fires only when an exec succeeds, so no failing \
     syscall reaches it; measure it with `--method storm`"
)]
pub struct NoTrigger(pub AttachPoint);

/// The syscall whose failing calls fire `attach`'s hook.
pub fn trigger(attach: AttachPoint) -> Result<Trigger, NoTrigger> {
    match Oracle::for_attach(attach) {
        Oracle::SysEnterExecve | Oracle::ExecveOrExecveat => Ok(Trigger::Execve),
        Oracle::SysEnterExecveat => Ok(Trigger::Execveat),
        Oracle::SchedProcessExec => Err(NoTrigger(attach)),
    }
}

/// How far the hot method goes for each cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Precision {
    /// Stop once the ns/event interval's half-width is within this fraction
    /// of its median...
    pub target: f64,
    /// ...or once the cell has taken this long.
    pub max_time: Duration,
}

/// One hot cell: the with-program rounds' counts summed, and each figure
/// over its rounds.
#[derive(Debug, Clone)]
pub struct HotCell {
    pub strategy: Strategy,
    /// Rounds of each arm.
    pub pairs: usize,
    /// Calls each worker makes in a round.
    pub calls_per_round: u64,
    pub trigger: Trigger,
    /// Calls fired in the with-program rounds.
    pub issued: u64,
    pub reading: Reading,
    pub oracle: OracleCounts,
    pub expected: u64,
    pub expected_oracle: Oracle,
    pub prog: ProgStats,
    /// Raw bpf_stats ns per run, per round.
    pub ns_per_run: Option<Estimate>,
    /// Per round: (run time - bias x runs) / events counted.
    pub ns_per_event: Option<Estimate>,
    /// Per pair: wall ns per call with the program minus without.
    pub throughput_ns: Option<Estimate>,
    /// Wall ns per call per worker, without the program.
    pub trigger_ns: Option<Estimate>,
    pub stats_bias_ns: f64,
    /// Coefficient of variation of the machine's calibration workload,
    /// sampled between the pairs.
    pub noise_cv: Option<f64>,
    /// Their median, ns per call.
    pub calibration_ns: Option<f64>,
    pub timings: LoadTimings,
    pub read_us: Option<Estimate>,
    pub map_bytes: u64,
    pub prog_insns: ProgInsns,
    pub prog_ids: Vec<u32>,
    /// Summed wall time of the rounds with and without the program.
    pub wall_with: Duration,
    pub wall_without: Duration,
}

impl HotCell {
    /// Events neither counted nor reported dropped.
    pub fn missing(&self) -> i64 {
        self.expected as i64 - (self.reading.count + self.reading.dropped) as i64
    }

    /// Half the ns/event interval over its median.
    pub fn precision_reached(&self) -> Option<f64> {
        self.ns_per_event.map(|e| relative_half_width(&e))
    }

    /// Whether the two figures could be one: the throughput difference
    /// pays the stats' two clock reads per run (about twice the bias) that
    /// the bias-corrected figure leaves out.
    pub fn methods_agree(&self) -> Option<bool> {
        let (stats, wall) = (self.ns_per_event?, self.throughput_ns?);
        let runs = self.prog.run_cnt as f64 / self.reading.count.max(1) as f64;
        let paid = 2.0 * self.stats_bias_ns * runs;
        Some(stats.lo + paid <= wall.hi && wall.lo <= stats.hi + paid)
    }
}

fn relative_half_width(e: &Estimate) -> f64 {
    e.relative_half_width_pct() / 100.0
}

/// A cell's rounds so far.
#[derive(Default)]
struct Rounds {
    ns_per_run: Vec<f64>,
    ns_per_event: Vec<f64>,
    with: Vec<f64>,
    without: Vec<f64>,
    noise: Vec<f64>,
}

impl Rounds {
    fn ns_per_event(&self) -> Option<Estimate> {
        Estimate::from_samples(&self.ns_per_event)
    }

    fn precise(&self, target: f64) -> bool {
        self.ns_per_event.len() >= MIN_PAIRS
            && self
                .ns_per_event()
                .is_some_and(|e| relative_half_width(&e) <= target)
    }

    fn throughput(&self) -> Option<Estimate> {
        let diffs: Vec<f64> = self
            .with
            .iter()
            .zip(&self.without)
            .map(|(w, b)| w - b)
            .collect();
        Estimate::from_samples(&diffs)
    }
}

/// What one round with a program loaded showed.
struct LoadedRound {
    wall: Duration,
    issued: u64,
    reading: Reading,
    prog: ProgStats,
    oracle: OracleCounts,
    progs: Vec<u32>,
}

impl LoadedRound {
    /// (run time - `bias` x runs) / events counted; `None` without events.
    fn ns_per_event(&self, bias: f64) -> Option<f64> {
        (self.reading.count > 0).then(|| {
            (self.prog.run_time_ns as f64 - bias * self.prog.run_cnt as f64)
                / self.reading.count as f64
        })
    }
}

/// Loads `strategy` afresh, fires one round of `spec` and unloads it;
/// `inspect` sees the live counter after the round.
fn loaded_round(
    backend: &dyn Backend,
    strategy: &Strategy,
    instruments: &Instruments,
    spec: &StormSpec,
    inspect: &mut dyn FnMut(&mut dyn Counter, &Introspection) -> Result<(), MeasureError>,
) -> Result<LoadedRound, MeasureError> {
    let mut counter = backend.open(strategy)?;
    // Declared after the counter, so it drops first: it holds the programs.
    let view = Introspection::open(counter.loaded())?;
    let oracle_before = instruments.oracles.read()?;
    let reading_before = counter.read()?;
    let stats_before = view.prog_stats()?;
    let storm = instruments.storm(spec, &mut || {})?;
    let round = LoadedRound {
        wall: storm.wall,
        issued: storm.issued,
        reading: counter.read()?.since(&reading_before),
        prog: view.prog_stats()?.since(&stats_before),
        oracle: instruments.oracles.read()?.since(&oracle_before),
        progs: counter.loaded().progs.clone(),
    };
    inspect(counter.as_mut(), &view)?;
    drop(view);
    instruments.unload(counter, strategy)?;
    Ok(round)
}

/// Wall ns per call of one worker in a round.
fn per_call(wall: Duration, calls: u64) -> f64 {
    wall.as_nanos() as f64 / calls.max(1) as f64
}

/// A round of `trigger` under `instruments`, sized to about [`ROUND`] on
/// this machine after one round that warms the path up: the round and its
/// calls per worker.
fn sized_round(
    instruments: &Instruments,
    spec: &StormSpec,
    trigger: Trigger,
) -> Result<(StormSpec, u64), MeasureError> {
    let sizing = spec.fire(trigger, SIZING_CALLS)?;
    instruments.storm(&sizing, &mut || {})?;
    let took = instruments.storm(&sizing, &mut || {})?.wall;
    let calls = (ROUND.as_nanos() as f64 / per_call(took, SIZING_CALLS)) as u64;
    let calls = calls.clamp(SIZING_CALLS, 1_000_000);
    Ok((spec.fire(trigger, calls)?, calls))
}

/// Instruments of their own (workers in a fresh cgroup, oracles scoped by
/// `filter`, stats on) and a [`sized_round`] under them.
fn hot_set_up(
    spec: &StormSpec,
    trigger: Trigger,
    filter: FilterKind,
) -> Result<(Instruments, StormSpec), MeasureError> {
    let instruments = Instruments::set_up(&spec.fire(trigger, 1)?, filter)?;
    let (round, _) = sized_round(&instruments, spec, trigger)?;
    Ok((instruments, round))
}

/// Measures `strategy` on `backend` with the hot method: pairs of rounds,
/// the program loaded afresh for each with-round, until `precision` is met.
/// `bias` is the stats' own ns per run ([`stats_bias`]).
pub fn measure_hot(
    instruments: &Instruments,
    backend: &dyn Backend,
    strategy: Strategy,
    spec: &StormSpec,
    precision: Precision,
    bias: f64,
) -> Result<HotCell, MeasureError> {
    let trigger = trigger(strategy.attach()).map_err(MeasureError::NoTrigger)?;
    let started = Instant::now();
    let (round_spec, calls) = sized_round(instruments, spec, trigger)?;
    let strategy = instruments.scope(strategy);
    let expected_oracle = Oracle::for_attach(strategy.attach());

    let mut cell = HotCell {
        strategy,
        pairs: 0,
        calls_per_round: calls,
        trigger,
        issued: 0,
        reading: Reading::default(),
        oracle: OracleCounts::default(),
        expected: 0,
        expected_oracle,
        prog: ProgStats::default(),
        ns_per_run: None,
        ns_per_event: None,
        throughput_ns: None,
        trigger_ns: None,
        stats_bias_ns: bias,
        noise_cv: None,
        calibration_ns: None,
        timings: LoadTimings::default(),
        read_us: None,
        map_bytes: 0,
        prog_insns: ProgInsns::default(),
        prog_ids: Vec::new(),
        wall_with: Duration::ZERO,
        wall_without: Duration::ZERO,
    };
    let mut rounds = Rounds::default();

    let without = |cell: &mut HotCell, rounds: &mut Rounds| -> Result<(), MeasureError> {
        let storm = instruments.storm(&round_spec, &mut || {})?;
        cell.wall_without += storm.wall;
        rounds.without.push(per_call(storm.wall, calls));
        Ok(())
    };
    let with = |cell: &mut HotCell, rounds: &mut Rounds| -> Result<(), MeasureError> {
        let first = cell.prog_ids.is_empty();
        let round = loaded_round(
            backend,
            &cell.strategy,
            instruments,
            &round_spec,
            &mut |counter, view| {
                if first {
                    cell.timings = counter.timings();
                    cell.map_bytes = view.map_memory_bytes()?;
                    cell.prog_insns = view.prog_insns()?;
                    cell.read_us = time_reads(counter)?;
                }
                Ok(())
            },
        )?;
        cell.wall_with += round.wall;
        cell.issued += round.issued;
        cell.reading.count += round.reading.count;
        cell.reading.dropped += round.reading.dropped;
        cell.reading.lost_records += round.reading.lost_records;
        // A state, not a count: each round loads afresh.
        cell.reading.keys_live = cell.reading.keys_live.max(round.reading.keys_live);
        cell.oracle = cell.oracle.plus(&round.oracle);
        cell.expected += round.oracle.of(cell.expected_oracle);
        cell.prog = cell.prog + round.prog;
        cell.prog_ids.extend(round.progs.iter().copied());
        rounds.with.push(per_call(round.wall, calls));
        rounds.ns_per_run.extend(round.prog.ns_per_run());
        rounds.ns_per_event.extend(round.ns_per_event(bias));
        Ok(())
    };

    loop {
        if interrupt::requested() {
            return Err(MeasureError::Interrupted);
        }
        // Alternate which arm goes first, so drift within a pair cancels.
        if cell.pairs % 2 == 0 {
            without(&mut cell, &mut rounds)?;
            with(&mut cell, &mut rounds)?;
        } else {
            with(&mut cell, &mut rounds)?;
            without(&mut cell, &mut rounds)?;
        }
        cell.pairs += 1;
        rounds.noise.push(noise::sample());
        let enough = cell.pairs >= MIN_PAIRS
            && (rounds.precise(precision.target) || started.elapsed() >= precision.max_time);
        if enough {
            break;
        }
    }

    cell.ns_per_run = Estimate::from_samples(&rounds.ns_per_run);
    cell.ns_per_event = rounds.ns_per_event();
    cell.throughput_ns = rounds.throughput();
    cell.trigger_ns = Estimate::from_samples(&rounds.without);
    cell.noise_cv = noise::cv(&rounds.noise);
    cell.calibration_ns = Estimate::from_samples(&rounds.noise).map(|e| e.median);
    Ok(cell)
}

/// A figure the run calibrates its cells with, and the wall time its
/// rounds' storms took.
#[derive(Debug, Clone, Copy)]
pub struct Calibration {
    pub estimate: Estimate,
    pub storms: Duration,
}

/// What the cgroup filter adds to `strategy` per event: rounds of the
/// program filtered on the workers' cgroup and unfiltered, each loaded
/// afresh, in pairs (alternating which goes first); the median of the
/// paired differences (filtered - unfiltered, bias-corrected ns/event) and
/// its 95% interval. Rounds go on until that interval's half-width is
/// within `precision` of the filtered cost, or its time is up.
pub fn filter_cost(
    backend: &dyn Backend,
    strategy: Strategy,
    spec: &StormSpec,
    precision: Precision,
    bias: f64,
) -> Result<Calibration, MeasureError> {
    let trigger = trigger(strategy.attach())?;
    let started = Instant::now();
    let (instruments, round_spec) = hot_set_up(spec, trigger, FilterKind::Cgroup)?;
    let filtered = instruments.scope(strategy);
    let unfiltered = strategy.with_filter(Filter::All);
    let mut storms = Duration::ZERO;
    let mut ns = |s: &Strategy| -> Result<Option<f64>, MeasureError> {
        let round = loaded_round(backend, s, &instruments, &round_spec, &mut |_, _| Ok(()))?;
        storms += round.wall;
        Ok(round.ns_per_event(bias))
    };
    let (mut diffs, mut levels) = (Vec::new(), Vec::new());
    let mut pair = 0;
    loop {
        pair += 1;
        if interrupt::requested() {
            return Err(MeasureError::Interrupted);
        }
        let (with_filter, without) = if pair % 2 == 0 {
            let without = ns(&unfiltered)?;
            (ns(&filtered)?, without)
        } else {
            (ns(&filtered)?, ns(&unfiltered)?)
        };
        if let (Some(f), Some(a)) = (with_filter, without) {
            diffs.push(f - a);
            levels.push(f);
        }
        let out_of_time = started.elapsed() >= precision.max_time;
        if diffs.len() >= MIN_PAIRS || out_of_time {
            let level = Estimate::from_samples(&levels).map_or(0.0, |e| e.median);
            match Estimate::from_samples(&diffs) {
                Some(d) if out_of_time || (d.hi - d.lo) / 2.0 <= precision.target * level => {
                    return Ok(Calibration {
                        estimate: d,
                        storms,
                    });
                }
                None if out_of_time => return Err(MeasureError::NoRuns),
                _ => {}
            }
        }
    }
}

/// The ns per run bpf_stats report for an empty program on the hook of
/// `syscalls:sys_enter_<trigger>` in the hot loop: what the stats' own
/// clock reads add to every program's figure. Rounds go on, like a cell's,
/// until the interval is within `precision`.
pub fn stats_bias(
    spec: &StormSpec,
    trigger: Trigger,
    precision: Precision,
) -> Result<Calibration, MeasureError> {
    let started = Instant::now();
    let (instruments, round_spec) = hot_set_up(spec, trigger, FilterKind::All)?;
    let empty = bias::EmptyProgram::attach(trigger.syscall())?;
    let (mut samples, mut storms) = (Vec::new(), Duration::ZERO);
    loop {
        if interrupt::requested() {
            return Err(MeasureError::Interrupted);
        }
        let before = empty.stats().map_err(MeasureError::Stats)?;
        storms += instruments.storm(&round_spec, &mut || {})?.wall;
        let after = empty.stats().map_err(MeasureError::Stats)?;
        samples.extend(after.since(&before).ns_per_run());
        let estimate = Estimate::from_samples(&samples);
        if samples.len() >= MIN_PAIRS
            && (estimate.is_some_and(|e| relative_half_width(&e) <= precision.target)
                || started.elapsed() >= precision.max_time)
        {
            return estimate
                .map(|estimate| Calibration { estimate, storms })
                .ok_or(MeasureError::NoRuns);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_only_hooks_have_no_trigger_and_say_so() {
        assert_eq!(trigger(AttachPoint::TpSysEnterExecve), Ok(Trigger::Execve));
        assert_eq!(trigger(AttachPoint::UprobeLibcExecve), Ok(Trigger::Execve));
        assert_eq!(trigger(AttachPoint::RawTpSysEnter), Ok(Trigger::Execve));
        assert_eq!(
            trigger(AttachPoint::TpSysEnterExecveat),
            Ok(Trigger::Execveat)
        );
        let err = trigger(AttachPoint::TpSchedProcessExec).unwrap_err();
        assert!(err.to_string().contains("--method storm"), "{err}");
        assert!(trigger(AttachPoint::LsmBprmCheckSecurity).is_err());
    }

    #[test]
    fn methods_parse_by_name() {
        assert_eq!("hot".parse::<Method>(), Ok(Method::Hot));
        assert!("warm".parse::<Method>().is_err());
        assert!(Method::Hot < Method::Storm, "hot rows sort first");
    }

    #[test]
    fn precision_needs_enough_rounds_and_a_narrow_interval() {
        let mut rounds = Rounds {
            ns_per_event: vec![100.0, 101.0, 99.0, 100.5, 99.5],
            ..Rounds::default()
        };
        assert!(!rounds.precise(0.05), "five rounds are too few");
        rounds.ns_per_event.push(100.2);
        assert!(rounds.precise(0.05));
        assert!(!rounds.precise(0.001));
        rounds.ns_per_event.push(300.0);
        assert!(!rounds.precise(0.05), "an outlier widens the range");
    }

    #[test]
    fn throughput_pairs_rounds_in_order() {
        let rounds = Rounds {
            with: vec![500.0, 510.0, 490.0],
            without: vec![200.0, 205.0, 195.0],
            ..Rounds::default()
        };
        let t = rounds.throughput().unwrap();
        assert_eq!((t.median, t.lo, t.hi), (300.0, 295.0, 305.0));
    }
}
