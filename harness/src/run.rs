//! `bpfstorm run`: every cell of the matrix in turn, a CSV row after each.

use bpfstorm_common::{Backend, Strategy};

use crate::export::csv::{CellId, CsvError, CsvReport, Row, RunInfo};
use crate::interrupt;
use crate::measure::{baseline_storm, measure, FilterKind, MeasureError};
use crate::storm::StormSpec;

pub struct RunOptions {
    pub backends: Vec<Box<dyn Backend>>,
    pub strategies: Vec<Strategy>,
    pub filter: FilterKind,
    pub spec: StormSpec,
    pub repeat: u32,
    /// Pair every cell with a probe-free storm (end-to-end cost). Off in
    /// guests, where emulation's exec cost dwarfs any probe's.
    pub paired_baseline: bool,
}

impl RunOptions {
    pub fn cells(&self) -> usize {
        self.backends.len() * self.strategies.len() * self.repeat as usize
    }
}

pub struct RunOutcome {
    pub rows: Vec<Row>,
    /// Why the CSV could not take a row (a full disk, say): the run stopped
    /// there, and `rows` still holds every cell measured.
    pub unsaved: Option<CsvError>,
}

/// Measures every cell into `csv`; `on_cell` hears of each before it starts.
/// Ctrl-C stops it between cells (`interrupt::requested()` then says so).
pub fn run(
    opts: &RunOptions,
    run: &RunInfo,
    csv: &mut CsvReport,
    on_cell: &mut dyn FnMut(&str),
) -> RunOutcome {
    let mut rows = Vec::new();
    let mut unsaved = None;

    // Every cell once, then every cell again: drift over the run hits all
    // cells alike instead of the ones measured last.
    'cells: for (repetition, strategy, backend) in (1..=opts.repeat).flat_map(|rep| {
        opts.strategies
            .iter()
            .flat_map(move |s| opts.backends.iter().map(move |b| (rep, s, b)))
    }) {
        {
            if interrupt::requested() {
                break 'cells;
            }
            let name = format!("{} {} (#{repetition})", backend.name(), strategy);
            on_cell(&name);
            let version = backend.version();
            let id = CellId {
                backend: backend.name(),
                backend_version: &version,
                attach: strategy.attach(),
                map: strategy.map(),
                update: strategy.update(),
                filter: opts.filter.name(),
                spec: &opts.spec,
                repetition,
            };
            // The probe-free storm goes last on odd repetitions and first on
            // even ones, so order does not bias the paired difference; the
            // first repetition loads first, so a refused cell fails fast.
            let baseline_first = repetition % 2 == 0;
            let measured = (|| {
                let before = (opts.paired_baseline && baseline_first)
                    .then(|| baseline_storm(&opts.spec, opts.filter))
                    .transpose()?;
                let cell = measure(backend.as_ref(), *strategy, opts.filter, &opts.spec)?;
                let baseline = match before {
                    Some(b) => Some(b),
                    None if opts.paired_baseline => Some(baseline_storm(&opts.spec, opts.filter)?),
                    None => None,
                };
                Ok::<_, MeasureError>((cell, baseline))
            })();
            let row = match measured {
                Ok((cell, baseline)) => {
                    let mut row = Row::measured(run, &id, &cell);
                    row.interference = crate::neighbours::describe(&cell, opts.spec.target);
                    if let Some(baseline) = baseline {
                        row.baseline_wall_s = Some(baseline.wall.as_secs_f64());
                        row.e2e_ns_per_exec = (cell.storm.issued > 0).then(|| {
                            (cell.storm.wall.as_secs_f64() - baseline.wall.as_secs_f64()) * 1e9
                                / cell.storm.issued as f64
                        });
                    }
                    row
                }
                Err(MeasureError::Interrupted) => break 'cells,
                Err(e) => Row::failed(run, &id, e.is_unsupported(), e.to_string()),
            };
            let saved = csv.push(row.clone());
            rows.push(row);
            if let Err(e) = saved {
                unsaved = Some(e);
                break 'cells;
            }
        }
    }
    RunOutcome { rows, unsaved }
}
