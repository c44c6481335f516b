//! libbpf's ring and perf buffers behind [`bpfstorm_common::stream::Buffer`]:
//! libbpf counts through callbacks, which bump shared tallies that each
//! consume hands over.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bpfstorm_common::stream::{Buffer, StreamCounts, PERF_PAGES};
use bpfstorm_common::{CounterError, MapKind};
use libbpf_rs::{
    ErrorKind, MapHandle, PerfBuffer, PerfBufferBuilder, RingBuffer, RingBufferBuilder,
};

use crate::errors;

enum Kind {
    Ring(RingBuffer<'static>),
    Perf(PerfBuffer<'static>),
}

/// What the callbacks counted since the last consume.
#[derive(Default)]
struct Tallies {
    records: AtomicU64,
    lost: AtomicU64,
}

pub struct LibbpfBuffer {
    kind: Kind,
    tallies: Arc<Tallies>,
    /// The buffer's map; dropped after the buffer (field order).
    _map: MapHandle,
}

impl LibbpfBuffer {
    pub fn open(kind: MapKind, map: MapHandle) -> Result<LibbpfBuffer, CounterError> {
        let tallies = Arc::new(Tallies::default());
        let (on_record, on_lost) = (tallies.clone(), tallies.clone());
        let kind = if kind == MapKind::Ringbuf {
            let mut builder = RingBufferBuilder::new();
            builder
                .add(&map, move |_| {
                    on_record.records.fetch_add(1, Ordering::Relaxed);
                    0
                })
                .map_err(|e| errors::map("ring_buffer__new", &e))?;
            Kind::Ring(
                builder
                    .build()
                    .map_err(|e| errors::map("ring_buffer__new", &e))?,
            )
        } else {
            Kind::Perf(
                PerfBufferBuilder::new(&map)
                    .pages(PERF_PAGES)
                    .sample_cb(move |_cpu, _data: &[u8]| {
                        on_record.records.fetch_add(1, Ordering::Relaxed);
                    })
                    .lost_cb(move |_cpu, count| {
                        on_lost.lost.fetch_add(count, Ordering::Relaxed);
                    })
                    .build()
                    .map_err(|e| errors::map("perf_buffer__new", &e))?,
            )
        };
        Ok(LibbpfBuffer {
            kind,
            tallies,
            _map: map,
        })
    }
}

impl Buffer for LibbpfBuffer {
    fn fds(&self) -> Vec<RawFd> {
        vec![match &self.kind {
            Kind::Ring(rb) => rb.epoll_fd(),
            Kind::Perf(pb) => pb.epoll_fd(),
        }]
    }

    fn consume(&mut self, counts: &mut StreamCounts) -> Result<(), CounterError> {
        let result = match &self.kind {
            Kind::Ring(rb) => rb.consume(),
            Kind::Perf(pb) => pb.consume(),
        };
        match result {
            Err(e) if e.kind() != ErrorKind::Interrupted => {
                return Err(errors::map("consuming the buffer", &e))
            }
            _ => {}
        }
        counts.records += self.tallies.records.swap(0, Ordering::Relaxed);
        counts.lost_records += self.tallies.lost.swap(0, Ordering::Relaxed);
        Ok(())
    }
}
