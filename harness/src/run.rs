//! `bpfstorm run`: every cell of the matrix in turn, a CSV row after each.

use std::path::PathBuf;

use bpfstorm_common::{Backend, Strategy};
use thiserror::Error;

use crate::cgroup::StormCgroup;
use crate::export::csv::{CellId, CsvError, CsvReport, Row, RunInfo};
use crate::interrupt;
use crate::measure::{baseline_storm, measure, FilterKind, MeasureError};
use crate::storm::StormSpec;

#[derive(Debug, Error)]
pub enum RunError {
    #[error(transparent)]
    Csv(#[from] CsvError),
    #[error("removing storm cgroups left by killed runs: {0}")]
    Sweep(#[from] std::io::Error),
}

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
    /// Cgroups and target folders of killed runs, removed at the start.
    pub swept: Vec<PathBuf>,
    pub interrupted: bool,
}

/// Measures every cell into `csv`; `on_cell` hears of each before it starts.
pub fn run(
    opts: &RunOptions,
    run: &RunInfo,
    csv: &mut CsvReport,
    on_cell: &mut dyn FnMut(&str),
) -> Result<RunOutcome, RunError> {
    let mut swept = StormCgroup::sweep_stale()?;
    swept.extend(crate::storm::sweep_stale_dirs());
    let mut rows = Vec::new();
    let mut interrupted = false;

    // Every cell once, then every cell again: drift over the run hits all
    // cells alike instead of the ones measured last.
    'cells: for (repetition, strategy, backend) in (1..=opts.repeat).flat_map(|rep| {
        opts.strategies
            .iter()
            .flat_map(move |s| opts.backends.iter().map(move |b| (rep, s, b)))
    }) {
        {
            if interrupt::requested() {
                interrupted = true;
                break 'cells;
            }
            let name = format!("{} {} (#{repetition})", backend.name(), strategy);
            on_cell(&name);
            let version = backend.version();
            let (attach, map, update) = (
                strategy.attach().name(),
                strategy.map().name(),
                strategy.update().name(),
            );
            let id = CellId {
                backend: backend.name(),
                backend_version: &version,
                attach,
                map,
                update,
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
                    .then(|| baseline_storm(&opts.spec))
                    .transpose()?;
                let cell = measure(backend.as_ref(), *strategy, opts.filter, &opts.spec)?;
                let baseline = match before {
                    Some(b) => Some(b),
                    None if opts.paired_baseline => Some(baseline_storm(&opts.spec)?),
                    None => None,
                };
                Ok::<_, MeasureError>((cell, baseline))
            })();
            let row = match measured {
                Ok((cell, baseline)) => {
                    let mut row = Row::measured(run, &id, &cell);
                    if let Some(baseline) = baseline {
                        row.baseline_wall_s = Some(baseline.wall.as_secs_f64());
                        row.e2e_ns_per_exec = (cell.storm.issued > 0).then(|| {
                            (cell.storm.wall.as_secs_f64() - baseline.wall.as_secs_f64()) * 1e9
                                / cell.storm.issued as f64
                        });
                    }
                    row
                }
                Err(MeasureError::Interrupted) => {
                    interrupted = true;
                    break 'cells;
                }
                Err(e) => Row::failed(run, &id, e.is_unsupported(), e.to_string()),
            };
            csv.push(row.clone())?;
            rows.push(row);
        }
    }
    Ok(RunOutcome {
        rows,
        swept,
        interrupted,
    })
}
