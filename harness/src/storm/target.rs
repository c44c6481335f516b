//! The executable each storm iteration runs.

use std::env;
use std::ffi::{CStr, CString};
use std::fs::{self, DirBuilder};
use std::io;
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

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A target ready to exec; for `tiny`, a private copy removed on drop.
pub struct TargetBinary {
    path: CString,
    _dir: Option<TempDir>,
}

impl TargetBinary {
    pub fn prepare(target: Target) -> Result<TargetBinary, StormError> {
        match target {
            Target::BinTrue => {
                access(BIN_TRUE, AccessFlags::X_OK).map_err(|source| {
                    StormError::TargetMissing {
                        path: PathBuf::from("/bin/true"),
                        source,
                    }
                })?;
                Ok(TargetBinary {
                    path: BIN_TRUE.to_owned(),
                    _dir: None,
                })
            }
            Target::Tiny => {
                let dir = TempDir::create()?;
                let path = dir.0.join("tiny");
                let write_error = |source| StormError::TargetWrite {
                    path: path.clone(),
                    source,
                };
                let c_path = CString::new(path.as_os_str().as_bytes())
                    .map_err(|e| write_error(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
                write_executable(&c_path, TINY).map_err(write_error)?;
                Ok(TargetBinary {
                    path: c_path,
                    _dir: Some(dir),
                })
            }
        }
    }

    pub fn path(&self) -> &CStr {
        &self.path
    }
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
        // /tmp is mounted noexec on some machines.
        let candidates = [
            env::temp_dir(),
            PathBuf::from("/var/tmp"),
            PathBuf::from("/dev/shm"),
        ];
        let mut last_error = None;
        for base in &candidates {
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

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a leftover holds one 4 KiB file in a temp directory.
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes `bytes` to a new file at `path` with mode 0755, from a short-lived
/// child process. Were the writable fd open in this multi-threaded process, a
/// fork elsewhere in it (another storm's workers, say) could inherit it, and
/// every execve of the file would fail with ETXTBSY while that copy lives.
fn write_executable(path: &CStr, bytes: &[u8]) -> io::Result<()> {
    // SAFETY: the child only makes async-signal-safe calls and exits.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            let code = match write_file(path, bytes) {
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
fn write_file(path: &CStr, mut bytes: &[u8]) -> Result<(), Errno> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC;
    // SAFETY: open, write, fchmod and close on a path and buffer that are live.
    unsafe {
        let fd = libc::open(path.as_ptr(), flags, 0o700);
        if fd < 0 {
            return Err(Errno::last());
        }
        // Exactly 0755, whatever the umask.
        if libc::fchmod(fd, 0o755) != 0 {
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
