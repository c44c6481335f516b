//! Other kernels for real: a Debian cloud kernel booted by virtme-ng under
//! QEMU's software emulation, where the attach points this machine's kernel
//! refuses (fentry, kprobe, LSM) load, attach and count. Needs the guest
//! tools and kernels that `scripts/setup-guests` caches (scripts/test runs it).

use std::fs;
use std::process::Stdio;
use std::thread::sleep;
use std::time::{Duration, Instant};

use bpfstorm::export::read::{newest_run, read_run};
use common::{bpfstorm, command, text};

mod common;

const KERNEL: &str = "6.12";

/// Processes of the VM tooling still running anywhere on the machine
/// (zombies are dead: only their parent's reaping is left).
fn vm_processes() -> Vec<String> {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|stat| {
            let (head, rest) = stat.rsplit_once(')')?;
            let comm = head.split_once('(')?.1.to_string();
            let running = rest.split_whitespace().next() != Some("Z");
            let vm = comm.starts_with("qemu-system") || comm == "virtiofsd";
            (vm && running).then_some(comm)
        })
        .collect()
}

/// Every attach point this machine's kernel refuses.
const REFUSED_ON_THE_HOST: &str = "fentry_sys_execve,fexit_sys_execve,kprobe_sys_execve,\
                                   ksyscall_execve,lsm_bprm_check_security,lsm_bprm_committed_creds";

#[test]
fn every_attach_point_the_host_refuses_counts_exactly_in_a_debian_guest() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().to_str().unwrap();
    let attach = REFUSED_ON_THE_HOST;
    let out = bpfstorm(&[
        "run",
        "--kernel",
        KERNEL,
        "--backend",
        "libbpf,c,aya",
        "--attach",
        attach,
        "--map",
        "array",
        "--update",
        "atomic",
        "--workers",
        "2",
        "--execs",
        "25",
        "--results-dir",
        results,
    ]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");

    let rows = read_run(&newest_run(dir.path()).expect("a run CSV")).unwrap();
    let git_rev = bpfstorm::host::Host::detect().git_rev;
    assert_eq!(rows.len(), 18, "3 backends x 6 attach points: {rows:#?}");
    for r in &rows {
        let cell = format!("{} {}", r.backend, r.attach);
        assert!(
            r.kernel.starts_with(&format!("{KERNEL}.")),
            "{cell}: {}",
            r.kernel
        );
        assert_eq!(r.timing.name(), "emulated", "{cell}");
        assert_eq!(
            r.git_rev, git_rev,
            "{cell}: the host's revision, not the guest's view"
        );
        assert_eq!(r.status.name(), "ok", "{cell}: {}", r.error);
        assert_eq!(r.issued, Some(50), "{cell}");
        assert_eq!(r.counted, Some(50), "{cell}");
        assert_eq!(r.expected, Some(50), "{cell}: oracle {}", r.expected_oracle);
        assert_eq!(r.exact, Some(true), "{cell}");
        assert!(
            r.run_cnt.is_some_and(|n| n >= 50),
            "{cell}: {:?}",
            r.run_cnt
        );
        // No probe-free storm in a guest: emulation's exec cost drowns it.
        assert_eq!(r.e2e_ns_per_exec, None, "{cell}");
    }
    for a in attach.split(',') {
        assert!(rows.iter().any(|r| r.attach.name() == a), "no row for {a}");
    }
    assert!(
        stdout.contains("times above are QEMU's software emulation"),
        "{stdout}"
    );
    assert_eq!(
        vm_processes(),
        Vec::<String>::new(),
        "the VM outlived the run"
    );
    assert!(
        fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .all(|e| !e.file_name().to_string_lossy().starts_with(".guest-")),
        "the guest's scratch folder was left behind"
    );
}

#[test]
fn ctrl_c_during_a_guest_kills_the_vm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = command(&[
        "run",
        "--kernel",
        KERNEL,
        "--execs",
        "2000",
        "--results-dir",
    ])
    .arg(dir.path())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Wait until QEMU is up, then interrupt as a terminal's Ctrl-C would.
    let started = Instant::now();
    while vm_processes().iter().all(|c| !c.starts_with("qemu-system")) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "QEMU never started"
        );
        sleep(Duration::from_millis(100));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "exit status 128 + SIGINT");
    assert_eq!(
        vm_processes(),
        Vec::<String>::new(),
        "the VM outlived Ctrl-C"
    );
}

#[test]
fn a_kernel_not_in_the_cache_says_how_to_fetch_it() {
    let cache = tempfile::tempdir().unwrap();
    let results = tempfile::tempdir().unwrap();
    let out = command(&["run", "--kernel", "host,6.1", "--results-dir"])
        .env("XDG_CACHE_HOME", cache.path())
        .arg(results.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("run `scripts/setup-guests`"), "{err}");
    assert!(
        newest_run(results.path()).is_none(),
        "nothing should run before the guest is known to be there"
    );
}

#[test]
fn an_unknown_kernel_is_refused_with_the_choices() {
    let out = bpfstorm(&["run", "--kernel", "5.10"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("unknown kernel `5.10`"), "{err}");
    assert!(err.contains("6.1, 6.12"), "{err}");
}

#[test]
fn semantics_across_kernels_has_a_column_per_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let out = bpfstorm(&[
        "semantics",
        "--kernel",
        &format!("host,{KERNEL}"),
        "--attach",
        "tp_sys_enter_execve,fentry_sys_execve",
        "--target",
        "tiny,missing",
        "--execs",
        "10",
        "--results-dir",
        dir.path().to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let host = bpfstorm::host::Host::detect().kernel;
    let guest_csv = fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with(&format!("semantics-{KERNEL}.")) && n.ends_with("-guest.csv"))
        .expect("the guest's semantics CSV, named as a guest's");
    assert!(dir.path().join(guest_csv.replace(".csv", ".md")).is_file());

    let report = fs::read_to_string(dir.path().join("semantics-kernels.md")).unwrap();
    let table = report
        .split("## Target `missing`")
        .nth(1)
        .unwrap_or_else(|| panic!("{report}"));
    let header = table
        .lines()
        .find(|l| l.starts_with("| attach point |"))
        .unwrap();
    assert!(header.contains(&format!("`{host}` (native)")), "{header}");
    assert!(header.contains(&format!("`{KERNEL}.")), "{header}");
    assert!(header.contains("(emulated)"), "{header}");
    let row = |attach: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("| `{attach}` |")))
            .unwrap_or_else(|| panic!("no {attach} row:\n{table}"))
            .to_string()
    };
    // The host refuses fentry; the guest counts every attempt, failed ones too.
    assert_eq!(
        row("fentry_sys_execve"),
        "| `fentry_sys_execve` | refused | 20: every attempt, failed ones too |"
    );
    assert_eq!(
        row("tp_sys_enter_execve"),
        "| `tp_sys_enter_execve` | 20: every attempt, failed ones too | 20: every attempt, failed ones too |"
    );
}
