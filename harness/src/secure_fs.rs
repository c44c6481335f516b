//! Files and folders that a root process can create where other users reach.
//!
//! bpfstorm runs as root and writes into folders it did not make (the results
//! folder, the temp folder). Every file is created through a directory fd with
//! `O_CREAT|O_EXCL|O_NOFOLLOW` under a random name and renamed into place, so
//! a planted symlink is replaced, never followed; every folder of its own is
//! made fresh (never reused), 0700, under a random name, and checked after.
//! Folders another user owns or can write (and that are not sticky) are
//! refused: there, that user could swap what we wrote or made.

use std::ffi::{CString, OsStr};
use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum FsError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("refusing {path}: {why}")]
    Unsafe { path: PathBuf, why: String },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> FsError + '_ {
    move |source| FsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `len` random bytes as lowercase hex, from the kernel's CSPRNG.
pub fn random_hex(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        let rest = &mut bytes[filled..];
        // SAFETY: writes at most rest.len() bytes into a live buffer.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        match usize::try_from(n) {
            Ok(n) => filled += n,
            // EINTR only: getrandom(2) with no flags blocks until seeded.
            Err(_) => continue,
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn c_name(name: &OsStr) -> io::Result<CString> {
    if name.is_empty() || name.as_bytes().contains(&b'/') || name == "." || name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a plain file name", name.to_string_lossy()),
        ));
    }
    CString::new(name.as_bytes()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Why another user could change what is in a folder with this owner and
/// mode, or None when only we (and root) can.
fn others_can_change(meta: &fs::Metadata) -> Option<String> {
    let me = nix::unistd::geteuid().as_raw();
    let mode = meta.mode();
    if meta.uid() != me && meta.uid() != 0 {
        return Some(format!("it belongs to uid {}, not to us", meta.uid()));
    }
    let sticky = mode & libc::S_ISVTX != 0;
    if mode & 0o002 != 0 && !sticky {
        return Some("every user can write it and it is not sticky".into());
    }
    if mode & 0o020 != 0 && meta.gid() != 0 && !sticky {
        return Some(format!(
            "group {} can write it and it is not sticky",
            meta.gid()
        ));
    }
    None
}

/// An open folder; files are created relative to its fd, so renaming or
/// replacing its path afterwards changes nothing we write.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    /// Opens `path` without following a symlink in its last component and
    /// refuses it when another user could change what is in it.
    pub fn open(path: &Path) -> Result<Dir, FsError> {
        let c = CString::new(path.as_os_str().as_bytes()).map_err(|e| FsError::Io {
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, e),
        })?;
        // SAFETY: opens a NUL-terminated path; the fd is owned below.
        let fd = check(unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        })
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::ENOTDIR) if path.is_symlink() => FsError::Unsafe {
                path: path.to_path_buf(),
                why: "it is a symbolic link; name the folder it points to".into(),
            },
            _ => FsError::Io {
                path: path.to_path_buf(),
                source: e,
            },
        })?;
        // SAFETY: open just returned this fd to us.
        let dir = Dir {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path: path.to_path_buf(),
        };
        let meta = dir.metadata().map_err(io_error(path))?;
        if let Some(why) = others_can_change(&meta) {
            return Err(FsError::Unsafe {
                path: path.to_path_buf(),
                why,
            });
        }
        Ok(dir)
    }

    /// The results folder: created if missing (with its parents), then opened
    /// as [`Dir::open`] does. Another user's folder, or one others can write
    /// unless it is sticky, is refused with what to do.
    pub fn results(path: &Path) -> Result<Dir, FsError> {
        fs::create_dir_all(path).map_err(io_error(path))?;
        Dir::open(path).map_err(|e| match e {
            FsError::Unsafe { path, why } => FsError::Unsafe {
                path,
                why: format!(
                    "{why}: another user could replace the results bpfstorm writes there as root; \
                     pick a folder only root can write with --results-dir"
                ),
            },
            other => other,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The same folder through a second fd.
    pub fn try_clone(&self) -> Result<Dir, FsError> {
        Ok(Dir {
            fd: self.fd.try_clone().map_err(io_error(&self.path))?,
            path: self.path.clone(),
        })
    }

    fn metadata(&self) -> io::Result<fs::Metadata> {
        // /proc/self/fd gives std's metadata for an fd without unsafe fstat.
        fs::File::from(self.fd.try_clone()?).metadata()
    }

    /// Creates `name` anew (failing if anything, a symlink included, is
    /// there) with `bytes`, mode 0644.
    pub fn create_new(&self, name: &str, bytes: &[u8]) -> Result<(), FsError> {
        let path = self.path.join(name);
        let c = c_name(OsStr::new(name)).map_err(io_error(&path))?;
        self.write_new(&c, bytes).map_err(io_error(&path))
    }

    fn write_new(&self, name: &CString, bytes: &[u8]) -> io::Result<()> {
        let flags =
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: openat on our dir fd with a NUL-terminated name.
        let fd = check(unsafe { libc::openat(self.fd.as_raw_fd(), name.as_ptr(), flags, 0o644) })?;
        // SAFETY: openat just returned this fd to us.
        let mut file = fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let written = file.write_all(bytes).and_then(|()| file.flush());
        if let Err(e) = written {
            self.unlink(name);
            return Err(e);
        }
        Ok(())
    }

    /// Replaces `name` with `bytes` atomically: written to a new file of a
    /// random name, then renamed over `name` (a symlink there is replaced, not
    /// followed). On failure nothing is left behind and `name` is unchanged.
    pub fn replace(&self, name: &str, bytes: &[u8]) -> Result<(), FsError> {
        let path = self.path.join(name);
        let target = c_name(OsStr::new(name)).map_err(io_error(&path))?;
        let tmp = c_name(OsStr::new(&format!(".{name}.{}.tmp", random_hex(8))))
            .map_err(io_error(&path))?;
        self.write_new(&tmp, bytes).map_err(io_error(&path))?;
        let fd = self.fd.as_raw_fd();
        // SAFETY: renameat within our dir fd with NUL-terminated names.
        if let Err(e) = check(unsafe { libc::renameat(fd, tmp.as_ptr(), fd, target.as_ptr()) }) {
            self.unlink(&tmp);
            return Err(FsError::Io { path, source: e });
        }
        Ok(())
    }

    fn unlink(&self, name: &CString) {
        // SAFETY: unlinkat within our dir fd with a NUL-terminated name.
        unsafe { libc::unlinkat(self.fd.as_raw_fd(), name.as_ptr(), 0) };
    }

    /// A new private folder in this one (see [`PrivateDir`]).
    pub fn private_dir(&self, prefix: &str) -> Result<PrivateDir, FsError> {
        PrivateDir::create_in(self, prefix)
    }
}

impl AsFd for Dir {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A folder made fresh for us: `<prefix><pid>-<random>`, mode 0700, owned by
/// us, in a parent no other user can change; removed (with what it holds)
/// when dropped. The pid in the name lets [`sweep`] find folders of killed
/// runs; the random part makes the name unguessable.
#[derive(Debug)]
pub struct PrivateDir {
    dir: Dir,
    /// The folder it was made in, and its name there: removal goes through
    /// these fds, never through a path someone could swap.
    parent: Dir,
    name: CString,
}

impl PrivateDir {
    /// Creates one in the folder at `parent`, refused when another user
    /// could change what is in `parent`.
    pub fn create(parent: &Path, prefix: &str) -> Result<PrivateDir, FsError> {
        PrivateDir::create_in(&Dir::open(parent)?, prefix)
    }

    fn create_in(parent: &Dir, prefix: &str) -> Result<PrivateDir, FsError> {
        loop {
            let name = format!("{prefix}{}-{}", std::process::id(), random_hex(8));
            let path = parent.path.join(&name);
            let c = c_name(OsStr::new(&name)).map_err(io_error(&path))?;
            // SAFETY: mkdirat on our dir fd with a NUL-terminated name.
            match check(unsafe { libc::mkdirat(parent.fd.as_raw_fd(), c.as_ptr(), 0o700) }) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(FsError::Io { path, source: e }),
            }
            let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
            // SAFETY: openat on our dir fd with a NUL-terminated name.
            let fd = check(unsafe { libc::openat(parent.fd.as_raw_fd(), c.as_ptr(), flags) })
                .map_err(io_error(&path))?;
            // SAFETY: openat just returned this fd to us.
            let dir = Dir {
                fd: unsafe { OwnedFd::from_raw_fd(fd) },
                path,
            };
            // Exactly 0700 whatever the umask, then checked: it must be the
            // folder we just made.
            // SAFETY: fchmod on an fd we own.
            check(unsafe { libc::fchmod(dir.fd.as_raw_fd(), 0o700) })
                .map_err(io_error(&dir.path))?;
            let meta = dir.metadata().map_err(io_error(&dir.path))?;
            if meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o7777 != 0o700 {
                return Err(FsError::Unsafe {
                    path: dir.path,
                    why: "the folder just made is not ours with mode 0700".into(),
                });
            }
            return Ok(PrivateDir {
                dir,
                parent: parent.try_clone()?,
                name: c,
            });
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir.path
    }

    pub fn dir(&self) -> &Dir {
        &self.dir
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        // Best effort: a leftover is swept by the next run. The name in the
        // parent must still be our folder (same inode), or it is left alone.
        let ours = fstatat(&self.parent, &self.name)
            .ok()
            .zip(self.dir.metadata().ok())
            .is_some_and(|(there, ours)| there.st_dev == ours.dev() && there.st_ino == ours.ino());
        if ours && empty_at(&self.dir.fd).is_ok() {
            // SAFETY: unlinkat within our parent fd with a NUL-terminated name.
            unsafe {
                libc::unlinkat(
                    self.parent.fd.as_raw_fd(),
                    self.name.as_ptr(),
                    libc::AT_REMOVEDIR,
                )
            };
        }
    }
}

fn fstatat(dir: &Dir, name: &CString) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstatat writes a stat into `st` on success.
    check(unsafe {
        libc::fstatat(
            dir.fd.as_raw_fd(),
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    // SAFETY: fstatat succeeded, so it filled `st`.
    Ok(unsafe { st.assume_init() })
}

/// Removes everything in the folder open at `fd`, through fds only.
fn empty_at(fd: &OwnedFd) -> io::Result<()> {
    let names: Vec<CString> = fs::read_dir(format!("/proc/self/fd/{}", fd.as_raw_fd()))?
        .filter_map(Result::ok)
        .filter_map(|e| CString::new(e.file_name().as_bytes()).ok())
        .collect();
    for name in names {
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: openat on our fd with a NUL-terminated name.
        let sub = unsafe { libc::openat(fd.as_raw_fd(), name.as_ptr(), flags) };
        let remove_flags = if sub >= 0 {
            // SAFETY: openat just returned this fd to us.
            let sub = unsafe { OwnedFd::from_raw_fd(sub) };
            empty_at(&sub)?;
            libc::AT_REMOVEDIR
        } else {
            0
        };
        // SAFETY: unlinkat within our fd with a NUL-terminated name.
        check(unsafe { libc::unlinkat(fd.as_raw_fd(), name.as_ptr(), remove_flags) })?;
    }
    Ok(())
}

/// The pid in the name of a [`PrivateDir`] made with `prefix`.
fn owner_pid(name: &OsStr, prefix: &str) -> Option<i32> {
    let rest = name.as_bytes().strip_prefix(prefix.as_bytes())?;
    let (pid, random) = std::str::from_utf8(rest).ok()?.split_once('-')?;
    let is_random = random.len() == 16 && random.bytes().all(|b| b.is_ascii_hexdigit());
    is_random.then(|| pid.parse().ok()).flatten()
}

/// Removes the private folders with `prefix` in `parent` left by runs that
/// were killed (SIGKILL skips Drop): only folders that are ours by name, by
/// owner (root) and by mode (0700), whose process is gone. Returns them.
pub fn sweep(parent: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(dir) = Dir::open(parent) else {
        return Vec::new();
    };
    let Ok(entries) = fs::read_dir(&dir.path) else {
        return Vec::new();
    };
    let me = nix::unistd::geteuid().as_raw();
    let mut removed = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let Some(pid) = owner_pid(&entry.file_name(), prefix) else {
            continue;
        };
        // symlink_metadata: a symlink of that name is someone else's.
        let ours = entry
            .path()
            .symlink_metadata()
            .is_ok_and(|m| m.is_dir() && m.uid() == me && m.mode() & 0o7777 == 0o700);
        if ours && !crate::cgroup::process_alive(pid) && fs::remove_dir_all(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn random_names_differ_and_are_hex() {
        let (a, b) = (random_hex(8), random_hex(8));
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn parses_owner_pid() {
        let p = "bpfstorm-";
        assert_eq!(
            owner_pid(OsStr::new("bpfstorm-12-0123456789abcdef"), p),
            Some(12)
        );
        assert_eq!(owner_pid(OsStr::new("bpfstorm-12-3"), p), None);
        assert_eq!(
            owner_pid(OsStr::new("bpfstorm-x-0123456789abcdef"), p),
            None
        );
        assert_eq!(owner_pid(OsStr::new("other-12-0123456789abcdef"), p), None);
    }

    #[test]
    fn replace_does_not_follow_a_planted_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let results = tmp.path().join("results");
        fs::create_dir(&results).unwrap();
        symlink(&victim, results.join("out.csv")).unwrap();
        let dir = Dir::open(&results).unwrap();
        assert!(dir.create_new("out.csv", b"x").is_err());
        dir.replace("out.csv", b"report").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(
            fs::read_to_string(results.join("out.csv")).unwrap(),
            "report"
        );
        assert!(!results.join("out.csv").is_symlink());
        // Nothing else left: no temp file.
        assert_eq!(fs::read_dir(&results).unwrap().count(), 1);
    }

    #[test]
    fn refuses_folders_others_can_write() {
        let tmp = tempfile::tempdir().unwrap();
        let open = tmp.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(Dir::open(&open), Err(FsError::Unsafe { .. })));
        fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(Dir::open(&open).is_ok());
        let link = tmp.path().join("link");
        symlink(&open, &link).unwrap();
        assert!(matches!(Dir::open(&link), Err(FsError::Unsafe { .. })));
    }

    #[test]
    fn private_dirs_are_fresh_0700_and_swept_only_when_ours() {
        let tmp = tempfile::tempdir().unwrap();
        let made = PrivateDir::create(tmp.path(), "t-").unwrap();
        let meta = made.path().symlink_metadata().unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o700);
        let path = made.path().to_path_buf();
        drop(made);
        assert!(!path.exists());
        // A dead pid's folder is swept only when it is 0700 and ours.
        let dead = tmp.path().join(format!("t-{}-0123456789abcdef", i32::MAX));
        fs::create_dir(&dead).unwrap();
        fs::set_permissions(&dead, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(sweep(tmp.path(), "t-").is_empty());
        fs::set_permissions(&dead, fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(sweep(tmp.path(), "t-"), vec![dead.clone()]);
        assert!(!dead.exists());
    }

    #[test]
    fn dropping_a_private_dir_removes_only_the_folder_it_made() {
        let tmp = tempfile::tempdir().unwrap();
        let made = PrivateDir::create(tmp.path(), "t-").unwrap();
        made.dir().create_new("file", b"x").unwrap();
        let path = made.path().to_path_buf();
        // Someone swaps the name for a folder of their own.
        let moved = tmp.path().join("moved");
        fs::rename(&path, &moved).unwrap();
        fs::create_dir(&path).unwrap();
        fs::write(path.join("theirs"), "y").unwrap();
        drop(made);
        assert!(path.join("theirs").exists(), "removed what it did not make");
        assert!(moved.join("file").exists());
    }
}
