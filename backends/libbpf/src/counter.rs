use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::time::Instant;

use bpfstorm_common::{
    btf, fdinfo, prog_info, tracefs, AttachPoint, Counter, CounterError, LoadTimings, MapKind,
    ProgInsns, ProgStats, Reading, Strategy,
};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, Map, MapCore, MapFlags, MapHandle, OpenObject, ProgramMut};

use crate::errors;
use crate::skel::{BpfstormSkel, BpfstormSkelBuilder, OpenBpfstormSkel};
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
    rodata.map_kind = strategy.map().abi_value();
    rodata.update_mode = strategy.update().abi_value();
    rodata.filter_cgroup_id = strategy.filter().cgroup_id().unwrap_or(0);

    // Programs and maps are chosen by name (one name everywhere), so a new
    // attach point or map kind in the BPF source needs no change here.
    let object = open.open_object_mut();
    for mut map in object.maps_mut() {
        if let Some(kind) = map.name().to_str().and_then(|n| n.parse::<MapKind>().ok()) {
            map.set_autocreate(kind == strategy.map())
                .map_err(|e| errors::kernel(strategy.attach(), "open", &e))?;
        }
    }
    let wanted = strategy.attach().name();
    for mut prog in object.progs_mut() {
        let load = prog.name() == wanted;
        prog.set_autoload(load);
    }
    Ok(())
}

fn program<'a>(skel: &'a BpfstormSkel<'static>, attach: AttachPoint) -> Option<ProgramMut<'a>> {
    skel.object()
        .progs_mut()
        .find(|p| p.name() == attach.name())
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
        let attach = strategy.attach();
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
                .map_err(|e| errors::kernel(attach, "open", &e))?;
        }
        let mut open = builder
            .open(unsafe { storage.slot() })
            .map_err(|e| errors::kernel(attach, "open", &e))?;
        configure(&mut open, strategy)?;
        let opened = Instant::now();

        let skel = open
            .load()
            .map_err(|e| errors::kernel(attach, "load", &e))?;
        let loaded = Instant::now();

        let prog = program(&skel, attach).ok_or_else(|| missing("program", attach.name()))?;
        let link = prog
            .attach()
            .map_err(|e| errors::kernel(attach, "attach", &e))?;
        let attached = Instant::now();

        // Owned duplicates of the fds, so nothing has to be looked up again.
        let prog_fd = prog.as_fd().try_clone_to_owned()?;
        let map = count_map(&skel, strategy.map())
            .ok_or_else(|| missing("map", strategy.map().name()))
            .and_then(|m| {
                MapHandle::try_from(&m).map_err(|e| errors::map("dup of the map fd", &e))
            })?;
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
            _link: link,
            skel,
            _storage: storage,
        })
    }

    fn dropped(&self) -> u64 {
        self.skel
            .maps
            .bss_data
            .as_deref()
            // SAFETY: .bss is mmap-ed and written by the kernel concurrently.
            .map(|bss| unsafe { std::ptr::read_volatile(&bss.dropped) })
            .unwrap_or(0)
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
            MapKind::Ringbuf | MapKind::PerfEventArray => match self.stream.as_mut() {
                Some(stream) => stream.drain()?,
                None => 0,
            },
        };
        let dropped = match (self.strategy.map(), &self.stream) {
            // A full perf buffer shows up as "lost" records in the buffer itself.
            (MapKind::PerfEventArray, Some(stream)) => stream.lost(),
            _ => self.dropped(),
        };
        Ok(Reading { count, dropped })
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
            }
        }
        if let Some(bss) = self.skel.maps.bss_data.as_deref_mut() {
            // SAFETY: .bss is mmap-ed; the kernel may write it concurrently.
            unsafe { std::ptr::write_volatile(&mut bss.dropped, 0) };
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
        [self.map.as_fd(), maps.rodata.as_fd(), maps.bss.as_fd()]
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
