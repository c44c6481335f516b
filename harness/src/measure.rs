//! One cell of the matrix: a backend counts one storm with one strategy,
//! and everything that can be checked against it is read around the storm.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use bpfstorm_common::{
    AttachPoint, Backend, Counter, CounterError, Filter, Introspection, ProgInsns, ProgStats,
    Reading, Strategy,
};
use thiserror::Error;

use crate::bpf_stats::StatsGuard;
use crate::cgroup::{CgroupError, StormCgroup};
use crate::interrupt;
use crate::oracle::perf::PerfTracepoint;
use crate::oracle::procfs::SystemSnapshot;
use crate::oracle::OracleError;
use crate::retire::Retirements;
use crate::sample::Estimate;
use crate::storm::{StormError, StormReport, StormSpec, WorkerPool};

/// How many timed reads estimate the read latency.
const READ_SAMPLES: usize = 31;
/// A stats interval with fewer runs than this is too coarse to keep.
const MIN_RUNS_PER_INTERVAL: u64 = 20;

#[derive(Debug, Error)]
pub enum MeasureError {
    #[error(transparent)]
    Counter(#[from] CounterError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Oracle(#[from] OracleError),
    #[error(transparent)]
    Storm(#[from] StormError),
    #[error("enabling BPF stats: {0}")]
    Stats(std::io::Error),
    #[error("interrupted")]
    Interrupted,
    #[error(transparent)]
    NoTrigger(#[from] crate::hot::NoTrigger),
    #[error(transparent)]
    Bias(#[from] crate::hot::bias::BiasError),
    #[error(transparent)]
    Retire(#[from] crate::retire::RetireError),
    #[error("the program never ran: nothing to time")]
    NoRuns,
}

impl MeasureError {
    pub fn is_unsupported(&self) -> bool {
        matches!(self, MeasureError::Counter(e) if e.is_unsupported())
    }
}

/// Which filter a cell uses; the cgroup id is only known once the storm's
/// cgroup exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterKind {
    All,
    Cgroup,
}

impl FilterKind {
    pub fn name(self) -> &'static str {
        match self {
            FilterKind::All => "all",
            FilterKind::Cgroup => "cgroup",
        }
    }
}

/// The perf oracle that sees exactly what an attach point should count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oracle {
    SysEnterExecve,
    SysEnterExecveat,
    /// Hooks on every syscall that keep the exec syscalls (raw_tp/tp_btf
    /// sys_enter): execve and execveat attempts both.
    ExecveOrExecveat,
    SchedProcessExec,
}

impl Oracle {
    pub const ALL: [Oracle; 4] = [
        Oracle::SysEnterExecve,
        Oracle::SysEnterExecveat,
        Oracle::ExecveOrExecveat,
        Oracle::SchedProcessExec,
    ];

    /// The name in the CSV's `expected_oracle` column.
    pub fn name(self) -> &'static str {
        match self {
            Oracle::SysEnterExecve => "syscalls:sys_enter_execve",
            Oracle::SysEnterExecveat => "syscalls:sys_enter_execveat",
            Oracle::ExecveOrExecveat => "syscalls:sys_enter_execve+syscalls:sys_enter_execveat",
            Oracle::SchedProcessExec => "sched:sched_process_exec",
        }
    }

    pub fn for_attach(attach: AttachPoint) -> Oracle {
        match attach {
            AttachPoint::TpSysEnterExecve
            | AttachPoint::UprobeLibcExecve
            | AttachPoint::FentrySysExecve
            | AttachPoint::FexitSysExecve
            | AttachPoint::KprobeSysExecve
            | AttachPoint::KsyscallExecve => Oracle::SysEnterExecve,
            AttachPoint::RawTpSysEnter | AttachPoint::TpBtfSysEnter => Oracle::ExecveOrExecveat,
            AttachPoint::TpSysEnterExecveat => Oracle::SysEnterExecveat,
            AttachPoint::TpSchedProcessExec
            | AttachPoint::RawTpSchedProcessExec
            | AttachPoint::TpBtfSchedProcessExec
            | AttachPoint::LsmBprmCheckSecurity
            | AttachPoint::LsmBprmCommittedCreds => Oracle::SchedProcessExec,
        }
    }
}

impl std::fmt::Display for Oracle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything measured in one cell.
#[derive(Debug, Clone)]
pub struct Cell {
    pub strategy: Strategy,
    pub storm: StormReport,
    /// Counter reading gained over the storm.
    pub reading: Reading,
    /// Perf oracles over the storm: sys_enter_execve and sched_process_exec,
    /// scoped like the strategy's filter.
    pub perf_sys_enter_execve: u64,
    pub perf_sched_process_exec: u64,
    pub perf_sys_enter_execveat: u64,
    /// sys_enter_execve on the whole machine, whatever the filter.
    pub perf_sys_enter_execve_system: u64,
    /// The oracle that sees what this attach point should count.
    pub expected: u64,
    pub expected_oracle: Oracle,
    /// Forks the whole machine made during the storm (/proc/stat).
    pub forks_procfs: u64,
    pub system_cpu: Duration,
    pub prog: ProgStats,
    /// ns per program run, per ~50 ms interval of the storm.
    pub ns_per_run: Option<Estimate>,
    pub timings: bpfstorm_common::LoadTimings,
    /// Microseconds per read of the count after the storm.
    pub read_us: Option<Estimate>,
    pub map_bytes: u64,
    /// Size of the loaded program: verified, translated and JIT-ed.
    pub prog_insns: ProgInsns,
    /// Heap the loader holds for the live counter, in bytes (see [`heap_in_use`]).
    pub loader_heap_bytes: i64,
    /// Kernel ids of the programs used, to check they are gone afterwards.
    pub prog_ids: Vec<u32>,
}

impl Cell {
    /// Events neither counted nor reported dropped (lost updates for racy
    /// strategies); negative when the counter saw more than the oracle.
    pub fn missing(&self) -> i64 {
        self.expected as i64 - (self.reading.count + self.reading.dropped) as i64
    }

