//! Ground truth without BPF: perf tracepoint counters scoped to the storm
//! cgroup count execs exactly; /proc/stat cross-checks forks and CPU time.

pub mod perf;
pub mod procfs;

use std::io;
use std::path::PathBuf;

pub use self::perf::PerfTracepoint;
pub use self::procfs::{SystemDelta, SystemSnapshot};

#[derive(Debug, thiserror::Error)]
pub enum OracleError {
    /// Carries bpfstorm_common::tracefs's message, which says what to do.
    #[error("{0}")]
    Tracefs(#[source] io::Error),
    #[error(
        "tracepoint {tracepoint} not found ({path}: {source}); \
         list the kernel's tracepoints under {events}"
    )]
    UnknownTracepoint {
        tracepoint: String,
        path: PathBuf,
        events: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("tracepoint id in {path} is not a number: {text:?}")]
    BadTracepointId { path: PathBuf, text: String },
    #[error("reading the online CPUs from /sys/devices/system/cpu/online: {0}")]
    OnlineCpus(#[source] io::Error),
    #[error("opening cgroup directory {path}: {source}")]
    Cgroup {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "perf_event_open of {tracepoint} for {scope} on CPU {cpu}: {source}; it needs root \
         (or kernel.perf_event_paranoid <= -1), and per cgroup a kernel with CONFIG_CGROUP_PERF"
    )]
    PerfOpen {
        tracepoint: String,
        /// `cgroup <path>` or `all tasks`.
        scope: String,
        cpu: u32,
        #[source]
        source: io::Error,
    },
    #[error("reading the perf counter of {tracepoint}: {source}")]
    PerfRead {
        tracepoint: String,
        #[source]
        source: io::Error,
    },
    #[error("reading /proc/stat: {0}")]
    ProcStat(#[from] ::procfs::ProcError),
}
