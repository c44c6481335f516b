//! What the CLI tests share: bpfstorm run as a user runs it.
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
