use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Instant;

use aya::maps::Map;
use aya::programs::{
    BtfTracePoint, FEntry, FExit, KProbe, Lsm, Program, ProgramError, RawTracePoint, TracePoint,
    UProbe,
};
use aya::{Btf, Ebpf, EbpfLoader};
use bpfstorm_common::count::{ensure_slots_fit, Tally, TallyCounter};
use bpfstorm_common::stream;
use bpfstorm_common::{
    fdinfo, tracefs, AttachPoint, CounterError, LoadTimings, Loaded, Op, ReadPath, Strategy,
};

use crate::errors;
use crate::stream::AyaBuffer;

/// The object built from backends/aya/ebpf by build.rs (empty when it
/// could not be built; then [`crate::unavailable`] says why).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/bpfstorm-aya.bpf.o"));

/// What keeps a strategy loaded and attached: aya's object, with every
/// map, the program and its link. Dropping it detaches and unloads all.
pub struct Object {
    /// Kernel ids of every map aya created for the object, used or not.
    map_ids: Vec<u32>,
    _ebpf: Ebpf,
}

impl Object {
    /// Kernel ids of every map of the object (aya creates them all), to
    /// check they are gone once the counter is dropped.
    pub fn map_ids(&self) -> &[u32] {
        &self.map_ids
    }
}

/// A loaded, attached strategy; the poller stops before the object goes.
pub type AyaCounter = TallyCounter<AyaBuffer, Object>;

/// The kernel's syscall wrapper for execve on this architecture: what
/// libbpf's `ksyscall/execve` resolves to. aya has no ksyscall section, so
/// the aya backend attaches a kprobe there itself.
fn execve_syscall_wrapper() -> &'static str {
    if cfg!(target_arch = "x86_64") {
        "__x64_sys_execve"
    } else if cfg!(target_arch = "aarch64") {
        "__arm64_sys_execve"
    } else {
        "sys_execve"
    }
}

/// Attach points whose program needs the kernel's BTF at load.
fn needs_btf(attach: AttachPoint) -> bool {
    matches!(
        attach,
        AttachPoint::TpBtfSysEnter
            | AttachPoint::TpBtfSchedProcessExec
            | AttachPoint::FentrySysExecve
            | AttachPoint::FexitSysExecve
            | AttachPoint::LsmBprmCheckSecurity
            | AttachPoint::LsmBprmCommittedCreds
    )
}

fn typed<'a, P>(prog: &'a mut Program) -> Result<&'a mut P, ProgramError>
where
    &'a mut P: TryFrom<&'a mut Program, Error = ProgramError>,
{
    prog.try_into()
}

/// BPF_PROG_LOAD of the one program for `attach`; no other program of the
/// object is ever loaded.
fn load(prog: &mut Program, attach: AttachPoint, btf: Option<&Btf>) -> Result<(), ProgramError> {
    let btf = || btf.ok_or(ProgramError::NotLoaded);
    match attach {
        AttachPoint::TpSysEnterExecve
        | AttachPoint::TpSysEnterExecveat
        | AttachPoint::TpSchedProcessExec => typed::<TracePoint>(prog)?.load(),
        AttachPoint::RawTpSysEnter | AttachPoint::RawTpSchedProcessExec => {
            typed::<RawTracePoint>(prog)?.load()
        }
        AttachPoint::TpBtfSysEnter => typed::<BtfTracePoint>(prog)?.load("sys_enter", btf()?),
        AttachPoint::TpBtfSchedProcessExec => {
            typed::<BtfTracePoint>(prog)?.load("sched_process_exec", btf()?)
        }
        AttachPoint::UprobeLibcExecve => typed::<UProbe>(prog)?.load(),
        AttachPoint::FentrySysExecve => typed::<FEntry>(prog)?.load("__x64_sys_execve", btf()?),
        AttachPoint::FexitSysExecve => typed::<FExit>(prog)?.load("__x64_sys_execve", btf()?),
        AttachPoint::KprobeSysExecve | AttachPoint::KsyscallExecve => typed::<KProbe>(prog)?.load(),
        AttachPoint::LsmBprmCheckSecurity => {
            typed::<Lsm>(prog)?.load("bprm_check_security", btf()?)
        }
        AttachPoint::LsmBprmCommittedCreds => {
            typed::<Lsm>(prog)?.load("bprm_committed_creds", btf()?)
        }
    }
}

