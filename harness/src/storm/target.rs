//! The executable each storm iteration runs.
//!
//! bpfstorm runs as root, so no target is exec'd by a path that another
//! user could redirect. Its files are written into a fresh 0700 folder of
//! ours ([`PrivateDir`]) in a temp folder no other user can change, opened
//! `O_PATH` before any worker forks, and every exec goes through those
//! descriptors: `execve("/proc/self/fd/N")` (still the execve syscall, which
//! the measured hooks expect) or, for `fexecve`, `execveat(N, "",
//! AT_EMPTY_PATH)`. The `script` target's `#!` line names its interpreter
//! the same way, and `missing` is a name that does not exist under an fd of
//! the private folder. The kernel resolves `/proc/self/fd/N` before it
//! closes close-on-exec fds, so the fds stay close-on-exec and no target
//! inherits them.

use std::env;
use std::ffi::{CStr, CString};
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::statvfs::{fstatvfs, FsFlags};
use nix::unistd::{access, AccessFlags};

use super::{StormError, Target};
use crate::secure_fs::{self, Dir, FsError, PrivateDir};

/// targets/tiny.c, built by build.rs: exits at once, no libc, no loader.
static TINY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tiny"));
const BIN_TRUE: &CStr = c"/bin/true";

/// The target folders' names: `bpfstorm-target-<pid>-<16 hex>`.
const PREFIX: &str = "bpfstorm-target-";

/// The most fds a target needs kept open in the workers (`script`: the
/// script and its interpreter).
pub(super) const MAX_TARGET_FDS: usize = 2;

/// A target ready to exec: the `/proc/self/fd/N` path each iteration passes
/// to execve (or, for `fexecve`, the fd execveat runs), and the fds behind
/// it. Files it wrote live in a private folder removed on drop.
pub struct TargetBinary {
    exec_path: CString,
    /// argv[0]: the file's own path, for `ps` and messages.
    argv0: CString,
    /// `fexecve`: the fd execveat runs.
    exec_fd: Option<RawFd>,
    /// The O_PATH, close-on-exec fds the exec paths name.
    fds: Vec<OwnedFd>,
    _dir: Option<PrivateDir>,
}

impl TargetBinary {
    /// Writes the target into a private folder in the first temp folder that
    /// is safe and allows exec (see [`temp_bases`]), and opens it.
    pub fn prepare(target: Target) -> Result<TargetBinary, StormError> {
        TargetBinary::prepare_in(target, &temp_bases())
    }

    fn prepare_in(target: Target, bases: &[PathBuf]) -> Result<TargetBinary, StormError> {
        if target == Target::BinTrue {
            let missing = |source| StormError::TargetMissing {
                path: PathBuf::from("/bin/true"),
                source,
            };
            access(BIN_TRUE, AccessFlags::X_OK).map_err(missing)?;
            // Followed: /bin and the file are the system's, only root's to
            // change (and /bin is a symlink on merged-/usr systems).
            let fd = open_path(None, BIN_TRUE).map_err(missing)?;
            let exec_path = proc_fd_path(&fd, None)?;
            return Ok(TargetBinary {
                exec_path,
                argv0: BIN_TRUE.to_owned(),
                exec_fd: None,
                fds: vec![fd],
                _dir: None,
            });
        }

        let dir = private_dir(bases)?;
        let mut fds = Vec::with_capacity(MAX_TARGET_FDS);
        let (name, exec_path, exec_fd) = match target {
            Target::BinTrue => unreachable!("handled above"),
            Target::Tiny | Target::Threaded | Target::Fexecve => {
                let fd = write_target(&dir, c"tiny", TINY, 0o755)?;
                let path = proc_fd_path(&fd, None)?;
                let exec_fd = (target == Target::Fexecve).then(|| fd.as_raw_fd());
                fds.push(fd);
                ("tiny", path, exec_fd)
            }
            Target::Script => {
                // The interpreter is the tiny binary, named through its fd:
                // binfmt_script opens it before the exec closes any fd.
                let tiny = write_target(&dir, c"tiny", TINY, 0o755)?;
                let line = format!("#!/proc/self/fd/{}\n", tiny.as_raw_fd());
                fds.push(tiny);
                let script = write_target(&dir, c"script", line.as_bytes(), 0o755)?;
                let path = proc_fd_path(&script, None)?;
                fds.push(script);
                ("script", path, None)
            }
            // Never created: under an fd of the private folder, ENOENT.
            Target::Missing => {
                let fd =
                    open_path(Some(dir.dir()), c".").map_err(|source| StormError::TargetWrite {
                        path: dir.path().to_path_buf(),
                        source: source.into(),
                    })?;
                let path = proc_fd_path(&fd, Some("missing"))?;
                fds.push(fd);
                ("missing", path, None)
            }
            // The tiny binary itself, but with no exec bit for anyone (root
            // included: exec needs at least one x bit even with
            // CAP_DAC_OVERRIDE), so the only difference is the mode.
            Target::NotExecutable => {
                let fd = write_target(&dir, c"noexec", TINY, 0o644)?;
                let path = proc_fd_path(&fd, None)?;
                fds.push(fd);
                ("noexec", path, None)
            }
        };
        Ok(TargetBinary {
            exec_path,
            argv0: c_path(&dir.path().join(name))?,
            exec_fd,
            fds,
            _dir: Some(dir),
        })
    }

