use std::process::ExitCode;

use anyhow::{Context, Result};
use bpfstorm::cli::{
    Cli, CollateralArgs, Command, CompareArgs, ProbeArgs, RecommendArgs, RunArgs, SemanticsArgs,
};
use bpfstorm::export::csv::{CsvReport, RunInfo};
use bpfstorm::export::read::read_run;
use bpfstorm::host::Host;
use bpfstorm::run::{run, RunOptions};
use bpfstorm::storm::StormSpec;
use bpfstorm::storm::Target;
use bpfstorm::{
    backends, compare, interrupt, output, plan, privileges, probe, recommend, semantics, trigger,
};
use bpfstorm_common::{AttachPoint, Filter, MapKind, Strategy, UpdateMode};
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
    if cli.command.needs_kernel() {
        privileges::check()?;
        bpfstorm_common::btf::custom_path()?;
    }
    interrupt::install().context("installing the Ctrl-C handler")?;
    match cli.command {
        Command::Run(args) => run_command(args),
        Command::Probe(args) => probe_command(args),
        Command::Collateral(args) => collateral_command(args),
        Command::Semantics(args) => semantics_command(args),
        Command::Compare(args) => compare_command(args),
        Command::Recommend(args) => recommend_command(args),
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
        repeat: args.repeat,
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
        eprintln!("removed what a killed run left behind: {}", path.display());
    }
    print!("{}", output::summary::render(&outcome.rows));
    println!("results: {}", outcome.csv.display());
    if !outcome.rows.is_empty() {
        let report = bpfstorm::export::markdown::write_report(&outcome.csv, &outcome.rows)
            .with_context(|| format!("writing the report beside {}", outcome.csv.display()))?;
        println!("report:  {} (with an SVG chart)", report.display());
    }
    if outcome.interrupted {
        eprintln!("interrupted: the CSV holds the cells measured before the signal");
        return Ok(ExitCode::from(interrupt::exit_status()));
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
    let backends = args
        .backend
        .iter()
        .map(|name| backends::by_name(name))
        .collect::<Result<Vec<_>, _>>()?;
    let run = RunInfo::start();
    let mut csv = CsvReport::create(&args.results_dir, &format!("probe-{}.csv", run.run_id))?;
    let mut probes = Vec::new();
    for backend in &backends {
        let found = probe::probe(backend.as_ref());
        for row in probe::rows(&run, backend.as_ref(), &found) {
            csv.push(row)?;
        }
        probes.extend(found);
    }
    print!("{}", probe::render(&probes));
    println!("results: {}", csv.path().display());
    Ok(ExitCode::SUCCESS)
}

fn collateral_command(args: CollateralArgs) -> Result<ExitCode> {
    let backend = backends::by_name(&args.backend)?;
    let threads = match args.threads {
        Some(t) => t as usize,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let length = std::time::Duration::from_millis(args.round_ms);
    let bar = output::progress::matrix_bar(args.attach.len());
    let mut results = Vec::new();
    for attach in &args.attach {
        bar.set_message(attach.to_string());
        let strategy = Strategy::new(*attach, MapKind::Array, UpdateMode::Atomic, Filter::All)?;
        let measured = trigger::collateral(
            backend.as_ref(),
            &strategy,
            threads,
            args.rounds as usize,
            length,
        );
        bar.inc(1);
        if interrupt::requested() {
            break;
        }
        results.push((*attach, measured));
    }
    let bias = (!interrupt::requested())
        .then(|| trigger::stats_bias(backend.as_ref(), threads, args.rounds as usize, length));
    bar.finish_and_clear();
    println!(
        "getppid() loop on {threads} thread(s), {} interleaved pairs of {} ms rounds per hook ({} backend, array/atomic)",
        args.rounds, args.round_ms, backend.name()
    );
    println!();
    print!("{}", output::collateral::render(&results));
    match bias {
        Some(Ok(b)) => println!(
            "\nbpf_stats bias (raw_tp_sys_enter attached, stats on - off): {:+.1} ns per program run [95% CI {:+.1}, {:+.1}]{}",
            b.median,
            b.lo,
            b.hi,
            if b.lo > 0.0 || b.hi < 0.0 {
                "; ns/run figures from bpf_stats include it"
            } else {
                "; not resolvable at this noise"
            }
        ),
        Some(Err(e)) => println!("\nbpf_stats bias: not measured: {e}"),
        None => {}
    }
    if interrupt::requested() {
        return Ok(ExitCode::from(interrupt::exit_status()));
    }
    Ok(if results.iter().all(|(_, r)| r.is_ok()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn semantics_command(args: SemanticsArgs) -> Result<ExitCode> {
    let backend = backends::by_name(&args.backend)?;
    let attaches = if args.attach.is_empty() {
        AttachPoint::ALL.to_vec()
    } else {
        args.attach
    };
    let targets = if args.target.is_empty() {
        Target::ALL.to_vec()
    } else {
        args.target
    };
    // Fail on bad storm flags before anything is loaded.
    semantics::default_spec(targets[0], args.workers, args.execs).map_err(anyhow::Error::msg)?;
    let host = Host::detect();
    let output = args
        .output
        .unwrap_or_else(|| format!("results/semantics-{}.md", host.kernel).into());

    let bar = output::progress::matrix_bar(attaches.len() * targets.len());
    let spec_for = |t| semantics::default_spec(t, args.workers, args.execs);
    let cells = semantics::matrix(
        backend.as_ref(),
        &attaches,
        &targets,
        &spec_for,
        &mut |cell| {
            bar.set_message(cell.to_string());
            bar.inc(1);
        },
    );
    bar.finish_and_clear();
    if interrupt::requested() {
        eprintln!("interrupted: no report written");
        return Ok(ExitCode::from(interrupt::exit_status()));
    }
    let report = semantics::render_markdown(&host, backend.as_ref(), &targets, &cells);
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&output, &report).with_context(|| format!("writing {}", output.display()))?;
    print!("{report}");
    println!("\nreport: {}", output.display());
    Ok(ExitCode::SUCCESS)
}

fn compare_command(args: CompareArgs) -> Result<ExitCode> {
    let base = read_run(&args.base)?;
    let mut report = String::new();
    let mut regressions = 0;
    for path in &args.new {
        let new = read_run(path)?;
        let changes = compare::compare(&base, &new, args.threshold);
        regressions += changes.iter().filter(|c| c.verdict.is_regression()).count();
        let title = format!("{} vs {}", args.base.display(), path.display());
        report.push_str(&compare::render_markdown(&title, &changes, args.threshold));
        report.push('\n');
    }
    print!("{report}");
    if let Some(path) = &args.output {
        std::fs::write(path, &report).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if regressions > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn recommend_command(args: RecommendArgs) -> Result<ExitCode> {
    let path = match args.run {
        Some(p) => p,
        None => bpfstorm::export::read::newest_run(std::path::Path::new("results"))
            .context("no results/run-*.csv: run `bpfstorm run` first, or name a run CSV")?,
    };
    let rows = read_run(&path)?;
    println!("From {}:\n", path.display());
    print!(
        "{}",
        recommend::render_markdown(&recommend::recommend(&rows))
    );
    Ok(ExitCode::SUCCESS)
}
