//! What the tests share: bpfstorm run as a user runs it, and what the
//! backends' tests expect of bpftrace.
// Each test crate uses its own subset.
#![allow(dead_code)]

use std::process::{Command, Output};

/// The bpfstorm binary with `args`, not started yet.
pub fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bpfstorm"));
    cmd.args(args);
    cmd
}

/// Runs bpfstorm with `args` to the end.
pub fn bpfstorm(args: &[&str]) -> Output {
    command(args).output().expect("running bpfstorm")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `bpfstorm run` of one cell (array/atomic, one repetition) with `execs`
/// execs per worker, writing into `results_dir`; not started yet.
pub fn one_cell_run(results_dir: &std::path::Path, execs: &str) -> Command {
    command(&[
        "run",
        "--repeat",
        "1",
        "--map",
        "array",
        "--update",
        "atomic",
        "--execs",
        execs,
        "--results-dir",
        results_dir.to_str().expect("a UTF-8 path"),
    ])
}

/// Whether bpftrace has a probe for `attach` (tracepoints, the uprobe,
/// kprobe, fentry/fexit as kfunc/kretfunc): the tests' own account of what
/// backends/bpftrace/src/script.rs writes.
pub fn bpftrace_has_probe(attach: bpfstorm_common::AttachPoint) -> bool {
    use bpfstorm_common::AttachPoint::*;
    matches!(
        attach,
        TpSysEnterExecve
            | TpSysEnterExecveat
            | TpSchedProcessExec
            | UprobeLibcExecve
            | KprobeSysExecve
            | FentrySysExecve
            | FexitSysExecve
    )
}
