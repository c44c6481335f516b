//! The executable each storm iteration runs.

use std::env;
use std::ffi::{CStr, CString};
use std::fs::{self, DirBuilder};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::sys::statvfs::{statvfs, FsFlags};
use nix::unistd::{access, AccessFlags};

use super::{StormError, Target};

/// targets/tiny.c, built by build.rs: exits at once, no libc, no loader.
static TINY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tiny"));
const BIN_TRUE: &CStr = c"/bin/true";
/// The kernel reads at most this much of a `#!` line (BINPRM_BUF_SIZE).
const BINPRM_BUF_SIZE: usize = 256;

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A target ready to exec: the path each iteration passes to execve (or, for
/// `fexecve`, an fd of the tiny binary and its path as argv[0]). Files it
/// wrote live in a private directory removed on drop.
pub struct TargetBinary {
    path: CString,
    /// `fexecve`: an O_PATH, close-on-exec fd of the tiny binary.
    fd: Option<OwnedFd>,
    _dir: Option<TempDir>,
}

impl TargetBinary {
    pub fn prepare(target: Target) -> Result<TargetBinary, StormError> {
        if target == Target::BinTrue {
            access(BIN_TRUE, AccessFlags::X_OK).map_err(|source| StormError::TargetMissing {
                path: PathBuf::from("/bin/true"),
                source,
            })?;
            return Ok(TargetBinary {
                path: BIN_TRUE.to_owned(),
                fd: None,
                _dir: None,
            });
        }

        let dir = TempDir::create()?;
        let (path, fd) = match target {
            Target::BinTrue => unreachable!("handled above"),
            Target::Tiny | Target::Threaded => (dir.write("tiny", TINY, 0o755)?, None),
            Target::Script => {
                let tiny = dir.write("tiny", TINY, 0o755)?;
                let mut line = Vec::with_capacity(tiny.as_bytes().len() + 3);
                line.extend_from_slice(b"#!");
                line.extend_from_slice(tiny.as_bytes());
                line.push(b'\n');
                if line.len() > BINPRM_BUF_SIZE {
                    return Err(StormError::TargetWrite {
                        path: dir.0.join("script"),
                        source: io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!(
                                "the #! line would be {} bytes, over the kernel's {BINPRM_BUF_SIZE}",
                                line.len()
                            ),
                        ),
                    });
                }
                (dir.write("script", &line, 0o755)?, None)
            }
            // Never created: the private directory guarantees ENOENT.
            Target::Missing => (dir.path_of("missing")?, None),
            // The tiny binary itself, but with no exec bit for anyone (root
            // included: exec needs at least one x bit even with
            // CAP_DAC_OVERRIDE), so the only difference is the mode.
            Target::NotExecutable => (dir.write("noexec", TINY, 0o644)?, None),
            Target::Fexecve => {
                let path = dir.write("tiny", TINY, 0o755)?;
                let fd = open_path(&path).map_err(|source| StormError::TargetWrite {
                    path: PathBuf::from(std::ffi::OsStr::from_bytes(path.as_bytes())),
                    source,
                })?;
                (path, Some(fd))
            }
        };
        Ok(TargetBinary {
            path,
            fd,
            _dir: Some(dir),
        })
    }

    /// What execve runs (for `fexecve`: argv[0], the file behind [`Self::fd`]).
    pub fn path(&self) -> &CStr {
        &self.path
    }

    /// For `fexecve`: the fd execveat runs, opened before any worker forks.
    pub fn fd(&self) -> Option<RawFd> {
        self.fd.as_ref().map(AsRawFd::as_raw_fd)
    }
}

