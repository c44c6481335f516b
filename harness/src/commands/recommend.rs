//! `bpfstorm recommend`: the strategy to pick, from a run CSV.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use bpfstorm::cli::RecommendArgs;
use bpfstorm::export::read::{newest_run, read_run};
use bpfstorm::{out, outln, recommend};

pub fn command(args: RecommendArgs) -> Result<ExitCode> {
    let path = match args.run {
        Some(p) => p,
        None => newest_run(Path::new("results"))
            .context("no results/run-*.csv: run `bpfstorm run` first, or name a run CSV")?,
    };
    let rows = read_run(&path)?;
    outln!("From {}:\n", path.display());
    out!(
        "{}",
        recommend::render_markdown(&recommend::recommend(&rows))
    );
    Ok(super::exit_status(0))
}
