//! Faults injected for real: signals, SIGKILL of the harness, storm
//! timeouts, missing privileges or BTF, refused attach points, two runs at
//! once. After each, nothing of bpfstorm is left on the machine.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use bpfstorm::cgroup;
use bpfstorm::export::read::newest_run;
use bpfstorm::leaks;
use common::{bpfstorm, command, text};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

mod common;

fn spawn_long_run(dir: &Path, extra: &[&str]) -> Child {
    command(&[
        "run",
        "--method",
        "storm",
        "--repeat",
        "1",
        "--map",
        "array",
        "--update",
        "atomic",
        "--workers",
        "2",
    ])
    .args(["--execs", "1000000", "--results-dir", dir.to_str().unwrap()])
    .args(extra)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawning bpfstorm")
}

/// One small storm cell: what sweeps up after a killed run.
fn small_run(dir: &Path) -> std::process::Output {
    bpfstorm(&[
        "run",
        "--method",
        "storm",
        "--repeat",
        "1",
        "--map",
        "array",
        "--update",
        "atomic",
        "--execs",
        "50",
        "--results-dir",
        dir.to_str().unwrap(),
    ])
}

fn csv_rows(dir: &Path) -> Vec<csv::StringRecord> {
    let path = newest_run(dir).expect("the run's CSV");
    csv::Reader::from_path(path)
        .unwrap()
        .records()
        .map(Result::unwrap)
        .collect()
}

fn assert_nothing_left(pid: u32) {
    let left = leaks::find(&[]);
    assert!(left.maps.is_empty(), "BPF maps left: {left:?}");
    assert!(!left.stats_enabled, "BPF stats left on");
    assert!(
        cgroup::owned_by(pid).is_empty(),
        "storm cgroup of {pid} left"
    );
}

#[test]
fn sigterm_stops_the_run_cleanly_and_keeps_measured_rows() {
    let dir = tempfile::tempdir().unwrap();
    // The refused attach point fails fast and becomes the first CSV row; the
    // second cell is the long storm the signal interrupts.
    let mut child = spawn_long_run(
        dir.path(),
        &["--attach", "fentry_sys_execve,tp_sys_enter_execve"],
    );
    sleep(Duration::from_millis(2000));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let started = Instant::now();
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(status.code(), Some(128 + 15));
    let rows = csv_rows(dir.path());
    assert_eq!(
        rows.len(),
        1,
        "the refused cell's row survives the interruption"
    );
    assert_nothing_left(child.id());
}

/// The bpftrace a run started: its child running that program (exec'd
/// through an fd, it is named after the fd, so its name says nothing).
fn bpftrace_child_of(run: u32) -> Option<u32> {
    fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = stat.rsplit_once(") ")?.1;
        let parent: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
        let exe = fs::read_link(format!("/proc/{pid}/exe")).ok()?;
        (parent == run && exe.file_name()? == "bpftrace").then_some(pid)
    })
}

/// A run on the bpftrace backend, stopped by a signal: its bpftrace goes
/// with it (stopped by the run on SIGINT and SIGTERM, killed by the kernel
/// on SIGKILL), and nothing it loaded stays.
#[test]
fn a_signal_to_a_bpftrace_run_takes_its_bpftrace_too() {
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGKILL] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = command(&[
            "run",
            "--backend",
            "bpftrace",
            "--method",
            "storm",
            "--repeat",
            "1",
            "--map",
            "percpu_array",
            "--workers",
            "2",
        ])
        .args([
            "--execs",
            "1000000",
            "--results-dir",
            dir.path().to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        let run = child.id();
        let deadline = Instant::now() + Duration::from_secs(30);
        let bpftrace = loop {
            if let Some(pid) = bpftrace_child_of(run) {
                break pid;
            }
            assert!(Instant::now() < deadline, "{signal}: no bpftrace started");
            sleep(Duration::from_millis(20));
        };
        // Into its storm.
        sleep(Duration::from_millis(1000));
        kill(Pid::from_raw(run as i32), signal).unwrap();
        let status = child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Path::new(&format!("/proc/{bpftrace}")).exists() {
            assert!(
                Instant::now() < deadline,
                "{signal}: bpftrace {bpftrace} outlived the run"
            );
            sleep(Duration::from_millis(20));
        }
        if signal == Signal::SIGKILL {
            // What the killed run left (its cgroup), the next one sweeps.
            let next = small_run(dir.path());
            assert!(next.status.success(), "{}", text(&next.stderr));
        } else {
            assert_eq!(status.code(), Some(128 + signal as i32), "{signal}");
        }
        assert_nothing_left(run);
    }
}

