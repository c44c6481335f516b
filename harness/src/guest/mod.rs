//! Other kernels: bpfstorm commands run again inside guests that boot
//! Debian's cloud kernels (virtme-ng, QEMU under software emulation), their
//! CSV rows brought back into the host's results.
//!
//! Emulation makes an exec cost ~25x what it does natively, so a guest
//! measures what counts and how exactly, not speed: its rows say
//! `timing = emulated`.

pub mod kernels;
pub mod vm;

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use crate::secure_fs::{self, Dir, FsError, PrivateDir};
pub use kernels::{cache_dir, GuestKernel, KernelChoice};
pub use vm::{GuestOutput, Vm, GUEST_ENV};

#[derive(Debug, Error)]
pub enum GuestError {
    #[error(
        "no cached kernel {series} (looked for {looked}/vmlinuz-*): run `scripts/setup-guests` \
         as root to fetch Debian's cloud kernels"
    )]
    MissingKernel { series: String, looked: PathBuf },
    #[error("{tool} is missing: run `scripts/setup-guests` as root to install the guest tools")]
    MissingTool { tool: PathBuf },
    #[error("starting {tool}: {source}")]
    Spawn { tool: PathBuf, source: io::Error },
    #[error("waiting for the guest: {0}")]
    Wait(io::Error),
    #[error(
        "the guest on kernel {series} ran past {limit:?} and was killed; raise --guest-timeout"
    )]
    Timeout { series: String, limit: Duration },
    #[error("interrupted")]
    Interrupted,
    #[error("preparing the guest's results folder {path}: {source}")]
    Scratch { path: PathBuf, source: io::Error },
    /// A folder of the guest's (its scratch, vng's TMPDIR) could not be made
    /// safely: its parent is one another user could change, or mkdir failed.
    #[error(
        "the guest's private folder: {0} (the guest's tools run as root there; use a \
         TMPDIR and a --results-dir that only root can change)"
    )]
    Private(#[from] FsError),
    #[error("finding bpfstorm's own executable: {0}")]
    SelfExe(io::Error),
    #[error("bpfstorm is running inside a guest already: --kernel takes only `host` there")]
    Nested,
    #[error(
        "{path}: a guest can only use paths of letters, digits and `/._-+@` (virtme-ng \
         passes them through a shell, QEMU's options and the kernel's command line); \
         change {choose}"
    )]
    UnsafePath { path: PathBuf, choose: &'static str },
}

/// Whether this process runs inside a guest that a host bpfstorm booted.
pub fn inside() -> bool {
    std::env::var_os(GUEST_ENV).is_some_and(|v| !v.is_empty())
}

/// A kernel to boot, with the tools to boot it.
#[derive(Debug, Clone)]
pub struct Guest {
    pub kernel: GuestKernel,
    vm: Vm,
    /// The results folder, canonical: the guest's scratch goes inside.
    results_dir: PathBuf,
}

impl Guest {
    /// Every guest kernel among `choices`, with its tools and the paths it
    /// will share under `results_dir`, checked before anything runs.
    pub fn prepare(choices: &[KernelChoice], results_dir: &Path) -> Result<Vec<Guest>, GuestError> {
        let series: Vec<&str> = choices
            .iter()
            .filter_map(|c| match c {
                KernelChoice::Guest(s) => Some(s.as_str()),
                KernelChoice::Host => None,
            })
            .collect();
        if series.is_empty() {
            return Ok(Vec::new());
        }
        if inside() {
            return Err(GuestError::Nested);
        }
        let cache = cache_dir();
        let vm = Vm::find(&cache)?;
        fs::create_dir_all(results_dir).map_err(|source| GuestError::Scratch {
            path: results_dir.to_path_buf(),
            source,
        })?;
        let shared = fs::canonicalize(results_dir).map_err(|source| GuestError::Scratch {
            path: results_dir.to_path_buf(),
            source,
        })?;
        plain_path(&shared, "--results-dir")?;
        plain_path(&std::env::temp_dir(), "TMPDIR")?;
        // Both get private folders of ours for root's vng, QEMU and
        // virtiofsd: refuse now, before anything runs, where another user
        // could change them.
        Dir::open(&shared)?;
        Dir::open(&std::env::temp_dir())?;
        series
            .into_iter()
            .map(|s| {
                let kernel = GuestKernel::find(&cache, s)?;
                plain_path(&kernel.vmlinuz, "XDG_CACHE_HOME or HOME")?;
                Ok(Guest {
                    kernel,
                    vm: vm.clone(),
                    results_dir: shared.clone(),
                })
            })
            .collect()
    }

