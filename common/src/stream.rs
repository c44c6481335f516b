//! Counting ring- and perf-buffer records in user space, for loaders that
//! hand over a buffer ([`Buffer`]): a poller thread consumes records as
//! they come, so the buffer does not fill during a storm, and a read
//! consumes under the same lock on the caller's own thread, so it counts
//! everything submitted so far with no hand-off to the poller and no poll
//! interval to wait out. The poller sleeps on an epoll set holding the
//! buffer's fds and an eventfd, which stops it at once; a reader the
//! program never wakes (`no_wakeup`) also looks every [`POLL_INTERVAL`].

use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::wakeup::{Doorbell, Waiter};
use crate::{CounterError, MapKind, Strategy, Wakeup, POLL_INTERVAL};

/// Perf buffer size per CPU, in pages, in every backend.
pub const PERF_PAGES: usize = 64;

/// Refuses, before anything loads, a perf buffer whose reader is woken in
/// batches where the loader library opens perf buffers woken on every
/// record; `missing` names what its API lacks.
pub fn refuse_batched_perf(strategy: &Strategy, missing: &str) -> Result<(), CounterError> {
    match (strategy.map(), strategy.wakeup()) {
        (MapKind::PerfEventArray, Some(Wakeup::Batch(n))) => Err(CounterError::Unsupported {
            what: format!("{}/{}", strategy.map(), strategy.update()),
            reason: format!(
                "waking the perf buffer's reader every {n} records needs {missing}; the c \
                 backend does it"
            ),
            errno: None,
        }),
        _ => Ok(()),
    }
}

/// A loader library's ring or perf buffer, which only it can consume.
pub trait Buffer: Send + 'static {
    /// The fds that turn readable when records wait.
    fn fds(&self) -> Vec<RawFd>;
    /// Consumes every record submitted so far, adding it to `counts`.
    /// Interruptions (frequent during exec storms) are no error.
    fn consume(&mut self, counts: &mut StreamCounts) -> Result<(), CounterError>;
}

/// A buffer's running counts: records, and lost records (perf buffer only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamCounts {
    pub records: u64,
    pub lost_records: u64,
}

/// The buffer and what was counted from it, behind one lock: the loaders'
/// buffers take one consumer at a time.
struct Consumer<B> {
    buffer: B,
    counts: StreamCounts,
}

struct Shared<B> {
    consumer: Mutex<Consumer<B>>,
    stop: AtomicBool,
    doorbell: Doorbell,
}

impl<B: Buffer> Shared<B> {
    /// Consumes what was submitted so far; the guard holds the running counts.
    fn consume(&self) -> Result<MutexGuard<'_, Consumer<B>>, CounterError> {
        // A poisoned lock only means a consume panicked mid-count.
        let mut consumer = self.consumer.lock().unwrap_or_else(|p| p.into_inner());
        let Consumer { buffer, counts } = &mut *consumer;
        buffer.consume(counts)?;
        Ok(consumer)
    }
}

/// A buffer counted by a poller thread; dropping it stops the thread, then
/// drops the buffer.
pub struct Stream<B: Buffer> {
    shared: Arc<Shared<B>>,
    thread: Option<JoinHandle<()>>,
}

impl<B: Buffer> Stream<B> {
    /// Starts counting `buffer`'s records, whose reader the program
    /// wakes as `wakeup` says.
    pub fn start(buffer: B, wakeup: Wakeup) -> Result<Stream<B>, CounterError> {
        let timeout = (wakeup == Wakeup::Poll).then_some(POLL_INTERVAL);
        let doorbell = Doorbell::new()?;
        let mut fds = buffer.fds();
        fds.push(doorbell.as_raw_fd());
        let mut waiter = Waiter::new(&fds)?;
        let shared = Arc::new(Shared {
            consumer: Mutex::new(Consumer {
                buffer,
                counts: StreamCounts::default(),
            }),
            stop: AtomicBool::new(false),
            doorbell,
        });
        let poller = shared.clone();
        let thread = std::thread::Builder::new()
            .name("bpfstorm-poller".into())
            .spawn(move || loop {
                waiter.wait(timeout);
                if poller.stop.load(Ordering::Acquire) {
                    return;
                }
                // An error here would only repeat; the next read reports it.
                drop(poller.consume());
            })?;
        Ok(Stream {
            shared,
            thread: Some(thread),
        })
    }

    /// Consumes every record submitted so far, on the caller's thread, and
    /// returns the running counts.
    pub fn drain(&mut self) -> Result<StreamCounts, CounterError> {
        Ok(self.shared.consume()?.counts)
    }

    pub fn reset(&mut self) -> Result<(), CounterError> {
        self.shared.consume()?.counts = StreamCounts::default();
        Ok(())
    }
}

impl<B: Buffer> Drop for Stream<B> {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.doorbell.ring();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
