//! A throwaway cgroup that holds one storm.
//!
//! The cgroup v2 directory gives the storm a cgroup id (what
//! `bpf_get_current_cgroup_id()` returns) and scopes perf counters; a pids
//! limit (on v2 when the pids controller is there, else on the v1 pids
//! hierarchy of hybrid layouts) keeps a buggy storm from fork-bombing the
//! machine. Directories are named `bpfstorm-<pid>-<seq>` so that
//! [`StormCgroup::sweep_stale`] can find those of runs that were killed.

mod mountinfo;

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use mountinfo::Mounts;

const PREFIX: &str = "bpfstorm-";
/// How long teardown waits for killed tasks to leave before giving up.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
const POLL_INTERVAL: Duration = Duration::from_millis(2);

static SEQ: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("reading /proc/self/mountinfo: {0}")]
    Mountinfo(#[source] io::Error),
    #[error(
        "no cgroup2 mount in /proc/self/mountinfo; mount one as root: \
         mkdir -p /sys/fs/cgroup/unified && mount -t cgroup2 none /sys/fs/cgroup/unified"
    )]
    NoCgroup2,
    #[error("creating cgroup {path}: {source} (bpfstorm must run as root)")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl CgroupError {
    fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CgroupError + 'a {
        move |source| CgroupError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }
}

/// A cgroup made for one storm; dropping it kills what is left inside and
/// removes it.
#[derive(Debug)]
pub struct StormCgroup {
    v2: PathBuf,
    pids_v1: Option<PathBuf>,
    id: u64,
    pids_max: Option<u64>,
    removed: bool,
}

impl StormCgroup {
    /// Creates `<cgroup2 mount>/bpfstorm-<pid>-<seq>` with at most `pids_max`
    /// tasks. The limit is skipped (see [`StormCgroup::pids_max`]) only where
    /// neither cgroup v2 nor v1 offers the pids controller.
    pub fn create(pids_max: u64) -> Result<StormCgroup, CgroupError> {
        let mounts = Mounts::read().map_err(CgroupError::Mountinfo)?;
        let v2_root = mounts.v2.clone().ok_or(CgroupError::NoCgroup2)?;
        let v2_pids = enable_v2_pids(&v2_root);

        let (name, v2) = create_unique_dir(&v2_root)?;
        // From here on, Drop cleans up whatever the remaining steps leave.
        let mut cg = StormCgroup {
            v2,
            pids_v1: None,
            id: 0,
            pids_max: None,
            removed: false,
        };
        cg.id = fs::metadata(&cg.v2)
            .map_err(CgroupError::io("reading", &cg.v2))?
            .ino();

        let limit_dir = if v2_pids && cg.v2.join("pids.max").exists() {
            Some(cg.v2.clone())
        } else if let Some(v1_root) = &mounts.pids_v1 {
            let dir = v1_root.join(&name);
            fs::create_dir(&dir).map_err(|source| CgroupError::Create {
                path: dir.clone(),
                source,
            })?;
            cg.pids_v1 = Some(dir.clone());
            Some(dir)
        } else {
            None
        };
        if let Some(dir) = limit_dir {
            let file = dir.join("pids.max");
            write_control(&file, &pids_max.to_string())
                .map_err(CgroupError::io("writing", &file))?;
            cg.pids_max = Some(pids_max);
        }
        Ok(cg)
    }

    /// The cgroup id: the inode number of the v2 directory.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The cgroup v2 directory.
    pub fn path(&self) -> &Path {
        &self.v2
    }

    /// The pids limit in force, `None` where no pids controller was found.
    pub fn pids_max(&self) -> Option<u64> {
        self.pids_max
    }

    /// Opens what a freshly forked child needs to move itself in without
    /// allocating (see [`JoinFds::join_self`]).
    pub fn join_handle(&self) -> Result<JoinFds, CgroupError> {
        Ok(JoinFds {
            v2: open_procs(&self.v2)?,
            pids_v1: self.pids_v1.as_deref().map(open_procs).transpose()?,
        })
    }

    /// SIGKILLs every task in the cgroup and waits up to 2 s until all have
    /// exited (their parents still have to reap them). Best effort: teardown
    /// reports a cgroup that stays busy.
    pub fn kill_all(&self) {
        let _ = kill_tasks(&self.v2);
    }

    /// Removes the `bpfstorm-<pid>-*` cgroups (v2 and v1 pids) whose process
    /// is gone, as a killed run leaves them; returns the directories removed.
    pub fn sweep_stale() -> io::Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        for path in storm_dirs(&Mounts::read()?)? {
            let alive = path
                .file_name()
                .and_then(owner_pid)
                .is_some_and(process_alive);
            if !alive {
                kill_tasks(&path)?;
                remove_when_empty(&path, Instant::now() + DRAIN_TIMEOUT)?;
                removed.push(path);
            }
        }
        Ok(removed)
    }

    /// Kills what is left, waits up to 2 s for it to go and removes the
    /// directories; unlike Drop, says what went wrong.
    pub fn remove(mut self) -> Result<(), CgroupError> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<(), CgroupError> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        self.kill_all();
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        remove_when_empty(&self.v2, deadline)
            .map_err(CgroupError::io("removing cgroup", &self.v2))?;
        if let Some(v1) = &self.pids_v1 {
            remove_when_empty(v1, deadline).map_err(CgroupError::io("removing cgroup", v1))?;
        }
        Ok(())
    }
}

impl Drop for StormCgroup {
    fn drop(&mut self) {
        // Nothing sensible to do with an error here; `remove` reports them.
        let _ = self.teardown();
    }
}

/// `cgroup.procs` files opened for writing, so that a child can join the
/// cgroup between fork and exec.
#[derive(Debug)]
pub struct JoinFds {
    v2: OwnedFd,
    pids_v1: Option<OwnedFd>,
}

