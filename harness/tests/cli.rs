//! The CLI as a user meets it: bad input gets a clear error and a non-zero
//! exit, a small run writes a CSV whose columns the README documents, and
//! Ctrl-C leaves nothing behind.

use std::fs;
use std::path::Path;
use std::process::{Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use bpfstorm::backends::BackendName;
use bpfstorm::export::csv::SCHEMA_VERSION;
use bpfstorm::export::read::newest_run;
use bpfstorm::leaks;
use bpfstorm::storm::Target;
use bpfstorm_common::{AttachPoint, MapKind, ReadPath, UpdateMode};
use clap::ValueEnum;
use common::{bpfstorm, command, text};

mod common;

/// Runs of `bpfstorm run` in this file take turns: cgroup-scoped perf
/// oracles have been seen to miss events while another process storms.
static RUNS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_run_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    RUNS.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn stderr(out: &Output) -> String {
    text(&out.stderr)
}

fn assert_refused(args: &[&str], says: &str) {
    let out = bpfstorm(args);
    assert!(!out.status.success(), "{args:?} succeeded");
    let err = stderr(&out);
    assert!(
        err.contains(says),
        "{args:?}: stderr lacks `{says}`:\n{err}"
    );
}

/// A usage error: exit status 2, what is wrong, and clap's hint.
fn assert_usage_error(args: &[&str], says: &str) {
    let out = bpfstorm(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}:\n{err}");
    assert!(
        err.contains(says),
        "{args:?}: stderr lacks `{says}`:\n{err}"
    );
    assert!(
        err.contains("For more information, try '--help'."),
        "{args:?}: no usage hint:\n{err}"
    );
}

#[test]
fn bad_flags_are_refused_with_what_to_do() {
    // Bad values of single flags are usage errors, refused while parsing.
    assert_usage_error(
        &["run", "--backend", "bcc"],
        "invalid value 'bcc' for '--backend <BACKEND>'\n  [possible values: libbpf, c, aya, bpftrace]",
    );
    assert_usage_error(&["run", "--map", "arry"], "invalid value 'arry'");
    assert_usage_error(&["run", "--map", "arry"], "percpu_array");
    assert_usage_error(&["run", "--target", "false"], "invalid value 'false'");
    for (flag, bad) in [
        ("--attach", "tp_sys_enter_exec"),
        ("--update", "sometimes"),
        ("--filter", "none"),
        ("--workers", "0"),
        ("--workers", "1025"),
        ("--execs", "0"),
        ("--execs", "10000001"),
        ("--repeat", "0"),
        ("--spawn", "clone3"),
        ("--timeout", "0"),
        ("--kernel", "5.0"),
        ("--guest-timeout", "1"),
        ("--method", "warm"),
        ("--precision", "0"),
        ("--precision", "1"),
        ("--precision", "5%"),
        ("--max-time", "0"),
        ("--max-time", "never"),
        ("--read", "mapped"),
        ("--read", "MMAP"),
    ] {
        assert_usage_error(&["run", flag, bad], &format!("invalid value '{bad}'"));
    }
    assert_usage_error(&["run", "--results-dir"], "a value is required");
    assert_usage_error(&["run", "--bogus"], "unexpected argument '--bogus'");
    for command in ["probe", "collateral", "semantics"] {
        assert_usage_error(&[command, "--backend", "bcc"], "invalid value 'bcc'");
    }
    assert_usage_error(&["semantics", "--workers", "0"], "invalid value '0'");

    // Choices that are each valid but not together are usage errors too;
    // a folder that cannot be written is not (exit status 1).
    assert_usage_error(
        &["run", "--map", "array", "--update", "percpu"],
        "does not work on map `array`: use one of atomic, racy",
    );
    for maps in ["hash", "array,percpu_array", "ringbuf"] {
        let map = maps.rsplit(',').next().unwrap();
        assert_usage_error(
            &["run", "--map", maps, "--read", "mmap"],
            &format!("map `{map}` cannot be read by mmap"),
        );
    }
    assert_usage_error(
        &["run", "--map", "ringbuf", "--read", "batch"],
        "map `ringbuf` cannot be read by batch",
    );
    assert_usage_error(
        &["run", "--map", "global", "--keys", "64"],
        "map `global` cannot count at 64 keys",
    );
    assert_usage_error(&["run", "--keys", "0"], "invalid value '0'");
    assert_usage_error(
        &["run", "--max-entries", "4"],
        "the following required arguments were not provided",
    );
    assert_usage_error(
        &["run", "--target", "fexecve", "--spawn", "posix_spawn"],
        "use the `fork` spawn method",
    );
    assert_usage_error(
        &[
            "run",
            "--method",
            "hot",
            "--attach",
            "tp_sys_enter_execve,tp_sched_process_exec",
        ],
        "`tp_sched_process_exec` has no hot method: it fires only when an exec succeeds",
    );
    let out = bpfstorm(&["run", "--results-dir", "/proc/bpfstorm-cannot-be-here"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_refused(
        &["run", "--results-dir", "/proc/bpfstorm-cannot-be-here"],
        "cannot write results",
    );
}

#[test]
fn run_help_lists_every_choice_with_its_meaning() {
    let out = bpfstorm(&["run", "--help"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let help = text(&out.stdout);
    let libbpf = BackendName::Libbpf.to_possible_value().expect("listed");
    let libbpf_help = libbpf.get_help().expect("a meaning").to_string();
    for (name, meaning) in [
        ("libbpf", libbpf_help.as_str()),
        ("percpu_array", MapKind::PercpuArray.help()),
        ("percpu", UpdateMode::Percpu.help()),
        ("tp_btf_sys_enter", AttachPoint::TpBtfSysEnter.help()),
        ("noexec", Target::NotExecutable.help()),
        ("syscall", ReadPath::Syscall.help()),
        ("mmap", ReadPath::Mmap.help()),
    ] {
        let listed = help.lines().any(|line| {
            line.trim()
                .strip_prefix(&format!("- {name}:"))
                .is_some_and(|rest| rest.trim() == meaning)
        });
        assert!(listed, "`- {name}: {meaning}` not in:\n{help}");
    }
    assert!(help.contains("--read <READ>"), "{help}");
    assert!(help.contains("[default: syscall]"), "{help}");
}

fn documented_columns() -> Vec<String> {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let section = readme
        .split(&format!("## The CSV (schema v{SCHEMA_VERSION})"))
        .nth(1)
        .expect("README has the CSV section");
    section
        .lines()
        .skip_while(|l| !l.starts_with("| column"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .flat_map(|l| {
            let first_cell = l.split('|').nth(1).unwrap_or("");
            first_cell
                .split(',')
                .map(|c| c.trim().trim_matches('`').to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn small_run_writes_an_exact_csv_in_the_documented_schema() {
    let _turn = one_run_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let out = bpfstorm(&[
        "run",
        "--map",
        "array,percpu_hash",
        "--workers",
        "2",
        "--execs",
        "200",
        "--target",
        "true",
        "--spawn",
        "posix_spawn",
        "--repeat",
        "2",
        "--method",
        "storm",
        "--results-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains(" left "),
        "the progress bar is hidden when stderr is no terminal:\n{}",
        stderr(&out)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    let header = table
        .lines()
        .find(|l| l.starts_with("cell "))
        .unwrap_or_else(|| panic!("no header:\n{table}"));
    assert!(
        header.contains("ns/event") && header.contains("vs cheapest"),
        "{header}"
    );
    for cell in ["array/atomic ", "percpu_hash/percpu "] {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(cell) && l.contains(" exact ")),
            "{cell}: {table}"
        );
    }

    let csv_path = newest_run(dir.path()).expect("the run's CSV");
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, documented_columns(), "CSV header vs README");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let cells: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}/{} #{}",
                &r[col("map")],
                &r[col("update")],
                &r[col("repetition")]
            )
        })
        .collect();
    assert_eq!(
        cells,
        [
            "array/atomic #1",
            "array/racy #1",
            "percpu_hash/percpu #1",
            "array/atomic #2",
            "array/racy #2",
            "percpu_hash/percpu #2"
        ],
        "every cell, then every cell again"
    );
    for row in &rows {
        assert_eq!(&row[col("schema_version")], SCHEMA_VERSION.to_string());
        // Counters in a map: no reader to wake; read by the syscall unless
        // told otherwise.
        assert_eq!(&row[col("wakeup")], "");
        assert_eq!(&row[col("read")], "syscall");
        assert_eq!(&row[col("method")], "storm");
        assert_eq!(&row[col("timing")], "native");
        assert_eq!(&row[col("status")], "ok");
        assert_eq!(&row[col("issued")], "400");
        assert_eq!(&row[col("expected")], "400");
        let baseline: f64 = row[col("baseline_wall_s")].parse().unwrap();
        assert!(baseline > 0.0, "{row:?}");
        assert!(row[col("e2e_ns_per_exec")]
            .parse::<f64>()
            .unwrap()
            .is_finite());
        if &row[col("update")] != "racy" {
            assert_eq!(&row[col("counted")], "400");
            assert_eq!(&row[col("exact")], "true");
        }
    }
    assert!(leaks::find(&[]).is_clean());
}

/// The hot method counts exactly too, and every figure it adds is there:
/// rounds, the precision reached, the stats' bias, the throughput check.
#[test]
fn hot_cells_count_exactly_and_report_their_precision() {
    let _turn = one_run_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let out = bpfstorm(&[
        "run",
        "--method",
        "hot",
        "--map",
        "array,percpu_array",
        "--max-time",
        "2",
        "--results-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("workers fire a failing exec syscall"),
        "{table}"
    );
    let rows = bpfstorm::export::read::read_run(&newest_run(dir.path()).unwrap()).unwrap();
    assert_eq!(
        rows.len(),
        3,
        "array atomic and racy, percpu_array: {rows:?}"
    );
    for r in &rows {
        assert_eq!(r.method, bpfstorm::hot::Method::Hot);
        assert_eq!(r.status, bpfstorm::export::csv::Status::Ok, "{}", r.error);
        assert_eq!(r.schema_version, SCHEMA_VERSION);
        assert_eq!(r.wakeup, "", "counters in a map wake no reader");
        assert_eq!(r.read, ReadPath::Syscall, "the default read path");
        assert!(
            r.counted.unwrap() > 10_000,
            "a hot cell fires many events: {r:?}"
        );
        if r.update.is_exact() {
            assert_eq!(r.counted, r.expected, "exact against the perf oracle");
        }
        assert_eq!(r.issued, r.failed, "every trigger call fails, none execs");
        assert!(r.rounds.unwrap() >= bpfstorm::hot::MIN_PAIRS);
        let (lo, mid, hi) = (
            r.ns_per_event_ci95_lo.unwrap(),
            r.ns_per_event_median.unwrap(),
            r.ns_per_event_ci95_hi.unwrap(),
        );
        assert!(lo <= mid && mid <= hi, "{r:?}");
        let reached = r.precision_reached.unwrap();
        assert!((reached - (hi - lo) / 2.0 / mid).abs() < 0.01, "{r:?}");
        assert!(r.stats_bias_ns.unwrap() > 0.0, "{r:?}");
        assert!(r.throughput_ns_per_event_median.is_some() && r.methods_agree.is_some());
        assert!(r.trigger_ns_per_call.unwrap() > 0.0);
        assert!(r.machine_noise_cv.is_some() && r.machine_calibration_ns.is_some());
        let (lo, mid, hi) = (
            r.filter_cost_ns_ci95_lo.unwrap(),
            r.filter_cost_ns_median.unwrap(),
            r.filter_cost_ns_ci95_hi.unwrap(),
        );
        assert!(
            lo <= mid && mid <= hi,
            "the run's filter cost on every row: {r:?}"
        );
    }
    assert!(
        table.contains("cgroup filter: ") && table.contains("on libbpf array/atomic"),
        "{table}"
    );
    let report = fs::read_to_string(newest_run(dir.path()).unwrap().with_extension("md")).unwrap();
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert!(
        report.contains(&format!("| hot | {cpus} | array | atomic | ok |")),
        "{report}"
    );
    assert!(
        report.contains("Ranked by the hot method's cells"),
        "{report}"
    );
    assert!(leaks::find(&[]).is_clean());
}

/// `--workers sweep` measures every hot cell at each worker count, ranks
/// at one per CPU, and shows how each strategy's cost grows.
#[test]
fn a_worker_sweep_measures_each_count_and_shows_contention() {
    let _turn = one_run_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let out = bpfstorm(&[
        "run",
        "--method",
        "hot",
        "--map",
        "array,percpu_array",
        "--workers",
        "sweep",
        "--max-time",
        "1",
        "--results-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let cpus = std::thread::available_parallelism().unwrap().get() as u32;
    let counts = bpfstorm::plan::worker_counts(&[bpfstorm::cli::WorkerCount::Sweep], cpus);
    assert_eq!(counts.first(), Some(&1));
    assert_eq!(counts.last(), Some(&(2 * cpus)));
    let csv_path = newest_run(dir.path()).unwrap();
    let rows = bpfstorm::export::read::read_run(&csv_path).unwrap();
    for (map, update) in [
        (MapKind::Array, UpdateMode::Atomic),
        (MapKind::Array, UpdateMode::Racy),
        (MapKind::PercpuArray, UpdateMode::Percpu),
    ] {
        let mut measured: Vec<u32> = rows
            .iter()
            .filter(|r| r.map == map && r.update == update)
            .map(|r| r.workers)
            .collect();
        measured.sort_unstable();
        assert_eq!(measured, counts, "{map}/{update}: a row per worker count");
    }
    for r in &rows {
        assert_eq!(r.status, bpfstorm::export::csv::Status::Ok, "{}", r.error);
        if r.update.is_exact() {
            assert_eq!(r.counted, r.expected, "exact at {} workers", r.workers);
        }
    }
    let table = String::from_utf8_lossy(&out.stdout);
    let listed: Vec<String> = counts.iter().map(u32::to_string).collect();
    assert!(
        table.contains(&format!("hot: {} workers fire", listed.join(", "))),
        "{table}"
    );
    let growth = format!("{} vs 1", 2 * cpus);
    let contention = table
        .split("contention (hot)")
        .nth(1)
        .unwrap_or_else(|| panic!("no contention table:\n{table}"));
    assert!(contention.contains(&growth), "{table}");
    for cell in ["array/atomic", "array/racy", "percpu_array/percpu"] {
        assert!(
            contention.lines().any(|l| {
                let l = l.trim_end();
                l.starts_with(cell) && (l.ends_with(" x") || l.ends_with(" x, in noise"))
            }),
            "{cell}: {table}"
        );
    }
    let report = fs::read_to_string(csv_path.with_extension("md")).unwrap();
    assert!(report.contains("## Contention"), "{report}");
    let stem = csv_path.file_stem().unwrap().to_str().unwrap();
    let svg = fs::read_to_string(dir.path().join(format!("{stem}-contention.svg"))).unwrap();
    assert!(svg.contains("percpu_array/percpu"), "{svg}");
    let recommended = bpfstorm(&["recommend", csv_path.to_str().unwrap()]);
    let advice = String::from_utf8_lossy(&recommended.stdout);
    assert!(advice.contains(&format!("at {cpus} workers")), "{advice}");
    assert!(
        advice.contains(&format!(
            "Exact counting under contention ({} workers at once on {cpus} CPUs)",
            2 * cpus
        )),
        "{advice}"
    );
    assert!(leaks::find(&[]).is_clean());
}

#[test]
fn ctrl_c_keeps_finished_cells_and_leaves_nothing_behind() {
    let _turn = one_run_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let mut child = command(&[
        "run",
        "--repeat",
        "1",
        "--map",
        "array,hash",
        "--update",
        "atomic",
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
    sleep(Duration::from_millis(1500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let started = Instant::now();
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "slow to stop");
    assert_eq!(status.code(), Some(130));
    let csv_path = newest_run(dir.path()).expect("the run's CSV");
    assert!(csv_path.to_string_lossy().ends_with(".csv"), "{csv_path:?}");
    let left = leaks::find(&[]);
    assert!(left.maps.is_empty() && !left.stats_enabled, "{left:?}");
    assert!(
        bpfstorm::cgroup::owned_by(child.id()).is_empty(),
        "storm cgroup of the interrupted run still exists"
    );
}

#[test]
fn probe_finds_the_exec_tracepoints_supported() {
    let dir = tempfile::tempdir().unwrap();
    let out = bpfstorm(&["probe", "--results-dir", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text
        .lines()
        .find(|l| l.starts_with("libbpf") && l.contains("tp_sys_enter_execve "))
        .unwrap_or_else(|| panic!("no tp_sys_enter_execve row:\n{text}"));
    assert_eq!(row.matches("ok").count(), MapKind::ALL.len(), "{row}");
    assert!(text.contains("cgroup v2: yes"), "{text}");
}
