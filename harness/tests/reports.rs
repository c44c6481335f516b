//! compare, recommend and report on real run CSVs and on broken ones:
//! verdicts, exit status, the files `run --export-*` writes, and clear
//! errors for every kind of bad file.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bpfstorm::export::csv::{Timing, SCHEMA_VERSION};
use bpfstorm::export::read::{newest_run, parse_run, read_run, ReadError};
use common::{bpfstorm, text};

mod common;

/// What the run exported besides its CSV: `--export-json`, and
/// `--export-markdown` to a path that was a symlink to `victim`.
const JSON: &str = "exported.json";
const LINKED_MD: &str = "linked.md";
const VICTIM: &str = "victim.txt";

/// One real run, shared by the tests of this file.
fn real_run() -> &'static Path {
    static RUN: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(VICTIM), "not a report").unwrap();
        std::os::unix::fs::symlink(dir.path().join(VICTIM), dir.path().join(LINKED_MD)).unwrap();
        let out = bpfstorm(&[
            "run",
            "--map",
            "array,percpu_array",
            "--execs",
            "1000",
            "--repeat",
            "3",
            "--method",
            "storm",
            "--results-dir",
            dir.path().to_str().unwrap(),
            "--export-json",
            dir.path().join(JSON).to_str().unwrap(),
            "--export-markdown",
            dir.path().join(LINKED_MD).to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let path = newest_run(dir.path()).expect("the run's CSV");
        (dir, path)
    })
    .1
}

/// A copy of the real run with `edit` applied to every row (by column name).
fn variant(name: &str, edit: impl Fn(&str, &mut Vec<String>, &dyn Fn(&str) -> usize)) -> PathBuf {
    let mut reader = csv::Reader::from_path(real_run()).unwrap();
    let header = reader.headers().unwrap().clone();
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let path = real_run().with_file_name(format!("{name}.csv"));
    let mut writer = csv::Writer::from_path(&path).unwrap();
    writer.write_record(&header).unwrap();
    for record in reader.records() {
        let mut fields: Vec<String> = record.unwrap().iter().map(String::from).collect();
        let update = fields[col("update")].clone();
        edit(&update, &mut fields, &col);
        writer.write_record(&fields).unwrap();
    }
    writer.flush().unwrap();
    path
}