    pub fn is_exact(&self) -> bool {
        self.missing() == 0
    }

    /// Mean in-kernel time per counted event (ns), all runs included:
    /// hooks that run on every syscall pay for the ones they filter out.
    /// Program runs per counted event (1 for a hook that runs only on the
    /// events it counts, far more for one on every syscall).
    pub fn runs_per_event(&self) -> Option<f64> {
        (self.reading.count > 0).then(|| self.prog.run_cnt as f64 / self.reading.count as f64)
    }

    pub fn ns_per_event(&self) -> Option<f64> {
        (self.reading.count > 0).then(|| self.prog.run_time_ns as f64 / self.reading.count as f64)
    }
}

pub(crate) struct Oracles {
    execve: PerfTracepoint,
    execveat: PerfTracepoint,
    exec: PerfTracepoint,
    /// Machine-wide, whatever the filter: every run of an execve hook.
    execve_system: PerfTracepoint,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct OracleCounts {
    pub execve: u64,
    pub execveat: u64,
    pub exec: u64,
    pub execve_system: u64,
}

impl Oracles {
    fn open(cgroup: Option<&StormCgroup>) -> Result<Oracles, OracleError> {
        Ok(Oracles {
            execve: PerfTracepoint::open("syscalls", "sys_enter_execve", cgroup)?,
            execveat: PerfTracepoint::open("syscalls", "sys_enter_execveat", cgroup)?,
            exec: PerfTracepoint::open("sched", "sched_process_exec", cgroup)?,
            execve_system: PerfTracepoint::open("syscalls", "sys_enter_execve", None)?,
        })
    }

    /// The oracle on the very tracepoint `attach` hooks through a perf
    /// event, where there is one.
    pub(crate) fn on_hook(&self, attach: AttachPoint) -> Option<&PerfTracepoint> {
        match attach {
            AttachPoint::TpSysEnterExecve => Some(&self.execve),
            AttachPoint::TpSysEnterExecveat => Some(&self.execveat),
            AttachPoint::TpSchedProcessExec => Some(&self.exec),
            _ => None,
        }
    }

    pub(crate) fn read(&self) -> Result<OracleCounts, OracleError> {
        Ok(OracleCounts {
            execve: self.execve.read()?,
            execveat: self.execveat.read()?,
            exec: self.exec.read()?,
            execve_system: self.execve_system.read()?,
        })
    }
}

impl OracleCounts {
    pub(crate) fn plus(&self, other: &OracleCounts) -> OracleCounts {
        OracleCounts {
            execve: self.execve + other.execve,
            execveat: self.execveat + other.execveat,
            exec: self.exec + other.exec,
            execve_system: self.execve_system + other.execve_system,
        }
    }

