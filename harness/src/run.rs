//! `bpfstorm run`: every cell of the matrix in turn, a CSV row after each.

use std::time::Duration;

use bpfstorm_common::{Backend, Strategy};

use crate::export::csv::{CellId, CsvError, CsvReport, Row, RunInfo};
use crate::hot::{self, Calibration, Method, Precision};
use crate::interrupt;
use crate::measure::{baseline_storm, measure_in, FilterKind, Instruments, MeasureError};
use crate::noise;
use crate::storm::{StormSpec, Trigger};

/// Calibration samples taken before and after a storm cell.
const NOISE_SAMPLES: usize = 3;

pub struct RunOptions {
    pub backends: Vec<Box<dyn Backend>>,
    pub strategies: Vec<Strategy>,
    pub filter: FilterKind,
    /// One storm spec per worker count, ascending; never empty.
    pub specs: Vec<StormSpec>,
    /// The spec of the run-wide measures (bpf_stats' bias, the filter's
    /// cost): one worker per CPU where the run has it, else its most workers.
    pub main_spec: usize,
    pub repeat: u32,
    /// `hot` cells go first, once each (they repeat rounds until precise);
    /// `storm` cells `repeat` times.
    pub methods: Vec<Method>,
    pub precision: Precision,
    /// Pair every cell with a probe-free storm (end-to-end cost). Off in
    /// guests, where emulation's exec cost dwarfs any probe's.
    pub paired_baseline: bool,
}

impl RunOptions {
    /// Strategies the hot method measures: those a failing syscall fires.
    pub fn hot_strategies(&self) -> impl Iterator<Item = &Strategy> {
        let hot = self.methods.contains(&Method::Hot);
        self.strategies
            .iter()
            .filter(move |s| hot && hot::trigger(s.attach()).is_ok())
    }

    pub fn cells(&self) -> usize {
        let storms = if self.methods.contains(&Method::Storm) {
            self.strategies.len() * self.repeat as usize
        } else {
            0
        };
        self.backends.len() * self.specs.len() * (self.hot_strategies().count() + storms)
    }

    fn main_spec(&self) -> &StormSpec {
        &self.specs[self.main_spec]
    }
}

pub struct RunOutcome {
    pub rows: Vec<Row>,
    /// Why the CSV could not take a row (a full disk, say): the run stopped
    /// there, and `rows` still holds every cell measured.
    pub unsaved: Option<CsvError>,
    /// Wall time of the storms that measured the run's calibrations (the
    /// stats' own cost, the filter's), which no row holds.
    pub calibration_storms: Duration,
}

/// Measures every cell into `csv`; `on_cell` hears of each before it starts.
/// Ctrl-C stops it between cells (`interrupt::requested()` then says so).
pub fn run<'a>(
    opts: &'a RunOptions,
    run: &RunInfo,
    csv: &mut CsvReport,
    on_cell: &mut dyn FnMut(&str),
) -> RunOutcome {
    let mut outcome = RunOutcome {
        rows: Vec::new(),
        unsaved: None,
        calibration_storms: Duration::ZERO,
    };
    if opts.cells() == 0 {
        return outcome;
    }
    let bias = match stats_bias(opts) {
        Err(MeasureError::Interrupted) => return outcome,
        measured => measured
            .map(|bias| {
                outcome.calibration_storms += bias.storms;
                bias.estimate.median
            })
            .map_err(|e| e.to_string()),
    };
    let filter_cost = match &bias {
        Ok(bias) => filter_cost(opts, *bias),
        Err(_) => None,
    };
    if matches!(filter_cost, Some(Err(MeasureError::Interrupted))) {
        return outcome;
    }
    let filter_cost = filter_cost.and_then(Result::ok).map(|cost| {
        outcome.calibration_storms += cost.storms;
        cost.estimate
    });

    // A strategy's worker counts one after another, so a sweep's points
    // are measured close in time.
    let cells_of = |method: Method, rep: u32, s: &'a Strategy| {
        opts.backends.iter().flat_map(move |b| {
            opts.specs
                .iter()
                .enumerate()
                .map(move |(i, spec)| (method, rep, s, b, i, spec))
        })
    };
    // One set of instruments per storm spec, made when first needed; a cell
    // that fails leaves its spec to a fresh set.
    let mut instruments: Vec<Option<Instruments>> = opts.specs.iter().map(|_| None).collect();
    let hot_cells = opts
        .hot_strategies()
        .flat_map(|s| cells_of(Method::Hot, 1, s));
    // Every storm cell once, then every one again: drift over the run hits
    // all cells alike instead of the ones measured last.
    let storm_cells = (1..=opts.repeat)
        .filter(|_| opts.methods.contains(&Method::Storm))
        .flat_map(|rep| {
            opts.strategies
                .iter()
                .flat_map(move |s| cells_of(Method::Storm, rep, s))
        });
    'cells: for (method, repetition, strategy, backend, i, spec) in hot_cells.chain(storm_cells) {
        {
            if interrupt::requested() {
                break 'cells;
            }
            let workers = if opts.specs.len() > 1 {
                format!(", {} workers", spec.workers)
            } else {
                String::new()
            };
            let name = match method {
                Method::Hot => format!("{} {} (hot{workers})", backend.name(), strategy),
                Method::Storm => {
                    format!("{} {} (#{repetition}{workers})", backend.name(), strategy)
                }
            };
            on_cell(&name);
            let version = backend.version();
            let id = CellId {
                backend: backend.name(),
                backend_version: &version,
                attach: strategy.attach(),
                map: strategy.map(),
                update: strategy.update(),
                keys: strategy.keys(),
                map_entries: strategy.map_entries(),
                read: strategy.read(),
                filter: opts.filter.name(),
                method,
                spec,
                repetition,
            };
            let measured = instruments[i]
                .take()
                .map_or_else(|| Instruments::set_up(spec, opts.filter), Ok)
                .and_then(|set| {
                    let measured = match method {
                        Method::Hot => {
                            hot_row(opts, run, &id, &set, backend.as_ref(), *strategy, &bias)
                        }
                        Method::Storm => storm_row(
                            opts,
                            run,
                            &id,
                            &set,
                            backend.as_ref(),
                            *strategy,
                            bias.as_ref().ok().copied(),
                        ),
                    };
                    // A storm that failed may have left tasks behind: the
                    // next cell gets a fresh cgroup. A refusal ran nothing.
                    if measured
                        .as_ref()
                        .map_or_else(MeasureError::is_unsupported, |_| true)
                    {
                        instruments[i] = Some(set);
                    }
                    measured
                });
            let mut row = match measured {
                Ok(row) => row,
                Err(MeasureError::Interrupted) => break 'cells,
                Err(e) => Row::failed(run, &id, e.is_unsupported(), e.to_string()),
            };
            if let Some(cost) = &filter_cost {
                row.set_filter_cost(cost);
            }
            let saved = csv.push(row.clone());
            outcome.rows.push(row);
            if let Err(e) = saved {
                outcome.unsaved = Some(e);
                break 'cells;
            }
        }
    }
    outcome
}

