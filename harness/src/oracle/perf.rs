//! Tracepoint counters from perf_event_open, scoped to a cgroup: exact,
//! and independent of BPF.

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use bpfstorm_common::tracefs;
use perf_event_open_sys::bindings::{
    perf_event_attr, PERF_FLAG_FD_CLOEXEC, PERF_FLAG_PID_CGROUP, PERF_TYPE_TRACEPOINT,
};

use super::OracleError;
use crate::cgroup::StormCgroup;

/// One tracepoint counted on every online CPU, for the tasks of a cgroup or
/// for all. Counting starts at open.
#[derive(Debug)]
pub struct PerfTracepoint {
    tracepoint: String,
    fds: Vec<OwnedFd>,
}

/// Program ids a [`PerfTracepoint::attached_progs`] query reads.
pub const QUERY_IDS: usize = 64;

/// `struct perf_event_query_bpf` with room for its ids.
#[repr(C)]
struct ProgQuery {
    ids_len: u32,
    prog_cnt: u32,
    ids: [u32; QUERY_IDS],
}

/// Closing the last perf event of a tracepoint unregisters its probe, which
/// waits for an RCU grace period: 20-60 ms a close here, some 200 ms of
/// every cell's two storms. The events are closed on a thread of their own
/// so that the run goes on; the kernel closes them at exit anyway.
impl Drop for PerfTracepoint {
    fn drop(&mut self) {
        let fds = std::mem::take(&mut self.fds);
        // Where no thread can start, the closure and the fds drop here.
        let _ = std::thread::Builder::new()
            .name("perf-close".into())
            .spawn(move || drop(fds));
    }
}

impl PerfTracepoint {
    /// Counts `category:name` for the tasks of `cgroup`, or for every task
    /// with `None`.
    pub fn open<'a>(
        category: &str,
        name: &str,
        cgroup: impl Into<Option<&'a StormCgroup>>,
    ) -> Result<PerfTracepoint, OracleError> {
        let cgroup = cgroup.into();
        let tracepoint = format!("{category}:{name}");
        let id = tracepoint_id(category, name, &tracepoint)?;
        let scope = cgroup.map_or_else(
            || "all tasks".to_owned(),
            |cg| format!("cgroup {}", cg.path().display()),
        );
        // With PERF_FLAG_PID_CGROUP the pid argument is an fd of the cgroup
        // directory; -1 means every task.
        let cgroup_dir = cgroup
            .map(|cg| {
                File::open(cg.path()).map_err(|source| OracleError::Cgroup {
                    path: cg.path().to_owned(),
                    source,
                })
            })
            .transpose()?;
        let (pid, flags) = match &cgroup_dir {
            Some(dir) => (dir.as_raw_fd(), PERF_FLAG_PID_CGROUP | PERF_FLAG_FD_CLOEXEC),
            None => (-1, PERF_FLAG_FD_CLOEXEC),
        };

        let mut attr = perf_event_attr {
            type_: PERF_TYPE_TRACEPOINT,
            size: std::mem::size_of::<perf_event_attr>() as u32,
            config: id,
            ..Default::default()
        };
        // Cgroup and all-task events exist per CPU; their sum is the count.
        let cpus = online_cpus().map_err(OracleError::OnlineCpus)?;
        let mut fds = Vec::with_capacity(cpus.len());
        for cpu in cpus {
            let open_error = |source| OracleError::PerfOpen {
                tracepoint: tracepoint.clone(),
                scope: scope.clone(),
                cpu,
                source,
            };
            let cpu_arg = libc::c_int::try_from(cpu)
                .map_err(|_| open_error(io::Error::from(io::ErrorKind::InvalidInput)))?;
            // SAFETY: attr is a valid perf_event_attr, pid a cgroup fd or -1
            // as flags say. Counting starts at once (attr.disabled is 0).
            let fd = unsafe {
                perf_event_open_sys::perf_event_open(
                    &mut attr,
                    pid,
                    cpu_arg,
                    -1,
                    libc::c_ulong::from(flags),
                )
            };
            if fd < 0 {
                return Err(open_error(io::Error::last_os_error()));
            }
            // SAFETY: perf_event_open just returned this fd to us.
            fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        Ok(PerfTracepoint { tracepoint, fds })
    }

    /// Counts execve(2) entries (including ones that fail).
    pub fn sys_enter_execve<'a>(
        cgroup: impl Into<Option<&'a StormCgroup>>,
    ) -> Result<PerfTracepoint, OracleError> {
        PerfTracepoint::open("syscalls", "sys_enter_execve", cgroup)
    }

    /// Counts successful execs.
    pub fn sched_process_exec<'a>(
        cgroup: impl Into<Option<&'a StormCgroup>>,
    ) -> Result<PerfTracepoint, OracleError> {
        PerfTracepoint::open("sched", "sched_process_exec", cgroup)
    }

    /// Ids of the BPF programs attached to the tracepoint through perf
    /// events (PERF_EVENT_IOC_QUERY_BPF). The kernel answers under the lock
    /// that attaching and detaching take, so a program missing here runs on
    /// no later event. At most [`QUERY_IDS`] ids.
    pub fn attached_progs(&self) -> io::Result<Vec<u32>> {
        let fd = self.fds.first().ok_or(io::ErrorKind::NotFound)?;
        let mut query = ProgQuery {
            ids_len: QUERY_IDS as u32,
            prog_cnt: 0,
            ids: [0; QUERY_IDS],
        };
        // SAFETY: QUERY_BPF writes at most ids_len ids after the header of
        // a perf_event_query_bpf, which ProgQuery lays out.
        let r = unsafe {
            perf_event_open_sys::ioctls::QUERY_BPF(fd.as_raw_fd(), (&raw mut query).cast())
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = (query.prog_cnt as usize).min(QUERY_IDS);
        Ok(query.ids[..n].to_vec())
    }

    /// `category:name`.
    pub fn name(&self) -> &str {
        &self.tracepoint
    }

    /// Events counted since open, summed over CPUs.
    pub fn read(&self) -> Result<u64, OracleError> {
        let mut total = 0u64;
        for fd in &self.fds {
            let mut value = [0u8; 8];
            let n =
                nix::unistd::read(fd.as_fd(), &mut value).map_err(|e| OracleError::PerfRead {
                    tracepoint: self.tracepoint.clone(),
                    source: e.into(),
                })?;
            if n != value.len() {
                return Err(OracleError::PerfRead {
                    tracepoint: self.tracepoint.clone(),
                    source: io::Error::new(io::ErrorKind::UnexpectedEof, "short read"),
                });
            }
            total += u64::from_ne_bytes(value);
        }
        Ok(total)
    }
}

