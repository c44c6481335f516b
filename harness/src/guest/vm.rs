//! One bpfstorm command inside a guest kernel, run by virtme-ng under QEMU's
//! software emulation. The host's root is the guest's (read-only, over
//! virtiofs); only the given folder is writable, and it is where the guest's
//! results come back.

use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::kernels::GuestKernel;
use super::GuestError;
use crate::interrupt;
use crate::secure_fs::{self, PrivateDir};

/// The environment variable that tells a bpfstorm inside a guest where it
/// runs: its rows say `timing = emulated`.
pub const GUEST_ENV: &str = "BPFSTORM_GUEST";

/// The host's source revision, handed to the guest: there the checkout is
/// read-only, and git calls any tree it cannot refresh the index of dirty.
pub const GIT_REV_ENV: &str = "BPFSTORM_GIT_REV";

/// What the guest's command left behind.
#[derive(Debug)]
pub struct GuestOutput {
    /// Its exit status; `None` when it died of a signal.
    pub status: Option<i32>,
    pub stdout: String,
}

/// The virtme-ng front end and the tools it needs, from the cache.
#[derive(Debug, Clone)]
pub struct Vm {
    vng: PathBuf,
    path: OsString,
}

impl Vm {
    /// Finds vng, QEMU and virtiofsd, or says how to install them.
    pub fn find(cache: &Path) -> Result<Vm, GuestError> {
        let vng = cache.join("venv/bin/vng");
        let virtiofsd = cache.join("bin/virtiofsd");
        for tool in [&vng, &virtiofsd] {
            if !tool.is_file() {
                return Err(GuestError::MissingTool { tool: tool.clone() });
            }
        }
        if !Path::new("/usr/bin/qemu-system-x86_64").is_file() {
            return Err(GuestError::MissingTool {
                tool: "/usr/bin/qemu-system-x86_64".into(),
            });
        }
        let mut path = OsString::from(cache.join("bin"));
        path.push(":");
        path.push(cache.join("venv/bin"));
        if let Some(old) = std::env::var_os("PATH") {
            path.push(":");
            path.push(old);
        }
        Ok(Vm { vng, path })
    }

    /// Boots `kernel`, runs `command` (argv) as root with `rwdir` writable,
    /// and returns when it exits. Its stderr is passed through line by line,
    /// each prefixed with `prefix`. The VM is shut down past `limit` or on
    /// Ctrl-C, and with it every process it started.
    pub fn run(
        &self,
        kernel: &GuestKernel,
        command: &[OsString],
        rwdir: &Path,
        limit: Duration,
        prefix: &str,
    ) -> Result<GuestOutput, GuestError> {
        let mut script = format!(
            "{GUEST_ENV}={} {GIT_REV_ENV}={} exec",
            kernel.series,
            shell_quote(&crate::host::source_rev())
        );
        for arg in command {
            script.push(' ');
            script.push_str(&shell_quote(&arg.to_string_lossy()));
        }
        // vng's sockets and pid files go to a folder of ours, removed
        // afterwards even when vng is killed before its own clean-up (and
        // by the next run when we were killed).
        let tmp = private_tmp(&std::env::temp_dir())?;
        let mut cmd = Command::new(&self.vng);
        cmd.env("PATH", &self.path)
            .env("TMPDIR", tmp.path())
            .arg("--run")
            .arg(&kernel.vmlinuz)
            .args(["--disable-kvm", "--cpus", "2", "--memory", "2G", "--rwdir"])
            .arg(rwdir)
            .arg("--exec")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so one signal reaches vng, QEMU and
            // virtiofsd, and the terminal's Ctrl-C reaches us first.
            .process_group(0);
        let child = match cmd.spawn() {
            Ok(child) => child,
            Err(source) => {
                return Err(GuestError::Spawn {
                    tool: self.vng.clone(),
                    source,
                });
            }
        };
        let mut vm = RunningVm {
            child,
            _tmp: tmp,
            status: None,
        };
        let stdout = vm.child.stdout.take().expect("piped stdout");
        let stderr = vm.child.stderr.take().expect("piped stderr");
        let out_reader = thread::spawn(move || {
            let mut bytes = Vec::new();
            BufReader::new(stdout)
                .read_to_end(&mut bytes)
                .map(|_| String::from_utf8_lossy(&bytes).into_owned())
        });
        let prefix = prefix.to_string();
        let err_reader = thread::spawn(move || {
            for line in BufReader::new(stderr).split(b'\n').map_while(Result::ok) {
                crate::errln!("{prefix}{}", String::from_utf8_lossy(&line));
            }
        });

        let started = Instant::now();
        while !vm.exited().map_err(GuestError::Wait)? {
            if interrupt::requested() {
                return Err(GuestError::Interrupted);
            }
            if started.elapsed() > limit {
                return Err(GuestError::Timeout {
                    series: kernel.series.clone(),
                    limit,
                });
            }
            thread::sleep(Duration::from_millis(100));
        }
        let status = vm.shut_down().map_err(GuestError::Wait)?;
        // The pipes close when the group is gone; a process stuck in the
        // kernel past SIGKILL could hold them, so do not wait forever.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !(out_reader.is_finished() && err_reader.is_finished()) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        let stdout = if out_reader.is_finished() {
            out_reader
                .join()
                .expect("stdout reader")
                .map_err(GuestError::Wait)?
        } else {
            String::new()
        };
        Ok(GuestOutput {
            status: status.code(),
            stdout,
        })
    }
}

