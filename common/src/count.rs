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

/// The machine's possible CPUs, which size per-CPU values and the LRU
/// maps' free lists (see [`MapKind::entries_for`]).
pub fn possible_cpus() -> Result<usize, CounterError> {
    Ok(sys::possible_cpus()?)
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

/// A map that holds a count at key 0 (a u32), or spread over keys 0..K:
/// ARRAY, HASH, their LRU and per-CPU kinds, a global's own `.data.*`
/// section, or the object's `.bss` when it holds only a u64.
pub struct CountMap {
    fd: OwnedFd,
    /// Bytes of the value a lookup returns for one key.
    value_bytes: usize,
    /// Slots summed, and the bytes from one to the next.
    slots: usize,
    stride: usize,
    /// Keys 0..keys hold the count.
    keys: u32,
    /// Whether every key is there from the start, in order (an array), so
    /// a batched read can stop at the last one instead of asking once more.
    preallocated: bool,
    /// Whether a reset deletes the keys (a keyed hash, which a full map
    /// refuses or evicts) rather than writing zeros to them.
    resets_by_delete: bool,
    read: ReadPath,
    /// The values mapped into memory, for [`ReadPath::Mmap`], and the
    /// bytes from one key's to the next.
    mapped: Option<(Mapping, usize)>,
}

/// A count summed over its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sum {
    pub count: u64,
    /// Keys whose value is not zero.
    pub keys_live: u64,
}

/// Keys a batched read asks for at once.
const BATCH_KEYS: usize = 4096;

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
    /// The count of `kind` in `map`, at keys 0..`keys`, read through `read`.
    pub fn open(
        map: BorrowedFd<'_>,
        kind: MapKind,
        read: ReadPath,
        keys: u32,
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
        // An array has no keys past its entries; a hash is asked for all.
        let keys = if kind.inserts_keys() {
            keys
        } else {
            keys.min(info.max_entries)
        };
        let mapped = match read {
            ReadPath::Syscall | ReadPath::Batch => None,
            ReadPath::Mmap if info.map_flags & BPF_F_MMAPABLE == 0 => {
                return Err(refuse(format!(
                    "the {kind} map was created without BPF_F_MMAPABLE: it cannot be read by mmap"
                )))
            }
            // An array's values lie one after another, each 8-aligned.
            ReadPath::Mmap => {
                let entry = value_bytes.next_multiple_of(SLOT);
                Some((Mapping::new(map, entry * keys as usize)?, entry))
            }
        };
        Ok(CountMap {
            fd: map.try_clone_to_owned()?,
            value_bytes,
            slots,
            stride,
            keys,
            preallocated: !kind.inserts_keys(),
            resets_by_delete: keys > 1 && kind.inserts_keys(),
            read,
            mapped,
        })
    }

    /// The slots of one key's value, summed.
    fn sum(&self, value: &[u8]) -> u64 {
        (0..self.slots)
            .map(|i| {
                let at = i * self.stride;
                u64::from_ne_bytes(value[at..at + SLOT].try_into().expect("8 bytes"))
            })
            .sum()
    }

    /// The count, summed over its keys and slots; 0 where a hash has no
    /// entry yet.
    pub fn read(&self) -> Result<Sum, CounterError> {
        let mut total = Sum {
            count: 0,
            keys_live: 0,
        };
        let mut add = |count: u64| {
            total.count += count;
            total.keys_live += u64::from(count > 0);
        };
        match (&self.mapped, self.read) {
            (Some((mapped, entry)), _) => {
                for key in 0..self.keys as usize {
                    add((0..self.slots)
                        .map(|i| mapped.slot(key * entry + i * self.stride))
                        .sum());
                }
            }
            (None, ReadPath::Batch) => {
                let chunk = (self.keys as usize).clamp(1, BATCH_KEYS);
                let mut keys = vec![0u8; chunk * KEY.len()];
                let mut values = vec![0u8; chunk * self.value_bytes];
                let mut token = sys::BatchToken::default();
                let mut seen = 0;
                loop {
                    let (n, more) = sys::lookup_batch(
                        self.fd.as_fd(),
                        &mut token,
                        KEY.len(),
                        &mut keys,
                        &mut values,
                    )
                    .map_err(failed("batched map lookup"))?;
                    for value in values.chunks_exact(self.value_bytes).take(n) {
                        add(self.sum(value));
                    }
                    seen += n;
                    if !more || (self.preallocated && seen >= self.keys as usize) {
                        break;
                    }
                }
            }
            (None, _) => {
                let mut value = vec![0u8; self.value_bytes];
                for key in 0..self.keys {
                    if sys::lookup(self.fd.as_fd(), &key.to_ne_bytes(), &mut value)
                        .map_err(failed("map lookup"))?
                    {
                        add(self.sum(&value));
                    }
                }
            }
        }
        Ok(total)
    }

    /// Sets the count back to zero: writes zeros to the slots (arrays
    /// cannot delete, and a hash of one key counts on from a zero entry as
    /// from none), or deletes a keyed hash's keys, so a full map is empty
    /// again.
    pub fn reset(&self) -> Result<(), CounterError> {
        let zeros = vec![0u8; self.value_bytes];
        for key in 0..self.keys {
            let key = key.to_ne_bytes();
            if self.resets_by_delete {
                sys::delete(self.fd.as_fd(), &key).map_err(failed("map delete"))?;
            } else {
                sys::update(self.fd.as_fd(), &key, &zeros).map_err(failed("map update"))?;
            }
        }
        Ok(())
    }
}

