//! `bpfstorm report`: a run's markdown report and chart written again from
//! its CSV, or one report from the CSVs of several runs or hosts; and the
//! files `run --export-json` and `--export-markdown` name.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use bpfstorm::cli::{ExportArgs, ReportArgs};
use bpfstorm::export::csv::Row;
use bpfstorm::export::json;
use bpfstorm::export::markdown::Report;
use bpfstorm::export::read::read_run;
use bpfstorm::secure_fs::Dir;
use bpfstorm::{errln, outln};

fn stem(csv: &Path) -> &str {
    csv.file_stem().and_then(|s| s.to_str()).unwrap_or("run")
}

pub fn command(args: ReportArgs) -> Result<ExitCode> {
    let mut rows = Vec::new();
    for path in &args.runs {
        rows.extend(read_run(path)?);
    }
    let first = &args.runs[0];
    let folder = match &args.output_dir {
        Some(dir) => dir.clone(),
        None => match first.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        },
    };
    fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
    let dir = Dir::open(&folder)?;
    // One run's report has the name `run` gives it, so this rewrites that.
    let (title, name) = match args.runs.as_slice() {
        [one] => (stem(one).to_string(), format!("{}.md", stem(one))),
        several => (
            several
                .iter()
                .map(|p| stem(p))
                .collect::<Vec<_>>()
                .join(" + "),
            format!("{}+{}-more.md", stem(first), several.len() - 1),
        ),
    };
    let csvs: Vec<&Path> = args.runs.iter().map(PathBuf::as_path).collect();
    let path = Report::render(&title, &name, dir.path(), &csvs, &rows).write(&dir)?;
    outln!("report: {}", path.display());
    Ok(super::exit_status(0))
}

/// Writes the files `--export-json` and `--export-markdown` name for the
/// run whose CSV is `csv`, and says where or why not; returns how many
/// could not be written.
pub fn export(args: &ExportArgs, csv: &Path, rows: &[Row]) -> usize {
    let json = args.export_json.as_ref().map(|path| {
        let written = json::render(rows)
            .map_err(anyhow::Error::from)
            .and_then(|json| super::write_named(path, json.as_bytes()));
        (path, written)
    });
    let markdown = args.export_markdown.as_ref().map(|path| {
        let written = super::named_file(path).and_then(|(dir, name)| {
            let report = Report::render(stem(csv), name, dir.path(), &[csv], rows);
            report.write(&dir)?;
            Ok(())
        });
        (path, written)
    });
    let mut failures = 0;
    for (path, written) in json.into_iter().chain(markdown) {
        match written {
            Ok(()) => outln!("export:  {}", path.display()),
            Err(e) => {
                errln!("error: writing {}: {e:#}", path.display());
                failures += 1;
            }
        }
    }
    failures
}