/// Attaches the loaded program; the link lives in the program (and so in
/// the `Ebpf`) until it drops.
fn attach(prog: &mut Program, attach: AttachPoint) -> Result<(), ProgramError> {
    match attach {
        AttachPoint::TpSysEnterExecve => {
            typed::<TracePoint>(prog)?.attach("syscalls", "sys_enter_execve")?;
        }
        AttachPoint::TpSysEnterExecveat => {
            typed::<TracePoint>(prog)?.attach("syscalls", "sys_enter_execveat")?;
        }
        AttachPoint::TpSchedProcessExec => {
            typed::<TracePoint>(prog)?.attach("sched", "sched_process_exec")?;
        }
        AttachPoint::RawTpSysEnter => {
            typed::<RawTracePoint>(prog)?.attach("sys_enter")?;
        }
        AttachPoint::RawTpSchedProcessExec => {
            typed::<RawTracePoint>(prog)?.attach("sched_process_exec")?;
        }
        AttachPoint::TpBtfSysEnter | AttachPoint::TpBtfSchedProcessExec => {
            typed::<BtfTracePoint>(prog)?.attach()?;
        }
        AttachPoint::UprobeLibcExecve => {
            // aya resolves a library name through ld.so.cache by the part
            // before `.so` ("libc.so.6" itself does not match).
            typed::<UProbe>(prog)?.attach(
                "execve",
                "libc",
                aya::programs::uprobe::UProbeScope::AllProcesses,
            )?;
        }
        AttachPoint::FentrySysExecve => {
            typed::<FEntry>(prog)?.attach()?;
        }
        AttachPoint::FexitSysExecve => {
            typed::<FExit>(prog)?.attach()?;
        }
        AttachPoint::KprobeSysExecve => {
            typed::<KProbe>(prog)?.attach("__x64_sys_execve", 0)?;
        }
        AttachPoint::KsyscallExecve => {
            typed::<KProbe>(prog)?.attach(execve_syscall_wrapper(), 0)?;
        }
        AttachPoint::LsmBprmCheckSecurity | AttachPoint::LsmBprmCommittedCreds => {
            typed::<Lsm>(prog)?.attach()?;
        }
    }
    Ok(())
}

/// The fd of a map of a type that can count execs: one that can hold a
/// u64 at a u32 key (`.rodata` and `.bss` are arrays), or a buffer. aya
/// 0.14 has no fd for its `Map` enum as such.
fn map_fd(map: &Map) -> Option<BorrowedFd<'_>> {
    match map {
        Map::Array(d)
        | Map::HashMap(d)
        | Map::LruHashMap(d)
        | Map::PerCpuArray(d)
        | Map::PerCpuHashMap(d)
        | Map::PerCpuLruHashMap(d)
        | Map::RingBuf(d)
        | Map::PerfEventArray(d) => Some(d.fd().as_fd()),
        _ => None,
    }
}

/// The fd of the object's map `name`.
fn find_map<'a>(ebpf: &'a Ebpf, name: &str) -> Result<BorrowedFd<'a>, CounterError> {
    let map = ebpf
        .map(name)
        .ok_or_else(|| errors::backend(format!("the BPF object has no map named `{name}`")))?;
    map_fd(map).ok_or_else(|| errors::backend(format!("map `{name}` is of an unexpected type")))
}

