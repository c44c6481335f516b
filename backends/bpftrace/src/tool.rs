//! bpftrace as a child process: run only from where root alone can have
//! put it (the very file checked, exec'd through the fd it was checked
//! by), with a clean environment, in a process group of its own (a Ctrl-C
//! meant for bpfstorm reaches it through bpfstorm's teardown, not halfway
//! through a measure), killed by the kernel if the thread that started it
//! dies, and heard through its JSON output.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bpfstorm_common::{AttachPoint, CounterError};
use serde_json::Value;

/// Where Debian's package and a local install put it. PATH is not
/// searched: nothing a user could have written runs as root.
const PLACES: [&str; 4] = [
    "/usr/bin/bpftrace",
    "/usr/sbin/bpftrace",
    "/usr/local/bin/bpftrace",
    "/usr/local/sbin/bpftrace",
];

/// bpftrace compiles with LLVM before it loads: a second or two here,
/// much more on a loaded machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// From SIGTERM to its exit, after which it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long it may take to print its map when asked (one map of a few
/// keys: milliseconds), and how often it is asked again meanwhile (a
/// signal that came while it was busy may print nothing).
const PRINT_TIMEOUT: Duration = Duration::from_secs(10);
const PRINT_AGAIN: Duration = Duration::from_millis(200);

/// The bpftrace releases whose ways this backend knows: the line below on
/// stderr (v0.23 moved it to stdout), `BPFTRACE_MAP_KEYS_MAX`, `kfunc`.
const KNOWN: std::ops::RangeInclusive<(u32, u32)> = (0, 17)..=(0, 22);

/// Bytes of its stderr kept for an error message.
const STDERR_KEPT: usize = 16 * 1024;

/// Set in its environment, bpftrace prints this line (to stderr) once
/// every probe is attached.
const ATTACHED: &str = "__BPFTRACE_NOTIFY_PROBES_ATTACHED";

/// What bpftrace says on stderr when this kernel has no such hook (or
/// refuses its kind), rather than when it lacks a privilege or the program
/// itself is wrong.
const REFUSALS: [&str; 4] = [
    "not available for your kernel",
    "is not traceable",
    "Could not resolve symbol",
    // A kprobe without tracefs' kprobe_events, as here.
    "kprobe_events): No such file or directory",
];

/// Every folder from `path` up belongs to root, and only root can write it.
fn only_root_writes(path: &Path) -> Result<(), String> {
    for at in path.ancestors() {
        let meta = at
            .metadata()
            .map_err(|e| format!("{}: {e}", at.display()))?;
        if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
            return Err(format!(
                "{} (for {}) is not owned and written by root alone",
                at.display(),
                path.display()
            ));
        }
    }
    Ok(())
}

/// The bpftrace to run: the file itself, opened once and checked by its
/// fd, so that what was checked is what runs.
pub(crate) struct Binary {
    file: File,
    /// `(major, minor)` of its `--version`.
    version: (u32, u32),
    said_version: String,
}

impl Binary {
    /// A command that runs this very file (through `/proc/self/fd`, the fd
    /// open in the child until its exec), as `bpftrace`, with an empty
    /// environment but PATH, from `/`.
    fn command(&self) -> Command {
        let mut command = Command::new(format!("/proc/self/fd/{}", self.file.as_raw_fd()));
        command
            .arg0("bpftrace")
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .current_dir("/");
        command
    }

    /// Refuses a bpftrace whose ways this backend does not know.
    pub(crate) fn known(&self) -> Result<(), CounterError> {
        if KNOWN.contains(&self.version) {
            return Ok(());
        }
        let (low, high) = (KNOWN.start(), KNOWN.end());
        Err(CounterError::Setup(format!(
            "{} is not a bpftrace this backend knows (v{}.{} to v{}.{}: how it says its probes \
             are attached, how it sizes maps); install Debian 12's (scripts/setup)",
            self.said_version, low.0, low.1, high.0, high.1
        )))
    }
}

/// `major.minor` of `bpftrace v0.17.0`.
fn parse_version(said: &str) -> Option<(u32, u32)> {
    let mut numbers = said.trim().strip_prefix("bpftrace v")?.split('.');
    Some((numbers.next()?.parse().ok()?, numbers.next()?.parse().ok()?))
}

