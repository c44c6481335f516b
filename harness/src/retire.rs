//! Unloading a cell's or a hot round's program without waiting on the
//! kernel. Closing the last reference to a tracepoint's perf-event link
//! detaches the program at once, then waits out an RCU tasks-trace grace
//! period before it returns: 13-45 ms a close on this machine kind's 6.18
//! kernel, more than all other fixed costs of a hot round together. So the
//! links' last close goes to a thread of its own, and the next storm starts
//! as soon as the kernel no longer lists the program on its tracepoint.

use std::os::fd::{FromRawFd, OwnedFd};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bpfstorm_common::Counter;
use libbpf_rs::libbpf_sys;
use libbpf_rs::query::LinkInfoIter;
use thiserror::Error;

use crate::oracle::PerfTracepoint;

/// How long a detached program may still be listed on its tracepoint.
const DETACH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum RetireError {
    #[error("program(s) {progs:?} still ran on {tracepoint} {timeout:?} after their links closed")]
    StillAttached {
        progs: Vec<u32>,
        tracepoint: String,
        timeout: Duration,
    },
}

/// The threads closing retired links; dropping this waits for them, so
/// nothing a cell loaded outlives it.
#[derive(Default)]
pub(crate) struct Retirements {
    closers: Vec<JoinHandle<()>>,
}

impl Retirements {
    /// Unloads `counter`. Where its programs hang on `hook` (a tracepoint
    /// that an oracle's perf events also watch) through BPF links, their
    /// last close goes to a thread, and this returns once `hook` lists none
    /// of them; otherwise the counter is dropped here.
    pub(crate) fn unload(
        &mut self,
        counter: Box<dyn Counter>,
        hook: Option<&PerfTracepoint>,
    ) -> Result<(), RetireError> {
        let progs = counter.loaded().progs.clone();
        let Some((hook, links)) = hook.zip(links_of(&progs)) else {
            drop(counter);
            return Ok(());
        };
        // Our references keep the links attached: dropping the counter
        // closes only its own.
        drop(counter);
        let closer = std::thread::Builder::new()
            .name("link-close".into())
            .spawn(move || drop(links));
        // Where no thread can start, the links closed in the closure's drop.
        // Finished closers are joined as new ones come: each keeps its stack
        // mapped until then, and every storm worker forks a copy of this
        // process's mappings for each exec.
        let (done, running) = self.closers.drain(..).partition(|c| c.is_finished());
        self.closers = running;
        join(done);
        match wait_detached(hook, &progs)? {
            Detached::Seen => self.closers.extend(closer.ok()),
            // A kernel that will not say: the close itself is the proof.
            Detached::Unknown => join(closer.into_iter().collect()),
        }
        Ok(())
    }
}

impl Drop for Retirements {
    fn drop(&mut self) {
        join(std::mem::take(&mut self.closers));
    }
}

fn join(closers: Vec<JoinHandle<()>>) {
    for closer in closers {
        // A closer only drops fds: it cannot panic short of an abort.
        let _ = closer.join();
    }
}

/// A reference to every link of `progs`; `None` unless each program has
/// one (a program attached some other way would stay attached).
fn links_of(progs: &[u32]) -> Option<Vec<OwnedFd>> {
    let mut links = Vec::new();
    let mut linked = Vec::new();
    for link in LinkInfoIter::default().filter(|l| progs.contains(&l.prog_id)) {
        // SAFETY: plain bpf(2) wrapper; a negative result is an error.
        let fd = unsafe { libbpf_sys::bpf_link_get_fd_by_id(link.id) };
        if fd < 0 {
            return None;
        }
        // SAFETY: the kernel just returned this fd to us.
        links.push(unsafe { OwnedFd::from_raw_fd(fd) });
        linked.push(link.prog_id);
    }
    progs.iter().all(|p| linked.contains(p)).then_some(links)
}

/// What [`wait_detached`] could tell.
enum Detached {
    /// The kernel no longer lists the programs on the hook.
    Seen,
    /// The kernel would not say which programs the hook runs.
    Unknown,
}

fn wait_detached(hook: &PerfTracepoint, progs: &[u32]) -> Result<Detached, RetireError> {
    let deadline = Instant::now() + DETACH_TIMEOUT;
    loop {
        let Ok(attached) = hook.attached_progs() else {
            return Ok(Detached::Unknown);
        };
        let left: Vec<u32> = progs
            .iter()
            .copied()
            .filter(|p| attached.contains(p))
            .collect();
        if left.is_empty() {
            return Ok(Detached::Seen);
        }
        if Instant::now() >= deadline {
            return Err(RetireError::StillAttached {
                progs: left,
                tracepoint: hook.name().to_owned(),
                timeout: DETACH_TIMEOUT,
            });
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}
