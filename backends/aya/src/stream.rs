//! Counting ring- and perf-buffer records in user space, as the C loader
//! and the libbpf backend do: a poller thread consumes records as they
//! come, so the buffer does not fill during a storm, and a read consumes
//! under the same lock on the caller's own thread, so it counts everything
//! submitted so far with no hand-off to the poller and no poll interval to
//! wait out. The poller sleeps on an epoll set holding the buffers' fds and
//! an eventfd, which stops it at once. aya's sync `RingBuf` and
//! `PerfEventArray` buffers are used (no async runtime).

use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use aya::maps::perf::{PerfEvent, PerfEventArrayBuffer};
use aya::maps::{Map, MapData, PerfEventArray, RingBuf};
use bpfstorm_common::wakeup::{Doorbell, Waiter};
use bpfstorm_common::{CounterError, MapKind};

use crate::errors;

/// Perf buffer size per CPU, in pages (as the libbpf backend).
const PERF_PAGES: usize = 64;

enum Buffer {
    Ring(RingBuf<MapData>),
    /// One buffer per online CPU.
    Perf(Vec<PerfEventArrayBuffer<MapData>>),
}

/// A buffer's running counts: records, and lost records (perf buffer only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamCounts {
    pub records: u64,
    pub lost_records: u64,
}

impl Buffer {
    fn open(kind: MapKind, map: Map) -> Result<Buffer, CounterError> {
        match kind {
            MapKind::Ringbuf => RingBuf::try_from(map)
                .map(Buffer::Ring)
                .map_err(|e| errors::map("opening the ring buffer", &e)),
            _ => {
                let mut array = PerfEventArray::try_from(map)
                    .map_err(|e| errors::map("opening the perf event array", &e))?;
                let cpus = aya::util::online_cpus().map_err(|(path, e)| {
                    errors::backend(format!("reading the online CPUs from {path}: {e}"))
                })?;
                cpus.into_iter()
                    .map(|cpu| {
                        array
                            .open(cpu, Some(PERF_PAGES))
                            .map_err(|e| errors::map("opening a perf buffer", &e))
                    })
                    .collect::<Result<_, _>>()
                    .map(Buffer::Perf)
            }
        }
    }

    fn fds(&self) -> Vec<RawFd> {
        match self {
            Buffer::Ring(rb) => vec![rb.as_raw_fd()],
            Buffer::Perf(bufs) => bufs.iter().map(AsRawFd::as_raw_fd).collect(),
        }
    }

    /// Counts every record submitted so far into `counts`.
    fn consume(&mut self, counts: &mut StreamCounts) {
        match self {
            Buffer::Ring(rb) => {
                // Each item is released (and the consumer advanced) as it drops.
                while rb.next().is_some() {
                    counts.records += 1;
                }
            }
            Buffer::Perf(bufs) => {
                for buf in bufs {
                    buf.for_each(|event| match event {
                        PerfEvent::Sample { .. } => counts.records += 1,
                        PerfEvent::Lost { count } => counts.lost_records += count,
                    });
                }
            }
        }
    }
}

/// The buffer and what was counted from it, behind one lock: one consumer
/// at a time.
struct Consumer {
    buffer: Buffer,
    counts: StreamCounts,
}

struct Shared {
    consumer: Mutex<Consumer>,
    stop: AtomicBool,
    doorbell: Doorbell,
}

impl Shared {
    /// Consumes what was submitted so far and returns the running counts.
    fn consume(&self) -> MutexGuard<'_, Consumer> {
        // A poisoned lock only means a consume panicked mid-count.
        let mut consumer = self.consumer.lock().unwrap_or_else(|p| p.into_inner());
        let Consumer { buffer, counts } = &mut *consumer;
        buffer.consume(counts);
        consumer
    }
}

pub struct StreamReader {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl StreamReader {
    pub fn start(kind: MapKind, map: Map) -> Result<StreamReader, CounterError> {
        let buffer = Buffer::open(kind, map)?;
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
            .name("bpfstorm-aya-poller".into())
            .spawn(move || loop {
                waiter.wait();
                if poller.stop.load(Ordering::Acquire) {
                    return;
                }
                drop(poller.consume());
            })?;
        Ok(StreamReader {
            shared,
            thread: Some(thread),
        })
    }

    /// Consumes every record submitted so far, on the caller's thread, and
    /// returns the running counts.
    pub fn drain(&mut self) -> StreamCounts {
        self.shared.consume().counts
    }

    pub fn reset(&mut self) {
        self.shared.consume().counts = StreamCounts::default();
    }
}

impl Drop for StreamReader {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.doorbell.ring();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
