//! probe, semantics and collateral as a user runs them: real kernel, real
//! files written, outputs that say what they measured.

use std::fs;

use common::{bpfstorm, text};

mod common;

fn ok(args: &[&str]) -> String {
    let out = bpfstorm(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn probe_writes_one_csv_row_per_attach_point_and_map() {
    let dir = tempfile::tempdir().unwrap();
    ok(&["probe", "--results-dir", dir.path().to_str().unwrap()]);
    let path = fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("probe-"));
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let header = reader.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(
        rows.len(),
        bpfstorm_common::AttachPoint::ALL.len() * bpfstorm_common::MapKind::ALL.len()
    );
    for row in &rows {
        let supported = &row[col("supported")] == "true";
        assert_eq!(supported, row[col("reason")].is_empty(), "{row:?}");
        if &row[col("attach")] == "tp_sys_enter_execve" {
            assert!(supported, "{row:?}");
        }
        if !supported {
            assert!(
                row[col("reason")].starts_with("unsupported here: "),
                "{row:?}"
            );
        }
    }
}

#[test]
fn semantics_report_tells_attempts_from_successes() {
    let dir = tempfile::tempdir().unwrap();
    ok(&[
        "semantics",
        "--attach",
        "tp_sys_enter_execve,tp_sched_process_exec,fentry_sys_execve",
        "--target",
        "tiny,missing",
        "--execs",
        "20",
        "--results-dir",
        dir.path().to_str().unwrap(),
    ]);
    let kernel = bpfstorm::host::Host::detect().kernel;
    let text = fs::read_to_string(dir.path().join(format!("semantics-{kernel}.md"))).unwrap();
    let csv = fs::read_to_string(dir.path().join(format!("semantics-{kernel}.csv"))).unwrap();
    assert!(
        csv.lines()
            .any(|l| l.contains(",tp_sys_enter_execve,missing,ok,,40,0,40,")),
        "the CSV holds every cell with its counts:\n{csv}"
    );
    let row = |attach: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("| `{attach}` |")))
            .unwrap_or_else(|| panic!("no row for {attach}:\n{text}"))
            .to_string()
    };
    assert_eq!(
        row("tp_sys_enter_execve"),
        "| `tp_sys_enter_execve` | 40: every exec | 40: every attempt, failed ones too |"
    );
    assert_eq!(
        row("tp_sched_process_exec"),
        "| `tp_sched_process_exec` | 40: every exec | 0: none |"
    );
    let fentry = row("fentry_sys_execve");
    assert!(
        fentry.contains("refused") || fentry.contains("40: every exec"),
        "{fentry}"
    );
}

#[test]
fn collateral_reports_a_difference_with_its_interval() {
    let out = ok(&[
        "collateral",
        "--attach",
        "raw_tp_sys_enter",
        "--rounds",
        "2",
        "--round-ms",
        "20",
    ]);
    let row = out
        .lines()
        .find(|l| l.starts_with("raw_tp_sys_enter"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        row.contains("adds ") || row.contains("not resolvable at this noise"),
        "{row}"
    );
    assert!(out.contains("added ns/syscall [95% CI]"), "{out}");
}
