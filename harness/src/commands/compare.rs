//! `bpfstorm compare`: run CSVs cell by cell, or side by side per kernel.

use std::process::ExitCode;

use anyhow::Result;
use bpfstorm::cli::CompareArgs;
use bpfstorm::compare;
use bpfstorm::export::read::read_run;
use bpfstorm::out;

pub fn command(args: CompareArgs) -> Result<ExitCode> {
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
        super::write_named(path, report.as_bytes())?;
    }
    out!("{report}");
    Ok(super::exit_status(regressions))
}