pub(crate) fn tracepoint_id(
    category: &str,
    name: &str,
    tracepoint: &str,
) -> Result<u64, OracleError> {
    let events = tracefs::ensure_mounted()
        .map_err(OracleError::Tracefs)?
        .join("events");
    let path = events.join(category).join(name).join("id");
    let text = fs::read_to_string(&path).map_err(|source| OracleError::UnknownTracepoint {
        tracepoint: tracepoint.to_owned(),
        path: path.clone(),
        events: events.clone(),
        source,
    })?;
    text.trim()
        .parse()
        .map_err(|_| OracleError::BadTracepointId { path, text })
}

/// Parses /sys/devices/system/cpu/online ("0-3,5,7-8").
fn online_cpus() -> io::Result<Vec<u32>> {
    parse_cpu_list(fs::read_to_string("/sys/devices/system/cpu/online")?.trim())
}

fn parse_cpu_list(list: &str) -> io::Result<Vec<u32>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("bad CPU list {list:?}"));
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let first: u32 = first.parse().map_err(|_| bad())?;
        let last: u32 = last.parse().map_err(|_| bad())?;
        cpus.extend(first..=last);
    }
    if cpus.is_empty() {
        return Err(bad());
    }
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::parse_cpu_list;

    #[test]
    fn parses_cpu_lists() {
        assert_eq!(parse_cpu_list("0").unwrap(), vec![0]);
        assert_eq!(parse_cpu_list("0-1").unwrap(), vec![0, 1]);
        assert_eq!(parse_cpu_list("0-2,5,7-8").unwrap(), vec![0, 1, 2, 5, 7, 8]);
        assert!(parse_cpu_list("").is_err());
        assert!(parse_cpu_list("a-b").is_err());
    }
}
