//! `bpfstorm run` as a person sees it: in a real terminal (tmux, 100
//! columns) the summary fits, in colour, with verdicts and costs against
//! the cheapest cell; with NO_COLOR, or into a pipe, it has no escapes.
//! Needs tmux (scripts/setup installs it) and root, as `run` does.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{bpfstorm, text};

const RUN: &[&str] = &[
    "run",
    "--map",
    "array,percpu_array",
    "--method",
    "hot",
    "--max-time",
    "1",
];

/// A tmux server of this test's own, gone when dropped.
struct Tmux(String);

impl Tmux {
    fn command(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.0])
            .args(args)
            .output()
            .expect("tmux (scripts/setup installs it)");
        assert!(out.status.success(), "tmux {args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.0, "kill-server"])
            .status();
    }
}

/// What a 100x50 terminal shows of `bpfstorm run` (stdout; stderr goes to a
/// file), with `NO_COLOR` set to `no_color`: the joined lines with their
/// escapes, and the run's exit status.
fn run_in_terminal(dir: &Path, no_color: &str) -> (String, String) {
    let tmux = Tmux(format!("bpfstorm-test-{}-{no_color}", std::process::id()));
    let done = dir.join("status");
    let shell = format!(
        "NO_COLOR='{no_color}' '{}' {} --results-dir '{dir}' 2>'{dir}/stderr'; \
         echo $? > '{done}'; sleep 600",
        env!("CARGO_BIN_EXE_bpfstorm"),
        RUN.join(" "),
        dir = dir.display(),
        done = done.display(),
    );
    tmux.command(&["new-session", "-d", "-x", "100", "-y", "50", &shell]);
    let started = Instant::now();
    while !done.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no end after 120 s:\n{}",
            tmux.command(&["capture-pane", "-p"])
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The status file appears before `echo` has written it.
    std::thread::sleep(Duration::from_millis(200));
    // -J joins lines the terminal wrapped, so an overlong line shows as one.
    let screen = tmux.command(&["capture-pane", "-p", "-J", "-e", "-S", "-"]);
    let status = std::fs::read_to_string(&done).unwrap();
    (screen, status.trim().to_string())
}

/// `text` without its SGR escape sequences.
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("\x1b[") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 2..];
        let end = tail.find('m').map_or(tail.len(), |m| m + 1);
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn the_summary_fits_a_100_column_terminal_in_colour() {
    let dir = tempfile::tempdir().unwrap();
    let (screen, status) = run_in_terminal(dir.path(), "");
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default();
    assert_eq!(status, "0", "{screen}\n{stderr}");
    let shown = plain(&screen);
    for line in shown.lines() {
        let width = line.trim_end().chars().count();
        assert!(width <= 100, "{width} columns: {line}\n{shown}");
    }
    let header = shown
        .lines()
        .find(|l| l.starts_with("cell "))
        .unwrap_or_else(|| panic!("no header:\n{shown}"));
    for column in ["verdict", "ns/event", "vs cheapest"] {
        assert!(header.contains(column), "{header}");
    }
    let row = |cell: &str| {
        shown
            .lines()
            .find(|l| l.starts_with(cell))
            .unwrap_or_else(|| panic!("no {cell} row:\n{shown}"))
    };
    assert!(row("array/atomic ").contains(" exact "), "{shown}");
    assert!(row("percpu_array/percpu ").contains(" exact "), "{shown}");
    let costs = ["array/atomic ", "array/racy ", "percpu_array/percpu "]
        .map(|cell| row(cell).to_string())
        .join("\n");
    assert_eq!(costs.matches("cheapest").count(), 1, "{costs}");
    assert!(
        costs.contains("~1x (in noise)") || costs.contains(" +- "),
        "{costs}"
    );
    assert!(
        shown.contains("vs cheapest: "),
        "the footnote says what +- is"
    );
    // tmux writes each change of attributes its own way: match the starts.
    assert!(
        screen.contains("\x1b[1m") && screen.contains("\x1b[32mexact"),
        "a terminal gets a bold header and green verdicts:\n{screen}"
    );
}

#[test]
fn no_color_and_pipes_get_no_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let (screen, status) = run_in_terminal(dir.path(), "1");
    assert_eq!(status, "0", "{screen}");
    assert!(screen.contains("vs cheapest"), "{screen}");
    assert!(!screen.contains('\x1b'), "NO_COLOR=1:\n{screen}");

    let dir = tempfile::tempdir().unwrap();
    let mut args = RUN.to_vec();
    args.extend(["--results-dir", dir.path().to_str().unwrap()]);
    let out = bpfstorm(&args);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("vs cheapest"), "{stdout}");
    assert!(!stdout.contains('\x1b'), "a pipe:\n{stdout}");
}
