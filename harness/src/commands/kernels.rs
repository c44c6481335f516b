//! A command on the host, then on each guest kernel in turn: the loop, and
//! when a guest counts as failed, written once for every command.

use std::ffi::OsString;
use std::path::Path;

use anyhow::Result;
use bpfstorm::cli::KernelArgs;
use bpfstorm::errln;
use bpfstorm::export::read::ReadError;
use bpfstorm::guest::{Guest, GuestError, GuestRun, Scratch};
use bpfstorm::{interrupt, output};

/// What a command does on each kernel.
pub trait OnKernels {
    type Row;
    /// The guest writes its rows to `<GUEST_CSV>*.csv`.
    const GUEST_CSV: &'static str;
    /// Measures on the host.
    fn host(&mut self) -> Result<()>;
    /// bpfstorm's arguments in a guest that writes into `results_dir`.
    fn guest_args(&self, results_dir: &Path) -> Vec<OsString>;
    /// The rows a complete guest run writes, at least.
    fn expected_rows(&self) -> usize;
    /// Reads the guest's CSV (and whatever it wrote beside it); `stdout` is
    /// what it printed.
    fn read_guest(
        &mut self,
        guest: &Guest,
        csv: &Path,
        stdout: &str,
    ) -> Result<Vec<Self::Row>, ReadError>;
    /// Whether `rows` say why the guest exited 1 (a cell failed there, and
    /// its row says why), so exit status 1 is not the guest's own failure.
    /// Commands whose guests exit 1 only when they failed keep `false`.
    fn explain_exit_1(&self, _rows: &[Self::Row]) -> bool {
        false
    }
    /// Takes in one guest row.
    fn keep(&mut self, row: Self::Row);
    /// Whether to stop before the next guest (beyond an interrupt).
    fn stopped(&self) -> bool {
        false
    }
}

/// Runs `command` on the host (if asked) and then in each guest; returns how
/// many guests failed (each said why on stderr). Rows a failed guest wrote
/// before failing are kept.
pub fn on_kernels<C: OnKernels>(
    command: &mut C,
    kernels: &KernelArgs,
    guests: &[Guest],
) -> Result<usize> {
    if kernels.host() {
        command.host()?;
    }
    let mut failures = 0;
    for guest in guests {
        if interrupt::requested() || command.stopped() {
            break;
        }
        let got = in_guest(guest, kernels, |dir| command.guest_args(dir));
        let mut failed = got.failed;
        match got.read(C::GUEST_CSV, ".csv", |csv| {
            command.read_guest(guest, csv, &got.stdout)
        }) {
            Ok(rows) => {
                let wanted = command.expected_rows();
                let exited_well = got.status == Some(0)
                    || (got.status == Some(1) && command.explain_exit_1(&rows));
                if !got.failed && !got.interrupted && (rows.len() < wanted || !exited_well) {
                    errln!(
                        "error: the guest on kernel {} wrote {} of {wanted} rows and exited with {:?}; it printed:\n{}",
                        guest.kernel.series, rows.len(), got.status, got.stdout
                    );
                    failed = true;
                }
                for row in rows {
                    command.keep(row);
                }
            }
            Err(why) => {
                got.report(guest, &why);
                failed = true;
            }
        }
        if failed && !got.interrupted {
            failures += 1;
        }
    }
    Ok(failures)
}

/// What came back from one guest.
struct FromGuest {
    scratch: Option<Scratch>,
    status: Option<i32>,
    stdout: String,
    /// It did not boot, or did not finish (the error was printed).
    failed: bool,
    interrupted: bool,
}

/// Boots `guest` and runs bpfstorm `args(its results folder)` there,
/// printing what went wrong; whatever the guest wrote stays readable.
fn in_guest(
    guest: &Guest,
    kernels: &KernelArgs,
    args: impl FnOnce(&Path) -> Vec<OsString>,
) -> FromGuest {
    errln!("{}: booting...", guest.describe());
    let mut got = FromGuest {
        scratch: None,
        status: None,
        stdout: String::new(),
        failed: false,
        interrupted: false,
    };
    // The guest prints no progress of its own: show that it is still going.
    let spinner = output::progress::spinner(format!(
        "kernel {}: booting and running in the guest (limit {} s)",
        guest.kernel.series, kernels.guest_timeout
    ));
    let ran = guest.bpfstorm(args, kernels.guest_limit());
    spinner.finish_and_clear();
    match ran {
        Err(e) => {
            errln!("error: {e}");
            got.failed = true;
        }
        Ok(GuestRun { scratch, outcome }) => {
            got.scratch = Some(scratch);
            match outcome {
                Ok(out) => {
                    got.status = out.status;
                    got.stdout = out.stdout;
                }
                Err(GuestError::Interrupted) => got.interrupted = true,
                Err(e) => {
                    errln!("error: {e} (keeping what it measured before)");
                    got.failed = true;
                }
            }
        }
    }
    got
}

impl FromGuest {
    /// Reads the guest's `<prefix>*<suffix>` file with `read`.
    fn read<T>(
        &self,
        prefix: &str,
        suffix: &str,
        read: impl FnOnce(&Path) -> Result<T, ReadError>,
    ) -> Result<T, String> {
        let file = self
            .scratch
            .as_ref()
            .and_then(|s| s.file(prefix, suffix))
            .ok_or_else(|| format!("it wrote no {prefix}*{suffix}"))?;
        if std::fs::metadata(&file).is_ok_and(|m| m.len() == 0) {
            return Err("it stopped before writing its first row".into());
        }
        read(&file).map_err(|e| e.to_string())
    }

    /// Says why nothing of the guest's could be taken in, unless its
    /// failure was already reported.
    fn report(&self, guest: &Guest, why: &str) {
        if self.failed || self.interrupted {
            return;
        }
        errln!(
            "error: the guest on kernel {} (exit status {:?}): {why}; it printed:\n{}",
            guest.kernel.series,
            self.status,
            self.stdout
        );
    }
}