    pub(crate) fn since(&self, earlier: &OracleCounts) -> OracleCounts {
        OracleCounts {
            execve: self.execve - earlier.execve,
            execveat: self.execveat - earlier.execveat,
            exec: self.exec - earlier.exec,
            execve_system: self.execve_system - earlier.execve_system,
        }
    }

    pub(crate) fn of(&self, oracle: Oracle) -> u64 {
        match oracle {
            Oracle::SysEnterExecve => self.execve,
            Oracle::SysEnterExecveat => self.execveat,
            Oracle::ExecveOrExecveat => self.execve + self.execveat,
            Oracle::SchedProcessExec => self.exec,
        }
    }
}

pub(crate) fn time_reads(counter: &mut dyn Counter) -> Result<Option<Estimate>, CounterError> {
    let mut samples = Vec::with_capacity(READ_SAMPLES);
    for _ in 0..READ_SAMPLES {
        let started = Instant::now();
        counter.read()?;
        samples.push(started.elapsed().as_secs_f64() * 1e6);
    }
    Ok(Estimate::from_samples(&samples))
}

/// Bytes in use on the process's heap. Both loaders and libbpf allocate
/// through glibc's malloc, so the change across `Backend::open` is what the
/// loader keeps for a live counter, whichever language allocated it. Unlike
/// RSS it does not depend on which cell first touched a page.
fn heap_in_use() -> i64 {
    // SAFETY: mallinfo2 only reads the allocator's own statistics.
    let info = unsafe { libc::mallinfo2() };
    i64::try_from(info.uordblks + info.hblkhd).unwrap_or(i64::MAX)
}

/// What both arms of a cell carry, the probe's and the probe-free one, so
/// that their storms differ only by the program: a storm cgroup and its
/// workers (kept between storms: a new one joins at a cost), the perf
/// oracles on it (each enables its tracepoint, so both arms take the
/// syscall tracepoint slow path) and BPF stats switched on. A run keeps one
/// for all its cells of a storm spec: every figure is a delta over one
/// storm, and setting them up anew (the first perf event of a tracepoint
/// registers its probe) would cost more than a short storm.
pub struct Instruments {
    /// Counters unloaded under these instruments whose links still close;
    /// dropped (and so waited for) first, before the cgroup and the oracles.
    retirements: RefCell<Retirements>,
    /// The storms' workers, kept in the cgroup between storms; gone
    /// before it.
    workers: RefCell<WorkerPool>,
    pub(crate) cgroup: StormCgroup,
    pub(crate) oracles: Oracles,
    filter: FilterKind,
    _stats: StatsGuard,
}

impl Instruments {
    pub fn set_up(spec: &StormSpec, filter: FilterKind) -> Result<Instruments, MeasureError> {
        let cgroup = StormCgroup::create(spec.pids_max())?;
        let oracles = Oracles::open(match filter {
            FilterKind::All => None,
            FilterKind::Cgroup => Some(&cgroup),
        })?;
        let _stats = StatsGuard::enable().map_err(MeasureError::Stats)?;
        Ok(Instruments {
            cgroup,
            oracles,
            filter,
            retirements: RefCell::default(),
            workers: RefCell::default(),
            _stats,
        })
    }

    /// `strategy`, counting what these instruments scope: the storm
    /// cgroup's tasks, or all.
    pub fn scope(&self, strategy: Strategy) -> Strategy {
        strategy.with_filter(match self.filter {
            FilterKind::All => Filter::All,
            FilterKind::Cgroup => Filter::Cgroup(self.cgroup.id()),
        })
    }

    /// Unloads `counter`, which ran `strategy`, without waiting for the
    /// kernel to finish closing its links ([`Retirements::unload`]): on
    /// return, the program runs on no further event.
    pub(crate) fn unload(
        &self,
        counter: Box<dyn Counter>,
        strategy: &Strategy,
    ) -> Result<(), MeasureError> {
        let hook = self.oracles.on_hook(strategy.attach());
        Ok(self.retirements.borrow_mut().unload(counter, hook)?)
    }