#[test]
fn a_run_compared_with_itself_is_the_same_within_noise() {
    let run = real_run().to_str().unwrap();
    let out = bpfstorm(&["compare", run, run]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let report = text(&out.stdout);
    assert_eq!(report.matches("same within noise").count(), 3, "{report}");
    assert!(report.contains("0 regression(s)"), "{report}");
}

/// A hundred times, not ten: a storm cell's interval is the t-interval of 3
/// repetitions' medians (t = 4.3), and one noisy repetition on this machine
/// has stretched it to [30, 630] ns, which ten times [304, 6305] overlaps.
#[test]
fn a_hundred_times_slower_is_a_regression_and_fails() {
    let slower = variant("slower", |_, f, col| {
        for c in [
            "ns_per_run_median",
            "ns_per_run_ci95_lo",
            "ns_per_run_ci95_hi",
        ] {
            let v: f64 = f[col(c)].parse().unwrap();
            f[col(c)] = (v * 100.0).to_string();
        }
    });
    let out = bpfstorm(&[
        "compare",
        real_run().to_str().unwrap(),
        slower.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report = text(&out.stdout);
    assert_eq!(report.matches("SLOWER (regression)").count(), 3, "{report}");
    assert!(report.contains("+9900.0%"), "{report}");
    // The other way round it is faster, and that passes.
    let out = bpfstorm(&[
        "compare",
        slower.to_str().unwrap(),
        real_run().to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).matches("| faster |").count(), 3);
}

#[test]
fn any_loss_where_there_was_none_fails_even_when_faster() {
    let lossy = variant("lossy", |update, f, col| {
        if update != "racy" {
            f[col("exact")] = "false".into();
            f[col("missing")] = "7".into();
        }
    });
    let out = bpfstorm(&[
        "compare",
        real_run().to_str().unwrap(),
        lossy.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report = text(&out.stdout);
    assert!(
        report.contains("ACCURACY REGRESSED: missed 21 events where it missed none"),
        "7 per repetition, 3 repetitions: {report}"
    );
}

#[test]
fn recommend_names_a_choice_or_an_honest_tie() {
    let out = bpfstorm(&["recommend", real_run().to_str().unwrap(), "--format", "md"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(
        report.contains("## Exact counting at the lowest in-kernel cost"),
        "{report}"
    );
    let advice = report
        .split("## Exact counting at the lowest")
        .nth(1)
        .unwrap();
    assert!(
        advice.contains("Choose **") || advice.contains("**Tie**"),
        "{report}"
    );
    assert!(
        !advice.lines().next().unwrap_or("").contains("racy"),
        "{report}"
    );
    assert!(
        report.contains("What it gives up") || report.contains("What each gives up"),
        "{report}"
    );
    assert!(!report.contains("guest kernels"), "none ran: {report}");
}

#[test]
fn recommend_prints_plain_text_for_a_terminal_by_default() {
    let out = bpfstorm(&["recommend", real_run().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(
        report.contains("\nExact counting at the lowest in-kernel cost\n---"),
        "{report}"
    );
    assert!(
        report.contains("\nChoose ") || report.contains("\nTie: "),
        "{report}"
    );
    for markup in ["**", "#", "`"] {
        assert!(!report.contains(markup), "{markup} in {report}");
    }
}

/// The run's own report beside its CSV.
fn own_report() -> String {
    fs::read_to_string(real_run().with_extension("md")).unwrap()
}

#[test]
fn the_run_report_says_only_what_holds() {
    let md = own_report();
    assert!(!md.contains("guest kernels"), "none ran: {md}");
    assert!(
        md.contains("| startup ms (median of the repetitions) |"),
        "{md}"
    );
    for goal in ["lowest in-kernel cost", "cheapest read"] {
        let section = md.split(goal).nth(1).unwrap();
        let section = section.split("\n### ").next().unwrap();
        assert!(
            section.contains("\nWhat it gives up: ")
                || section.contains("\nWhat each gives up:\n- "),
            "{section}"
        );
    }
}

#[test]
fn report_writes_the_run_report_again_from_its_csv() {
    let own = own_report();
    let out = bpfstorm(&["report", real_run().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(".md"), "{}", text(&out.stdout));
    assert_eq!(own_report(), own, "the same report, in place");

    // Elsewhere, the same report but for its link to the data.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = bpfstorm(&[
        "report",
        real_run().to_str().unwrap(),
        "--output-dir",
        elsewhere.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let md_name = real_run().with_extension("md");
    let md = fs::read_to_string(elsewhere.path().join(md_name.file_name().unwrap())).unwrap();
    let without_data = |md: &str| {
        md.lines()
            .filter(|l| !l.contains("Data: "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(without_data(&md), without_data(&own));
    assert!(
        md.contains(&format!("]({})", real_run().display())),
        "an absolute link to the CSV: {md}"
    );
    let svgs = fs::read_dir(elsewhere.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "svg")
        })
        .count();
    assert!(svgs >= 1, "its chart too");
}

#[test]
fn report_over_two_hosts_is_one_report_with_both() {
    let other = variant("other-host", |_, f, col| {
        f[col("host")] = "otherhost".into()
    });
    let dir = tempfile::tempdir().unwrap();
    let out = bpfstorm(&[
        "report",
        real_run().to_str().unwrap(),
        other.to_str().unwrap(),
        "--output-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mds: Vec<PathBuf> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    assert_eq!(mds.len(), 1, "{mds:?}");
    let md = fs::read_to_string(&mds[0]).unwrap();
    let host = read_run(real_run()).unwrap()[0].host.clone();
    assert!(md.contains("| host / kernel |"), "{md}");
    let cells = read_run(real_run()).unwrap().len() / 3;
    for h in [host.as_str(), "otherhost"] {
        assert_eq!(
            md.matches(&format!("\n| {h} / ")).count(),
            cells,
            "every cell of {h}, folded apart from the other host's: {md}"
        );
        assert!(
            md.contains(&format!("## Recommendation for host {h}\n")),
            "{md}"
        );
    }
    assert!(md.contains("other-host.csv"), "{md}");
}

#[test]
fn report_refuses_what_is_not_a_run_csv() {
    let out = bpfstorm(&["report", "/nonexistent.csv"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot read /nonexistent.csv"),
        "{}",
        text(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.csv");
    fs::write(&bogus, "a,b\n1,2\n").unwrap();
    let out = bpfstorm(&["report", bogus.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not a bpfstorm run CSV"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        1,
        "it wrote nothing"
    );
}

#[test]
fn export_json_holds_every_row_and_the_folded_cells() {
    let json = fs::read_to_string(real_run().with_file_name(JSON)).unwrap();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["schema_version"], 4);
    let rows = read_run(real_run()).unwrap();
    let exported = json["rows"].as_array().unwrap();
    assert_eq!(exported.len(), rows.len());
    for (row, exported) in rows.iter().zip(exported) {
        let back: bpfstorm::export::csv::Row = serde_json::from_value(exported.clone()).unwrap();
        assert_eq!(&back, row);
    }
    let cells = json["cells"].as_array().unwrap();
    assert_eq!(cells.len(), rows.len() / 3);
    assert!(cells.iter().all(|c| c["repetitions"] == 3), "{cells:?}");
    // What tells cells of one strategy apart is in each.
    for c in cells {
        for field in ["method", "workers", "wakeup", "read", "keys", "startup_ms"] {
            assert!(!c[field].is_null(), "{field} in {c}");
        }
        assert_eq!(c["read"], "syscall", "{c}");
        assert_eq!(c["keys"], 1, "{c}");
    }
}

#[test]
fn export_markdown_replaces_a_symlink_and_never_writes_through_it() {
    let linked = real_run().with_file_name(LINKED_MD);
    assert!(!linked.is_symlink());
    assert_eq!(
        fs::read_to_string(real_run().with_file_name(VICTIM)).unwrap(),
        "not a report"
    );
    // The run's own report, its charts beside the named file.
    let stem = real_run().file_stem().unwrap().to_str().unwrap();
    let md = fs::read_to_string(&linked).unwrap();
    assert_eq!(
        md,
        own_report().replace(&format!("({stem}-ns_per_event"), "(linked-ns_per_event")
    );
    assert!(real_run()
        .with_file_name("linked-ns_per_event.svg")
        .exists());
}

#[test]
fn bad_files_get_errors_that_say_what_is_wrong() {
    let wrong_version = variant("v8", |_, f, col| f[col("schema_version")] = "8".into());
    let err = read_run(&wrong_version).unwrap_err().to_string();
    assert!(
        err.contains("schema version `8`") && err.contains("reads versions 1 to 7 only"),
        "{err}"
    );
    // A counter that says a reader is woken: the wakeup is the update mode's.
    let woken = variant("woken", |_, f, col| f[col("wakeup")] = "adaptive".into());
    let err = read_run(&woken).unwrap_err().to_string();
    assert!(
        err.contains("line 2, column `wakeup`") && err.contains("`adaptive`"),
        "{err}"
    );

    let bytes = fs::read(real_run()).unwrap();
    // Cut inside the last row's first columns (its last column is free
    // text: cutting that alone leaves a valid row).
    let last_row = bytes[..bytes.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    let truncated = &bytes[..last_row + 20];
    let err = parse_run(Path::new("cut.csv"), truncated).unwrap_err();
    assert!(
        matches!(err, ReadError::Malformed { line, .. } if line > 1),
        "{err}"
    );

    let err = parse_run(Path::new("x.csv"), b"a,b\n1,2\n").unwrap_err();
    assert!(err.to_string().contains("not a bpfstorm run CSV"), "{err}");
    let err = parse_run(Path::new("x.csv"), b"").unwrap_err();
    assert!(err.to_string().contains("not a bpfstorm run CSV"), "{err}");

    let out = bpfstorm(&["compare", "/nonexistent.csv", real_run().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("cannot read /nonexistent.csv"));
}

/// Random damage to a real CSV never panics the reader: it yields rows of a
/// readable schema or an error.
#[test]
fn damaged_csvs_never_panic_the_reader() {
    let original = fs::read(real_run()).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..2000 {
        let mut bytes = original.clone();
        match round % 4 {
            0 => bytes.truncate(next() as usize % bytes.len()),
            1 => {
                for _ in 0..1 + next() % 8 {
                    let i = next() as usize % bytes.len();
                    bytes[i] = next() as u8;
                }
            }
            2 => {
                let i = next() as usize % bytes.len();
                bytes.insert(i, b",\n\""[next() as usize % 3]);
            }
            _ => {
                let i = next() as usize % bytes.len();
                let j = (i + next() as usize % 64).min(bytes.len());
                bytes.drain(i..j);
            }
        }
        if let Ok(rows) = parse_run(Path::new("damaged.csv"), &bytes) {
            assert!(rows
                .iter()
                .all(|r| (1..=SCHEMA_VERSION).contains(&r.schema_version)));
        }
    }
}

#[test]
fn schema_v1_files_still_read_as_native() {
    // The baseline committed before schema v2, kept as a fixture.
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/run-schema-v1.csv");
    let rows = read_run(&base).unwrap();
    assert!(!rows.is_empty());
    assert!(rows
        .iter()
        .all(|r| r.schema_version == 1 && r.timing == Timing::Native));
}

/// A real run's rows plus the same cells as if measured in a guest.
fn two_kernels() -> Vec<bpfstorm::export::csv::Row> {
    let host = read_run(real_run()).unwrap();
    let mut rows = host.clone();
    rows.extend(host.into_iter().map(|mut r| {
        r.kernel = "6.12.95+deb12-cloud-amd64".into();
        r.timing = Timing::Emulated;
        r.ns_per_run_median = r.ns_per_run_median.map(|m| m * 30.0);
        r.ns_per_run_ci95_lo = r.ns_per_run_ci95_lo.map(|m| m * 30.0);
        r.ns_per_run_ci95_hi = r.ns_per_run_ci95_hi.map(|m| m * 30.0);
        r
    }));
    rows
}

#[test]
fn runs_over_several_kernels_compare_kernel_by_kernel() {
    let rows = two_kernels();
    let changes = bpfstorm::compare::compare(&rows, &rows, 5.0);
    let host_cells = read_run(real_run()).unwrap().len() / 3;
    assert_eq!(
        changes.len(),
        2 * host_cells,
        "one line per cell per kernel"
    );
    for c in &changes {
        assert!(c.key.kernel.is_some());
        assert_eq!(c.verdict, bpfstorm::compare::Verdict::Same, "{c:?}");
    }

    // A guest's emulated times are never judged against native ones.
    let guest: Vec<_> = rows
        .iter()
        .filter(|r| r.timing == Timing::Emulated)
        .cloned()
        .collect();
    let host = read_run(real_run()).unwrap();
    for c in bpfstorm::compare::compare(&host, &guest, 5.0) {
        assert!(
            matches!(&c.verdict, bpfstorm::compare::Verdict::NotComparable(why) if why.contains("native vs emulated")),
            "{:?}",
            c.verdict
        );
    }
}

#[test]
fn the_by_kernel_view_has_a_column_per_kernel() {
    let report = bpfstorm::compare::render_by_kernel(&two_kernels());
    let header = report
        .lines()
        .find(|l| l.starts_with("| backend |"))
        .unwrap_or_else(|| panic!("{report}"));
    let kernel = read_run(real_run()).unwrap()[0].kernel.clone();
    assert!(header.contains(&format!("`{kernel}` (native)")), "{header}");
    assert!(
        header.contains("`6.12.95+deb12-cloud-amd64` (emulated)"),
        "{header}"
    );
    let line = report
        .lines()
        .find(|l| {
            l.starts_with("| libbpf | tp_sys_enter_execve | storm | 1 per CPU | array | atomic |")
        })
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(line.matches("exact ").count(), 2, "{line}");
    assert_eq!(line.matches("*emulated*").count(), 1, "{line}");

    for advice in bpfstorm::recommend::recommend(&two_kernels()).advice {
        let picked = advice.best.iter().chain(&advice.ties);
        for r in picked {
            assert_eq!(
                r.first.timing,
                Timing::Native,
                "emulated rows are not ranked: {r:?}"
            );
        }
    }
}