    /// Runs this bpfstorm with `args(results folder)` in the guest. The
    /// folder lives under the results folder while the returned
    /// [`GuestRun`] does, so what the guest wrote can be read even when it
    /// failed or was killed.
    pub fn bpfstorm(
        &self,
        args: impl FnOnce(&Path) -> Vec<OsString>,
        limit: Duration,
    ) -> Result<GuestRun, GuestError> {
        let scratch = Scratch::create(&self.results_dir, &self.kernel.series)?;
        let exe = std::env::current_exe().map_err(GuestError::SelfExe)?;
        let mut argv = vec![exe.into_os_string()];
        argv.extend(args(scratch.path()));
        let prefix = format!("[{}] ", self.kernel.series);
        let outcome = self
            .vm
            .run(&self.kernel, &argv, scratch.path(), limit, &prefix);
        Ok(GuestRun { scratch, outcome })
    }

    /// How the guest is named in messages.
    pub fn describe(&self) -> String {
        format!(
            "kernel {} (Debian {}) in a QEMU guest, software emulation, 2 vCPUs",
            self.kernel.series, self.kernel.release
        )
    }
}

/// A guest's command, done: how it ended, and the folder it wrote to.
#[derive(Debug)]
pub struct GuestRun {
    pub scratch: Scratch,
    pub outcome: Result<GuestOutput, GuestError>,
}

/// The first entry of `dir` named `<prefix>...<suffix>`.
fn find_file(dir: &Path, prefix: &str, suffix: &str) -> Option<PathBuf> {
    fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(suffix))
        })
}

/// vng hands paths to a shell, QEMU's option parser and the kernel's
/// command line, none of which it quotes for.
fn plain_path(path: &Path, choose: &'static str) -> Result<(), GuestError> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+@".contains(c);
    if path.to_string_lossy().chars().all(plain) {
        Ok(())
    } else {
        Err(GuestError::UnsafePath {
            path: path.to_path_buf(),
            choose,
        })
    }
}

/// The guest's writable results folder: `.guest-<series>-<pid>-<random>`
/// under the results folder, made fresh and 0700 (the guest writes into it
/// as root, through virtiofs); removed when dropped.
#[derive(Debug)]
pub struct Scratch {
    dir: PrivateDir,
}

impl Scratch {
    /// A fresh folder in `parent` (canonical, checked by `Guest::prepare`),
    /// after removing those of killed runs (SIGKILL skips Drop): only
    /// root's 0700 folders of that name shape (see [`secure_fs::sweep`]).
    fn create(parent: &Path, series: &str) -> Result<Scratch, GuestError> {
        let prefix = format!(".guest-{series}-");
        secure_fs::sweep(parent, &prefix);
        Ok(Scratch {
            dir: PrivateDir::create(parent, &prefix)?,
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The one file in the folder whose name starts with `prefix` and ends
    /// with `suffix`, if the guest wrote it.
    pub fn file(&self, prefix: &str, suffix: &str) -> Option<PathBuf> {
        find_file(self.path(), prefix, suffix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    /// These need root (and a kernel): `scripts/test kernel` runs them, the
    /// fast layer skips them.
    mod as_root {
        use super::*;

        #[test]
        fn scratch_is_fresh_and_private_and_sweeps_only_ours() {
            let results = tempfile::tempdir().unwrap();
            // Sticky and open to all: the one shape Dir::open lets other users
            // write in.
            fs::set_permissions(results.path(), fs::Permissions::from_mode(0o1777)).unwrap();
            let me = std::process::id();
            let mut child = std::process::Command::new("true").spawn().unwrap();
            let dead = child.id();
            child.wait().unwrap();
            // Another user's folders, named as scratch folders are and were.
            let planted = [
                format!(".guest-6.12-{me}"),
                format!(".guest-6.12-{dead}"),
                format!(".guest-6.12-{dead}-0123456789abcdef"),
            ];
            let out = std::process::Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .args(["mkdir", "-m", "700"])
                .args(planted.iter().map(|n| results.path().join(n)))
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            // A killed run's scratch: root's, 0700, our name shape.
            let stale = results
                .path()
                .join(format!(".guest-6.12-{dead}-{}", secure_fs::random_hex(8)));
            fs::create_dir(&stale).unwrap();
            fs::set_permissions(&stale, fs::Permissions::from_mode(0o700)).unwrap();

            let scratch = Scratch::create(results.path(), "6.12").unwrap();

            assert!(!stale.exists(), "a killed run's scratch was left");
            for name in &planted {
                let path = results.path().join(name);
                assert_ne!(scratch.path(), path);
                let meta = fs::metadata(&path).unwrap();
                assert_eq!(meta.uid(), 65534, "{name}");
            }
            let meta = fs::symlink_metadata(scratch.path()).unwrap();
            assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o700));
            let path = scratch.path().to_path_buf();
            drop(scratch);
            assert!(!path.exists());

            // A results folder every user can write (not sticky) is refused.
            fs::set_permissions(results.path(), fs::Permissions::from_mode(0o777)).unwrap();
            assert!(matches!(
                Scratch::create(results.path(), "6.12"),
                Err(GuestError::Private(FsError::Unsafe { .. }))
            ));
        }
    }
}
