use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::time::Instant;

use bpfstorm_common::{
    btf, fdinfo, prog_info, tracefs, Counter, CounterError, LoadTimings, MapKind, ProgInsns,
    ProgStats, Reading, Strategy,
};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, Map, MapCore, MapFlags, MapHandle, OpenObject, ProgramMut};

use crate::errors;
use crate::skel::{types, BpfstormSkel, BpfstormSkelBuilder, OpenBpfstormSkel};
use crate::stream::StreamReader;

/// Heap slot for the libbpf object a skeleton borrows. It outlives the
/// skeleton because [`LibbpfCounter`] declares it last (fields drop in order).
struct ObjectStorage(NonNull<MaybeUninit<OpenObject>>);

impl ObjectStorage {
    fn new() -> Self {
        ObjectStorage(NonNull::from(Box::leak(Box::new(MaybeUninit::uninit()))))
    }

    /// # Safety
    /// The returned reference must not outlive `self`.
    unsafe fn slot(&mut self) -> &'static mut MaybeUninit<OpenObject> {
        &mut *self.0.as_ptr()
    }
}

impl Drop for ObjectStorage {
    fn drop(&mut self) {
        // SAFETY: the pointer came from Box::leak in `new` and is freed once.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// A loaded, attached strategy. Dropping it detaches and unloads everything:
/// the poller stops first, then the link goes, then the object (field order).
pub struct LibbpfCounter {
    strategy: Strategy,
    timings: LoadTimings,
    stream: Option<StreamReader>,
    prog_fd: OwnedFd,
    map: MapHandle,
    /// `.bss`, which holds only the program's `dropped` counter.
    bss: MapHandle,
    _link: Link,
    skel: BpfstormSkel<'static>,
    _storage: ObjectStorage,
}

fn configure(
    open: &mut OpenBpfstormSkel<'static>,
    strategy: &Strategy,
) -> Result<(), CounterError> {
    let rodata = open
        .maps
        .rodata_data
        .as_deref_mut()
        .ok_or_else(|| CounterError::Backend {
            backend: "libbpf",
            message: "the BPF object has no .rodata section".into(),
        })?;
    // The one run-time value; only `cgroup` programs read it.
    rodata.filter_cgroup_id = strategy.filter().cgroup_id().unwrap_or(0);

    // Programs and maps are chosen by name (one name everywhere), so a new
    // attach point or map kind in the BPF source needs no change here.
    let object = open.open_object_mut();
    for mut map in object.maps_mut() {
        if let Some(kind) = map.name().to_str().and_then(|n| n.parse::<MapKind>().ok()) {
            map.set_autocreate(kind == strategy.map())
                .map_err(|e| errors::kernel(strategy, "open", &e))?;
        }
    }
    let wanted = strategy.program_name();
    for mut prog in object.progs_mut() {
        let load = prog.name() == wanted.as_str();
        prog.set_autoload(load);
    }
    Ok(())
}

fn program<'a>(skel: &'a BpfstormSkel<'static>, name: &str) -> Option<ProgramMut<'a>> {
    skel.object().progs_mut().find(|p| p.name() == name)
}

fn count_map<'a>(skel: &'a BpfstormSkel<'static>, map: MapKind) -> Option<Map<'a>> {
    skel.object().maps().find(|m| m.name() == map.name())
}

fn missing(what: &str, name: &str) -> CounterError {
    CounterError::Backend {
        backend: "libbpf",
        message: format!("the BPF object has no {what} named `{name}`"),
    }
}

const KEY: [u8; 4] = 0u32.to_ne_bytes();

fn as_u64(bytes: &[u8]) -> u64 {
    bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_ne_bytes)
        .unwrap_or(0)
}

impl LibbpfCounter {
    pub fn open(strategy: &Strategy) -> Result<LibbpfCounter, CounterError> {
        let name = strategy.program_name();
        tracefs::ensure_mounted()?;
        errors::start_capture();
        let mut storage = ObjectStorage::new();

        let started = Instant::now();
        // SAFETY: the skeleton is stored beside `storage` in a struct that
        // drops it first, or dropped right here on error (locals drop in
        // reverse order of declaration).
        let mut builder = BpfstormSkelBuilder::default();
        if let Some(path) = btf::custom_path()? {
            builder
                .object_builder_mut()
                .btf_custom_path(&path)
                .map_err(|e| errors::kernel(strategy, "open", &e))?;
        }
        let mut open = builder
            .open(unsafe { storage.slot() })
            .map_err(|e| errors::kernel(strategy, "open", &e))?;
        configure(&mut open, strategy)?;
        let opened = Instant::now();

        let skel = open
            .load()
            .map_err(|e| errors::kernel(strategy, "load", &e))?;
        let loaded = Instant::now();

        let prog = program(&skel, &name).ok_or_else(|| missing("program", &name))?;
        let link = prog
            .attach()
            .map_err(|e| errors::kernel(strategy, "attach", &e))?;
        let attached = Instant::now();

        // Owned duplicates of the fds, so nothing has to be looked up again.
        let prog_fd = prog.as_fd().try_clone_to_owned()?;
        let map = count_map(&skel, strategy.map())
            .ok_or_else(|| missing("map", strategy.map().name()))
            .and_then(|m| {
                MapHandle::try_from(&m).map_err(|e| errors::map("dup of the map fd", &e))
            })?;
        let bss = MapHandle::try_from(&skel.maps.bss)
            .map_err(|e| errors::map("dup of the .bss map fd", &e))?;
        let stream = if strategy.map().is_stream() {
            let handle =
                MapHandle::try_from(&map).map_err(|e| errors::map("dup of the buffer map", &e))?;
            Some(StreamReader::start(strategy.map(), handle)?)
        } else {
            None
        };

        Ok(LibbpfCounter {
            strategy: *strategy,
            timings: LoadTimings {
                open: opened - started,
                load: loaded - opened,
                attach: attached - loaded,
            },
            stream,
            prog_fd,
            map,
            bss,
            _link: link,
            skel,
            _storage: storage,
        })
    }

