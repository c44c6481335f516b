//! Counting ring- and perf-buffer records in user space, as the libbpf
//! backend does: a poller thread owns aya's buffers and counts records. It
//! sleeps on an epoll set holding the buffers' fds and an eventfd, so
//! `drain` wakes it at once: it consumes everything already submitted and
//! answers, which makes a read after the storm exact and cheap. aya's sync
//! `RingBuf` and `PerfEventArray` buffers are used (no async runtime).

use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use aya::maps::perf::{PerfEvent, PerfEventArrayBuffer};
use aya::maps::{Map, MapData, PerfEventArray, RingBuf};
use bpfstorm_common::wakeup::{Doorbell, Waiter};
use bpfstorm_common::{CounterError, MapKind};

use crate::errors;

/// Perf buffer size per CPU, in pages (as the libbpf backend).
const PERF_PAGES: usize = 64;

enum Request {
    Drain(Sender<()>),
    Stop,
}

enum Buffer {
    Ring(RingBuf<MapData>),
    /// One buffer per online CPU.
    Perf(Vec<PerfEventArrayBuffer<MapData>>),
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

    /// Counts every record submitted so far.
    fn consume(&mut self, records: &AtomicU64, lost: &AtomicU64) {
        match self {
            Buffer::Ring(rb) => {
                let mut n = 0;
                // Each item is released (and the consumer advanced) as it drops.
                while rb.next().is_some() {
                    n += 1;
                }
                records.fetch_add(n, Ordering::Relaxed);
            }
            Buffer::Perf(bufs) => {
                for buf in bufs {
                    buf.for_each(|event| match event {
                        PerfEvent::Sample { .. } => {
                            records.fetch_add(1, Ordering::Relaxed);
                        }
                        PerfEvent::Lost { count } => {
                            lost.fetch_add(count, Ordering::Relaxed);
                        }
                    });
                }
            }
        }
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
    pub fn start(kind: MapKind, map: Map) -> Result<StreamReader, CounterError> {
        let records = Arc::new(AtomicU64::new(0));
        let lost = Arc::new(AtomicU64::new(0));
        let (requests, inbox) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (r, l) = (records.clone(), lost.clone());
        let doorbell = Arc::new(Doorbell::new()?);
        let bell = doorbell.clone();
        let thread = std::thread::Builder::new()
            .name("bpfstorm-aya-poller".into())
            .spawn(move || {
                let started = Buffer::open(kind, map).and_then(|buffer| {
                    let mut fds = buffer.fds();
                    fds.push(bell.as_raw_fd());
                    let waiter = Waiter::new(&fds)?;
                    Ok((buffer, waiter))
                });
                match started {
                    Ok((mut buffer, mut waiter)) => {
                        let _ = ready_tx.send(Ok(()));
                        serve(&mut buffer, &mut waiter, &bell, &inbox, &r, &l);
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
        rx.recv().map_err(|_| self.died())?;
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
        errors::backend(format!("the buffer poller thread {detail}"))
    }
}

fn serve(
    buffer: &mut Buffer,
    waiter: &mut Waiter,
    doorbell: &Doorbell,
    inbox: &Receiver<Request>,
    records: &AtomicU64,
    lost: &AtomicU64,
) {
    loop {
        waiter.wait();
        doorbell.clear();
        buffer.consume(records, lost);
        loop {
            match inbox.try_recv() {
                Ok(Request::Drain(reply)) => {
                    buffer.consume(records, lost);
                    let _ = reply.send(());
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
