//! `bpfstorm probe`: which attach points and maps each kernel takes.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use bpfstorm::backends;
use bpfstorm::cli::ProbeArgs;
use bpfstorm::export::csv::{CsvError, CsvReport, ProbeRow, RunInfo};
use bpfstorm::export::read::{read_rows, ReadError};
use bpfstorm::guest::Guest;
use bpfstorm::{out, outln, probe};
use bpfstorm_common::Backend;

use super::kernels::{on_kernels, OnKernels};

struct Probe<'a> {
    args: &'a ProbeArgs,
    backends: Vec<Box<dyn Backend>>,
    run: RunInfo,
    csv: CsvReport<ProbeRow>,
    /// The first row the CSV could not take.
    unsaved: Option<CsvError>,
}

impl OnKernels for Probe<'_> {
    type Row = ProbeRow;
    const GUEST_CSV: &'static str = "probe-";

    fn host(&mut self) -> Result<()> {
        for (fact, answer) in probe::facts() {
            outln!("{fact}: {answer}");
        }
        outln!();
        let mut probes = Vec::new();
        for backend in &self.backends {
            let found = probe::probe(backend.as_ref());
            for row in probe::rows(&self.run, backend.as_ref(), &found) {
                self.csv.push(row)?;
            }
            probes.extend(found);
        }
        out!("{}", probe::render(&probes));
        Ok(())
    }

    fn guest_args(&self, results_dir: &Path) -> Vec<OsString> {
        self.args.guest_args(results_dir)
    }

    fn expected_rows(&self) -> usize {
        self.backends.len()
    }

    fn read_guest(
        &mut self,
        guest: &Guest,
        csv: &Path,
        stdout: &str,
    ) -> Result<Vec<ProbeRow>, ReadError> {
        outln!("\n== {} ==", guest.describe());
        // The guest's own results path is gone with its scratch folder.
        for line in stdout.lines().filter(|l| !l.starts_with("results: ")) {
            outln!("{line}");
        }
        read_rows(csv)
    }

    fn keep(&mut self, mut row: ProbeRow) {
        row.run_id.clone_from(&self.run.run_id);
        if self.unsaved.is_none() {
            self.unsaved = self.csv.push(row).err();
        }
    }

    fn stopped(&self) -> bool {
        self.unsaved.is_some()
    }
}

pub fn command(args: ProbeArgs) -> Result<ExitCode> {
    let guests = Guest::prepare(&args.kernels.kernel, &args.results_dir)?;
    let backends = backends::by_names(&args.backend);
    let run = RunInfo::start();
    let csv = CsvReport::create(&args.results_dir, &format!("probe-{}.csv", run.run_id))?;
    let mut probe = Probe {
        args: &args,
        backends,
        run,
        csv,
        unsaved: None,
    };
    let failures = on_kernels(&mut probe, &args.kernels, &guests)?;
    if let Some(e) = probe.unsaved {
        return Err(anyhow::Error::from(e).context("writing a guest's probe rows"));
    }
    outln!("results: {}", probe.csv.path().display());
    Ok(super::exit_status(failures))
}
