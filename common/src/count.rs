//! Reading and resetting a count the way every loader would: the value at
//! key 0 (a u32) of the map that holds it, one u64 slot (per CPU or shared,
//! or one cache line per CPU for `global_percpu`), or a buffer whose
//! records are counted in user space beside the program's own `dropped`
//! counter. The map is checked against what the strategy's map kind says
//! it is (its kernel type and value size), so a map kind whose count has
//! the same shape as another's needs no code here.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use crate::stream::{Buffer, Stream};
use crate::{
    sys, Counter, CounterError, LoadTimings, Loaded, MapKind, ReadPath, Reading, Slots, Strategy,
    Wakeup,
};

const KEY: [u8; 4] = 0u32.to_ne_bytes();
const SLOT: usize = std::mem::size_of::<u64>();

fn failed(op: &'static str) -> impl FnOnce(io::Error) -> CounterError {
    move |e| CounterError::Kernel {
        op: op.to_string(),
        errno: e.raw_os_error().unwrap_or(0),
        message: e.to_string(),
    }
}

/// Refuses a per-CPU count with a slot per CPU in its value
/// (`global_percpu`) on a machine with more possible CPUs than slots: the
/// program would not count on the others.
pub fn ensure_slots_fit(kind: MapKind) -> Result<(), CounterError> {
    match kind.slots() {
        Some(Slots::InValue { count, .. }) if kind.is_per_cpu() => {
            slots_fit(kind, count, sys::possible_cpus()?)
        }
        _ => Ok(()),
    }
}

fn slots_fit(kind: MapKind, slots: usize, cpus: usize) -> Result<(), CounterError> {
    if cpus <= slots {
        return Ok(());
    }
    Err(CounterError::Unsupported {
        what: kind.to_string(),
        reason: format!(
            "it has a slot for each of {slots} CPUs, and this machine has {cpus} possible \
             CPUs; count with percpu_array instead"
        ),
        errno: None,
    })
}

/// `BPF_F_MMAPABLE`: the map's values can be mapped into user space.
pub const BPF_F_MMAPABLE: u32 = 1 << 10;

/// A map that holds a count at key 0 (a u32): ARRAY, HASH, their LRU and
/// per-CPU kinds, a global's own `.data.*` section, or the object's `.bss`
/// when it holds only a u64.
pub struct CountMap {
    fd: OwnedFd,
    /// Bytes of the value a lookup returns.
    value_bytes: usize,
    /// Slots summed, and the bytes from one to the next.
    slots: usize,
    stride: usize,
    /// The value mapped into memory, for [`ReadPath::Mmap`].
    mapped: Option<Mapping>,
}

/// An array map's values mapped read-only into this process.
struct Mapping {
    at: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory, only read (volatile) through
// `&self`; nothing ties it to the thread that made it.
unsafe impl Send for Mapping {}

impl Mapping {
    fn new(map: BorrowedFd<'_>, bytes: usize) -> Result<Mapping, CounterError> {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let len = bytes.div_ceil(page) * page;
        // SAFETY: a fresh shared read-only mapping of the map's values, which
        // the kernel keeps valid until munmap, even after the fd closes.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                map.as_raw_fd(),
                0,
            )
        };
        if at == libc::MAP_FAILED {
            return Err(failed("mmap of the count's map")(io::Error::last_os_error()));
        }
        Ok(Mapping {
            at: NonNull::new(at.cast()).expect("mmap succeeded"),
            len,
        })
    }

    /// The u64 at byte `at` (8-aligned, inside the mapping), as the
    /// program last wrote it.
    fn slot(&self, at: usize) -> u64 {
        assert!(at + SLOT <= self.len && at % SLOT == 0);
        // SAFETY: in bounds and aligned (checked above, the mapping is
        // page-aligned); volatile, as BPF programs write it concurrently.
        unsafe { self.at.as_ptr().add(at).cast::<u64>().read_volatile() }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped, once.
        unsafe { libc::munmap(self.at.as_ptr().cast(), self.len) };
    }
}