/// Opens, loads and attaches the program for `strategy`.
pub fn open(strategy: &Strategy) -> Result<AyaCounter, CounterError> {
    let attach_point = strategy.attach();
    let name = strategy.program_name();
    let name = name.as_str();
    tracefs::ensure_mounted()?;
    ensure_slots_fit(strategy.map())?;
    stream::refuse_batched_perf(
        strategy,
        "wakeup_events, which aya 0.14's PerfEventArray::open cannot set (it opens every perf \
         buffer with WakeupPolicy::Events(1))",
    )?;
    if strategy.read() == ReadPath::Mmap {
        return Err(CounterError::Unsupported {
            what: format!("{} read by mmap", strategy.map()),
            reason: "aya 0.14 creates its maps with the flags compiled into the object (no \
                     BPF_F_MMAPABLE can be added before load) and its data sections without \
                     BPF_F_MMAPABLE, so no count can be mapped; the libbpf and c backends do it"
                .into(),
            errno: None,
        });
    }

    let started = Instant::now();
    // EbpfLoader::new() parses the kernel's BTF for CO-RE (libbpf does
    // that at load: only LoadTimings::total compares across loaders);
    // programs that attach by BTF id need it once more, as an owned value.
    let btf = if needs_btf(attach_point) {
        Some(Btf::from_sys_fs().map_err(|e| errors::kernel(attach_point, Op::Open, &e))?)
    } else {
        None
    };
    // The run-time values; only `cgroup` programs read the first, only
    // `keyed` ones the second.
    let cgroup = strategy.filter().cgroup_id().unwrap_or(0);
    let keys = strategy.keys();
    let kind = strategy.map();
    let map_name = kind.object_name();
    let mut loader = EbpfLoader::new();
    loader
        .override_global("filter_cgroup_id", &cgroup, true)
        .override_global("key_count", &keys.count, true);
    // A keyed count's map is sized for its keys (aya creates every map of
    // the object, the others as compiled).
    if let Some(entries) = keys.max_entries {
        loader.map_max_entries(&map_name, entries);
    }
    let opened = Instant::now();

    // Parses the object and creates every map in it (aya has no way to
    // skip unused ones).
    let mut ebpf = loader
        .load(OBJECT)
        .map_err(|e| errors::kernel(attach_point, Op::Load, &e))?;
    let prog = ebpf
        .program_mut(name)
        .ok_or_else(|| errors::backend(format!("the BPF object has no program `{name}`")))?;
    load(prog, attach_point, btf.as_ref())
        .map_err(|e| errors::kernel(attach_point, Op::Load, &e))?;
    let loaded = Instant::now();

    attach(prog, attach_point).map_err(|e| errors::kernel(attach_point, Op::Attach, &e))?;
    let attached = Instant::now();

    let prog_fd = prog
        .fd()
        .map_err(|e| errors::kernel(attach_point, Op::Attach, &e))?
        .as_fd()
        .try_clone_to_owned()?;
    let map_ids = ebpf
        .maps()
        .filter_map(|(_, map)| map_fd(map))
        .filter_map(|fd| fdinfo::numbers(fd.as_raw_fd()).ok()?.get("map_id").copied())
        .filter_map(|id| u32::try_from(id).ok())
        .collect();
    let (map, bss) = (find_map(&ebpf, &map_name)?, find_map(&ebpf, ".bss")?);
    let ids = Loaded::of_fds([prog_fd.as_fd()], [map, find_map(&ebpf, ".rodata")?, bss])?;
    let tally = if let Some(wakeup) = strategy.wakeup() {
        let bss = bss.try_clone_to_owned()?;
        let map = ebpf.take_map(kind.name()).expect("found above");
        Tally::stream(AyaBuffer::open(kind, map)?, wakeup, bss.as_fd())?
    } else {
        Tally::map(map, strategy, bss)?
    };

    let timings = LoadTimings {
        open: opened - started,
        load: loaded - opened,
        attach: attached - loaded,
    };
    let object = Object {
        map_ids,
        _ebpf: ebpf,
    };
    Ok(TallyCounter::new(*strategy, timings, ids, tally, object))
}
