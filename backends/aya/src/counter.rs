use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use aya::maps::{Array, HashMap, Map, MapData, MapError, PerCpuArray, PerCpuHashMap, PerCpuValues};
use aya::programs::{
    BtfTracePoint, FEntry, FExit, KProbe, Lsm, Program, ProgramError, RawTracePoint, TracePoint,
    UProbe,
};
use aya::{Btf, Ebpf, EbpfLoader};
use bpfstorm_common::{
    fdinfo, prog_info, tracefs, AttachPoint, Counter, CounterError, LoadTimings, MapKind,
    ProgInsns, ProgStats, Reading, Strategy,
};

use crate::errors;
use crate::stream::StreamReader;

/// The object built from backends/aya/ebpf by build.rs (empty when it
/// could not be built; then [`crate::unavailable`] says why).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/bpfstorm-aya.bpf.o"));

/// The map that holds the count, typed for reading.
enum CountMap {
    Array(Array<MapData, u64>),
    Hash(HashMap<MapData, u32, u64>),
    PercpuArray(PerCpuArray<MapData, u64>),
    PercpuHash(PerCpuHashMap<MapData, u32, u64>),
    Stream(StreamReader),
}

/// A loaded, attached strategy. Dropping it detaches and unloads everything:
/// the poller stops first, then the maps' user-space handles go, then the
/// object with its program and link (field order).
pub struct AyaCounter {
    strategy: Strategy,
    timings: LoadTimings,
    count: CountMap,
    /// `.bss`, which holds only the program's `dropped` counter (aya does
    /// not create it mmap-able: read with the lookup syscall, as every
    /// backend reads it).
    bss: Array<MapData, u64>,
    /// Memory accounting: the count map, `.rodata` and `.bss`.
    map_fds: Vec<OwnedFd>,
    /// Kernel ids of every map aya created for the object, used or not.
    map_ids: Vec<u32>,
    prog_fd: OwnedFd,
    _ebpf: Ebpf,
}

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

/// The fd of a map of the kinds this object has.
fn map_fd(map: &Map) -> Option<BorrowedFd<'_>> {
    match map {
        Map::Array(d)
        | Map::HashMap(d)
        | Map::PerCpuArray(d)
        | Map::PerCpuHashMap(d)
        | Map::RingBuf(d)
        | Map::PerfEventArray(d) => Some(d.fd().as_fd()),
        _ => None,
    }
}

fn take_map(ebpf: &mut Ebpf, name: &str) -> Result<(Map, OwnedFd), CounterError> {
    let map = ebpf
        .take_map(name)
        .ok_or_else(|| errors::backend(format!("the BPF object has no map named `{name}`")))?;
    let fd = map_fd(&map)
        .ok_or_else(|| errors::backend(format!("map `{name}` is of an unexpected type")))?
        .try_clone_to_owned()?;
    Ok((map, fd))
}

fn count_map(kind: MapKind, map: Map) -> Result<CountMap, CounterError> {
    let typed = |e: MapError| errors::map(&format!("opening map `{kind}`"), &e);
    Ok(match kind {
        MapKind::Array => CountMap::Array(Array::try_from(map).map_err(typed)?),
        MapKind::Hash => CountMap::Hash(HashMap::try_from(map).map_err(typed)?),
        MapKind::PercpuArray => CountMap::PercpuArray(PerCpuArray::try_from(map).map_err(typed)?),
        MapKind::PercpuHash => CountMap::PercpuHash(PerCpuHashMap::try_from(map).map_err(typed)?),
        MapKind::Ringbuf | MapKind::PerfEventArray => {
            CountMap::Stream(StreamReader::start(kind, map)?)
        }
    })
}

/// A missing key is a count of 0 (hash maps start empty).
fn or_zero<T>(result: Result<T, MapError>, op: &str) -> Result<Option<T>, CounterError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(MapError::KeyNotFound) => Ok(None),
        Err(e) => Err(errors::map(op, &e)),
    }
}

