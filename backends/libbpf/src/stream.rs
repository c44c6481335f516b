//! Counting ring- and perf-buffer records in user space. A poller thread
//! owns the buffer (libbpf's buffers are not `Send`) and counts records.
//! It sleeps on an epoll set holding the buffer's own epoll fd and an
//! eventfd, so `drain` wakes it at once: it consumes everything already
//! submitted and answers, which makes a read after the storm exact and cheap.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use bpfstorm_common::wakeup::{Doorbell, Waiter};
use bpfstorm_common::{CounterError, MapKind};
use libbpf_rs::{
    ErrorKind, MapHandle, PerfBuffer, PerfBufferBuilder, RingBuffer, RingBufferBuilder,
};

use crate::errors;

/// Perf buffer size per CPU, in pages.
const PERF_PAGES: usize = 64;

enum Request {
    Drain(Sender<Result<(), CounterError>>),
    Stop,
}

enum Buffer {
    Ring(RingBuffer<'static>),
    Perf(PerfBuffer<'static>),
}

impl Buffer {
    fn open(
        kind: MapKind,
        map: &MapHandle,
        records: Arc<AtomicU64>,
        lost: Arc<AtomicU64>,
    ) -> Result<Buffer, CounterError> {
        match kind {
            MapKind::Ringbuf => {
                let mut builder = RingBufferBuilder::new();
                builder
                    .add(map, move |_| {
                        records.fetch_add(1, Ordering::Relaxed);
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
                    records.fetch_add(1, Ordering::Relaxed);
                })
                .lost_cb(move |_cpu, count| {
                    lost.fetch_add(count, Ordering::Relaxed);
                })
                .build()
                .map(Buffer::Perf)
                .map_err(|e| errors::map("perf_buffer__new", &e)),
        }
    }

    fn epoll_fd(&self) -> RawFd {
        match self {
            Buffer::Ring(rb) => rb.epoll_fd(),
            Buffer::Perf(pb) => pb.epoll_fd(),
        }
    }

    fn consume(&self) -> libbpf_rs::Result<()> {
        match self {
            Buffer::Ring(rb) => rb.consume(),
            Buffer::Perf(pb) => pb.consume(),
        }
    }
}

/// Exec storms interrupt epoll_wait often; that is no error.
fn retry_interrupted(result: libbpf_rs::Result<()>) -> libbpf_rs::Result<()> {
    match result {
        Err(e) if e.kind() == ErrorKind::Interrupted => Ok(()),
        other => other,
    }
}

pub struct StreamReader {
    requests: Sender<Request>,
    doorbell: Arc<Doorbell>,
    thread: Option<JoinHandle<()>>,
    records: Arc<AtomicU64>,
    lost: Arc<AtomicU64>,
}

impl StreamReader {
    pub fn start(kind: MapKind, map: MapHandle) -> Result<StreamReader, CounterError> {
        let records = Arc::new(AtomicU64::new(0));
        let lost = Arc::new(AtomicU64::new(0));
        let (requests, inbox) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (r, l) = (records.clone(), lost.clone());
        let doorbell = Arc::new(Doorbell::new()?);
        let bell = doorbell.clone();
        let thread = std::thread::Builder::new()
            .name("bpfstorm-poller".into())
            .spawn(move || {
                let started = Buffer::open(kind, &map, r, l).and_then(|buffer| {
                    let waiter = Waiter::new(&[buffer.epoll_fd(), bell.as_raw_fd()])?;
                    Ok((buffer, waiter))
                });
                match started {
                    Ok((buffer, mut waiter)) => {
                        let _ = ready_tx.send(Ok(()));
                        serve(&buffer, &mut waiter, &bell, &inbox);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })?;
        let mut reader = StreamReader {
            requests,
            doorbell,
            thread: Some(thread),
            records,
            lost,
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(reader),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(reader.died()),
        }
    }

    /// Consumes every record submitted so far and returns the running count.
    pub fn drain(&mut self) -> Result<u64, CounterError> {
        let (tx, rx) = mpsc::channel();
        self.requests
            .send(Request::Drain(tx))
            .map_err(|_| self.died())?;
        self.doorbell.ring();
        rx.recv().map_err(|_| self.died())??;
        Ok(self.records.load(Ordering::Relaxed))
    }

    /// Records the kernel reported lost (perf buffer only).
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    pub fn reset(&mut self) -> Result<(), CounterError> {
        self.drain()?;
        self.records.store(0, Ordering::Relaxed);
        self.lost.store(0, Ordering::Relaxed);
        Ok(())
    }

    fn died(&mut self) -> CounterError {
        let detail = match self.thread.take().map(JoinHandle::join) {
            Some(Err(_)) => "panicked",
            _ => "stopped",
        };
        CounterError::Backend {
            backend: "libbpf",
            message: format!("the buffer poller thread {detail}"),
        }
    }
}

fn serve(buffer: &Buffer, waiter: &mut Waiter, doorbell: &Doorbell, inbox: &Receiver<Request>) {
    loop {
        waiter.wait();
        doorbell.clear();
        // Count what arrived. An error other than EINTR would only repeat
        // here; the next drain's own consume reports it.
        let _ = retry_interrupted(buffer.consume());
        loop {
            match inbox.try_recv() {
                Ok(Request::Drain(reply)) => {
                    let done = retry_interrupted(buffer.consume())
                        .map_err(|e| errors::map("consuming the buffer", &e));
                    let _ = reply.send(done);
                }
                Ok(Request::Stop) | Err(mpsc::TryRecvError::Disconnected) => return,
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
    }
}

impl Drop for StreamReader {
    fn drop(&mut self) {
        let _ = self.requests.send(Request::Stop);
        self.doorbell.ring();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
