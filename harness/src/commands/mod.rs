//! One module per command; what they share: the host-plus-guests loop
//! ([`kernels`]) and the exit status.

pub mod collateral;
pub mod compare;
pub mod kernels;
pub mod probe;
pub mod recommend;
pub mod run;
pub mod semantics;

use std::process::ExitCode;

use anyhow::{Context, Result};
use bpfstorm::{errln, interrupt, leaks, privileges};

/// Checks what loading BPF needs and removes what killed runs left behind.
pub fn prepare_kernel() -> Result<()> {
    privileges::check()?;
    bpfstorm_common::btf::custom_path()?;
    let swept = leaks::sweep_killed_runs().context("removing storm cgroups left by killed runs")?;
    for path in swept {
        errln!("removed what a killed run left behind: {}", path.display());
    }
    Ok(())
}

/// Every command's exit status: the signal's after Ctrl-C (or SIGTERM),
/// 1 when anything failed, else 0.
pub fn exit_status(failures: usize) -> ExitCode {
    if interrupt::requested() {
        ExitCode::from(interrupt::exit_status())
    } else if failures > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
