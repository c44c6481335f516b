//! `bpfstorm semantics`: what each hook counts for each kind of exec, per
//! kernel, and a report across kernels.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use bpfstorm::cli::SemanticsArgs;
use bpfstorm::export::csv::{CsvReport, Timing};
use bpfstorm::export::read::{read_rows, ReadError};
use bpfstorm::guest::Guest;
use bpfstorm::host::Host;
use bpfstorm::secure_fs::Dir;
use bpfstorm::semantics::{self, SemanticsRow};
use bpfstorm::storm::Target;
use bpfstorm::{errln, interrupt, out, outln, output};
use bpfstorm_common::{AttachPoint, Backend};

use super::kernels::{on_kernels, OnKernels};

struct Semantics<'a> {
    args: &'a SemanticsArgs,
    backend: Box<dyn Backend>,
    attaches: Vec<AttachPoint>,
    targets: Vec<Target>,
    results: Dir,
    rows: Vec<SemanticsRow>,
}

impl OnKernels for Semantics<'_> {
    type Row = SemanticsRow;
    const GUEST_CSV: &'static str = "semantics-";

    fn host(&mut self) -> Result<()> {
        let host = Host::detect();
        let bar = output::progress::matrix_bar(self.attaches.len() * self.targets.len());
        let (workers, execs) = (self.args.workers, self.args.execs);
        let spec_for = |t| semantics::default_spec(t, workers, execs);
        let cells = semantics::matrix(
            self.backend.as_ref(),
            &self.attaches,
            &self.targets,
            &spec_for,
            &mut |cell| {
                bar.set_message(cell.to_string());
                bar.inc(1);
            },
        );
        bar.finish_and_clear();
        if interrupt::requested() {
            return Ok(());
        }
        let report =
            semantics::render_markdown(&host, self.backend.as_ref(), &self.targets, &cells);
        // A guest's files say so: a host may run the very same kernel.
        let stem = match host.timing {
            Timing::Emulated => format!("semantics-{}-guest", host.kernel),
            Timing::Native => format!("semantics-{}", host.kernel),
        };
        self.results
            .replace(&format!("{stem}.md"), report.as_bytes())?;
        let mut csv = CsvReport::replace_in(self.results.try_clone()?, &format!("{stem}.csv"))?;
        for row in semantics::rows(&host, self.backend.as_ref(), &cells) {
            csv.push(row.clone())?;
            self.rows.push(row);
        }
        out!("{report}");
        outln!(
            "\nreport: {}",
            self.results.path().join(format!("{stem}.md")).display()
        );
        Ok(())
    }

    fn guest_args(&self, results_dir: &Path) -> Vec<OsString> {
        self.args.guest_args(results_dir)
    }

    fn expected_rows(&self) -> usize {
        self.attaches.len() * self.targets.len()
    }

    /// Takes the guest's CSV and markdown report into the results folder.
    fn read_guest(
        &mut self,
        guest: &Guest,
        csv: &Path,
        _: &str,
    ) -> Result<Vec<SemanticsRow>, ReadError> {
        let rows = read_rows::<SemanticsRow>(csv)?;
        let md = csv.with_extension("md");
        for file in [md.as_path(), csv] {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            // The guest's scratch folder is ours alone (0700).
            let bytes = std::fs::read(file).map_err(|source| ReadError::Io {
                path: file.to_path_buf(),
                source,
            })?;
            self.results
                .replace(name, &bytes)
                .map_err(|e| ReadError::Io {
                    path: self.results.path().join(name),
                    source: std::io::Error::other(e),
                })?;
        }
        outln!(
            "report: {} ({})",
            self.results
                .path()
                .join(md.file_name().unwrap_or_default())
                .display(),
            guest.describe()
        );
        Ok(rows)
    }

    fn keep(&mut self, row: SemanticsRow) {
        self.rows.push(row);
    }
}

pub fn command(args: SemanticsArgs) -> Result<ExitCode> {
    let guests = Guest::prepare(&args.kernels.kernel, &args.results_dir)?;
    let backend = args.backend.backend();
    let attaches = if args.attach.is_empty() {
        AttachPoint::ALL.to_vec()
    } else {
        args.attach.clone()
    };
    let targets = if args.target.is_empty() {
        Target::ALL.to_vec()
    } else {
        args.target.clone()
    };
    // Fail on bad storm flags before anything is loaded.
    semantics::default_spec(targets[0], args.workers, args.execs)
        .map_err(|e| super::usage_error("semantics", e))?;
    let results = Dir::results(&args.results_dir)?;
    let mut semantics = Semantics {
        args: &args,
        backend,
        attaches,
        targets,
        results,
        rows: Vec::new(),
    };
    let failures = on_kernels(&mut semantics, &args.kernels, &guests)?;
    if interrupt::requested() {
        errln!("interrupted: no report across kernels written");
        return Ok(super::exit_status(0));
    }
    let Semantics { results, rows, .. } = semantics;
    if args.kernels.kernel.len() > 1 && !rows.is_empty() {
        let report = semantics::render_kernels(&rows);
        results.replace("semantics-kernels.md", report.as_bytes())?;
        out!("\n{report}");
        outln!(
            "\nreport: {}",
            results.path().join("semantics-kernels.md").display()
        );
    }
    Ok(super::exit_status(failures))
}