/// The file at `place`, if it, its real path and every folder above both
/// belong to root and only root can write them.
fn checked(place: &Path) -> Result<File, String> {
    let real = place
        .canonicalize()
        .map_err(|e| format!("{}: {e}", place.display()))?;
    only_root_writes(place.parent().unwrap_or(Path::new("/")))?;
    only_root_writes(real.parent().unwrap_or(Path::new("/")))?;
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&real)
        .map_err(|e| format!("{}: {e}", real.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("{}: {e}", real.display()))?;
    if !meta.is_file() || meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is not a file owned and written by root alone",
            real.display()
        ));
    }
    Ok(file)
}

pub(crate) fn binary() -> Result<Binary, CounterError> {
    let place = PLACES
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
        .ok_or_else(|| {
            CounterError::Setup(
                "bpftrace is not installed: run scripts/setup (it installs Debian's bpftrace), or \
             `apt-get install bpftrace`"
                    .into(),
            )
        })?;
    let file = checked(place)
        .map_err(|why| CounterError::Setup(format!("refusing to run bpftrace as root: {why}")))?;
    // Asked once per process: a bpftrace replaced meanwhile is still
    // checked above, and ran the same way.
    static SAID: OnceLock<String> = OnceLock::new();
    let said_version = match SAID.get() {
        Some(said) => said.clone(),
        None => {
            let out = Binary {
                file: file.try_clone()?,
                version: (0, 0),
                said_version: String::new(),
            }
            .command()
            .arg("--version")
            .output()
            .map_err(|e| {
                CounterError::Setup(format!("running {} --version: {e}", place.display()))
            })?;
            let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
            SAID.get_or_init(|| said).clone()
        }
    };
    let version = parse_version(&said_version).ok_or_else(|| {
        CounterError::Setup(format!(
            "{} --version said `{said_version}`, not `bpftrace vX.Y.Z`",
            place.display()
        ))
    })?;
    Ok(Binary {
        file,
        version,
        said_version,
    })
}

/// `bpftrace --version`, for the CSV: "bpftrace v0.17.0" (asked once, see
/// [`binary`]).
pub(crate) fn version() -> String {
    match binary() {
        Ok(binary) => binary.said_version,
        Err(e) => format!("bpftrace (not usable: {e})"),
    }
}

/// A running bpftrace with its probes attached. Dropping it stops it, and
/// with it everything it loaded.
pub(crate) struct Tool {
    child: Child,
    /// `None` once closed, before it is stopped (see [`Tool::stop`]).
    stdout: Option<BufReader<ChildStdout>>,
    stderr: Option<JoinHandle<String>>,
}

/// The count of map `@` in a `map` line: its value, or its keys' summed.
fn printed_count(line: &Value) -> Option<u64> {
    if line["type"] != "map" {
        return None;
    }
    match &line["data"]["@"] {
        Value::Number(n) => n.as_u64(),
        Value::Object(keys) => keys.values().map(Value::as_u64).sum(),
        _ => None,
    }
}

/// What bpftrace said on stderr, on one line, less its warning about
/// RLIMIT_MEMLOCK (which this kernel does not charge BPF memory to).
fn said(stderr: &str) -> String {
    stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains("RLIMIT_MEMLOCK"))
        // Its underlining of the source line, which says nothing in one line.
        .filter(|l| !l.chars().all(|c| c == '~'))
        .collect::<Vec<_>>()
        .join(" | ")
}

