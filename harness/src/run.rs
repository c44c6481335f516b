//! `bpfstorm run`: every cell of the matrix in turn, a CSV row after each.

use std::path::PathBuf;

use bpfstorm_common::{Backend, Strategy};
use thiserror::Error;

use crate::cgroup::StormCgroup;
use crate::export::csv::{CellId, CsvError, CsvReport, Row, RunInfo};
use crate::measure::{measure, FilterKind, MeasureError};
use crate::storm::StormSpec;
use crate::interrupt;

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
    pub results_dir: PathBuf,
}

impl RunOptions {
    pub fn cells(&self) -> usize {
        self.backends.len() * self.strategies.len()
    }
}

pub struct RunOutcome {
    pub rows: Vec<Row>,
    pub csv: PathBuf,
    /// Cgroups and target folders of killed runs, removed at the start.
    pub swept: Vec<PathBuf>,
    pub interrupted: bool,
}

/// Measures every cell; `on_cell` hears of each before it starts.
pub fn run(opts: &RunOptions, on_cell: &mut dyn FnMut(&str)) -> Result<RunOutcome, RunError> {
    let mut swept = StormCgroup::sweep_stale()?;
    swept.extend(crate::storm::sweep_stale_dirs());
    let run = RunInfo::start();
    let mut csv = CsvReport::create(&opts.results_dir, &format!("run-{}.csv", run.run_id))?;
    let mut rows = Vec::new();
    let mut interrupted = false;

    'cells: for strategy in &opts.strategies {
        // Backends side by side per strategy, so drift hits them alike.
        for backend in &opts.backends {
            if interrupt::requested() {
                interrupted = true;
                break 'cells;
            }
            let name = format!("{} {}", backend.name(), strategy);
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
            };
            let row = match measure(backend.as_ref(), *strategy, opts.filter, &opts.spec) {
                Ok(cell) => Row::measured(&run, &id, &cell),
                Err(MeasureError::Interrupted) => {
                    interrupted = true;
                    break 'cells;
                }
                Err(e) => Row::failed(&run, &id, e.is_unsupported(), e.to_string()),
            };
            csv.push(row.clone())?;
            rows.push(row);
        }
    }
    Ok(RunOutcome {
        rows,
        csv: csv.path().to_path_buf(),
        swept,
        interrupted,
    })
}