/// vng's process group, shut down on every way out: return, error, panic.
struct RunningVm {
    child: Child,
    /// vng's TMPDIR, removed when this drops, after the group is gone.
    _tmp: PrivateDir,
    status: Option<ExitStatus>,
}

impl RunningVm {
    /// Whether vng has exited, leaving it unreaped: while it is a zombie
    /// its pid, and so its process group's id, cannot be reused.
    fn exited(&self) -> std::io::Result<bool> {
        // SAFETY: waitid only writes the siginfo_t we hand it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        // SAFETY: a plain syscall on our own child, with a valid siginfo_t.
        let rc = unsafe { libc::waitid(libc::P_PID, self.child.id(), &mut info, flags) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: si_pid is valid for the WEXITED siginfo waitid filled in.
        Ok(unsafe { info.si_pid() } != 0)
    }

    /// SIGINT first, so vng and QEMU clean up after themselves; SIGKILL for
    /// whatever is still running 3 s later. Then reaps vng.
    fn shut_down(&mut self) -> std::io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let group = self.child.id() as i32;
        let _ = killpg(Pid::from_raw(group), Signal::SIGINT);
        if !wait_for_group(group, Duration::from_secs(3)) {
            let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
            wait_for_group(group, Duration::from_secs(5));
        }
        let status = self.child.wait()?;
        self.status = Some(status);
        Ok(status)
    }
}

impl Drop for RunningVm {
    fn drop(&mut self) {
        let _ = self.shut_down();
    }
}

/// vng's TMPDIR folders: `bpfstorm-vng-<pid>-<16 hex>`.
const TMP_PREFIX: &str = "bpfstorm-vng-";

/// A fresh 0700 folder for vng, QEMU and virtiofsd (all root) in `temp`,
/// refused when another user could change `temp`: vng reads pid files
/// there and kills those pids. Folders of killed runs go first (only
/// root's 0700 ones of our name shape).
fn private_tmp(temp: &Path) -> Result<PrivateDir, GuestError> {
    secure_fs::sweep(temp, TMP_PREFIX);
    Ok(PrivateDir::create(temp, TMP_PREFIX)?)
}

/// Waits until no process of `group` runs; false if some still do at `limit`.
fn wait_for_group(group: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if !group_alive(group) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Whether any process of `group` is still running (zombies are dead).
fn group_alive(group: i32) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    entries.filter_map(Result::ok).any(|e| {
        let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        // After the command's closing parenthesis: state, ppid, pgrp.
        let mut fields = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|g| g.parse::<i32>().ok());
        pgrp == Some(group) && state != Some("Z")
    })
}

/// Quotes one word for the guest's POSIX shell.
fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=,:+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_only_when_needed() {
        assert_eq!(
            shell_quote("--attach=fentry_sys_execve,kprobe"),
            "--attach=fentry_sys_execve,kprobe"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn missing_tools_say_how_to_install_them() {
        let dir = tempfile::tempdir().unwrap();
        let err = Vm::find(dir.path()).unwrap_err();
        assert!(err.to_string().contains("scripts/setup-guests"), "{err}");
    }

    /// These need root (and a kernel): `scripts/test kernel` runs them, the
    /// fast layer skips them.
    mod as_root {
        use super::*;

        #[test]
        fn vng_tmp_is_fresh_and_private_never_a_pre_created_folder() {
            use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
            let tmp = tempfile::tempdir().unwrap();
            fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o1777)).unwrap();
            let me = std::process::id();
            // Another user pre-creates the names vng's folder used to get.
            let planted = [
                format!("{TMP_PREFIX}{me}-6.12"),
                format!("{TMP_PREFIX}{me}-6.1"),
            ];
            let out = std::process::Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg("mkdir")
                .args(["-m", "777"])
                .args(planted.iter().map(|n| tmp.path().join(n)))
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");

            let made = private_tmp(tmp.path()).unwrap();
            assert!(!planted.iter().any(|n| made.path() == tmp.path().join(n)));
            let meta = fs::symlink_metadata(made.path()).unwrap();
            assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o700));
            for name in &planted {
                let meta = fs::metadata(tmp.path().join(name)).unwrap();
                assert_eq!((meta.uid(), meta.mode() & 0o7777), (65534, 0o777));
            }
            drop(made);

            // A temp folder another user owns is refused, saying why.
            let theirs = tmp.path().join("theirs");
            fs::create_dir(&theirs).unwrap();
            fs::set_permissions(&theirs, fs::Permissions::from_mode(0o777)).unwrap();
            chown(&theirs, Some(65534), Some(65534)).unwrap();
            let err = private_tmp(&theirs).unwrap_err().to_string();
            assert!(err.contains("uid 65534"), "{err}");
            assert_eq!(fs::read_dir(&theirs).unwrap().count(), 0);
        }
    }
}