#[test]
fn sigkill_leaves_a_cgroup_that_the_next_run_sweeps() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_long_run(dir.path(), &[]);
    sleep(Duration::from_millis(1500));
    let pid = child.id();
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    // BPF objects die with their fds; workers die with their parent
    // (PR_SET_PDEATHSIG), so the cgroup left behind is empty.
    let stale = cgroup::owned_by(pid);
    assert!(
        !stale.is_empty(),
        "SIGKILL cannot clean up; the cgroup should be there"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    for dir in &stale {
        let procs = dir.join("cgroup.procs");
        while fs::read_to_string(&procs)
            .map(|p| !p.trim().is_empty())
            .unwrap_or(false)
        {
            assert!(
                Instant::now() < deadline,
                "storm processes outlived the harness"
            );
            sleep(Duration::from_millis(50));
        }
    }
    assert!(leaks::find(&[]).maps.is_empty());

    let next = small_run(dir.path());
    assert!(next.status.success(), "{}", text(&next.stderr));
    assert!(
        text(&next.stderr).contains("removed what a killed run left behind"),
        "{}",
        text(&next.stderr)
    );
    assert_nothing_left(pid);
}

#[test]
fn a_storm_past_its_timeout_is_killed_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = command(&[
        "run",
        "--method",
        "storm",
        "--repeat",
        "1",
        "--map",
        "array",
        "--update",
        "atomic",
        "--workers",
        "2",
    ])
    .args([
        "--execs",
        "1000000",
        "--timeout",
        "1",
        "--results-dir",
        dir.path().to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("timeout"),
        "{}",
        text(&out.stdout)
    );
    let rows = csv_rows(dir.path());
    assert_eq!(rows.len(), 1);
    assert!(rows[0].iter().any(|f| f == "timeout"), "{:?}", rows[0]);
    assert_nothing_left(std::process::id());
}

#[test]
fn without_capabilities_it_says_to_run_as_root() {
    let out = Command::new("setpriv")
        .args(["--inh-caps=-all", "--bounding-set=-all", "--"])
        .arg(env!("CARGO_BIN_EXE_bpfstorm"))
        .arg("probe")
        .output()
        .expect("setpriv (util-linux)");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("needs CAP_SYS_ADMIN") && err.contains("run it as root"),
        "{err}"
    );
}

#[test]
fn a_missing_btf_file_is_named_with_what_to_do() {
    let out = command(&["run", "--method", "storm", "--execs", "10"])
        .env("BPFSTORM_BTF", "/nonexistent/vmlinux.btf")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("BPFSTORM_BTF=/nonexistent/vmlinux.btf does not exist"),
        "{err}"
    );
}

#[test]
fn a_refused_attach_point_fails_the_run_with_the_kernel_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = bpfstorm(&[
        "run",
        "--method",
        "storm",
        "--repeat",
        "1",
        "--attach",
        "lsm_bprm_check_security",
        "--map",
        "array",
        "--update",
        "atomic",
        "--execs",
        "10",
        "--results-dir",
        dir.path().to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    if out.status.success() {
        // A kernel with BPF LSM: then it must have counted exactly.
        assert!(stdout.contains("exact"), "{stdout}");
    } else {
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stdout.contains("unsupported here: lsm_bprm_check_security"),
            "{stdout}"
        );
        assert!(text(&out.stderr).contains("1 cell(s) refused by their kernel"));
    }
    assert_nothing_left(std::process::id());
}

#[test]
fn two_runs_at_once_count_only_their_own_storms() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let children: Vec<Child> = dirs
        .iter()
        .map(|d| {
            command(&[
                "run",
                "--method",
                "storm",
                "--repeat",
                "1",
                "--map",
                "array,percpu_array",
                "--workers",
                "2",
                "--execs",
                "3000",
            ])
            .args(["--results-dir", d.path().to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    for dir in &dirs {
        let path = newest_run(dir.path()).expect("the run's CSV");
        let mut reader = csv::Reader::from_path(path).unwrap();
        let header = reader.headers().unwrap().clone();
        let col = |n: &str| header.iter().position(|h| h == n).unwrap();
        for row in reader.records().map(Result::unwrap) {
            if &row[col("update")] == "racy" {
                continue;
            }
            assert_eq!(&row[col("counted")], "6000", "{row:?}");
            // Cgroup-scoped perf oracles have been seen to miss events
            // while another bpfstorm opens and closes perf events: then
            // the row must say so rather than call the counter wrong.
            assert!(
                &row[col("exact")] == "true"
                    || row[col("interference")].contains("the perf oracle saw"),
                "{row:?}"
            );
        }
    }
}
