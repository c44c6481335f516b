//! Counting ring- and perf-buffer records in user space. A poller thread
//! owns the buffer (libbpf's buffers are not `Send`) and counts records.
//! It sleeps on an epoll set holding the buffer's own epoll fd and an
//! eventfd, so `drain` wakes it at once: it consumes everything already
//! submitted and answers, which makes a read after the storm exact and cheap.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

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

/// An eventfd that wakes the poller when a request is queued.
struct Doorbell(OwnedFd);

impl Doorbell {
    fn new() -> io::Result<Doorbell> {
        // SAFETY: eventfd(2) with valid flags; the fd is owned right away.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this fd to us.
        Ok(Doorbell(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn ring(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to our own eventfd.
        unsafe { libc::write(self.0.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }

    fn clear(&self) {
        let mut buf = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live buffer (nonblocking fd).
        unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    }
}

/// An epoll set watching the buffer's epoll fd and the doorbell.
struct Waiter(OwnedFd);

impl Waiter {
    fn new(fds: [RawFd; 2]) -> io::Result<Waiter> {
        // SAFETY: epoll_create1 with a valid flag; the fd is owned right away.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this fd to us.
        let waiter = Waiter(unsafe { OwnedFd::from_raw_fd(epfd) });
        for fd in fds {
            let mut event = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: fd as u64,
            };
            // SAFETY: both fds are open for the waiter's whole life.
            if unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut event) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(waiter)
    }

    /// Blocks until either fd is readable (or a signal interrupts).
    fn wait(&self) {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 2];
        // SAFETY: the kernel writes at most 2 events into the array.
        unsafe { libc::epoll_wait(self.0.as_raw_fd(), events.as_mut_ptr(), 2, -1) };
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
                    let waiter = Waiter::new([buffer.epoll_fd(), bell.0.as_raw_fd()])?;
                    Ok((buffer, waiter))
                });
                match started {
                    Ok((buffer, waiter)) => {
                        let _ = ready_tx.send(Ok(()));
                        serve(&buffer, &waiter, &bell, &inbox);
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

fn serve(buffer: &Buffer, waiter: &Waiter, doorbell: &Doorbell, inbox: &Receiver<Request>) {
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
