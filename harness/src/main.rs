use std::process::ExitCode;

use anyhow::{Context, Result};
use bpfstorm::cli::{
    Cli, CollateralArgs, Command, CompareArgs, ProbeArgs, RecommendArgs, RunArgs, SemanticsArgs,
    GUEST_EXECS,
};
use bpfstorm::export::csv::{CsvReport, ProbeRow, RunInfo};
use bpfstorm::export::read::{read_rows, read_run};
use bpfstorm::guest::{self, Guest, GuestError};
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
    let guests = Guest::prepare(&args.kernels.kernel)?;
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
    let in_guest = guest::inside();
    let execs = args
        .execs
        .unwrap_or(if in_guest { GUEST_EXECS } else { 1000 });
    let spec = StormSpec::new(
        workers,
        execs,
        args.target,
        args.spawn,
        std::time::Duration::from_secs(args.timeout),
    )?;
    let opts = RunOptions {
        backends,
        strategies,
        filter: args.filter.into(),
        spec,
        repeat: args.repeat.unwrap_or(if in_guest { 1 } else { 3 }),
        paired_baseline: !in_guest,
    };

    let info = RunInfo::start();
    let mut csv = CsvReport::create(&args.results_dir, &format!("run-{}.csv", info.run_id))?;
    let mut rows = Vec::new();
    let mut interrupted = false;
    let mut guest_failures = 0;
    if args.kernels.host() {
        let bar = output::progress::matrix_bar(opts.cells());
        let outcome = run(&opts, &info, &mut csv, &mut |cell| {
            bar.set_message(cell.to_string());
            bar.inc(1);
        });
        bar.finish_and_clear();
        let outcome = outcome?;
        for path in &outcome.swept {
            eprintln!("removed what a killed run left behind: {}", path.display());
        }
        rows.extend(outcome.rows);
        interrupted = outcome.interrupted;
    }
    for guest in guests.iter().take_while(|_| !interrupted) {
        eprintln!("{}: booting, then the run inside...", guest.describe());
        let ran = guest.bpfstorm(
            &args.results_dir,
            |dir| args.guest_args(dir),
            args.kernels.guest_limit(),
        );
        let (out, scratch) = match ran {
            Err(GuestError::Interrupted) => {
                interrupted = true;
                break;
            }
            Err(e) => {
                eprintln!("error: {e}");
                guest_failures += 1;
                continue;
            }
            Ok(done) => done,
        };
        let Some(path) = scratch.file("run-", ".csv") else {
            eprintln!(
                "error: the guest on kernel {} wrote no run CSV (exit status {:?}); it printed:\n{}",
                guest.kernel.series, out.status, out.stdout
            );
            guest_failures += 1;
            continue;
        };
        for mut row in read_run(&path)? {
            row.run_id.clone_from(&info.run_id);
            csv.push(row.clone())?;
            rows.push(row);
        }
    }

    print!("{}", output::summary::render(&rows));
    println!("results: {}", csv.path().display());
    if !rows.is_empty() {
        let report = bpfstorm::export::markdown::write_report(csv.path(), &rows)
            .with_context(|| format!("writing the report beside {}", csv.path().display()))?;
        println!("report:  {} (with an SVG chart)", report.display());
    }
    if interrupted {
        eprintln!("interrupted: the CSV holds the cells measured before the signal");
        return Ok(ExitCode::from(interrupt::exit_status()));
    }
    let failed = rows.iter().filter(|r| r.status != "ok").count();
    if failed > 0 {
        eprintln!("{failed} cell(s) could not be measured; see the errors above");
    }
    if guest_failures > 0 {
        eprintln!("{guest_failures} guest(s) did not run; see the errors above");
    }
    Ok(if failed + guest_failures > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn probe_command(args: ProbeArgs) -> Result<ExitCode> {
    let guests = Guest::prepare(&args.kernels.kernel)?;
    let backends = args
        .backend
        .iter()
        .map(|name| backends::by_name(name))
        .collect::<Result<Vec<_>, _>>()?;
    let run = RunInfo::start();
    let mut csv = CsvReport::create(&args.results_dir, &format!("probe-{}.csv", run.run_id))?;
    let mut failures = 0;
    if args.kernels.host() {
        for (fact, answer) in probe::facts() {
            println!("{fact}: {answer}");
        }
        println!();
        let mut probes = Vec::new();
        for backend in &backends {
            let found = probe::probe(backend.as_ref());
            for row in probe::rows(&run, backend.as_ref(), &found) {
                csv.push(row)?;
            }
            probes.extend(found);
        }
        print!("{}", probe::render(&probes));
    }
    for guest in &guests {
        println!("\n== {} ==", guest.describe());
        let ran = guest.bpfstorm(
            &args.results_dir,
            |dir| {
                vec![
                    "probe".into(),
                    "--backend".into(),
                    args.backend.join(",").into(),
                    "--results-dir".into(),
                    dir.into(),
                ]
            },
            args.kernels.guest_limit(),
        );
        let (out, scratch) = match ran {
            Err(GuestError::Interrupted) => return Ok(ExitCode::from(interrupt::exit_status())),
            Err(e) => {
                eprintln!("error: {e}");
                failures += 1;
                continue;
            }
            Ok(done) => done,
        };
        print!("{}", out.stdout.replace("results: ", "guest's results: "));
        match scratch.file("probe-", ".csv") {
            Some(path) => {
                for mut row in read_rows::<ProbeRow>(&path)? {
                    row.run_id.clone_from(&run.run_id);
                    csv.push(row)?;
                }
            }
            None => failures += 1,
        }
    }
    println!("results: {}", csv.path().display());
    Ok(if failures > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
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
    let guests = Guest::prepare(&args.kernels.kernel)?;
    let backend = backends::by_name(&args.backend)?;
    let attaches = if args.attach.is_empty() {
        AttachPoint::ALL.to_vec()
    } else {
        args.attach.clone()
    };
    let targets = if args.target.is_empty() {
        Target::ALL.to_vec()
    } else {
        args.target.clone()
    };
    // Fail on bad storm flags before anything is loaded.
    semantics::default_spec(targets[0], args.workers, args.execs).map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&args.results_dir)
        .with_context(|| format!("creating {}", args.results_dir.display()))?;

    let mut rows = Vec::new();
    let mut failures = 0;
    if args.kernels.host() {
        let host = Host::detect();
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
        let stem = format!("semantics-{}", host.kernel);
        let md = args.results_dir.join(format!("{stem}.md"));
        std::fs::write(&md, &report).with_context(|| format!("writing {}", md.display()))?;
        let mut csv = CsvReport::create(&args.results_dir, &format!("{stem}.csv"))?;
        for row in semantics::rows(&host, backend.as_ref(), &cells) {
            csv.push(row.clone())?;
            rows.push(row);
        }
        print!("{report}");
        println!("\nreport: {}", md.display());
    }
    for guest in &guests {
        eprintln!("{}: booting, then the matrix inside...", guest.describe());
        let ran = guest.bpfstorm(
            &args.results_dir,
            |dir| {
                let list = |items: Vec<String>| items.join(",").into();
                vec![
                    "semantics".into(),
                    "--backend".into(),
                    args.backend.clone().into(),
                    "--attach".into(),
                    list(attaches.iter().map(|a| a.to_string()).collect()),
                    "--target".into(),
                    list(targets.iter().map(|t| t.to_string()).collect()),
                    "--workers".into(),
                    args.workers.to_string().into(),
                    "--execs".into(),
                    args.execs.to_string().into(),
                    "--results-dir".into(),
                    dir.into(),
                ]
            },
            args.kernels.guest_limit(),
        );
        let (out, scratch) = match ran {
            Err(GuestError::Interrupted) => return Ok(ExitCode::from(interrupt::exit_status())),
            Err(e) => {
                eprintln!("error: {e}");
                failures += 1;
                continue;
            }
            Ok(done) => done,
        };
        let (Some(md), Some(csv)) = (
            scratch.file("semantics-", ".md"),
            scratch.file("semantics-", ".csv"),
        ) else {
            eprintln!(
                "error: the guest on kernel {} wrote no report (exit status {:?}); it printed:\n{}",
                guest.kernel.series, out.status, out.stdout
            );
            failures += 1;
            continue;
        };
        for file in [&md, &csv] {
            let to = args.results_dir.join(file.file_name().unwrap_or_default());
            std::fs::copy(file, &to).with_context(|| format!("copying {}", to.display()))?;
            if file == &md {
                println!("report: {} ({})", to.display(), guest.describe());
            }
        }
        rows.extend(read_rows::<semantics::SemanticsRow>(&csv)?);
    }
    if args.kernels.kernel.len() > 1 && !rows.is_empty() {
        let report = semantics::render_kernels(&rows);
        let md = args.results_dir.join("semantics-kernels.md");
        std::fs::write(&md, &report).with_context(|| format!("writing {}", md.display()))?;
        print!("\n{report}");
        println!("\nreport: {}", md.display());
    }
    Ok(if failures > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn compare_command(args: CompareArgs) -> Result<ExitCode> {
    let base = read_run(&args.base)?;
    if args.by_kernel {
        let mut rows = base;
        for path in &args.new {
            rows.extend(read_run(path)?);
        }
        let report = compare::render_by_kernel(&rows);
        print!("{report}");
        if let Some(path) = &args.output {
            std::fs::write(path, &report).with_context(|| format!("writing {}", path.display()))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
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
