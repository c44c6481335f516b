use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::ptr::NonNull;
use std::time::Instant;

use bpfstorm_common::count::{ensure_slots_fit, Tally, TallyCounter, BPF_F_MMAPABLE};
use bpfstorm_common::stream;
use bpfstorm_common::{
    btf, tracefs, CounterError, LoadTimings, Loaded, MapKind, Op, ReadPath, Strategy,
};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, Map, MapCore, MapHandle, OpenObject, ProgramMut};

use crate::errors;
use crate::skel::{BpfstormSkel, BpfstormSkelBuilder, OpenBpfstormSkel};
use crate::stream::LibbpfBuffer;

/// Heap slot for the libbpf object a skeleton borrows. It outlives the
/// skeleton because [`Object`] declares it last (fields drop in order).
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

/// What keeps a strategy loaded and attached. Dropping it detaches and
/// unloads everything: the link goes first, then the object (field order).
pub struct Object {
    _link: Link,
    _skel: BpfstormSkel<'static>,
    _storage: ObjectStorage,
}

/// A loaded, attached strategy; the poller stops before the object goes.
pub type LibbpfCounter = TallyCounter<LibbpfBuffer, Object>;

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
    // The run-time values; only `cgroup` programs read the first, only
    // `keyed` ones the second.
    rodata.filter_cgroup_id = strategy.filter().cgroup_id().unwrap_or(0);
    rodata.key_count = strategy.keys().count;

    // Programs and maps are chosen by name (one name everywhere), so a new
    // attach point or map kind in the BPF source needs no change here.
    let object = open.open_object_mut();
    for mut map in object.maps_mut() {
        if let Some(kind) = map.name().to_str().and_then(MapKind::from_object_name) {
            map.set_autocreate(kind == strategy.map())
                .map_err(|e| errors::kernel(strategy, Op::Open, &e))?;
            if let Some(entries) = strategy
                .keys()
                .max_entries
                .filter(|_| kind == strategy.map())
            {
                map.set_max_entries(entries)
                    .map_err(|e| errors::kernel(strategy, Op::Open, &e))?;
            }
            // libbpf maps a global's section itself; an array map is
            // mapped only when created so.
            if kind == strategy.map() && strategy.read() == ReadPath::Mmap && !kind.is_global() {
                let flags = map.map_flags() | BPF_F_MMAPABLE;
                map.set_map_flags(flags)
                    .map_err(|e| errors::kernel(strategy, Op::Open, &e))?;
            }
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
    skel.object()
        .maps()
        .find(|m| m.name().to_str() == Some(&map.object_name()))
}

fn missing(what: &str, name: &str) -> CounterError {
    CounterError::Backend {
        backend: "libbpf",
        message: format!("the BPF object has no {what} named `{name}`"),
    }
}

/// Opens, loads and attaches the program for `strategy`.
pub fn open(strategy: &Strategy) -> Result<LibbpfCounter, CounterError> {
    let name = strategy.program_name();
    tracefs::ensure_mounted()?;
    ensure_slots_fit(strategy.map())?;
    stream::refuse_batched_perf(
        strategy,
        "wakeup_events, which libbpf-rs 0.27's PerfBufferBuilder cannot set (libbpf's \
         perf_buffer_opts.sample_period)",
    )?;
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
            .map_err(|e| errors::kernel(strategy, Op::Open, &e))?;
    }
    let mut open = builder
        .open(unsafe { storage.slot() })
        .map_err(|e| errors::kernel(strategy, Op::Open, &e))?;
    configure(&mut open, strategy)?;
    let opened = Instant::now();

    let skel = open
        .load()
        .map_err(|e| errors::kernel(strategy, Op::Load, &e))?;
    let loaded = Instant::now();

    let prog = program(&skel, &name).ok_or_else(|| missing("program", &name))?;
    let link = prog
        .attach()
        .map_err(|e| errors::kernel(strategy, Op::Attach, &e))?;
    let attached = Instant::now();

    let map = count_map(&skel, strategy.map())
        .ok_or_else(|| missing("map", &strategy.map().object_name()))?;
    let maps = &skel.maps;
    let ids = Loaded::of_fds(
        [prog.as_fd()],
        [map.as_fd(), maps.rodata.as_fd(), maps.bss.as_fd()],
    )?;
    let tally = if let Some(wakeup) = strategy.wakeup() {
        let handle =
            MapHandle::try_from(&map).map_err(|e| errors::map("dup of the buffer map fd", &e))?;
        Tally::stream(
            LibbpfBuffer::open(strategy.map(), handle)?,
            wakeup,
            maps.bss.as_fd(),
        )?
    } else {
        Tally::map(map.as_fd(), strategy, maps.bss.as_fd())?
    };

    let timings = LoadTimings {
        open: opened - started,
        load: loaded - opened,
        attach: attached - loaded,
    };
    let object = Object {
        _link: link,
        _skel: skel,
        _storage: storage,
    };
    Ok(TallyCounter::new(*strategy, timings, ids, tally, object))
}