/// An O_PATH fd of `path`: enough for execveat(fd, "", AT_EMPTY_PATH), and
/// close-on-exec so that no target inherits it (an ELF run through an fd does
/// not need the fd after exec; only a script would).
fn open_path(path: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: opens a NUL-terminated path; the fd is owned below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: open just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A private directory (mode 0700) on a filesystem that allows exec.
struct TempDir(PathBuf);

impl TempDir {
    fn create() -> Result<TempDir, StormError> {
        let name = format!(
            "bpfstorm-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut last_error = None;
        for base in &temp_bases() {
            let path = base.join(&name);
            match allows_exec(base).and_then(|()| DirBuilder::new().mode(0o700).create(&path)) {
                Ok(()) => return Ok(TempDir(path)),
                Err(e) => last_error = Some((path, e)),
            }
        }
        let (path, source) = last_error.unwrap_or_else(|| {
            (
                PathBuf::from(&name),
                io::Error::from(io::ErrorKind::NotFound),
            )
        });
        Err(StormError::TargetWrite { path, source })
    }

    /// `name` in this directory, as a C string.
    fn path_of(&self, name: &str) -> Result<CString, StormError> {
        let path = self.0.join(name);
        CString::new(path.as_os_str().as_bytes()).map_err(|e| StormError::TargetWrite {
            path,
            source: io::Error::new(io::ErrorKind::InvalidInput, e),
        })
    }

    /// Writes `bytes` to a new file `name` with exactly `mode`.
    fn write(&self, name: &str, bytes: &[u8], mode: libc::mode_t) -> Result<CString, StormError> {
        let path = self.path_of(name)?;
        write_file_from_child(&path, bytes, mode).map_err(|source| StormError::TargetWrite {
            path: self.0.join(name),
            source,
        })?;
        Ok(path)
    }
}

fn allows_exec(dir: &Path) -> io::Result<()> {
    let stat = statvfs(dir).map_err(io::Error::from)?;
    if stat.flags().contains(FsFlags::ST_NOEXEC) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is mounted noexec", dir.display()),
        ));
    }
    Ok(())
}

/// Where target directories may go: /tmp is mounted noexec on some machines.
fn temp_bases() -> [PathBuf; 3] {
    [
        env::temp_dir(),
        PathBuf::from("/var/tmp"),
        PathBuf::from("/dev/shm"),
    ]
}

/// Removes target directories left by runs that were killed (SIGKILL skips
/// Drop); returns what it removed.
pub fn sweep_stale_dirs() -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for base in temp_bases() {
        let Ok(entries) = fs::read_dir(&base) else {
            continue;
        };
        for entry in entries.flatten() {
            let dead = crate::cgroup::owner_pid(&entry.file_name())
                .is_some_and(|pid| !crate::cgroup::process_alive(pid));
            if dead && fs::remove_dir_all(entry.path()).is_ok() {
                removed.push(entry.path());
            }
        }
    }
    removed
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a leftover holds a few 4 KiB files in a temp directory.
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes `bytes` to a new file at `path` with `mode`, from a short-lived
/// child process. Were the writable fd open in this multi-threaded process, a
/// fork elsewhere in it (another storm's workers, say) could inherit it, and
/// every execve of the file would fail with ETXTBSY while that copy lives.
fn write_file_from_child(path: &CStr, bytes: &[u8], mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: the child only makes async-signal-safe calls and exits.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            let code = match write_file(path, bytes, mode) {
                Ok(()) => 0,
                Err(errno) => errno as i32,
            };
            // SAFETY: leaves the child without running the parent's exit handlers.
            unsafe { libc::_exit(code) }
        }
        pid => {
            let mut status = 0;
            loop {
                // SAFETY: waits for the child forked above.
                if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
                    break;
                }
                let errno = Errno::last();
                if errno != Errno::EINTR {
                    return Err(errno.into());
                }
            }
            match (libc::WIFEXITED(status), libc::WEXITSTATUS(status)) {
                (true, 0) => Ok(()),
                (true, errno) => Err(io::Error::from_raw_os_error(errno)),
                _ => Err(io::Error::other("the writer process was killed")),
            }
        }
    }
}

/// The writer child's work; returns errno on failure.
fn write_file(path: &CStr, mut bytes: &[u8], mode: libc::mode_t) -> Result<(), Errno> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC;
    // SAFETY: open, write, fchmod and close on a path and buffer that are live.
    unsafe {
        let fd = libc::open(path.as_ptr(), flags, 0o700);
        if fd < 0 {
            return Err(Errno::last());
        }
        // Exactly `mode`, whatever the umask.
        if libc::fchmod(fd, mode) != 0 {
            return Err(Errno::last());
        }
        while !bytes.is_empty() {
            let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
            match usize::try_from(n) {
                Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
                Err(_) if Errno::last() == Errno::EINTR => {}
                Err(_) => return Err(Errno::last()),
            }
        }
        if libc::close(fd) != 0 {
            return Err(Errno::last());
        }
    }
    Ok(())
}