    /// Runs the storm, calling `sample` on every tick (~50 ms); a Ctrl-C
    /// kills the storm and is reported as such.
    pub(crate) fn storm(
        &self,
        spec: &StormSpec,
        sample: &mut dyn FnMut(),
    ) -> Result<StormReport, MeasureError> {
        let cgroup = &self.cgroup;
        let storm = self.workers.borrow_mut().run(spec, cgroup, &mut || {
            if interrupt::requested() {
                cgroup.kill_all();
            }
            sample();
        });
        // A storm killed by Ctrl-C fails; the interrupt is the news, not the kill.
        if interrupt::requested() {
            return Err(MeasureError::Interrupted);
        }
        Ok(storm?)
    }
}

/// Loads `strategy` on `backend`, runs one storm in a fresh cgroup and
/// measures it. The cgroup, the counter and the stats fd are gone on return.
pub fn measure(
    backend: &dyn Backend,
    strategy: Strategy,
    filter: FilterKind,
    spec: &StormSpec,
) -> Result<Cell, MeasureError> {
    measure_in(&Instruments::set_up(spec, filter)?, backend, strategy, spec)
}

/// Loads `strategy` on `backend`, runs one storm under `instruments` and
/// measures it. On return the program is detached, its links closing
/// (`instruments` waits for them when dropped).
pub fn measure_in(
    instruments: &Instruments,
    backend: &dyn Backend,
    strategy: Strategy,
    spec: &StormSpec,
) -> Result<Cell, MeasureError> {
    let strategy = instruments.scope(strategy);
    let heap_before = heap_in_use();
    let mut counter = backend.open(&strategy)?;
    let loader_heap_bytes = heap_in_use() - heap_before;
    // Declared after the counter, so it drops first: it holds the programs.
    let kernel_view = Introspection::open(counter.loaded())?;

    let procfs_before = SystemSnapshot::take()?;
    let oracle_before = instruments.oracles.read()?;
    let reading_before = counter.read()?;
    let stats_before = kernel_view.prog_stats()?;

    let mut samples = Vec::new();
    let mut last = stats_before;
    let storm = {
        let kernel_view = &kernel_view;
        instruments.storm(spec, &mut || {
            if let Ok(now) = kernel_view.prog_stats() {
                let delta = now.since(&last);
                if delta.run_cnt >= MIN_RUNS_PER_INTERVAL {
                    samples.extend(delta.ns_per_run());
                    last = now;
                }
            }
        })?
    };

    let reading = counter.read()?.since(&reading_before);
    let prog = kernel_view.prog_stats()?.since(&stats_before);
    let oracle = instruments.oracles.read()?.since(&oracle_before);
    let procfs = SystemSnapshot::take()?.since(&procfs_before);
    let expected_oracle = Oracle::for_attach(strategy.attach());

    let cell = Cell {
        strategy,
        storm,
        reading,
        perf_sys_enter_execve: oracle.execve,
        perf_sched_process_exec: oracle.exec,
        perf_sys_enter_execveat: oracle.execveat,
        perf_sys_enter_execve_system: oracle.execve_system,
        expected: oracle.of(expected_oracle),
        expected_oracle,
        forks_procfs: procfs.forks,
        system_cpu: procfs.cpu_time,
        prog,
        ns_per_run: Estimate::from_samples(&samples),
        timings: counter.timings(),
        read_us: time_reads(counter.as_mut())?,
        map_bytes: kernel_view.map_memory_bytes()?,
        prog_insns: kernel_view.prog_insns()?,
        loader_heap_bytes,
        prog_ids: counter.loaded().progs.clone(),
    };
    drop(kernel_view);
    instruments.unload(counter, &cell.strategy)?;
    Ok(cell)
}

/// The same storm with no probe loaded, under the instruments of the
/// probe's arm ([`measure_in`]): the reference for end-to-end cost. Inside
/// the storm's wall time, the only work the probe's arm does besides is one
/// prog-stats syscall per ~50 ms tick; what [`measure_in`] reads before and
/// after falls outside it.
pub fn baseline_storm(
    instruments: &Instruments,
    spec: &StormSpec,
) -> Result<StormReport, MeasureError> {
    instruments.storm(spec, &mut || {})
}