impl AyaCounter {
    pub fn open(strategy: &Strategy) -> Result<AyaCounter, CounterError> {
        let attach_point = strategy.attach();
        let name = strategy.program_name();
        let name = name.as_str();
        tracefs::ensure_mounted()?;

        let started = Instant::now();
        // EbpfLoader::new() parses the kernel's BTF for CO-RE (libbpf does
        // that at load: only LoadTimings::total compares across loaders);
        // programs that attach by BTF id need it once more, as an owned value.
        let btf = if needs_btf(attach_point) {
            Some(Btf::from_sys_fs().map_err(|e| errors::kernel(attach_point, "open", &e))?)
        } else {
            None
        };
        // The one run-time value; only `cgroup` programs read it.
        let cgroup = strategy.filter().cgroup_id().unwrap_or(0);
        let mut loader = EbpfLoader::new();
        loader.override_global("filter_cgroup_id", &cgroup, true);
        let opened = Instant::now();

        // Parses the object and creates every map in it (aya has no way to
        // skip unused ones).
        let mut ebpf = loader
            .load(OBJECT)
            .map_err(|e| errors::kernel(attach_point, "load", &e))?;
        let prog = ebpf
            .program_mut(name)
            .ok_or_else(|| errors::backend(format!("the BPF object has no program `{name}`")))?;
        load(prog, attach_point, btf.as_ref())
            .map_err(|e| errors::kernel(attach_point, "load", &e))?;
        let loaded = Instant::now();

        attach(prog, attach_point).map_err(|e| errors::kernel(attach_point, "attach", &e))?;
        let attached = Instant::now();

        let prog_fd = prog
            .fd()
            .map_err(|e| errors::kernel(attach_point, "attach", &e))?
            .as_fd()
            .try_clone_to_owned()?;
        let map_ids = ebpf
            .maps()
            .filter_map(|(_, map)| map_fd(map))
            .filter_map(|fd| fdinfo::numbers(fd.as_raw_fd()).ok()?.get("map_id").copied())
            .filter_map(|id| u32::try_from(id).ok())
            .collect();
        let (map, count_fd) = take_map(&mut ebpf, strategy.map().name())?;
        let (bss, bss_fd) = take_map(&mut ebpf, ".bss")?;
        let (_, rodata_fd) = take_map(&mut ebpf, ".rodata")?;
        let bss = Array::try_from(bss).map_err(|e| errors::map("opening .bss", &e))?;
        let count = count_map(strategy.map(), map)?;

        Ok(AyaCounter {
            strategy: *strategy,
            timings: LoadTimings {
                open: opened - started,
                load: loaded - opened,
                attach: attached - loaded,
            },
            count,
            bss,
            map_fds: vec![count_fd, rodata_fd, bss_fd],
            map_ids,
            prog_fd,
            _ebpf: ebpf,
        })
    }

    /// Kernel ids of every map of the object (aya creates them all), to
    /// check they are gone once the counter is dropped.
    pub fn map_ids(&self) -> &[u32] {
        &self.map_ids
    }

    fn dropped(&self) -> Result<u64, CounterError> {
        self.bss
            .get(&0, 0)
            .map_err(|e| errors::map("looking up `dropped` in .bss", &e))
    }
}

impl Counter for AyaCounter {
    fn strategy(&self) -> &Strategy {
        &self.strategy
    }

    fn timings(&self) -> LoadTimings {
        self.timings
    }

    fn read(&mut self) -> Result<Reading, CounterError> {
        let count = match &mut self.count {
            CountMap::Array(m) => m.get(&0, 0).map_err(|e| errors::map("map lookup", &e))?,
            CountMap::Hash(m) => or_zero(m.get(&0, 0), "map lookup")?.unwrap_or(0),
            CountMap::PercpuArray(m) => m
                .get(&0, 0)
                .map_err(|e| errors::map("per-CPU map lookup", &e))?
                .iter()
                .sum(),
            CountMap::PercpuHash(m) => or_zero(m.get(&0, 0), "per-CPU map lookup")?
                .map_or(0, |per_cpu| per_cpu.iter().sum()),
            CountMap::Stream(stream) => {
                let counts = stream.drain();
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
        match &mut self.count {
            CountMap::Array(m) => m.set(0, 0, 0).map_err(|e| errors::map("map update", &e))?,
            CountMap::Hash(m) => {
                or_zero(m.remove(&0), "map delete")?;
            }
            CountMap::PercpuArray(m) => {
                let cpus = aya::util::nr_cpus().map_err(|(path, e)| {
                    errors::backend(format!("counting possible CPUs from {path}: {e}"))
                })?;
                let zeros = PerCpuValues::try_from(vec![0u64; cpus])
                    .map_err(|e| errors::map("per-CPU map update", &e))?;
                m.set(0, zeros, 0)
                    .map_err(|e| errors::map("per-CPU map update", &e))?;
            }
            CountMap::PercpuHash(m) => {
                or_zero(m.remove(&0), "map delete")?;
            }
            CountMap::Stream(stream) => {
                stream.reset();
                self.bss
                    .set(0, 0, 0)
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
        self.map_fds
            .iter()
            .map(|fd| fdinfo::memlock(fd.as_raw_fd()).map_err(CounterError::from))
            .sum()
    }

    fn prog_ids(&self) -> Vec<u32> {
        fdinfo::numbers(self.prog_fd.as_raw_fd())
            .ok()
            .and_then(|n| n.get("prog_id").copied())
            .and_then(|id| u32::try_from(id).ok())
            .into_iter()
            .collect()
    }
}
