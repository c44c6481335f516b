//! What a run could leave behind on the machine, found from the kernel's
//! own lists: BPF programs by id, bpfstorm's maps by name, storm cgroups,
//! and BPF stats left switched on.

use std::collections::HashSet;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use libbpf_rs::query::MapInfoIter;

use crate::{bpf_stats, cgroup};

/// Every bpfstorm BPF object carries these maps (its .rodata and .bss).
const MAP_PREFIX: &[u8] = b"bpfstorm.";

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Of the given program ids, those still loaded.
    pub programs: Vec<u32>,
    /// Kernel maps named `bpfstorm.*` (ids) that no other process holds.
    pub maps: Vec<u32>,
    /// Storm cgroups of this process that still exist.
    pub cgroups: Vec<PathBuf>,
    pub stats_enabled: bool,
}

impl Leftovers {
    pub fn is_clean(&self) -> bool {
        *self == Leftovers::default()
    }
}

/// Removes what runs killed with SIGKILL (which skips Drop) left: storm
/// cgroups and storm target folders whose process is gone. Every command
/// that storms calls it first; returns what it removed.
pub fn sweep_killed_runs() -> std::io::Result<Vec<PathBuf>> {
    let mut swept = cgroup::StormCgroup::sweep_stale()?;
    swept.extend(crate::storm::sweep_stale_dirs());
    Ok(swept)
}

/// How long the kernel may take to free the maps of an unloaded program.
const MAP_FREE_GRACE: Duration = Duration::from_secs(2);

/// Ids of the BPF maps other processes hold open, from their fdinfo.
fn maps_of_other_processes() -> HashSet<u64> {
    let me = std::process::id().to_string();
    let Ok(procs) = fs::read_dir("/proc") else {
        return HashSet::new();
    };
    procs
        .flatten()
        .filter(|p| p.file_name() != me.as_str())
        .filter_map(|p| fs::read_dir(p.path().join("fdinfo")).ok())
        .flat_map(|fds| fds.flatten())
        .filter_map(|fd| fs::read_to_string(fd.path()).ok())
        .filter_map(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("map_id:"))
                .and_then(|id| id.trim().parse().ok())
        })
        .collect()
}

/// `bpfstorm.*` maps that no other process holds: another bpfstorm process
/// on the machine (a concurrent run or test) keeps its own maps open.
fn bpfstorm_maps() -> Vec<u32> {
    let named: Vec<u32> = MapInfoIter::default()
        .filter(|m| m.name.as_bytes().starts_with(MAP_PREFIX))
        .map(|m| m.id)
        .collect();
    if named.is_empty() {
        return named;
    }
    let others = maps_of_other_processes();
    named
        .into_iter()
        .filter(|id| !others.contains(&u64::from(*id)))
        .collect()
}

/// Looks for anything this process's runs left behind; `prog_ids` are the
/// programs it loaded.
pub fn find(prog_ids: &[u32]) -> Leftovers {
    // A program's id goes with its last fd, but it drops its maps only after
    // an RCU grace period (15-35 ms on an idle machine here, longer under
    // load): a map still there within the grace is being freed, not leaked.
    let deadline = Instant::now() + MAP_FREE_GRACE;
    let mut maps = bpfstorm_maps();
    while !maps.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        maps = bpfstorm_maps();
    }
    Leftovers {
        programs: prog_ids
            .iter()
            .copied()
            .filter(|&id| libbpf_rs::Program::fd_from_id(id).is_ok())
            .collect(),
        maps,
        cgroups: cgroup::owned_by(std::process::id()),
        stats_enabled: bpf_stats::enabled().unwrap_or(false),
    }
}
