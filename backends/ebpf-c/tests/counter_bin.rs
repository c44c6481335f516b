//! The tutorial binary as a user runs it: it prints the count every
//! interval, and Ctrl-C ends it with status 0 after its cleanup ran (its
//! program is gone from the kernel).

use std::io::{BufRead, BufReader, Lines};
use std::process::{ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn counter() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bpfstorm-counter"))
}

/// The number after `prefix` on a line, if the line starts with it.
fn number_after(line: &str, prefix: &str) -> Option<u64> {
    line.strip_prefix(prefix)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Lines of the child's stdout, read on a thread so waits can time out.
fn lines(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let lines: Lines<_> = BufReader::new(stdout).lines();
        for line in lines.map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn prog_exists(id: u32) -> bool {
    // SAFETY: plain bpf(BPF_PROG_GET_FD_BY_ID); a returned fd is closed.
    let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
    if fd >= 0 {
        // SAFETY: the fd was just returned to us.
        unsafe { libc::close(fd) };
    }
    fd >= 0
}

fn counts_until_ctrl_c(map: &str) {
    let mut child = counter()
        .args(["--map", map, "--interval", "0.2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines(child.stdout.take().unwrap());
    let wait = Duration::from_secs(10);
    let header = rx.recv_timeout(wait).expect("a header line");
    let id = header
        .split("prog id ")
        .nth(1)
        .and_then(|rest| number_after(rest, ""))
        .unwrap_or_else(|| panic!("{map}: no prog id in `{header}`")) as u32;
    assert!(id > 0 && prog_exists(id), "{map}: {header}");

    for _ in 0..50 {
        assert!(Command::new("/bin/true").status().unwrap().success());
    }
    // Every exec on the machine counts, so at least ours.
    let deadline = Instant::now() + wait;
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("{map}: no count reached 50"));
        if number_after(&line, "count: ").is_some_and(|n| n >= 50) {
            break;
        }
    }

    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let stopped = Instant::now();
    let status = child.wait().unwrap();
    assert!(
        stopped.elapsed() < Duration::from_secs(2),
        "{map}: slow to stop"
    );
    let rest: Vec<String> = rx.iter().collect();
    assert_eq!(status.code(), Some(0), "{map}: {rest:?}");
    assert!(
        rest.iter()
            .any(|l| number_after(l, "final count: ").is_some_and(|n| n >= 50)),
        "{map}: {rest:?}"
    );
    assert_eq!(
        rest.last().map(String::as_str),
        Some("detaching and unloading")
    );
    assert!(!prog_exists(id), "{map}: prog {id} still loaded after exit");
}

#[test]
fn counts_execs_and_cleans_up_on_ctrl_c() {
    for map in ["array", "percpu_hash", "ringbuf", "perf_event_array"] {
        counts_until_ctrl_c(map);
    }
}

#[test]
fn invalid_strategy_is_refused_before_loading() {
    let out = counter()
        .args(["--map", "array", "--update", "percpu"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not work on map `array`: use one of atomic, racy"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}
