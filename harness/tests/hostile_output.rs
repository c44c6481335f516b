//! bpfstorm runs as root; these tests play a local user (uid 65534) who can
//! write where bpfstorm writes, and check that root neither follows their
//! symlinks nor takes their folders, plus the robustness faults found in the
//! same trial (closed stdout, odd inputs, duplicated causes).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use bpfstorm::export::read::newest_run;
use common::{bpfstorm, command, one_cell_run, text};

mod common;

const NOBODY: &str = "65534";

/// Runs `script` with sh as uid/gid 65534 and no groups.
fn as_attacker(script: &str) {
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .output()
        .expect("setpriv (util-linux)");
    assert!(
        out.status.success(),
        "attacker script failed: {}",
        text(&out.stderr)
    );
}

/// A sticky, world-writable folder like /tmp, inside a fresh temp dir.
fn sticky_folder() -> (tempfile::TempDir, std::path::PathBuf) {
    let top = tempfile::tempdir().unwrap();
    fs::set_permissions(top.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let shared = top.path().join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    (top, shared)
}

/// A root-only file the attacker wants overwritten.
fn victim(top: &Path) -> std::path::PathBuf {
    let victim = top.join("victim");
    fs::write(&victim, "root's secret").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
    victim
}

fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .unwrap()
        .release()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn planted_symlinks_in_a_sticky_results_folder_are_not_followed() {
    let (top, shared) = sticky_folder();
    let victim = victim(top.path());
    let stem = format!("semantics-{}", kernel_release());
    let names = [
        format!("{stem}.md"),
        format!("{stem}.csv"),
        format!("{stem}.csv.tmp"),
        "semantics-kernels.md".to_string(),
    ];
    let plant: Vec<String> = names
        .iter()
        .map(|n| format!("ln -s {} {}", victim.display(), shared.join(n).display()))
        .collect();
    as_attacker(&plant.join(" && "));

    let out = bpfstorm(&[
        "semantics",
        "--attach",
        "tp_sys_enter_execve",
        "--target",
        "tiny",
        "--workers",
        "1",
        "--execs",
        "5",
        "--results-dir",
        shared.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(fs::read_to_string(&victim).unwrap(), "root's secret");
    let md = shared.join(&names[0]);
    assert!(
        !md.is_symlink(),
        "the report is still the attacker's symlink"
    );
    assert!(fs::read_to_string(md)
        .unwrap()
        .contains("tp_sys_enter_execve"));
    // No temp file of ours is left beside the report.
    let leftovers: Vec<String> = fs::read_dir(&shared)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn compare_output_replaces_a_planted_symlink() {
    let (top, shared) = sticky_folder();
    let victim = victim(top.path());
    let report = shared.join("report.md");
    as_attacker(&format!("ln -s {} {}", victim.display(), report.display()));
    let baseline = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/baseline-rust-vm.csv");
    let out = bpfstorm(&[
        "compare",
        baseline.to_str().unwrap(),
        baseline.to_str().unwrap(),
        "--output",
        report.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(fs::read_to_string(&victim).unwrap(), "root's secret");
    assert!(!report.is_symlink());
}

#[test]
fn a_results_folder_another_user_owns_or_can_write_is_refused() {
    let top = tempfile::tempdir().unwrap();
    fs::set_permissions(top.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let theirs = top.path().join("theirs");
    fs::create_dir(&theirs).unwrap();
    nix::unistd::chown(&theirs, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let open = top.path().join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    for (dir, says) in [
        (&theirs, "belongs to uid 65534"),
        (&open, "every user can write it"),
    ] {
        let out = one_cell_run(dir, "5").output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("refusing") && err.contains(says), "{err}");
        assert!(err.contains("--results-dir"), "{err}");
        assert_eq!(
            fs::read_dir(dir).unwrap().count(),
            0,
            "it wrote into {dir:?}"
        );
    }
}

#[test]
fn a_closed_stdout_ends_quietly_and_keeps_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = one_cell_run(dir.path(), "20")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before bpfstorm prints anything.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let csv = newest_run(dir.path()).expect("the run's CSV");
    assert!(
        csv.with_extension("md").exists(),
        "no report beside {csv:?}"
    );

    // recommend | head: the reader is gone before it prints.
    let mut child = command(&["recommend", csv.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn the_header_is_written_before_the_first_cell() {
    let dir = tempfile::tempdir().unwrap();
    // A storm far too long to finish: the run is cut by SIGTERM during its
    // first cell, and the CSV already says what it is.
    let child = one_cell_run(dir.path(), "1000000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let csv = loop {
        if let Some(csv) = newest_run(dir.path()) {
            break csv;
        }
        assert!(std::time::Instant::now() < deadline, "no CSV appeared");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let header = fs::read_to_string(&csv).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143));
    assert!(header.starts_with("schema_version,run_id,"), "{header:?}");
    let after = fs::read_to_string(&csv).unwrap();
    assert!(after.starts_with("schema_version,"), "{after:?}");
}

#[test]
fn odd_inputs_get_a_clear_error() {
    let refused = |args: &[&str], env: Option<(&str, &str)>, code: i32, says: &str| {
        let mut cmd = command(args);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(
            err.contains(says),
            "{args:?}: stderr lacks `{says}`:\n{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        err
    };
    refused(
        &["run", "--timeout", "18446744073709551615"],
        None,
        2,
        "--timeout",
    );
    refused(&["run", "--timeout", "0"], None, 2, "--timeout");
    let btf = Some(("BPFSTORM_BTF", "/etc/passwd"));
    refused(&["run", "--execs", "5"], btf, 1, "is not a BTF file");
    refused(
        &["run", "--execs", "5"],
        Some(("BPFSTORM_BTF", "/etc")),
        1,
        "is a folder",
    );
    refused(
        &["run", "--execs", "5"],
        Some(("BPFSTORM_BTF", "")),
        1,
        "is empty",
    );
    refused(
        &["run", "--update", "stream", "--map", "array,ringbuf"],
        None,
        2,
        "does not work on map `array`",
    );
    // Each cause said once: the folder error quotes its OS error itself.
    let err = refused(
        &["run", "--results-dir", "/etc/passwd/x"],
        None,
        1,
        "os error",
    );
    assert_eq!(err.matches("(os error").count(), 1, "{err}");
}

#[test]
fn capabilities_without_root_are_refused_up_front() {
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "--inh-caps=+sys_admin,+bpf,+perfmon",
            "--ambient-caps=+sys_admin,+bpf,+perfmon",
            "--",
        ])
        .arg(env!("CARGO_BIN_EXE_bpfstorm"))
        .args(["probe", "--results-dir", "/nonexistent"])
        .output()
        .expect("setpriv (util-linux)");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("must run as root"), "{err}");
}

#[test]
fn cells_that_share_their_hook_with_other_execs_are_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let mut noise = Command::new("sh")
        .args(["-c", "while :; do /bin/true; done"])
        .spawn()
        .unwrap();
    let out = one_cell_run(dir.path(), "300")
        .args(["--workers", "1"])
        .output()
        .unwrap();
    noise.kill().unwrap();
    noise.wait().unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("shared their hook with other work"), "{err}");
    let rows = bpfstorm::export::read::read_run(&newest_run(dir.path()).unwrap()).unwrap();
    // The hot cell's own calls dwarf a shell loop's; the storm's do not.
    let storm = rows
        .iter()
        .find(|r| r.method == bpfstorm::hot::Method::Storm)
        .expect("a storm row");
    assert!(
        storm
            .interference
            .contains("execve calls outside the storm"),
        "{rows:?}"
    );
    // The counts stay exact: the program counts the storm's cgroup only.
    assert!(rows.iter().all(|r| r.exact == Some(true)), "{rows:?}");
}