/// A hot cell's row; `bias` is the run's measure of bpf_stats' own cost, or
/// why it could not be measured.
fn hot_row(
    opts: &RunOptions,
    run: &RunInfo,
    id: &CellId<'_>,
    instruments: &Instruments,
    backend: &dyn Backend,
    strategy: Strategy,
    bias: &Result<f64, String>,
) -> Result<Row, MeasureError> {
    let bias = match bias {
        Ok(bias) => *bias,
        Err(e) => {
            let why = format!("measuring bpf_stats' own cost per run: {e}");
            return Ok(Row::failed(run, id, false, why));
        }
    };
    let cell = hot::measure_hot(
        instruments,
        backend,
        strategy,
        id.spec,
        opts.precision,
        bias,
    )?;
    let mut row = Row::hot(run, id, &cell, opts.precision.target);
    row.interference = crate::neighbours::describe_hot(&cell);
    Ok(row)
}

/// A storm cell's row, paired with a probe-free storm (end to end) where
/// the run does that, with calibration samples around it.
fn storm_row(
    opts: &RunOptions,
    run: &RunInfo,
    id: &CellId<'_>,
    instruments: &Instruments,
    backend: &dyn Backend,
    strategy: Strategy,
    bias: Option<f64>,
) -> Result<Row, MeasureError> {
    // The probe-free storm goes last on odd repetitions and first on
    // even ones, so order does not bias the paired difference; the
    // first repetition loads first, so a refused cell fails fast.
    let baseline_first = id.repetition % 2 == 0;
    let mut calibration: Vec<f64> = (0..NOISE_SAMPLES).map(|_| noise::sample()).collect();
    let before = (opts.paired_baseline && baseline_first)
        .then(|| baseline_storm(instruments, id.spec))
        .transpose()?;
    let cell = measure_in(instruments, backend, strategy, id.spec)?;
    let baseline = match before {
        Some(b) => Some(b),
        None if opts.paired_baseline => Some(baseline_storm(instruments, id.spec)?),
        None => None,
    };
    calibration.extend((0..NOISE_SAMPLES).map(|_| noise::sample()));
    let mut row = Row::measured(run, id, &cell);
    row.set_machine_noise(&calibration);
    if let Some(bias) = bias {
        row.subtract_stats_bias(bias);
    }
    row.interference = crate::neighbours::describe(&cell, id.spec.target);
    if let Some(baseline) = baseline {
        row.baseline_wall_s = Some(baseline.wall.as_secs_f64());
        row.e2e_ns_per_exec = (cell.storm.issued > 0).then(|| {
            (cell.storm.wall.as_secs_f64() - baseline.wall.as_secs_f64()) * 1e9
                / cell.storm.issued as f64
        });
    }
    Ok(row)
}

/// The cgroup filter's cost per event (see [`hot::filter_cost`]), measured
/// once for the run on its first hot counter cell, where the run filters by
/// cgroup and measures hot cells: `None` otherwise.
fn filter_cost(opts: &RunOptions, bias: f64) -> Option<Result<Calibration, MeasureError>> {
    if opts.filter != FilterKind::Cgroup {
        return None;
    }
    let strategy = opts
        .hot_strategies()
        .find(|s| !s.map().is_stream() && !s.is_keyed() && s.is_exact())?;
    let backend = opts.backends.first()?;
    Some(hot::filter_cost(
        backend.as_ref(),
        *strategy,
        opts.main_spec(),
        opts.precision,
        bias,
    ))
}

/// bpf_stats' own ns per run (see [`hot::stats_bias`]), measured once for
/// the run, as precisely as its cells.
fn stats_bias(opts: &RunOptions) -> Result<Calibration, MeasureError> {
    hot::stats_bias(opts.main_spec(), Trigger::Execve, opts.precision)
}
