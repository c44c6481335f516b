//! `bpfstorm recommend`: the strategy to pick, from a run CSV.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use bpfstorm::cli::{Format, RecommendArgs};
use bpfstorm::export::escape::terminal;
use bpfstorm::export::read::{newest_run, read_run};
use bpfstorm::{out, outln, recommend};

pub fn command(args: RecommendArgs) -> Result<ExitCode> {
    let path = match args.run {
        Some(p) => p,
        None => newest_run(Path::new("results"))
            .context("no results/run-*.csv: run `bpfstorm run` first, or name a run CSV")?,
    };
    let rows = read_run(&path)?;
    let advice = recommend::recommend(&rows);
    outln!("From {}:\n", terminal(&path.display().to_string()));
    out!(
        "{}",
        match args.format {
            Format::Terminal => recommend::render_terminal(&advice),
            Format::Md => recommend::render_markdown(&advice),
        }
    );
    Ok(super::exit_status(0))
}