impl JoinFds {
    /// Moves the calling process into the cgroup. Async-signal-safe: only
    /// `write(2)` calls, so it may run in the child of a multi-threaded
    /// process after fork.
    pub fn join_self(&self) -> Result<(), Errno> {
        write_zero(&self.v2)?;
        if let Some(fd) = &self.pids_v1 {
            write_zero(fd)?;
        }
        Ok(())
    }
}

fn write_zero(fd: &OwnedFd) -> Result<(), Errno> {
    // "0" means the writing process itself.
    // SAFETY: writes one byte from a static buffer to an fd we own.
    let n = unsafe { libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1) };
    if n == 1 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// Opens a cgroup control file for writing. Control files always exist, so
/// nothing is created, and a link planted in their place is not followed.
fn open_control(path: &Path) -> io::Result<OwnedFd> {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .map(OwnedFd::from)
}

fn write_control(path: &Path, text: &str) -> io::Result<()> {
    io::Write::write_all(&mut fs::File::from(open_control(path)?), text.as_bytes())
}

fn open_procs(dir: &Path) -> Result<OwnedFd, CgroupError> {
    let path = dir.join("cgroup.procs");
    open_control(&path).map_err(CgroupError::io("opening", &path))
}

/// The cgroup v2 mount point.
pub fn v2_mount() -> Result<PathBuf, CgroupError> {
    Mounts::read()
        .map_err(CgroupError::Mountinfo)?
        .v2
        .ok_or(CgroupError::NoCgroup2)
}

/// The storm cgroups (v2 and v1 pids) of process `pid` that still exist; for
/// leak checks, so unreadable hierarchies count as holding none.
pub fn owned_by(pid: u32) -> Vec<PathBuf> {
    let Ok(mounts) = Mounts::read() else {
        return Vec::new();
    };
    let mut dirs = storm_dirs(&mounts).unwrap_or_default();
    dirs.retain(|d| d.file_name().and_then(owner_pid) == i32::try_from(pid).ok());
    dirs
}

/// Every `bpfstorm-<pid>-<seq>` directory in the hierarchies we use.
fn storm_dirs(mounts: &Mounts) -> io::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for root in mounts.v2.iter().chain(mounts.pids_v1.iter()) {
        for entry in fs::read_dir(root)? {
            let entry = entry?;
            if owner_pid(&entry.file_name()).is_some() {
                dirs.push(entry.path());
            }
        }
    }
    Ok(dirs)
}

/// The pid in a `bpfstorm-<pid>-<seq>` name.
pub(crate) fn owner_pid(name: &OsStr) -> Option<i32> {
    let rest = name.to_str()?.strip_prefix(PREFIX)?;
    let (pid, seq) = rest.split_once('-')?;
    seq.parse::<u64>().ok()?;
    pid.parse().ok()
}

pub(crate) fn process_alive(pid: i32) -> bool {
    // EPERM still means the process exists.
    !matches!(kill(Pid::from_raw(pid), None), Err(Errno::ESRCH))
}

fn create_unique_dir(root: &Path) -> Result<(String, PathBuf), CgroupError> {
    let pid = std::process::id();
    loop {
        let name = format!("{PREFIX}{pid}-{}", SEQ.fetch_add(1, Ordering::Relaxed));
        let path = root.join(&name);
        match fs::create_dir(&path) {
            Ok(()) => return Ok((name, path)),
            // Left by an earlier process that had our pid: take the next seq.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(CgroupError::Create { path, source }),
        }
    }
}

/// Makes the pids controller available to children of the v2 root where the
/// hierarchy has it; returns whether it is. Left enabled afterwards: other
/// cgroups may rely on it by then.
fn enable_v2_pids(root: &Path) -> bool {
    let has = |file: &str| {
        fs::read_to_string(root.join(file))
            .map(|s| s.split_whitespace().any(|c| c == "pids"))
            .unwrap_or(false)
    };
    if !has("cgroup.controllers") {
        return false;
    }
    // Fails where the root holds processes and is not the real root (some
    // containers); the v1 fallback or no limit follows then.
    has("cgroup.subtree_control")
        || write_control(&root.join("cgroup.subtree_control"), "+pids").is_ok()
}

/// SIGKILLs every task of the cgroup at `dir` and waits (bounded) until none
/// is left: a killed task stays listed until it has exited, which can take
/// milliseconds.
fn kill_tasks(dir: &Path) -> io::Result<()> {
    // cgroup.kill (v2, 5.14+) is atomic against concurrent forks. v1 has no
    // such file, and cgroupfs refuses to create one (EACCES, not ENOENT).
    let kill_path = dir.join("cgroup.kill");
    let kill_file = kill_path.exists();
    if kill_file {
        write_control(&kill_path, "1")?;
    }
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let procs = fs::read_to_string(dir.join("cgroup.procs"))?;
        if procs.is_empty() {
            return Ok(());
        }
        if !kill_file {
            // Signal again each round: a task may have forked meanwhile.
            for pid in procs.lines().filter_map(|l| l.parse().ok()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        if Instant::now() >= deadline {
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// rmdir, retried while killed tasks are still leaving (EBUSY).
fn remove_when_empty(dir: &Path, deadline: Instant) -> io::Result<()> {
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                thread::sleep(POLL_INTERVAL);
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_owner_pid() {
        assert_eq!(owner_pid(OsStr::new("bpfstorm-123-4")), Some(123));
        assert_eq!(owner_pid(OsStr::new("bpfstorm-123")), None);
        assert_eq!(owner_pid(OsStr::new("bpfstorm-x-4")), None);
        assert_eq!(owner_pid(OsStr::new("other-123-4")), None);
    }
}