/// The map kinds kept in maps of a kernel type (several share ARRAY):
/// what they say of such a map holds for a tool's map of that type.
fn kinds_of(map_type: u32) -> impl Iterator<Item = MapKind> {
    MapKind::ALL
        .iter()
        .copied()
        .filter(move |kind| kind.kernel_type() == map_type)
}

/// A count kept in a map of a program bpfstorm did not write (a tool's,
/// such as bpftrace's `count()`, `sum()` or `++`): u64 values under keys of
/// any size, summed over every key and, in a per-CPU map, every CPU, as
/// the tool itself sums them when it prints the map.
pub struct ToolCount {
    fd: OwnedFd,
    map_type: u32,
    key_size: usize,
    /// Bytes of the value a lookup returns: 8, or 8 per possible CPU.
    value_bytes: usize,
    /// Whether a reset deletes the keys (a hash) rather than writing zeros
    /// to them (an array, whose keys are all there from the start).
    resets_by_delete: bool,
}

impl ToolCount {
    pub fn open(map: OwnedFd) -> Result<ToolCount, CounterError> {
        let info = sys::map_info(map.as_fd())?;
        if info.value_size != SLOT as u32 {
            return Err(CounterError::Backend {
                backend: "common",
                message: format!(
                    "map {} (type {}) has {}-byte values: no u64 count",
                    info.id, info.map_type, info.value_size
                ),
            });
        }
        let per_cpu = kinds_of(info.map_type).any(|k| k.slots() == Some(Slots::PerPossibleCpu));
        let cpus = if per_cpu { sys::possible_cpus()? } else { 1 };
        Ok(ToolCount {
            fd: map,
            map_type: info.map_type,
            key_size: info.key_size as usize,
            value_bytes: cpus * SLOT,
            resets_by_delete: kinds_of(info.map_type).all(MapKind::inserts_keys),
        })
    }

    /// The map's kernel type (`enum bpf_map_type`).
    pub fn map_type(&self) -> u32 {
        self.map_type
    }

