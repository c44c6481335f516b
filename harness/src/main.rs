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
use bpfstorm::secure_fs::Dir;
use bpfstorm::storm::StormSpec;
use bpfstorm::storm::Target;
use bpfstorm::{
    backends, compare, interrupt, leaks, output, plan, privileges, probe, recommend, semantics,
    trigger,
};
use bpfstorm::{errln, out, outln};
use bpfstorm_common::{AttachPoint, Filter, MapKind, Strategy, UpdateMode};
use clap::Parser;

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            errln!("error: {}", causes(&e));
            if interrupt::requested() {
                ExitCode::from(interrupt::exit_status())
            } else {
                ExitCode::FAILURE
            }
        }
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

fn real_main() -> Result<ExitCode> {
    let cli = Cli::parse();
    if cli.command.needs_kernel() {
        privileges::check()?;
        bpfstorm_common::btf::custom_path()?;
        let swept =
            leaks::sweep_killed_runs().context("removing storm cgroups left by killed runs")?;
        for path in swept {
            errln!("removed what a killed run left behind: {}", path.display());
        }
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
    let mut unsaved = None;
    let mut guest_failures = 0;
    if args.kernels.host() {
        let bar = output::progress::matrix_bar(opts.cells());
        let outcome = run(&opts, &info, &mut csv, &mut |cell| {
            bar.set_message(cell.to_string());
            bar.inc(1);
        });
        bar.finish_and_clear();
        rows.extend(outcome.rows);
        interrupted = outcome.interrupted;
        unsaved = outcome.unsaved;
    }
    for guest in &guests {
        if interrupted || unsaved.is_some() {
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
                    errln!(
                        "error: the guest on kernel {} measured {} of {wanted} cells and exited with {:?}; it printed:\n{}",
                        guest.kernel.series, guest_rows.len(), got.status, got.stdout
                    );
                    failed = true;
                }
                for mut row in guest_rows {
                    row.run_id.clone_from(&info.run_id);
                    if unsaved.is_none() {
                        unsaved = csv.push(row.clone()).err();
                    }
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

    // Files first: a closed stdout must not cost the report.
    let report = (!rows.is_empty())
        .then(|| bpfstorm::export::markdown::write_report(csv.dir(), &csv.path(), &rows))
        .transpose();
    out!("{}", output::summary::render(&rows));
    outln!("results: {}", csv.path().display());
    let mut unwritten = false;
    if let Some(e) = &unsaved {
        errln!("error: the CSV holds the cells before this one only: {e}");
        unwritten = true;
    }
    match report {
        Ok(Some(report)) => outln!("report:  {} (with an SVG chart)", report.display()),
        Ok(None) => {}
        Err(e) => {
            errln!(
                "error: writing the report beside {}: {e}",
                csv.path().display()
            );
            unwritten = true;
        }
    }
    if interrupted || interrupt::requested() {
        errln!("interrupted: the CSV holds the cells measured before the signal");
        return Ok(ExitCode::from(interrupt::exit_status()));
    }
    let disturbed = rows.iter().filter(|r| !r.interference.is_empty()).count();
    if disturbed > 0 {
        errln!(
            "warning: {disturbed} cell(s) shared their hook with other work (column `interference`): \
             their counts are exact, their timings include that work; measure on a quiet machine"
        );
    }
    let failed = rows.iter().filter(|r| r.status != "ok").count();
    let refused = rows.iter().filter(|r| r.status == "unsupported").count();
    if refused > 0 {
        errln!(
            "{refused} cell(s) refused by their kernel (`unsupported here` above); \
             `--kernel 6.1,6.12` runs them in Debian guest kernels"
        );
    }
    if failed > refused {
        errln!(
            "{} cell(s) could not be measured; see the errors above",
            failed - refused
        );
    }
    if guest_failures > 0 {
        errln!("{guest_failures} guest(s) did not run; see the errors above");
    }
    Ok(if failed + guest_failures > 0 || unwritten {
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
            outln!("{fact}: {answer}");
        }
        outln!();
        let mut probes = Vec::new();
        for backend in &backends {
            let found = probe::probe(backend.as_ref());
            for row in probe::rows(&run, backend.as_ref(), &found) {
                csv.push(row)?;
            }
            probes.extend(found);
        }
        out!("{}", probe::render(&probes));
    }
    for guest in guests.iter().take_while(|_| !interrupt::requested()) {
        outln!("\n== {} ==", guest.describe());
        let got = in_guest(guest, &args.kernels, |dir| args.guest_args(dir));
        // The guest's own results path is gone with its scratch folder.
        for line in got.stdout.lines().filter(|l| !l.starts_with("results: ")) {
            outln!("{line}");
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
    outln!("results: {}", csv.path().display());
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
    outln!(
        "getppid() loop on {threads} thread(s), {} interleaved pairs of {} ms rounds per hook ({} backend, array/atomic)",
        args.rounds, args.round_ms, backend.name()
    );
    outln!();
    out!("{}", output::collateral::render(&results));
    match bias {
        Some(Ok(b)) => outln!(
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
        Some(Err(e)) => outln!("\nbpf_stats bias: not measured: {e}"),
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
    let results = Dir::results(&args.results_dir)?;

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
            errln!("interrupted: no report written");
            return Ok(ExitCode::from(interrupt::exit_status()));
        }
        let report = semantics::render_markdown(&host, backend.as_ref(), &targets, &cells);
        // A guest's files say so: a host may run the very same kernel.
        let stem = match host.timing.as_str() {
            "emulated" => format!("semantics-{}-guest", host.kernel),
            _ => format!("semantics-{}", host.kernel),
        };
        results.replace(&format!("{stem}.md"), report.as_bytes())?;
        let mut csv = CsvReport::replace_in(results.try_clone()?, &format!("{stem}.csv"))?;
        for row in semantics::rows(&host, backend.as_ref(), &cells) {
            csv.push(row.clone())?;
            rows.push(row);
        }
        out!("{report}");
        outln!(
            "\nreport: {}",
            results.path().join(format!("{stem}.md")).display()
        );
    }
    for guest in guests.iter().take_while(|_| !interrupt::requested()) {
        let got = in_guest(guest, &args.kernels, |dir| args.guest_args(dir));
        let taken = got.read("semantics-", ".csv", |csv| {
            let guest_rows = read_rows::<semantics::SemanticsRow>(csv)?;
            let md = csv.with_extension("md");
            for file in [md.as_path(), csv] {
                let name = file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                // The guest's scratch folder is ours alone (0700).
                let bytes = std::fs::read(file).map_err(|source| ReadError::Io {
                    path: file.to_path_buf(),
                    source,
                })?;
                results.replace(name, &bytes).map_err(|e| ReadError::Io {
                    path: results.path().join(name),
                    source: std::io::Error::other(e),
                })?;
            }
            outln!(
                "report: {} ({})",
                results
                    .path()
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
        errln!("interrupted: no report across kernels written");
        return Ok(ExitCode::from(interrupt::exit_status()));
    }
    if args.kernels.kernel.len() > 1 && !rows.is_empty() {
        let report = semantics::render_kernels(&rows);
        results.replace("semantics-kernels.md", report.as_bytes())?;
        out!("\n{report}");
        outln!(
            "\nreport: {}",
            results.path().join("semantics-kernels.md").display()
        );
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
            let changes = compare::compare_judged(&base, &new, args.threshold, args.across_cpus);
            regressions += changes.iter().filter(|c| c.verdict.is_regression()).count();
            let title = format!("{} vs {}", args.base.display(), path.display());
            let machines = compare::machine_differences(&base, &new);
            report.push_str(&compare::render_markdown(
                &title,
                &machines,
                &changes,
                args.threshold,
            ));
            report.push('\n');
        }
    }
    if let Some(path) = &args.output {
        write_named(path, &report)?;
    }
    out!("{report}");
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
    outln!("From {}:\n", path.display());
    out!(
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
    errln!("{}: booting...", guest.describe());
    let mut got = FromGuest {
        scratch: None,
        status: None,
        stdout: String::new(),
        failed: false,
        interrupted: false,
    };
    match guest.bpfstorm(args, kernels.guest_limit()) {
        Err(e) => {
            errln!("error: {e}");
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
                    errln!("error: {e} (keeping what it measured before)");
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
        errln!(
            "error: the guest on kernel {} (exit status {:?}): {why}; it printed:\n{}",
            guest.kernel.series,
            self.status,
            self.stdout
        );
    }
}

/// Writes `text` to the file at `path` the user named, replacing it (a
/// symlink there is replaced, not followed), in a folder no other user can
/// change.
fn write_named(path: &Path, text: &str) -> Result<()> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} names no file", path.display()))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Dir::open(parent)?.replace(name, text.as_bytes())?;
    Ok(())
}
