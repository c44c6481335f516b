use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::time::Instant;

use bpfstorm_common::{
    fdinfo, tracefs, AttachPoint, Counter, CounterError, LoadTimings, MapKind, ProgStats, Reading,
    Strategy, UpdateMode,
};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, MapMut, OpenObject, ProgramMut};

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
    _link: Link,
    skel: BpfstormSkel<'static>,
    _storage: ObjectStorage,
}

fn map_kind_value(map: MapKind) -> u32 {
    match map {
        MapKind::Array => 0,
        MapKind::Hash => 1,
        MapKind::PercpuArray => 2,
        MapKind::PercpuHash => 3,
        MapKind::Ringbuf => 4,
        MapKind::PerfEventArray => 5,
    }
}

fn update_mode_value(update: UpdateMode) -> u32 {
    match update {
        UpdateMode::Atomic => 0,
        UpdateMode::Percpu => 1,
        UpdateMode::Racy => 2,
        UpdateMode::Stream => 3,
    }
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
    rodata.map_kind = map_kind_value(strategy.map());
    rodata.update_mode = update_mode_value(strategy.update());
    rodata.filter_cgroup_id = strategy.filter().cgroup_id().unwrap_or(0);

    let maps = &mut open.maps;
    for (kind, map) in [
        (MapKind::Array, &mut maps.array),
        (MapKind::Hash, &mut maps.hash),
        (MapKind::PercpuArray, &mut maps.percpu_array),
        (MapKind::PercpuHash, &mut maps.percpu_hash),
        (MapKind::Ringbuf, &mut maps.ringbuf),
        (MapKind::PerfEventArray, &mut maps.perf_event_array),
    ] {
        map.set_autocreate(kind == strategy.map())
            .map_err(|e| errors::kernel(strategy.attach(), "open", &e))?;
    }

    let progs = &mut open.progs;
    for (attach, prog) in [
        (
            AttachPoint::TpSysEnterExecve,
            &mut progs.tp_sys_enter_execve,
        ),
        (
            AttachPoint::TpSysEnterExecveat,
            &mut progs.tp_sys_enter_execveat,
        ),
        (
            AttachPoint::TpSchedProcessExec,
            &mut progs.tp_sched_process_exec,
        ),
        (AttachPoint::RawTpSysEnter, &mut progs.raw_tp_sys_enter),
        (AttachPoint::TpBtfSysEnter, &mut progs.tp_btf_sys_enter),
        (
            AttachPoint::RawTpSchedProcessExec,
            &mut progs.raw_tp_sched_process_exec,
        ),
        (
            AttachPoint::TpBtfSchedProcessExec,
            &mut progs.tp_btf_sched_process_exec,
        ),
    ] {
        prog.set_autoload(attach == strategy.attach());
    }
    Ok(())
}

fn program<'a>(skel: &'a BpfstormSkel<'static>, attach: AttachPoint) -> &'a ProgramMut<'static> {
    let progs = &skel.progs;
    match attach {
        AttachPoint::TpSysEnterExecve => &progs.tp_sys_enter_execve,
        AttachPoint::TpSysEnterExecveat => &progs.tp_sys_enter_execveat,
        AttachPoint::TpSchedProcessExec => &progs.tp_sched_process_exec,
        AttachPoint::RawTpSysEnter => &progs.raw_tp_sys_enter,
        AttachPoint::TpBtfSysEnter => &progs.tp_btf_sys_enter,
        AttachPoint::RawTpSchedProcessExec => &progs.raw_tp_sched_process_exec,
        AttachPoint::TpBtfSchedProcessExec => &progs.tp_btf_sched_process_exec,
    }
}

fn count_map<'a>(skel: &'a BpfstormSkel<'static>, map: MapKind) -> &'a MapMut<'static> {
    let maps = &skel.maps;
    match map {
        MapKind::Array => &maps.array,
        MapKind::Hash => &maps.hash,
        MapKind::PercpuArray => &maps.percpu_array,
        MapKind::PercpuHash => &maps.percpu_hash,
        MapKind::Ringbuf => &maps.ringbuf,
        MapKind::PerfEventArray => &maps.perf_event_array,
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
        let mut open = BpfstormSkelBuilder::default()
            .open(unsafe { storage.slot() })
            .map_err(|e| errors::kernel(attach, "open", &e))?;
        configure(&mut open, strategy)?;
        let opened = Instant::now();

        let skel = open
            .load()
            .map_err(|e| errors::kernel(attach, "load", &e))?;
        let loaded = Instant::now();

        let link = program(&skel, attach)
            .attach()
            .map_err(|e| errors::kernel(attach, "attach", &e))?;
        let attached = Instant::now();

        let stream = if strategy.map().is_stream() {
            let handle = MapHandle::try_from(count_map(&skel, strategy.map()))
                .map_err(|e| errors::map("dup of the buffer map", &e))?;
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
            _link: link,
            skel,
            _storage: storage,
        })
    }

    fn prog_fd(&self) -> BorrowedFd<'_> {
        program(&self.skel, self.strategy.attach()).as_fd()
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
        let map = count_map(&self.skel, self.strategy.map());
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
        let map = count_map(&self.skel, self.strategy.map());
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
        Ok(fdinfo::prog_stats(self.prog_fd().as_raw_fd())?)
    }

    fn map_memory_bytes(&self) -> Result<u64, CounterError> {
        let maps = &self.skel.maps;
        [
            count_map(&self.skel, self.strategy.map()),
            &maps.rodata,
            &maps.bss,
        ]
        .iter()
        .map(|m| fdinfo::memlock(m.as_fd().as_raw_fd()).map_err(CounterError::from))
        .sum()
    }

    fn prog_ids(&self) -> Vec<u32> {
        libbpf_rs::Program::id_from_fd(self.prog_fd())
            .into_iter()
            .collect()
    }
}