    fn keys(&self) -> Result<Vec<Vec<u8>>, CounterError> {
        let mut keys: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut next = vec![0u8; self.key_size];
            let after = keys.last().map(Vec::as_slice);
            if !sys::next_key(self.fd.as_fd(), after, &mut next).map_err(failed("map key walk"))? {
                return Ok(keys);
            }
            keys.push(next);
        }
    }

    /// Every key's count, summed; keys whose count is not zero.
    pub fn read(&self) -> Result<Sum, CounterError> {
        let mut total = Sum {
            count: 0,
            keys_live: 0,
        };
        let mut value = vec![0u8; self.value_bytes];
        for key in self.keys()? {
            if sys::lookup(self.fd.as_fd(), &key, &mut value).map_err(failed("map lookup"))? {
                let count: u64 = value
                    .chunks_exact(SLOT)
                    .map(|slot| u64::from_ne_bytes(slot.try_into().expect("8 bytes")))
                    .sum();
                total.count += count;
                total.keys_live += u64::from(count > 0);
            }
        }
        Ok(total)
    }

    /// Sets the count back to zero as the tool's own clear does: zeros
    /// into an array's slots, every key of a hash deleted.
    pub fn reset(&self) -> Result<(), CounterError> {
        let zeros = vec![0u8; self.value_bytes];
        for key in self.keys()? {
            if self.resets_by_delete {
                sys::delete(self.fd.as_fd(), &key).map_err(failed("map delete"))?;
            } else {
                sys::update(self.fd.as_fd(), &key, &zeros).map_err(failed("map update"))?;
            }
        }
        Ok(())
    }
}

/// The count of a loaded strategy, read the same way whatever the loader.
pub enum Tally<B: Buffer> {
    /// A map that holds the count, and for a count spread over keys, the
    /// events the program found no slot for (its `dropped` global, the
    /// only variable in `.bss`).
    Map {
        count: CountMap,
        dropped: Option<CountMap>,
    },
    /// A buffer's records, and what the program could not hand over (its
    /// `dropped` global).
    Stream {
        records: Stream<B>,
        dropped: CountMap,
    },
}

/// `dropped`, the only variable in the object's `.bss`: an array's u64.
fn dropped(bss: BorrowedFd<'_>) -> Result<CountMap, CounterError> {
    CountMap::open(bss, MapKind::Array, ReadPath::Syscall, 1)
}

impl<B: Buffer> Tally<B> {
    /// The count of `strategy` in `map`; `bss` is the object's `.bss`.
    pub fn map(
        map: BorrowedFd<'_>,
        strategy: &Strategy,
        bss: BorrowedFd<'_>,
    ) -> Result<Tally<B>, CounterError> {
        Ok(Tally::Map {
            count: CountMap::open(map, strategy.map(), strategy.read(), strategy.keys().count)?,
            dropped: strategy.is_keyed().then(|| dropped(bss)).transpose()?,
        })
    }

    /// Starts counting `buffer`, whose reader the program wakes as
    /// `wakeup` says; `bss` is the object's `.bss`.
    pub fn stream(
        buffer: B,
        wakeup: Wakeup,
        bss: BorrowedFd<'_>,
    ) -> Result<Tally<B>, CounterError> {
        Ok(Tally::Stream {
            dropped: dropped(bss)?,
            records: Stream::start(buffer, wakeup)?,
        })
    }

    pub fn read(&mut self) -> Result<Reading, CounterError> {
        match self {
            Tally::Map { count, dropped } => {
                let sum = count.read()?;
                Ok(Reading {
                    count: sum.count,
                    keys_live: sum.keys_live,
                    dropped: match dropped {
                        Some(dropped) => dropped.read()?.count,
                        None => 0,
                    },
                    ..Reading::default()
                })
            }
            Tally::Stream { records, dropped } => {
                let counts = records.drain()?;
                Ok(Reading {
                    count: counts.records,
                    dropped: dropped.read()?.count,
                    lost_records: counts.lost_records,
                    keys_live: 0,
                })
            }
        }
    }