    /// What execve (or posix_spawn) runs: `/proc/self/fd/N`, or for
    /// `missing` a name under an fd of the private folder.
    pub fn exec_path(&self) -> &CStr {
        &self.exec_path
    }

    /// argv[0]: the path of the file the fd was opened on.
    pub fn path(&self) -> &CStr {
        &self.argv0
    }

    /// For `fexecve`: the fd execveat runs, opened before any worker forks.
    pub fn fd(&self) -> Option<RawFd> {
        self.exec_fd
    }

    /// The fds a worker must keep open for [`Self::exec_path`] and
    /// [`Self::fd`]; -1 pads.
    pub(super) fn keep_fds(&self) -> [RawFd; MAX_TARGET_FDS] {
        let mut keep = [-1; MAX_TARGET_FDS];
        for (slot, fd) in keep.iter_mut().zip(&self.fds) {
            *slot = fd.as_raw_fd();
        }
        keep
    }
}

fn c_path(path: &Path) -> Result<CString, StormError> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).map_err(|e| StormError::TargetWrite {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, e),
    })
}

/// `/proc/self/fd/<fd>` (with `/<name>` appended), checked to resolve: exec
/// through it needs procfs.
fn proc_fd_path(fd: &OwnedFd, name: Option<&str>) -> Result<CString, StormError> {
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    fs::metadata(&link).map_err(|source| StormError::NoProcFd { source })?;
    let path = match name {
        Some(name) => format!("{link}/{name}"),
        None => link,
    };
    c_path(Path::new(&path))
}