impl CountMap {
    /// The count of `kind` in `map`, read through `read`.
    pub fn open(
        map: BorrowedFd<'_>,
        kind: MapKind,
        read: ReadPath,
    ) -> Result<CountMap, CounterError> {
        let info = sys::map_info(map)?;
        let refuse = |message: String| CounterError::Backend {
            backend: "common",
            message,
        };
        let layout = kind
            .slots()
            .filter(|_| info.map_type == kind.kernel_type())
            .ok_or_else(|| {
                refuse(format!(
                    "a map of type {} holds no {kind} count",
                    info.map_type
                ))
            })?;
        ensure_slots_fit(kind)?;
        // The value a lookup returns, and the map's own value size.
        let (slots, stride, value_bytes, value_size) = match layout {
            Slots::PerPossibleCpu => {
                let cpus = sys::possible_cpus()?;
                (cpus, SLOT, cpus * SLOT, SLOT)
            }
            Slots::InValue { count, stride } => (count, stride, count * stride, count * stride),
        };
        if (info.key_size, info.value_size) != (KEY.len() as u32, value_size as u32) {
            return Err(refuse(format!(
                "a {kind} map with {}-byte keys and {}-byte values holds no u32 -> u64 count",
                info.key_size, info.value_size
            )));
        }
        let mapped = match read {
            ReadPath::Syscall => None,
            ReadPath::Mmap if info.map_flags & BPF_F_MMAPABLE == 0 => {
                return Err(refuse(format!(
                    "the {kind} map was created without BPF_F_MMAPABLE: it cannot be read by mmap"
                )))
            }
            ReadPath::Mmap => Some(Mapping::new(map, value_bytes)?),
        };
        Ok(CountMap {
            fd: map.try_clone_to_owned()?,
            value_bytes,
            slots,
            stride,
            mapped,
        })
    }

    /// The count, summed over its slots; 0 where a hash has no entry yet.
    pub fn read(&self) -> Result<u64, CounterError> {
        if let Some(mapped) = &self.mapped {
            return Ok((0..self.slots).map(|i| mapped.slot(i * self.stride)).sum());
        }
        let mut value = vec![0u8; self.value_bytes];
        let found = sys::lookup(self.fd.as_fd(), &KEY, &mut value).map_err(failed("map lookup"))?;
        Ok(if found {
            (0..self.slots)
                .map(|i| {
                    let at = i * self.stride;
                    u64::from_ne_bytes(value[at..at + SLOT].try_into().expect("8 bytes"))
                })
                .sum()
        } else {
            0
        })
    }

    /// Writes zeros to the slots: arrays cannot delete, and a hash counts
    /// on from a zero entry as from none.
    pub fn reset(&self) -> Result<(), CounterError> {
        let zeros = vec![0u8; self.value_bytes];
        sys::update(self.fd.as_fd(), &KEY, &zeros).map_err(failed("map update"))
    }
}

/// The count of a loaded strategy, read the same way whatever the loader.
pub enum Tally<B: Buffer> {
    /// A map that holds the count.
    Map(CountMap),
    /// A buffer's records, and what the program could not hand over (its
    /// `dropped` global, the only variable in `.bss`).
    Stream {
        records: Stream<B>,
        dropped: CountMap,
    },
}

impl<B: Buffer> Tally<B> {
    /// The count of `kind` in `map`, read through `read`.
    pub fn map(
        map: BorrowedFd<'_>,
        kind: MapKind,
        read: ReadPath,
    ) -> Result<Tally<B>, CounterError> {
        Ok(Tally::Map(CountMap::open(map, kind, read)?))
    }

    /// Starts counting `buffer`, whose reader the program wakes as
    /// `wakeup` says; `bss` is the object's `.bss`.
    pub fn stream(
        buffer: B,
        wakeup: Wakeup,
        bss: BorrowedFd<'_>,
    ) -> Result<Tally<B>, CounterError> {
        Ok(Tally::Stream {
            // `dropped` is the only variable in `.bss`: an array's u64.
            dropped: CountMap::open(bss, MapKind::Array, ReadPath::Syscall)?,
            records: Stream::start(buffer, wakeup)?,
        })
    }

    pub fn read(&mut self) -> Result<Reading, CounterError> {
        match self {
            // Only stream programs can drop: nothing else to read.
            Tally::Map(map) => Ok(Reading {
                count: map.read()?,
                ..Reading::default()
            }),
            Tally::Stream { records, dropped } => {
                let counts = records.drain()?;
                Ok(Reading {
                    count: counts.records,
                    dropped: dropped.read()?,
                    lost_records: counts.lost_records,
                })
            }
        }
    }

    pub fn reset(&mut self) -> Result<(), CounterError> {
        match self {
            Tally::Map(map) => map.reset(),
            Tally::Stream { records, dropped } => {
                records.reset()?;
                dropped.reset()
            }
        }
    }
}

/// A [`Counter`] made of a [`Tally`] and the loader's object `O`, which
/// keeps the programs loaded and attached until it drops, after the tally
/// (the poller stops first). The libbpf and aya backends are this, each
/// with its own buffer and object.
pub struct TallyCounter<B: Buffer, O> {
    strategy: Strategy,
    timings: LoadTimings,
    loaded: Loaded,
    tally: Tally<B>,
    object: O,
}

impl<B: Buffer, O> TallyCounter<B, O> {
    pub fn new(
        strategy: Strategy,
        timings: LoadTimings,
        loaded: Loaded,
        tally: Tally<B>,
        object: O,
    ) -> TallyCounter<B, O> {
        TallyCounter {
            strategy,
            timings,
            loaded,
            tally,
            object,
        }
    }

    /// The loader's object.
    pub fn object(&self) -> &O {
        &self.object
    }
}

