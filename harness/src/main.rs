mod commands;

use std::process::ExitCode;

use anyhow::{Context, Result};
use bpfstorm::cli::{Cli, Command};
use bpfstorm::{errln, interrupt};
use clap::Parser;

fn main() -> ExitCode {
    match dispatch(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            if let Some(usage) = e.downcast_ref::<clap::Error>() {
                usage.exit();
            }
            errln!("error: {}", causes(&e));
            commands::exit_status(1)
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    if cli.command.needs_kernel() {
        commands::prepare_kernel()?;
    }
    interrupt::install().context("installing the Ctrl-C handler")?;
    match cli.command {
        Command::Run(args) => commands::run::command(args),
        Command::Probe(args) => commands::probe::command(args),
        Command::Collateral(args) => commands::collateral::command(args),
        Command::Semantics(args) => commands::semantics::command(args),
        Command::Compare(args) => commands::compare::command(args),
        Command::Recommend(args) => commands::recommend::command(args),
        Command::Report(args) => commands::report::command(args),
    }
}

/// The error and its causes, each said once: many errors already quote
/// their source in their own message.
fn causes(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}
