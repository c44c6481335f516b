use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use bpfstorm::cli::{Cli, Command, ProbeArgs, RunArgs};
use bpfstorm::run::{run, RunOptions};
use bpfstorm::storm::StormSpec;
use bpfstorm::{backends, interrupt, output, plan, probe};
use clap::Parser;

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<ExitCode> {
    let cli = Cli::parse();
    if !nix::unistd::geteuid().is_root() {
        bail!("bpfstorm loads BPF programs and creates cgroups: run it as root (sudo)");
    }
    interrupt::install().context("installing the Ctrl-C handler")?;
    match cli.command {
        Command::Run(args) => run_command(args),
        Command::Probe(args) => probe_command(args),
    }
}

fn run_command(args: RunArgs) -> Result<ExitCode> {
    let backends = args
        .backend
        .iter()
        .map(|name| backends::by_name(name))
        .collect::<Result<Vec<_>, _>>()?;
    let strategies = plan::strategies(&args.attach, &args.map, &args.update)?;
    let workers = match args.workers {
        Some(w) => w,
        None => std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .try_into()?,
    };
    let spec = StormSpec::new(
        workers,
        args.execs,
        args.target,
        args.spawn,
        std::time::Duration::from_secs(args.timeout),
    )?;
    let opts = RunOptions {
        backends,
        strategies,
        filter: args.filter.into(),
        spec,
        results_dir: args.results_dir,
    };

    let bar = output::progress::matrix_bar(opts.cells());
    let outcome = run(&opts, &mut |cell| {
        bar.set_message(cell.to_string());
        bar.inc(1);
    });
    bar.finish_and_clear();
    let outcome = outcome?;

    for path in &outcome.swept {
        eprintln!(
            "removed a stale storm cgroup left by a killed run: {}",
            path.display()
        );
    }
    print!("{}", output::summary::render(&outcome.rows));
    println!("results: {}", outcome.csv.display());
    if outcome.interrupted {
        eprintln!("interrupted: the CSV holds the cells measured before the signal");
        return Ok(ExitCode::from(130));
    }
    let failed = outcome.rows.iter().filter(|r| r.status != "ok").count();
    if failed > 0 {
        eprintln!("{failed} cell(s) could not be measured; see the errors above");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn probe_command(args: ProbeArgs) -> Result<ExitCode> {
    for (fact, answer) in probe::facts() {
        println!("{fact}: {answer}");
    }
    println!();
    let mut probes = Vec::new();
    for name in &args.backend {
        probes.extend(probe::probe(backends::by_name(name)?.as_ref()));
    }
    print!("{}", probe::render(&probes));
    Ok(ExitCode::SUCCESS)
}