impl<B: Buffer, O> Counter for TallyCounter<B, O> {
    fn strategy(&self) -> &Strategy {
        &self.strategy
    }

    fn timings(&self) -> LoadTimings {
        self.timings
    }

    fn read(&mut self) -> Result<Reading, CounterError> {
        self.tally.read()
    }

    fn reset(&mut self) -> Result<(), CounterError> {
        self.tally.reset()
    }

    fn loaded(&self) -> &Loaded {
        &self.loaded
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::FromRawFd;

    use super::*;
    use crate::stream::StreamCounts;

    /// A buffer that is never consumed: these tests use only maps.
    struct NoBuffer;

    impl Buffer for NoBuffer {
        fn fds(&self) -> Vec<std::os::fd::RawFd> {
            Vec::new()
        }
        fn consume(&mut self, _: &mut StreamCounts) -> Result<(), CounterError> {
            Ok(())
        }
    }

    /// BPF_MAP_CREATE (root needed, as for every kernel-facing test here).
    fn create(kind: MapKind, key_size: u32, value_size: u32, max_entries: u32) -> OwnedFd {
        #[repr(C)]
        struct MapCreate {
            map_type: u32,
            key_size: u32,
            value_size: u32,
            max_entries: u32,
        }
        let attr = MapCreate {
            map_type: kind.kernel_type(),
            key_size,
            value_size,
            max_entries,
        };
        // SAFETY: bpf(2) reads `attr`.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                0, // BPF_MAP_CREATE
                &attr as *const MapCreate,
                std::mem::size_of::<MapCreate>(),
            )
        };
        assert!(fd >= 0, "BPF_MAP_CREATE: {}", io::Error::last_os_error());
        // SAFETY: the kernel just returned this fd.
        unsafe { OwnedFd::from_raw_fd(fd as i32) }
    }

    #[test]
    fn global_percpu_is_refused_where_cpus_outnumber_its_slots() {
        assert!(slots_fit(MapKind::GlobalPercpu, 512, 512).is_ok());
        let err = slots_fit(MapKind::GlobalPercpu, 512, 513).unwrap_err();
        assert!(err.is_unsupported(), "{err}");
        assert!(
            err.to_string()
                .starts_with("unsupported here: global_percpu: ")
                && err.to_string().contains("percpu_array instead"),
            "{err}"
        );
    }

    /// These need root (and a kernel): `scripts/test kernel` runs them, the
    /// fast layer skips them.
    mod as_root {
        use super::*;

        #[test]
        fn every_counting_map_reads_sums_and_resets() {
            let cpus = sys::possible_cpus().unwrap();
            for kind in MapKind::ALL.iter().filter(|k| !k.is_stream()) {
                // The layout written out here, not taken from `slots()`.
                let (slots, stride, value_size) = match kind {
                    MapKind::GlobalPercpu => (512, 64, 512 * 64),
                    k if k.is_per_cpu() => (cpus, SLOT, SLOT),
                    _ => (1, SLOT, SLOT),
                };
                let fd = create(*kind, 4, value_size as u32, 1);
                let mut tally =
                    Tally::<NoBuffer>::map(fd.as_fd(), *kind, ReadPath::Syscall).unwrap();
                assert_eq!(tally.read().unwrap(), Reading::default(), "{kind}");
                // Each slot's u64 first, then bytes the read must skip.
                let value: Vec<u8> = (0..slots as u64)
                    .flat_map(|i| {
                        let mut slot = vec![0xff; stride];
                        slot[..SLOT].copy_from_slice(&(i + 5).to_ne_bytes());
                        slot
                    })
                    .collect();
                sys::update(fd.as_fd(), &KEY, &value).unwrap();
                let sum = (0..slots as u64).map(|i| i + 5).sum::<u64>();
                assert_eq!(tally.read().unwrap().count, sum, "{kind}");
                tally.reset().unwrap();
                assert_eq!(tally.read().unwrap().count, 0, "{kind}");
            }
        }
        #[test]
        fn maps_that_hold_no_u64_count_are_refused() {
            let wide = create(MapKind::Array, 4, 16, 1);
            assert!(CountMap::open(wide.as_fd(), MapKind::Array, ReadPath::Syscall).is_err());
            let ring = create(MapKind::Ringbuf, 0, 0, 4096);
            assert!(CountMap::open(ring.as_fd(), MapKind::Ringbuf, ReadPath::Syscall).is_err());
            let array = create(MapKind::Array, 4, 8, 1);
            assert!(
                CountMap::open(array.as_fd(), MapKind::Hash, ReadPath::Syscall).is_err(),
                "an array is not a hash"
            );
            assert!(
                CountMap::open(array.as_fd(), MapKind::GlobalPercpu, ReadPath::Syscall).is_err(),
                "one u64 is not a slot per CPU"
            );
            assert!(CountMap::open(array.as_fd(), MapKind::Global, ReadPath::Syscall).is_ok());
        }
    }
}
