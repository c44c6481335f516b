//! What bpf_stats add to every figure they report: an empty program
//! (`r0 = 1; exit`) on the same hook as the counters, whose ns/run is the
//! stats' own clock reads plus a call. Loaded with raw bpf(2) and attached
//! through perf_event_open, so that no backend's object is involved.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use bpfstorm_common::fdinfo;
use perf_event_open_sys::bindings::{
    perf_event_attr, perf_event_attr__bindgen_ty_1, PERF_FLAG_FD_CLOEXEC, PERF_TYPE_TRACEPOINT,
};

use crate::oracle::perf::tracepoint_id;
use crate::oracle::OracleError;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TYPE_TRACEPOINT: u32 = 5;
/// `_IO('$', 0)` and `_IOW('$', 8, __u32)`.
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;

/// `r0 = 1` (BPF_ALU64 | BPF_MOV | BPF_K, the immediate in the high 32
/// bits), then `exit` (BPF_JMP | BPF_EXIT). Not 0: a tracepoint program
/// that returns 0 hides the event from every perf event on that
/// tracepoint, so while it ran, another run's perf oracle (or anyone's
/// `perf stat`) missed the execs.
const EMPTY: [u64; 2] = [0xb7 | 1 << 32, 0x95];

#[derive(Debug, thiserror::Error)]
pub enum BiasError {
    #[error("loading the empty reference program: {0}")]
    Load(io::Error),
    #[error("attaching the empty reference program to syscalls:sys_enter_{syscall}: {source}")]
    Attach {
        syscall: &'static str,
        source: io::Error,
    },
    #[error(transparent)]
    Tracepoint(#[from] OracleError),
}

/// The empty program, attached to `syscalls:sys_enter_<syscall>` while alive.
pub struct EmptyProgram {
    prog: OwnedFd,
    _event: OwnedFd,
}

impl EmptyProgram {
    pub fn attach(syscall: &'static str) -> Result<EmptyProgram, BiasError> {
        let prog = load().map_err(BiasError::Load)?;
        let name = format!("sys_enter_{syscall}");
        let id = tracepoint_id("syscalls", &name, &format!("syscalls:{name}"))?;
        let attach_error = |source| BiasError::Attach { syscall, source };
        let mut attr = perf_event_attr {
            type_: PERF_TYPE_TRACEPOINT,
            size: std::mem::size_of::<perf_event_attr>() as u32,
            config: id,
            __bindgen_anon_1: perf_event_attr__bindgen_ty_1 { sample_period: 1 },
            ..Default::default()
        };
        attr.set_disabled(1);
        // A tracepoint's program runs for every task on every CPU, whichever
        // CPU its perf event was opened on.
        // SAFETY: attr is a valid perf_event_attr; pid -1 with cpu 0.
        let fd = unsafe {
            perf_event_open_sys::perf_event_open(
                &mut attr,
                -1,
                0,
                -1,
                libc::c_ulong::from(PERF_FLAG_FD_CLOEXEC),
            )
        };
        if fd < 0 {
            return Err(attach_error(io::Error::last_os_error()));
        }
        // SAFETY: perf_event_open just returned this fd to us.
        let event = unsafe { OwnedFd::from_raw_fd(fd) };
        for (request, arg) in [
            (PERF_EVENT_IOC_SET_BPF, prog.as_raw_fd()),
            (PERF_EVENT_IOC_ENABLE, 0),
        ] {
            // SAFETY: both ioctls take an int argument by value.
            if unsafe { libc::ioctl(event.as_raw_fd(), request, arg) } < 0 {
                return Err(attach_error(io::Error::last_os_error()));
            }
        }
        Ok(EmptyProgram {
            prog,
            _event: event,
        })
    }

    /// Its run statistics so far.
    pub fn stats(&self) -> io::Result<bpfstorm_common::ProgStats> {
        fdinfo::prog_stats(self.prog.as_raw_fd())
    }
}

fn load() -> io::Result<OwnedFd> {
    static LICENSE: &[u8] = b"GPL\0";
    // union bpf_attr, BPF_PROG_LOAD: prog_type, insn_cnt, insns, license,
    // then zeros (no log, no flags), and the name at byte 48.
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&BPF_PROG_TYPE_TRACEPOINT.to_ne_bytes());
    attr[4..8].copy_from_slice(&(EMPTY.len() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(EMPTY.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(LICENSE.as_ptr() as u64).to_ne_bytes());
    let name = b"bpfstorm_empty";
    attr[48..48 + name.len()].copy_from_slice(name);
    crate::bpf_stats::bpf_fd(BPF_PROG_LOAD, &mut attr)
}