    /// The program's `dropped` counter, read with the lookup syscall as
    /// every backend reads it (aya's `.bss` is not mmap-able), though
    /// libbpf maps `.bss` into memory.
    fn dropped(&self) -> Result<u64, CounterError> {
        let bss = self
            .bss
            .lookup(&KEY, MapFlags::ANY)
            .map_err(|e| errors::map("looking up `dropped` in .bss", &e))?
            .unwrap_or_default();
        let at = std::mem::offset_of!(types::bss, dropped);
        Ok(bss.get(at..).map_or(0, as_u64))
    }
}

impl Counter for LibbpfCounter {
    fn strategy(&self) -> &Strategy {
        &self.strategy
    }

    fn timings(&self) -> LoadTimings {
        self.timings
    }

    fn read(&mut self) -> Result<Reading, CounterError> {
        let map = &self.map;
        let count = match self.strategy.map() {
            MapKind::Array | MapKind::Hash => map
                .lookup(&KEY, MapFlags::ANY)
                .map_err(|e| errors::map("map lookup", &e))?
                .map_or(0, |v| as_u64(&v)),
            MapKind::PercpuArray | MapKind::PercpuHash => map
                .lookup_percpu(&KEY, MapFlags::ANY)
                .map_err(|e| errors::map("per-CPU map lookup", &e))?
                .map_or(0, |per_cpu| per_cpu.iter().map(|v| as_u64(v)).sum()),
            MapKind::Ringbuf | MapKind::PerfEventArray => {
                let counts = match self.stream.as_mut() {
                    Some(stream) => stream.drain()?,
                    None => {
                        return Err(CounterError::Backend {
                            backend: "libbpf",
                            message: "a stream map without its buffer".into(),
                        })
                    }
                };
                return Ok(Reading {
                    count: counts.records,
                    dropped: self.dropped()?,
                    lost_records: counts.lost_records,
                });
            }
        };
        // Only stream programs can drop: nothing else to read.
        Ok(Reading {
            count,
            ..Reading::default()
        })
    }

    fn reset(&mut self) -> Result<(), CounterError> {
        let map = &self.map;
        let zero = 0u64.to_ne_bytes();
        match self.strategy.map() {
            MapKind::Array => map
                .update(&KEY, &zero, MapFlags::ANY)
                .map_err(|e| errors::map("map update", &e))?,
            MapKind::PercpuArray => {
                let cpus = libbpf_rs::num_possible_cpus()
                    .map_err(|e| errors::map("counting possible CPUs", &e))?;
                map.update_percpu(&KEY, &vec![zero.to_vec(); cpus], MapFlags::ANY)
                    .map_err(|e| errors::map("per-CPU map update", &e))?
            }
            MapKind::Hash | MapKind::PercpuHash => match map.delete(&KEY) {
                Err(e) if e.kind() != libbpf_rs::ErrorKind::NotFound => {
                    return Err(errors::map("map delete", &e))
                }
                _ => {}
            },
            MapKind::Ringbuf | MapKind::PerfEventArray => {
                if let Some(stream) = self.stream.as_mut() {
                    stream.reset()?;
                }
                let zeros = vec![0u8; std::mem::size_of::<types::bss>()];
                self.bss
                    .update(&KEY, &zeros, MapFlags::ANY)
                    .map_err(|e| errors::map("zeroing `dropped` in .bss", &e))?;
            }
        }
        Ok(())
    }

    fn prog_stats(&self) -> Result<ProgStats, CounterError> {
        Ok(fdinfo::prog_stats(self.prog_fd.as_raw_fd())?)
    }

    fn prog_info(&self) -> Result<ProgInsns, CounterError> {
        Ok(prog_info::of_fd(self.prog_fd.as_raw_fd())?)
    }

    fn map_memory_bytes(&self) -> Result<u64, CounterError> {
        let maps = &self.skel.maps;
        [self.map.as_fd(), maps.rodata.as_fd(), self.bss.as_fd()]
            .iter()
            .map(|fd| fdinfo::memlock(fd.as_raw_fd()).map_err(CounterError::from))
            .sum()
    }

    fn prog_ids(&self) -> Vec<u32> {
        libbpf_rs::Program::id_from_fd(self.prog_fd.as_fd())
            .into_iter()
            .collect()
    }
}
