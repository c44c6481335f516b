//! The kernel's view of what a counter loaded, from kernel ids alone:
//! run statistics, program size, map memory. Written once for every
//! backend, including one that only learns its program's id (a tool run
//! as a child process).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use crate::sys::{self, Object};
use crate::{fdinfo, prog_info, CounterError, ProgInsns, ProgStats};

/// Kernel ids of what a counter loaded and keeps loaded until it drops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// The attached programs.
    pub progs: Vec<u32>,
    /// The maps the counter uses (its count map or buffer, and the
    /// object's globals): what the kernel charges for it.
    pub maps: Vec<u32>,
}

impl Loaded {
    /// Ids of the programs and maps behind these fds, as a backend that
    /// holds them finds them.
    pub fn of_fds<'a>(
        progs: impl IntoIterator<Item = BorrowedFd<'a>>,
        maps: impl IntoIterator<Item = BorrowedFd<'a>>,
    ) -> io::Result<Loaded> {
        Ok(Loaded {
            progs: progs
                .into_iter()
                .map(|fd| prog_info::id_of_fd(fd.as_raw_fd()))
                .collect::<Result<_, _>>()?,
            maps: maps
                .into_iter()
                .map(|fd| Ok(sys::map_info(fd)?.id))
                .collect::<io::Result<_>>()?,
        })
    }
}

/// A new fd on the BPF map with kernel id `id` (a tool's, known by id).
pub fn map_by_id(id: u32) -> io::Result<OwnedFd> {
    sys::fd_by_id(Object::Map, id)
}

/// A new fd on the BPF program with kernel id `id`.
pub fn prog_by_id(id: u32) -> io::Result<OwnedFd> {
    sys::fd_by_id(Object::Prog, id)
}

/// Fds on the programs and maps of a [`Loaded`], opened by id once so that
/// sampling the statistics costs one read each. They keep the programs in
/// the kernel: drop this with the counter, never after it.
pub struct Introspection {
    progs: Vec<OwnedFd>,
    maps: Vec<OwnedFd>,
}

impl Introspection {
    pub fn open(loaded: &Loaded) -> Result<Introspection, CounterError> {
        let open = |object, ids: &[u32]| {
            ids.iter()
                .map(|&id| sys::fd_by_id(object, id))
                .collect::<io::Result<Vec<_>>>()
        };
        Ok(Introspection {
            progs: open(Object::Prog, &loaded.progs)?,
            maps: open(Object::Map, &loaded.maps)?,
        })
    }

    /// Cumulative kernel statistics of the programs, summed.
    pub fn prog_stats(&self) -> Result<ProgStats, CounterError> {
        self.progs.iter().try_fold(ProgStats::default(), |sum, fd| {
            Ok(sum + fdinfo::prog_stats(fd.as_raw_fd())?)
        })
    }

    /// Size of the loaded programs, summed: verified and translated
    /// instructions, JIT-ed bytes (see [`prog_info::of_fd`]).
    pub fn prog_insns(&self) -> Result<ProgInsns, CounterError> {
        self.progs.iter().try_fold(ProgInsns::default(), |sum, fd| {
            Ok(sum + prog_info::of_fd(fd.as_raw_fd())?)
        })
    }

    /// Kernel memory charged for the maps, in bytes.
    pub fn map_memory_bytes(&self) -> Result<u64, CounterError> {
        self.maps
            .iter()
            .map(|fd| Ok(fdinfo::memlock(fd.as_raw_fd())?))
            .sum()
    }
}
