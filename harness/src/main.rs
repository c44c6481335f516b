use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use bpfstorm::cli::{
    Cli, CollateralArgs, Command, CompareArgs, KernelArgs, ProbeArgs, RecommendArgs, RunArgs,
    SemanticsArgs,
};
use bpfstorm::export::csv::{CsvReport, ProbeRow, RunInfo};
use bpfstorm::export::read::{read_rows, read_run, ReadError};
use bpfstorm::guest::{self, Guest, GuestError, GuestRun, Scratch};
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
    let guests = Guest::prepare(&args.kernels.kernel, &args.results_dir)?;
    let backends = backends::by_names(&args.backend)?;
    let strategies = plan::strategies(&args.attach, &args.map, &args.update)?;
    let workers = match args.workers {
        Some(w) => w,
        None => std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .try_into()?,
    };
    let inside = guest::inside();
    let spec = StormSpec::new(
        workers,
        args.execs(inside),
        args.target,
        args.spawn,
        std::time::Duration::from_secs(args.timeout),
    )?;
    let opts = RunOptions {
        backends,
        strategies,
        filter: args.filter.into(),
        spec,
        repeat: args.repeat(inside),
        paired_baseline: !inside,
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
    for guest in &guests {
        if interrupted {
            break;
        }
        let got = in_guest(guest, &args.kernels, |dir| args.guest_args(dir));
        interrupted |= got.interrupted;
        let mut failed = got.failed;
        match got.read("run-", ".csv", read_run) {
            Ok(guest_rows) => {
                // A guest exits 1 when a cell failed (its rows say why);
                // anything else, or a matrix cut short, is the guest's failure.
                let wanted =
                    opts.backends.len() * opts.strategies.len() * args.repeat(true) as usize;
                let explained =
                    got.status == Some(1) && guest_rows.iter().any(|r| r.status != "ok");
                if !got.failed
                    && !got.interrupted
                    && (guest_rows.len() < wanted || !(got.status == Some(0) || explained))
                {
                    eprintln!(
                        "error: the guest on kernel {} measured {} of {wanted} cells and exited with {:?}; it printed:\n{}",
                        guest.kernel.series, guest_rows.len(), got.status, got.stdout
                    );
                    failed = true;
                }
                for mut row in guest_rows {
                    row.run_id.clone_from(&info.run_id);
                    csv.push(row.clone())?;
                    rows.push(row);
                }
            }
            Err(why) => {
                got.report(guest, &why);
                failed = true;
            }
        }
        if failed && !got.interrupted {
            guest_failures += 1;
        }
    }

    print!("{}", output::summary::render(&rows));
    println!("results: {}", csv.path().display());
    if !rows.is_empty() {
        let report = bpfstorm::export::markdown::write_report(csv.path(), &rows)
            .with_context(|| format!("writing the report beside {}", csv.path().display()))?;
        println!("report:  {} (with an SVG chart)", report.display());
    }
    if interrupted || interrupt::requested() {
        eprintln!("interrupted: the CSV holds the cells measured before the signal");
        return Ok(ExitCode::from(interrupt::exit_status()));
    }
    let failed = rows.iter().filter(|r| r.status != "ok").count();
    let refused = rows.iter().filter(|r| r.status == "unsupported").count();
    if refused > 0 {
        eprintln!(
            "{refused} cell(s) refused by their kernel (`unsupported here` above); \
             `--kernel 6.1,6.12` runs them in Debian guest kernels"
        );
    }
    if failed > refused {
        eprintln!(
            "{} cell(s) could not be measured; see the errors above",
            failed - refused
        );
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
    let guests = Guest::prepare(&args.kernels.kernel, &args.results_dir)?;
    let backends = backends::by_names(&args.backend)?;
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
    for guest in guests.iter().take_while(|_| !interrupt::requested()) {
        println!("\n== {} ==", guest.describe());
        let got = in_guest(guest, &args.kernels, |dir| args.guest_args(dir));
        // The guest's own results path is gone with its scratch folder.
        for line in got.stdout.lines().filter(|l| !l.starts_with("results: ")) {
            println!("{line}");
        }
        match got.read("probe-", ".csv", read_rows::<ProbeRow>) {
            Ok(guest_rows) => {
                for mut row in guest_rows {
                    row.run_id.clone_from(&run.run_id);
                    csv.push(row)?;
                }
            }
            Err(why) => got.report(guest, &why),
        }
        if got.failed || got.status != Some(0) {
            failures += 1;
        }
    }
    println!("results: {}", csv.path().display());
    if interrupt::requested() {
        return Ok(ExitCode::from(interrupt::exit_status()));
    }
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
    let guests = Guest::prepare(&args.kernels.kernel, &args.results_dir)?;
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
        // A guest's files say so: a host may run the very same kernel.
        let stem = match host.timing.as_str() {
            "emulated" => format!("semantics-{}-guest", host.kernel),
            _ => format!("semantics-{}", host.kernel),
        };
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
    for guest in guests.iter().take_while(|_| !interrupt::requested()) {
        let got = in_guest(guest, &args.kernels, |dir| args.guest_args(dir));
        let taken = got.read("semantics-", ".csv", |csv| {
            let guest_rows = read_rows::<semantics::SemanticsRow>(csv)?;
            let md = csv.with_extension("md");
            for file in [md.as_path(), csv] {
                let to = args.results_dir.join(file.file_name().unwrap_or_default());
                std::fs::copy(file, &to).map_err(|source| ReadError::Io {
                    path: to.clone(),
                    source,
                })?;
            }
            println!(
                "report: {} ({})",
                args.results_dir
                    .join(md.file_name().unwrap_or_default())
                    .display(),
                guest.describe()
            );
            Ok(guest_rows)
        });
        match taken {
            Ok(guest_rows) => rows.extend(guest_rows),
            Err(why) => got.report(guest, &why),
        }
        if got.failed || got.status != Some(0) {
            failures += 1;
        }
    }
    if interrupt::requested() {
        eprintln!("interrupted: no report across kernels written");
        return Ok(ExitCode::from(interrupt::exit_status()));
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
    let mut report = String::new();
    let mut regressions = 0;
    if args.by_kernel {
        let mut rows = base;
        for path in &args.new {
            rows.extend(read_run(path)?);
        }
        report = compare::render_by_kernel(&rows);
    } else {
        for path in &args.new {
            let new = read_run(path)?;
            let changes = compare::compare(&base, &new, args.threshold);
            regressions += changes.iter().filter(|c| c.verdict.is_regression()).count();
            let title = format!("{} vs {}", args.base.display(), path.display());
            report.push_str(&compare::render_markdown(&title, &changes, args.threshold));
            report.push('\n');
        }
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

/// What came back from one guest.
struct FromGuest {
    scratch: Option<Scratch>,
    status: Option<i32>,
    stdout: String,
    /// It did not boot, or did not finish (the error was printed).
    failed: bool,
    interrupted: bool,
}

/// Boots `guest` and runs bpfstorm `args(its results folder)` there,
/// printing what went wrong; whatever the guest wrote stays readable.
fn in_guest(
    guest: &Guest,
    kernels: &KernelArgs,
    args: impl FnOnce(&Path) -> Vec<OsString>,
) -> FromGuest {
    eprintln!("{}: booting...", guest.describe());
    let mut got = FromGuest {
        scratch: None,
        status: None,
        stdout: String::new(),
        failed: false,
        interrupted: false,
    };
    match guest.bpfstorm(args, kernels.guest_limit()) {
        Err(e) => {
            eprintln!("error: {e}");
            got.failed = true;
        }
        Ok(GuestRun { scratch, outcome }) => {
            got.scratch = Some(scratch);
            match outcome {
                Ok(out) => {
                    got.status = out.status;
                    got.stdout = out.stdout;
                }
                Err(GuestError::Interrupted) => got.interrupted = true,
                Err(e) => {
                    eprintln!("error: {e} (keeping what it measured before)");
                    got.failed = true;
                }
            }
        }
    }
    got
}

impl FromGuest {
    /// Reads the guest's `<prefix>*<suffix>` file with `read`.
    fn read<T>(
        &self,
        prefix: &str,
        suffix: &str,
        read: impl FnOnce(&Path) -> Result<T, ReadError>,
    ) -> Result<T, String> {
        let file = self
            .scratch
            .as_ref()
            .and_then(|s| s.file(prefix, suffix))
            .ok_or_else(|| format!("it wrote no {prefix}*{suffix}"))?;
        if std::fs::metadata(&file).is_ok_and(|m| m.len() == 0) {
            return Err("it stopped before writing its first row".into());
        }
        read(&file).map_err(|e| e.to_string())
    }

    /// Says why nothing of the guest's could be taken in, unless its
    /// failure was already reported.
    fn report(&self, guest: &Guest, why: &str) {
        if self.failed || self.interrupted {
            return;
        }
        eprintln!(
            "error: the guest on kernel {} (exit status {:?}): {why}; it printed:\n{}",
            guest.kernel.series, self.status, self.stdout
        );
    }
}
