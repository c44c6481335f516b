//! `bpfstorm run`: the matrix on the host and each guest kernel, one CSV,
//! a summary and a markdown report.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use bpfstorm::cli::RunArgs;
use bpfstorm::export::csv::{CsvError, CsvReport, Row, RunInfo, Status};
use bpfstorm::export::read::{read_run, ReadError};
use bpfstorm::guest::{self, Guest};
use bpfstorm::run::{run, RunOptions};
use bpfstorm::{errln, interrupt, out, outln, output, plan};

use super::kernels::{on_kernels, OnKernels};

struct Run<'a> {
    args: &'a RunArgs,
    opts: RunOptions,
    info: RunInfo,
    csv: CsvReport,
    rows: Vec<Row>,
    /// Why the CSV stopped taking rows: nothing more is measured.
    unsaved: Option<CsvError>,
    /// What the calibrations' storms took, beside the rows' own.
    calibration_storms: Duration,
}

impl OnKernels for Run<'_> {
    type Row = Row;
    const GUEST_CSV: &'static str = "run-";

    fn host(&mut self) -> Result<()> {
        let bar = output::progress::matrix_bar(self.opts.cells());
        let outcome = run(&self.opts, &self.info, &mut self.csv, &mut |cell| {
            bar.set_message(cell.to_string());
            bar.inc(1);
        });
        bar.finish_and_clear();
        self.rows.extend(outcome.rows);
        self.unsaved = outcome.unsaved;
        self.calibration_storms += outcome.calibration_storms;
        Ok(())
    }

    fn guest_args(&self, results_dir: &Path) -> Vec<OsString> {
        self.args.guest_args(results_dir)
    }

    fn expected_rows(&self) -> usize {
        plan::run_options(self.args, true).map_or(0, |guest| guest.cells())
    }

    fn read_guest(&mut self, _: &Guest, csv: &Path, _: &str) -> Result<Vec<Row>, ReadError> {
        read_run(csv)
    }

    fn explain_exit_1(&self, rows: &[Row]) -> bool {
        rows.iter().any(|r| r.status != Status::Ok)
    }

    fn keep(&mut self, mut row: Row) {
        row.run_id.clone_from(&self.info.run_id);
        if self.unsaved.is_none() {
            self.unsaved = self.csv.push(row.clone()).err();
        }
        self.rows.push(row);
    }

    fn stopped(&self) -> bool {
        self.unsaved.is_some()
    }
}

pub fn command(args: RunArgs) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let guests = Guest::prepare(&args.kernels.kernel, &args.results_dir)?;
    let opts =
        plan::run_options(&args, guest::inside()).map_err(|e| super::usage_error("run", e))?;
    let info = RunInfo::start();
    let csv = CsvReport::create(&args.results_dir, &format!("run-{}.csv", info.run_id))?;
    let mut run = Run {
        args: &args,
        opts,
        info,
        csv,
        rows: Vec::new(),
        unsaved: None,
        calibration_storms: Duration::ZERO,
    };
    let guest_failures = on_kernels(&mut run, &args.kernels, &guests)?;
    let Run {
        csv,
        rows,
        unsaved,
        calibration_storms,
        ..
    } = run;

    // Files first: a closed stdout must not cost the report.
    let report = (!rows.is_empty())
        .then(|| bpfstorm::export::markdown::write_report(csv.dir(), &csv.path(), &rows))
        .transpose();
    let view = output::summary::View {
        columns: (!args.wide).then_some(args.columns),
        paint: output::table::Paint::for_stdout(),
    };
    out!("{}", output::summary::render(&rows, view));
    outln!(
        "{}",
        time_spent(
            started.elapsed().as_secs_f64(),
            &rows,
            calibration_storms,
            bpfstorm::storm::time_starting()
        )
    );
    outln!("results: {}", csv.path().display());
    let mut unwritten = 0;
    if let Some(e) = &unsaved {
        errln!("error: the CSV holds the cells before this one only: {e}");
        unwritten += 1;
    }
    match report {
        Ok(Some(report)) => outln!("report:  {} (with SVG charts)", report.display()),
        Ok(None) => {}
        Err(e) => {
            errln!(
                "error: writing the report beside {}: {e}",
                csv.path().display()
            );
            unwritten += 1;
        }
    }
    unwritten += super::report::export(&args.export, &csv.path(), &rows);
    if interrupt::requested() {
        errln!("interrupted: the CSV holds the cells measured before the signal");
        return Ok(super::exit_status(0));
    }
    let disturbed = rows.iter().filter(|r| !r.interference.is_empty()).count();
    if disturbed > 0 {
        errln!(
            "warning: {disturbed} cell(s) shared their hook with other work (column `interference`): \
             their counts are exact, their timings include that work; measure on a quiet machine"
        );
    }
    let failed = rows.iter().filter(|r| r.status != Status::Ok).count();
    let refused = rows
        .iter()
        .filter(|r| r.status == Status::Unsupported)
        .count();
    if refused > 0 {
        errln!(
            "{refused} cell(s) refused by their kernel or backend (`unsupported here` above); \
             `--kernel 6.1,6.12` runs what a kernel refused in Debian guest kernels"
        );
    }
    if failed > refused {
        errln!(
            "{} cell(s) could not be measured; see the errors above",
            failed - refused
        );
    }
    if guest_failures > 0 {
        errln!("{guest_failures} guest(s) did not run; see the errors above");
    }
    Ok(super::exit_status(failed + guest_failures + unwritten))
}

