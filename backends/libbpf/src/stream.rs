//! Counting ring- and perf-buffer records in user space, as the C loader
//! does: a poller thread consumes records as they come, so the buffer does
//! not fill during a storm, and a read consumes under the same lock on the
//! caller's own thread, so it counts everything submitted so far with no
//! hand-off to the poller and no poll interval to wait out. The poller
//! sleeps on an epoll set holding the buffer's own epoll fd and an eventfd,
//! which stops it at once.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use bpfstorm_common::wakeup::{Doorbell, Waiter};
use bpfstorm_common::{CounterError, MapKind};
use libbpf_rs::{
    ErrorKind, MapHandle, PerfBuffer, PerfBufferBuilder, RingBuffer, RingBufferBuilder,
};

use crate::errors;

/// Perf buffer size per CPU, in pages.
const PERF_PAGES: usize = 64;

enum Buffer {
    Ring(RingBuffer<'static>),
    Perf(PerfBuffer<'static>),
}

/// What the callbacks count; read under the buffer's lock, so a read sees
/// every record its own consume counted.
#[derive(Default)]
struct Counts {
    records: AtomicU64,
    lost: AtomicU64,
}

impl Buffer {
    fn open(kind: MapKind, map: &MapHandle, counts: &Arc<Counts>) -> Result<Buffer, CounterError> {
        let (on_record, on_lost) = (counts.clone(), counts.clone());
        match kind {
            MapKind::Ringbuf => {
                let mut builder = RingBufferBuilder::new();
                builder
                    .add(map, move |_| {
                        on_record.records.fetch_add(1, Ordering::Relaxed);
                        0
                    })
                    .map_err(|e| errors::map("ring_buffer__new", &e))?;
                builder
                    .build()
                    .map(Buffer::Ring)
                    .map_err(|e| errors::map("ring_buffer__new", &e))
            }
            _ => PerfBufferBuilder::new(map)
                .pages(PERF_PAGES)
                .sample_cb(move |_cpu, _data: &[u8]| {
                    on_record.records.fetch_add(1, Ordering::Relaxed);
                })
                .lost_cb(move |_cpu, count| {
                    on_lost.lost.fetch_add(count, Ordering::Relaxed);
                })
                .build()
                .map(Buffer::Perf)
                .map_err(|e| errors::map("perf_buffer__new", &e)),
        }
    }

    fn epoll_fd(&self) -> i32 {
        match self {
            Buffer::Ring(rb) => rb.epoll_fd(),
            Buffer::Perf(pb) => pb.epoll_fd(),
        }
    }

    /// Counts every record submitted so far. Exec storms interrupt often;
    /// that is no error.
    fn consume(&self) -> libbpf_rs::Result<()> {
        let result = match self {
            Buffer::Ring(rb) => rb.consume(),
            Buffer::Perf(pb) => pb.consume(),
        };
        match result {
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(()),
            other => other,
        }
    }
}

/// The buffer and what its callbacks counted, behind one lock: libbpf's
/// buffers take one consumer at a time.
struct Shared {
    buffer: Mutex<Buffer>,
    counts: Arc<Counts>,
    stop: AtomicBool,
    doorbell: Doorbell,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Buffer> {
        // A poisoned lock only means a callback panicked mid-count.
        self.buffer.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A buffer's running counts: records, and lost records (perf buffer only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamCounts {
    pub records: u64,
    pub lost_records: u64,
}

pub struct StreamReader {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// The buffer's map; dropped after the buffer (field order).
    _map: MapHandle,
}

impl StreamReader {
    pub fn start(kind: MapKind, map: MapHandle) -> Result<StreamReader, CounterError> {
        let counts = Arc::new(Counts::default());
        let buffer = Buffer::open(kind, &map, &counts)?;
        let doorbell = Doorbell::new()?;
        let mut waiter = Waiter::new(&[buffer.epoll_fd(), doorbell.as_raw_fd()])?;
        let shared = Arc::new(Shared {
            buffer: Mutex::new(buffer),
            counts,
            stop: AtomicBool::new(false),
            doorbell,
        });
        let poller = shared.clone();
        let thread = std::thread::Builder::new()
            .name("bpfstorm-poller".into())
            .spawn(move || loop {
                waiter.wait();
                if poller.stop.load(Ordering::Acquire) {
                    return;
                }
                // An error here would only repeat; the next read reports it.
                let _ = poller.lock().consume();
            })?;
        Ok(StreamReader {
            shared,
            thread: Some(thread),
            _map: map,
        })
    }

    /// Consumes every record submitted so far, on the caller's thread, and
    /// returns the running counts.
    pub fn drain(&mut self) -> Result<StreamCounts, CounterError> {
        let buffer = self.shared.lock();
        buffer
            .consume()
            .map_err(|e| errors::map("consuming the buffer", &e))?;
        let counts = &self.shared.counts;
        Ok(StreamCounts {
            records: counts.records.load(Ordering::Relaxed),
            lost_records: counts.lost.load(Ordering::Relaxed),
        })
    }

    pub fn reset(&mut self) -> Result<(), CounterError> {
        let buffer = self.shared.lock();
        buffer
            .consume()
            .map_err(|e| errors::map("consuming the buffer", &e))?;
        self.shared.counts.records.store(0, Ordering::Relaxed);
        self.shared.counts.lost.store(0, Ordering::Relaxed);
        Ok(())
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
