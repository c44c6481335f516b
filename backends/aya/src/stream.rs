//! aya's sync `RingBuf` and `PerfEventArray` buffers (no async runtime)
//! behind [`bpfstorm_common::stream::Buffer`].

use std::os::fd::{AsRawFd, RawFd};

use aya::maps::perf::{PerfEvent, PerfEventArrayBuffer};
use aya::maps::{Map, MapData, PerfEventArray, RingBuf};
use bpfstorm_common::stream::{Buffer, StreamCounts, PERF_PAGES};
use bpfstorm_common::{CounterError, MapKind};

use crate::errors;

pub enum AyaBuffer {
    Ring(RingBuf<MapData>),
    /// One buffer per online CPU.
    Perf(Vec<PerfEventArrayBuffer<MapData>>),
}

impl AyaBuffer {
    pub fn open(kind: MapKind, map: Map) -> Result<AyaBuffer, CounterError> {
        if kind == MapKind::Ringbuf {
            return RingBuf::try_from(map)
                .map(AyaBuffer::Ring)
                .map_err(|e| errors::map("opening the ring buffer", &e));
        }
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
            .map(AyaBuffer::Perf)
    }
}

impl Buffer for AyaBuffer {
    fn fds(&self) -> Vec<RawFd> {
        match self {
            AyaBuffer::Ring(rb) => vec![rb.as_raw_fd()],
            AyaBuffer::Perf(bufs) => bufs.iter().map(AsRawFd::as_raw_fd).collect(),
        }
    }

    fn consume(&mut self, counts: &mut StreamCounts) -> Result<(), CounterError> {
        match self {
            AyaBuffer::Ring(rb) => {
                // Each item is released (and the consumer advanced) as it drops.
                while rb.next().is_some() {
                    counts.records += 1;
                }
            }
            AyaBuffer::Perf(bufs) => {
                for buf in bufs {
                    buf.for_each(|event| match event {
                        PerfEvent::Sample { .. } => counts.records += 1,
                        PerfEvent::Lost { count } => counts.lost_records += count,
                    });
                }
            }
        }
        Ok(())
    }
}