/// The run's wall time so far (`age`, from when the command began: a
/// script that execs bpfstorm must not count its own build) against the
/// time its storms took (with and without the probe, and those of the
/// calibrations): what is left is the harness's fixed cost (loading and
/// attaching, settling, sampling, reports).
fn time_spent(
    age: f64,
    rows: &[Row],
    calibration_storms: Duration,
    starting_workers: Duration,
) -> String {
    let storms: f64 = rows
        .iter()
        .map(|r| r.storm_wall_s.unwrap_or(0.0) + r.baseline_wall_s.unwrap_or(0.0))
        .sum::<f64>()
        + calibration_storms.as_secs_f64();
    let rest = (age - storms).max(0.0);
    let starting = starting_workers.as_secs_f64().min(rest);
    format!(
        "time: {age:.1} s in all: {storms:.1} s in storms and hot rounds (calibrations included), \
         {rest:.1} s ({:.0}%)\n  the harness's own: {starting:.2} s starting storm workers (kept \
         between storms, each joins\n  the storm's cgroup once: an RCU grace period), {:.1} s \
         loading, attaching, unloading, noise samples,\n  reports",
        100.0 * rest / age.max(f64::MIN_POSITIVE),
        rest - starting,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_line_counts_both_arms_and_the_calibrations_as_storms() {
        let row = Row {
            storm_wall_s: Some(3.0),
            baseline_wall_s: Some(2.5),
            ..Row::default()
        };
        let hot = Row {
            storm_wall_s: Some(1.5),
            ..Row::default()
        };
        let line = time_spent(
            10.0,
            &[row, hot],
            Duration::from_secs(2),
            Duration::from_millis(400),
        );
        assert!(
            line.starts_with("time: 10.0 s in all: 9.0 s in storms"),
            "{line}"
        );
        assert!(
            line.contains(", 1.0 s (10%)\n  the harness's own: 0.40 s starting storm workers"),
            "{line}"
        );
        assert!(line.contains("), 0.6 s loading, attaching"), "{line}");
        // The summary fits 100 columns.
        assert!(line.lines().all(|l| l.len() <= 100), "{line}");
        // Storms longer than the clock (it cannot be): no negative rest.
        let line = time_spent(1.0, &[], Duration::from_secs(2), Duration::from_secs(1));
        assert!(line.contains(", 0.0 s (0%)"), "{line}");
        assert!(line.contains("own: 0.00 s starting"), "{line}");
    }
}
