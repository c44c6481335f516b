use std::fmt;

use thiserror::Error;

use crate::{AttachPoint, MapKind, ReadPath, UpdateMode};

/// A strategy that makes no sense, rejected before anything is loaded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidStrategy {
    #[error("update mode `{update}` does not work on map `{map}`: use one of {valid}")]
    UpdateOnMap {
        map: MapKind,
        update: UpdateMode,
        valid: String,
    },
    #[error(
        "map `{map}` cannot be read by {read}: it is read by {valid} (mmap needs the count in a \
         plain array's value, batch a count in a map)"
    )]
    ReadOnMap {
        map: MapKind,
        read: ReadPath,
        valid: String,
    },
    #[error(
        "map `{map}` cannot count at {keys} keys: only the maps looked up by key (array, hash \
         and their per-CPU and LRU kinds) take --keys"
    )]
    KeysOnMap { map: MapKind, keys: u32 },
    #[error("--keys must be at least 1")]
    NoKeys,
    #[error("--max-entries must be at least 1")]
    NoEntries,
    #[error(
        "--max-entries sizes the maps of a count over keys: add --keys with a count above 1, for \
         a map that takes keys"
    )]
    EntriesWithoutKeys,
    #[error("unknown {kind} `{given}`: expected one of {expected}")]
    UnknownName {
        kind: &'static str,
        given: String,
        expected: String,
    },
}

/// The step of bringing up a counter that the kernel refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Parsing the object and preparing it (BTF included).
    Open,
    /// BPF_PROG_LOAD and map creation, verifier included.
    Load,
    Attach,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Open => "open",
            Op::Load => "load",
            Op::Attach => "attach",
        })
    }
}

/// Why a backend could not give (or keep giving) a working counter.
#[derive(Debug, Error)]
pub enum CounterError {
    /// The kernel (or this backend) refuses the strategy on this machine.
    #[error("unsupported here: {what}: {reason}")]
    Unsupported {
        what: String,
        reason: String,
        errno: Option<i32>,
    },
    /// A backend that runs a tool (bpftrace) has no way to write this
    /// strategy in the tool's language; refused before anything runs.
    #[error("{backend} cannot express {what}: {reason}")]
    Inexpressible {
        backend: &'static str,
        what: String,
        reason: String,
    },
    /// A kernel operation failed for a reason other than lack of support.
    #[error("{op} failed: {message} (errno {errno})")]
    Kernel {
        op: String,
        errno: i32,
        message: String,
    },
    /// The backend's own machinery failed (build artefacts, poller thread...).
    #[error("{backend} backend: {message}")]
    Backend {
        backend: &'static str,
        message: String,
    },
    /// The machine is not set up for this (a missing file or tool); says what to do.
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl CounterError {
    /// Whether this machine or backend cannot run the strategy at all (a
    /// refusal, reported as such), rather than failed trying.
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            CounterError::Unsupported { .. } | CounterError::Inexpressible { .. }
        )
    }

    /// Classifies a failed kernel operation: errnos that mean "this kernel
    /// does not do that" become [`CounterError::Unsupported`] with the likely
    /// cause, everything else stays a [`CounterError::Kernel`] error.
    pub fn from_kernel(attach: AttachPoint, op: Op, errno: i32, message: String) -> Self {
        use libc_errno::*;
        let refused = matches!(errno, EPERM | EACCES | ENOENT | EOPNOTSUPP | ENOTSUPP);
        let cause = match (attach, op) {
            _ if !refused => None,
            (AttachPoint::FentrySysExecve | AttachPoint::FexitSysExecve, Op::Load) => Some(
                "the kernel refused a BPF trampoline program (fentry/fexit need \
                 CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS; some virtual platforms block them)",
            ),
            (AttachPoint::LsmBprmCheckSecurity | AttachPoint::LsmBprmCommittedCreds, Op::Load) => {
                Some(
                    "the kernel refused a BPF LSM program (needs CONFIG_BPF_LSM with `bpf` in the \
                 lsm= boot list, and working BPF trampolines)",
                )
            }
            (AttachPoint::KprobeSysExecve | AttachPoint::KsyscallExecve, Op::Attach) => Some(
                "no kprobe support in this kernel (CONFIG_KPROBES/CONFIG_KPROBE_EVENTS off?), \
                 or the function cannot be probed",
            ),
            (AttachPoint::UprobeLibcExecve, Op::Attach) => {
                Some("libc.so.6 or its execve symbol was not found, or uprobes are off")
            }
            (_, Op::Attach) if errno == ENOENT => {
                Some("the attach target does not exist in this kernel (config option off?)")
            }
            (_, _) if matches!(errno, EOPNOTSUPP | ENOTSUPP) => {
                Some("the kernel does not support this program or attach type")
            }
            _ => None,
        };
        match cause {
            Some(cause) => CounterError::Unsupported {
                what: attach.to_string(),
                reason: format!("{op}: {message} (errno {errno}); likely cause: {cause}"),
                errno: Some(errno),
            },
            None => CounterError::Kernel {
                op: format!("{op} {attach}"),
                errno,
                message,
            },
        }
    }
}

/// The few errno values the classification needs (x86_64 / generic Linux).
mod libc_errno {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const EACCES: i32 = 13;
    pub const EOPNOTSUPP: i32 = 95;
    /// Kernel-internal "not supported", which leaks out of some BPF paths.
    pub const ENOTSUPP: i32 = 524;
}
