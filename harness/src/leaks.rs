//! What a run could leave behind on the machine, found from the kernel's
//! own lists: BPF programs by id, bpfstorm's maps by name, storm cgroups,
//! and BPF stats left switched on.

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use libbpf_rs::query::MapInfoIter;

use crate::{bpf_stats, cgroup};

/// Every bpfstorm BPF object carries these maps (its .rodata and .bss).
const MAP_PREFIX: &[u8] = b"bpfstorm.";

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Of the given program ids, those still loaded.
    pub programs: Vec<u32>,
    /// Kernel maps named `bpfstorm.*` (ids).
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

/// Looks for anything this process's runs left behind; `prog_ids` are the
/// programs it loaded.
pub fn find(prog_ids: &[u32]) -> Leftovers {
    Leftovers {
        programs: prog_ids
            .iter()
            .copied()
            .filter(|&id| libbpf_rs::Program::fd_from_id(id).is_ok())
            .collect(),
        maps: MapInfoIter::default()
            .filter(|m| m.name.as_bytes().starts_with(MAP_PREFIX))
            .map(|m| m.id)
            .collect(),
        cgroups: cgroup::owned_by(std::process::id()),
        stats_enabled: bpf_stats::enabled().unwrap_or(false),
    }
}
