//! One module per command; what they share: the host-plus-guests loop
//! ([`kernels`]), files the user names, and the exit status.

pub mod collateral;
pub mod compare;
pub mod kernels;
pub mod probe;
pub mod recommend;
pub mod report;
pub mod run;
pub mod semantics;

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use bpfstorm::cli::Cli;
use bpfstorm::secure_fs::Dir;
use bpfstorm::{errln, interrupt, leaks, privileges};
use clap::error::ErrorKind;
use clap::CommandFactory;

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

/// Flags that are each valid but do not go together (a mode a map cannot
/// take, say): a usage error like a bad value, so `main` exits 2 with
/// clap's hint for `subcommand`.
pub fn usage_error(subcommand: &str, why: impl std::fmt::Display) -> anyhow::Error {
    let mut cli = Cli::command();
    cli.build();
    match cli.find_subcommand_mut(subcommand) {
        Some(command) => command.error(ErrorKind::ArgumentConflict, why),
        None => cli.error(ErrorKind::ArgumentConflict, why),
    }
    .into()
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

/// The folder of the file at `path` the user named, opened, and the
/// file's name in it.
pub fn named_file(path: &Path) -> Result<(Dir, &str)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} names no file", path.display()))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((Dir::open(parent)?, name))
}

/// Writes `bytes` to the file at `path` the user named, replacing it (a
/// symlink there is replaced, not followed), in a folder no other user can
/// change.
pub fn write_named(path: &Path, bytes: &[u8]) -> Result<()> {
    let (dir, name) = named_file(path)?;
    dir.replace(name, bytes)?;
    Ok(())
}