/// An O_PATH, close-on-exec fd of `name` in `dir` (not following a symlink
/// there), or of the absolute path `name` when `dir` is None (following).
fn open_path(dir: Option<&Dir>, name: &CStr) -> Result<OwnedFd, Errno> {
    let fd = match dir {
        // SAFETY: openat on a live dir fd with a NUL-terminated name.
        Some(dir) => unsafe {
            libc::openat(
                dir.as_fd().as_raw_fd(),
                name.as_ptr(),
                libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        },
        // SAFETY: opens a NUL-terminated path.
        None => unsafe { libc::open(name.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) },
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: open just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Writes `bytes` to a new file `name` of `dir` with exactly `mode` and
/// returns an O_PATH fd of it.
fn write_target(
    dir: &PrivateDir,
    name: &CStr,
    bytes: &[u8],
    mode: libc::mode_t,
) -> Result<OwnedFd, StormError> {
    let error = |source: io::Error| StormError::TargetWrite {
        path: dir.path().join(name.to_string_lossy().as_ref()),
        source,
    };
    write_file_from_child(dir.dir(), name, bytes, mode).map_err(error)?;
    open_path(Some(dir.dir()), name).map_err(|e| error(e.into()))
}

/// A private folder in the first of `bases` that no other user can change
/// and that allows exec; the error says why each was refused.
fn private_dir(bases: &[PathBuf]) -> Result<PrivateDir, StormError> {
    let mut refused = Vec::with_capacity(bases.len());
    for base in bases {
        match private_dir_in(base) {
            Ok(dir) => return Ok(dir),
            Err(why) => refused.push(format!("{}: {why}", base.display())),
        }
    }
    Err(StormError::NoTargetDir {
        refused: refused.join("; "),
    })
}

fn private_dir_in(base: &Path) -> Result<PrivateDir, String> {
    let dir = Dir::open(base).map_err(|e| match e {
        FsError::Unsafe { why, .. } => {
            format!("{why}: another user could swap the executables root runs there")
        }
        FsError::Io { source, .. } => source.to_string(),
    })?;
    let stat = fstatvfs(&dir).map_err(|e| e.to_string())?;
    if stat.flags().contains(FsFlags::ST_NOEXEC) {
        return Err("it is mounted noexec".into());
    }
    dir.private_dir(PREFIX).map_err(|e| e.to_string())
}

/// Where target folders may go, in order (TMPDIR, else /tmp; /tmp is
/// mounted noexec on some machines).
fn temp_bases() -> Vec<PathBuf> {
    let mut bases = vec![env::temp_dir()];
    for base in ["/var/tmp", "/dev/shm"] {
        if !bases.iter().any(|b| b == Path::new(base)) {
            bases.push(PathBuf::from(base));
        }
    }
    bases
}

/// Removes target folders left by runs that were killed (SIGKILL skips
/// Drop); returns what it removed. Only root's 0700 folders named as ours
/// are touched (see [`secure_fs::sweep`]).
pub fn sweep_stale_dirs() -> Vec<PathBuf> {
    temp_bases()
        .iter()
        .flat_map(|base| secure_fs::sweep(base, PREFIX))
        .collect()
}

/// Writes `bytes` to a new file `name` of `dir` with `mode`, from a
/// short-lived child process. Were the writable fd open in this multi-threaded process, a
/// fork elsewhere in it (another storm's workers, say) could inherit it, and
/// every execve of the file would fail with ETXTBSY while that copy lives.
fn write_file_from_child(
    dir: &Dir,
    name: &CStr,
    bytes: &[u8],
    mode: libc::mode_t,
) -> io::Result<()> {
    let dir = dir.as_fd().as_raw_fd();
    // SAFETY: the child only makes async-signal-safe calls and exits.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            let code = match write_file(dir, name, bytes, mode) {
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
fn write_file(dir: RawFd, name: &CStr, mut bytes: &[u8], mode: libc::mode_t) -> Result<(), Errno> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: openat, write, fchmod and close on a dir fd, name and buffer
    // that are live.
    unsafe {
        let fd = libc::openat(dir, name.as_ptr(), flags, 0o700);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};

    fn folder(parent: &Path, name: &str, mode: u32) -> PathBuf {
        let path = parent.join(name);
        fs::create_dir(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn every_target_is_exec_through_an_fd() {
        let tmp = tempfile::tempdir().unwrap();
        let base = [tmp.path().to_path_buf()];
        for target in Target::ALL {
            let binary = TargetBinary::prepare_in(target, &base).unwrap();
            let exec = binary.exec_path().to_str().unwrap().to_owned();
            assert!(exec.starts_with("/proc/self/fd/"), "{target}: {exec}");
            let keep = binary.keep_fds();
            let fd: RawFd = exec["/proc/self/fd/".len()..]
                .split('/')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap();
            assert!(keep.contains(&fd), "{target}: {keep:?}");
            match target {
                Target::Missing => assert!(exec.ends_with("/missing"), "{exec}"),
                Target::Fexecve => assert_eq!(binary.fd(), Some(fd)),
                Target::Script => {
                    let line = fs::read_to_string(binary.path().to_str().unwrap()).unwrap();
                    assert_eq!(line, format!("#!/proc/self/fd/{}\n", keep[0]));
                    assert_ne!(keep[0], fd);
                }
                _ => {}
            }
            if target != Target::Fexecve {
                assert_eq!(binary.fd(), None);
            }
            if target != Target::BinTrue {
                let argv0 = binary.path().to_str().unwrap();
                assert!(argv0.starts_with(tmp.path().to_str().unwrap()), "{argv0}");
            }
        }
        // Every private folder went with its target.
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    /// These need root (and a kernel): `scripts/test kernel` runs them, the
    /// fast layer skips them.
    mod as_root {
        use super::*;

        #[test]
        fn unsafe_temp_folders_are_refused_with_the_reason() {
            let tmp = tempfile::tempdir().unwrap();
            let open = folder(tmp.path(), "open", 0o777);
            let theirs = folder(tmp.path(), "theirs", 0o755);
            chown(&theirs, Some(65534), Some(65534)).unwrap();
            let gone = tmp.path().join("gone");
            let bases = [open.clone(), theirs.clone(), gone.clone()];

            let Err(err) = private_dir(&bases) else {
                panic!("an unsafe base was used");
            };
            let message = err.to_string();
            for (base, why) in [
                (&open, "every user can write it"),
                (&theirs, "it belongs to uid 65534"),
                (&gone, "No such file"),
            ] {
                assert!(
                    message.contains(&format!("{}: {why}", base.display())),
                    "{message}"
                );
            }
            assert!(message.contains("TMPDIR"), "{message}");
            assert_eq!(fs::read_dir(&open).unwrap().count(), 0);
            assert_eq!(fs::read_dir(&theirs).unwrap().count(), 0);

            // The first safe one is used: a fresh 0700 folder of ours.
            let safe = folder(tmp.path(), "safe", 0o1777);
            let bases = [open, theirs, safe.clone()];
            let dir = private_dir(&bases).unwrap();
            assert_eq!(dir.path().parent(), Some(safe.as_path()));
            let name = dir
                .path()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            assert!(
                name.starts_with(&format!("{PREFIX}{}-", std::process::id())),
                "{name}"
            );
            let meta = fs::symlink_metadata(dir.path()).unwrap();
            assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o700));
        }
    }
}