impl Tool {
    /// Runs `script` and waits until bpftrace reports its probes attached.
    pub(crate) fn start(
        binary: &Binary,
        script: &str,
        keys_max: Option<u32>,
        attach: AttachPoint,
    ) -> Result<Tool, CounterError> {
        let mut command = binary.command();
        command
            .args(["-f", "json", "-e", script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // bpftrace's "attached_probes" comes before it attaches anything;
        // this line (its own test suite's) comes once all are attached.
        command.env(ATTACHED, "1");
        if let Some(keys) = keys_max {
            command.env("BPFTRACE_MAP_KEYS_MAX", keys.to_string());
        }
        // The death signal comes when the thread that forked it ends: a
        // counter outliving the thread that opened it would lose its tool.
        let parent = std::process::id();
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0
                    || libc::setpgid(0, 0) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                // The parent died before the death signal was armed.
                if libc::getppid() as u32 != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|e| CounterError::Backend {
            backend: "bpftrace",
            message: format!("starting {}: {e}", binary.said_version),
        })?;
        let stdout = child.stdout.take().map(BufReader::new);
        // Its stderr, kept for the error it may explain, and its word
        // that every probe is attached (it ends with the pipe: at exit).
        let (attached, heard) = mpsc::channel();
        let stderr = child.stderr.take().and_then(|pipe| {
            std::thread::Builder::new()
                .name("bpftrace-stderr".into())
                .spawn(move || {
                    // Read to its end whatever it writes (a closed pipe
                    // would kill it with SIGPIPE at its next warning).
                    let mut text = String::new();
                    let mut reader = BufReader::new(pipe);
                    let mut line = Vec::new();
                    while let Ok(1..) = reader.read_until(b'\n', &mut line) {
                        let said = String::from_utf8_lossy(&line);
                        if said.trim() == ATTACHED {
                            let _ = attached.send(());
                        } else if text.len() < STDERR_KEPT {
                            text.push_str(&said);
                        }
                        line.clear();
                    }
                    text
                })
                .ok()
        });
        let tool = Tool {
            child,
            stdout,
            stderr,
        };
        match heard.recv_timeout(START_TIMEOUT) {
            Ok(()) => Ok(tool),
            Err(RecvTimeoutError::Timeout) => {
                let waited = format!("no word within {START_TIMEOUT:?}");
                Err(tool.why_not_up(attach, Some(waited)))
            }
            Err(RecvTimeoutError::Disconnected) => Err(tool.why_not_up(attach, None)),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line of its output; `None` at its end.
    fn next_line(&mut self, deadline: Instant) -> Result<Option<String>, String> {
        let stdout = self.stdout.as_mut().ok_or("its output is closed")?;
        loop {
            if stdout.buffer().is_empty() {
                let left = deadline.saturating_duration_since(Instant::now());
                let mut poll = libc::pollfd {
                    fd: stdout.get_ref().as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                let ms = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
                // SAFETY: one valid pollfd.
                match unsafe { libc::poll(&mut poll, 1, ms) } {
                    0 => return Err(format!("no answer within {left:?}")),
                    n if n < 0 => {
                        let e = io::Error::last_os_error();
                        if e.kind() == io::ErrorKind::Interrupted {
                            continue;
                        }
                        return Err(format!("waiting for its output: {e}"));
                    }
                    _ => {}
                }
            }
            let mut text = String::new();
            match stdout.read_line(&mut text) {
                Ok(0) => return Ok(None),
                Ok(_) => return Ok(Some(text)),
                Err(e) => return Err(format!("reading its output: {e}")),
            }
        }
    }

    /// Exited, if it has: a counter whose tool died counts nothing more.
    pub(crate) fn exited(&mut self) -> Option<(ExitStatus, String)> {
        let status = self.child.try_wait().ok()??;
        let stderr = self.stderr.take().and_then(|t| t.join().ok());
        Some((status, said(&stderr.unwrap_or_default())))
    }

    /// The count bpftrace itself prints for `@` when asked (SIGUSR1): its
    /// own view of the map. It prints nothing for a map with no key yet:
    /// asked again every 200 ms, it answers once its map holds a key.
    pub(crate) fn printed(&mut self) -> Result<u64, CounterError> {
        let failed = |message: String| CounterError::Backend {
            backend: "bpftrace",
            message,
        };
        let deadline = Instant::now() + PRINT_TIMEOUT;
        while Instant::now() < deadline {
            // Never a signal to a pid already reaped (and maybe reused).
            if !matches!(self.child.try_wait(), Ok(None)) {
                return Err(failed("it exited instead of printing".into()));
            }
            // SAFETY: a signal to our own child, checked unreaped above.
            if unsafe { libc::kill(self.pid() as libc::pid_t, libc::SIGUSR1) } != 0 {
                let e = io::Error::last_os_error();
                return Err(failed(format!("asking it to print: {e}")));
            }
            let again = (Instant::now() + PRINT_AGAIN).min(deadline);
            loop {
                match self.next_line(again) {
                    Ok(Some(line)) => {
                        let json = serde_json::from_str(&line).unwrap_or(Value::Null);
                        if let Some(count) = printed_count(&json) {
                            return Ok(count);
                        }
                    }
                    Ok(None) => return Err(failed("it exited instead of printing".into())),
                    Err(_) => break,
                }
            }
        }
        Err(failed(format!(
            "it printed no count within {PRINT_TIMEOUT:?} (a map with no key prints nothing)"
        )))
    }

    /// Stops it: its output closed first (an unread print of a big map
    /// would hold up its exit), then SIGTERM, then SIGKILL if it lingers;
    /// reaped, so everything it loaded is gone from the kernel.
    fn stop(&mut self) -> String {
        self.stdout = None;
        let pid = self.pid() as libc::pid_t;
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: our own child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + STOP_TIMEOUT;
            while let Ok(None) = self.child.try_wait() {
                if Instant::now() >= deadline {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let stderr = self.stderr.take().and_then(|t| t.join().ok());
        said(&stderr.unwrap_or_default())
    }

    /// Why it did not come up: the kernel's refusal of its probe, typed
    /// as unsupported, or its own failure.
    fn why_not_up(mut self, attach: AttachPoint, waiting: Option<String>) -> CounterError {
        let status = self.child.try_wait().ok().flatten();
        let stderr = self.stop();
        if REFUSALS.iter().any(|r| stderr.contains(r)) {
            return CounterError::Unsupported {
                what: attach.to_string(),
                reason: format!("bpftrace: {stderr}"),
                errno: None,
            };
        }
        let how = match (waiting, status) {
            (Some(why), _) => format!("did not attach ({why}); stopped"),
            (None, Some(status)) => format!("exited ({status}) before attaching"),
            (None, None) => "closed its output before attaching".into(),
        };
        CounterError::Backend {
            backend: "bpftrace",
            message: format!("bpftrace {how}: {stderr}"),
        }
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_count_of_its_map_lines() {
        let line = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        let attached = line(r#"{"type": "attached_probes", "data": {"probes": 1}}"#);
        assert_eq!(printed_count(&attached), None);
        let one = line(r#"{"type": "map", "data": {"@": 20000}}"#);
        assert_eq!(printed_count(&one), Some(20_000));
        let keyed = line(r#"{"type": "map", "data": {"@": {"0": 5, "3": 7}}}"#);
        assert_eq!(printed_count(&keyed), Some(12));
        let other = line(r#"{"type": "map", "data": {"@other": 3}}"#);
        assert_eq!(printed_count(&other), None);
    }

    #[test]
    fn its_memlock_warning_is_left_out() {
        let stderr = "ERROR: Unknown error -1: couldn't set RLIMIT_MEMLOCK for bpftrace.\n\
                      stdin:1:1-23: ERROR: kfunc/kretfunc not available for your kernel version.\n\
                      kfunc:__x64_sys_execve { @ = count(); }\n~~~~~~~~~~~~~~~~~~~~~~\n";
        assert_eq!(
            said(stderr),
            "stdin:1:1-23: ERROR: kfunc/kretfunc not available for your kernel version. | \
             kfunc:__x64_sys_execve { @ = count(); }"
        );
    }

    #[test]
    fn a_binary_others_can_write_is_refused() {
        // /tmp: everyone writes there (sticky or not, the tool could be swapped).
        let why = only_root_writes(Path::new("/tmp")).unwrap_err();
        assert!(why.contains("not owned and written by root alone"), "{why}");
        assert_eq!(only_root_writes(Path::new("/usr/bin")), Ok(()));
        let why = checked(Path::new("/tmp")).unwrap_err();
        assert!(why.contains("root alone"), "{why}");
        // A folder is not a program, root's or not.
        let why = checked(Path::new("/usr/bin")).unwrap_err();
        assert!(
            why.contains("not a file owned and written by root alone"),
            "{why}"
        );
    }

    #[test]
    fn its_version_is_major_and_minor() {
        assert_eq!(parse_version("bpftrace v0.17.0\n"), Some((0, 17)));
        assert_eq!(parse_version("bpftrace v0.23.2"), Some((0, 23)));
        assert_eq!(parse_version("bpftrace 0.17"), None);
        assert!(KNOWN.contains(&(0, 17)) && !KNOWN.contains(&(0, 23)));
    }
}