    pub fn reset(&mut self) -> Result<(), CounterError> {
        match self {
            Tally::Map { count, dropped } => {
                count.reset()?;
                dropped.as_ref().map_or(Ok(()), CountMap::reset)
            }
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
        create_with(kind, key_size, value_size, max_entries, 0)
    }

    fn create_with(
        kind: MapKind,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        map_flags: u32,
    ) -> OwnedFd {
        #[repr(C)]
        struct MapCreate {
            map_type: u32,
            key_size: u32,
            value_size: u32,
            max_entries: u32,
            map_flags: u32,
        }
        let attr = MapCreate {
            map_type: kind.kernel_type(),
            key_size,
            value_size,
            max_entries,
            map_flags,
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
                let strategy = Strategy::new(
                    crate::AttachPoint::default(),
                    *kind,
                    kind.classic_update(),
                    crate::Filter::All,
                )
                .unwrap();
                let bss = create(MapKind::Array, 4, 8, 1);
                let mut tally = Tally::<NoBuffer>::map(fd.as_fd(), &strategy, bss.as_fd()).unwrap();
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
                let reading = tally.read().unwrap();
                assert_eq!((reading.count, reading.keys_live), (sum, 1), "{kind}");
                tally.reset().unwrap();
                assert_eq!(tally.read().unwrap(), Reading::default(), "{kind}");
            }
        }

        /// Keys 0..64 of a map with room for 48: every read path sums the
        /// keys there are, and a reset empties a hash, zeroes an array.
        #[test]
        fn keyed_counts_sum_every_key_by_each_read_path() {
            const KEYS: u32 = 64;
            const ENTRIES: u32 = 48;
            let cpus = sys::possible_cpus().unwrap();
            for &kind in MapKind::ALL.iter().filter(|k| k.takes_keys()) {
                let per_key = if kind.is_per_cpu() { cpus } else { 1 };
                let mappable = kind.read_paths().contains(&ReadPath::Mmap);
                let flags = if mappable { BPF_F_MMAPABLE } else { 0 };
                let fd = create_with(kind, 4, 8, ENTRIES, flags);
                // Key k holds k in each of its slots; hashes get every
                // other key, arrays have them all.
                let stored: Vec<u32> = (0..ENTRIES)
                    .filter(|k| !kind.inserts_keys() || k % 2 == 0)
                    .collect();
                for &key in &stored {
                    let value: Vec<u8> = (0..per_key)
                        .flat_map(|_| u64::from(key).to_ne_bytes())
                        .collect();
                    sys::update(fd.as_fd(), &key.to_ne_bytes(), &value).unwrap();
                }
                let sum = stored.iter().map(|&k| u64::from(k)).sum::<u64>() * per_key as u64;
                let live = stored.iter().filter(|&&k| k > 0).count() as u64;
                for &read in kind.read_paths() {
                    let map = CountMap::open(fd.as_fd(), kind, read, KEYS).unwrap();
                    let what = format!("{kind} by {read}");
                    assert_eq!(
                        map.read().unwrap(),
                        Sum {
                            count: sum,
                            keys_live: live
                        },
                        "{what}"
                    );
                }
                CountMap::open(fd.as_fd(), kind, ReadPath::Syscall, KEYS)
                    .unwrap()
                    .reset()
                    .unwrap();
                let mut value = vec![0u8; 8 * per_key];
                let left = sys::lookup(fd.as_fd(), &2u32.to_ne_bytes(), &mut value).unwrap();
                assert_eq!(left, !kind.inserts_keys(), "{kind}: key 2 after reset");
                assert!(value.iter().all(|&b| b == 0), "{kind}");
                for &read in kind.read_paths() {
                    let map = CountMap::open(fd.as_fd(), kind, read, KEYS).unwrap();
                    assert_eq!(map.read().unwrap().count, 0, "{kind} by {read}");
                }
            }
        }
        #[test]
        fn maps_that_hold_no_u64_count_are_refused() {
            let wide = create(MapKind::Array, 4, 16, 1);
            let open = |fd: &OwnedFd, kind| CountMap::open(fd.as_fd(), kind, ReadPath::Syscall, 1);
            assert!(open(&wide, MapKind::Array).is_err());
            let ring = create(MapKind::Ringbuf, 0, 0, 4096);
            assert!(open(&ring, MapKind::Ringbuf).is_err());
            let array = create(MapKind::Array, 4, 8, 1);
            assert!(
                open(&array, MapKind::Hash).is_err(),
                "an array is not a hash"
            );
            assert!(
                open(&array, MapKind::GlobalPercpu).is_err(),
                "one u64 is not a slot per CPU"
            );
            assert!(open(&array, MapKind::Global).is_ok());
        }
    }
}
