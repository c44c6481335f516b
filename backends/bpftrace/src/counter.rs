//! A strategy counted by bpftrace: its program found by the ids of what
//! the process holds, its count read from its own map.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use bpfstorm_common::count::ToolCount;
use bpfstorm_common::introspect::{map_by_id, prog_by_id};
use bpfstorm_common::{
    fdinfo, prog_info, Counter, CounterError, LoadTimings, Loaded, MapKind, Reading, Strategy,
};

use crate::script::script;
use crate::tool::{self, Tool};

/// A running bpftrace counting a strategy. Its count is read from the map
/// its program counts in, as bpftrace sums it when it prints (see
/// [`BpftraceCounter::printed`] for bpftrace's own print): bpftrace prints
/// only when signalled, asynchronously, and nothing for an empty map.
pub struct BpftraceCounter {
    strategy: Strategy,
    timings: LoadTimings,
    loaded: Loaded,
    count: ToolCount,
    tool: Tool,
}

fn backend_error(message: String) -> CounterError {
    CounterError::Backend {
        backend: "bpftrace",
        message,
    }
}

/// CLOCK_BOOTTIME, the clock of a program's load time, in ns.
fn boottime_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// The BPF programs and maps a process holds, by kernel id.
struct Held {
    progs: Vec<u32>,
    /// Each map's id and type.
    maps: Vec<(u32, u64)>,
}

fn held(pid: u32) -> Result<Held, CounterError> {
    let mut held = Held {
        progs: Vec::new(),
        maps: Vec::new(),
    };
    for fd in fdinfo::of_process(pid)? {
        if let Some(&id) = fd.get("prog_id") {
            held.progs.push(id as u32);
        } else if let (Some(&id), Some(&kind)) = (fd.get("map_id"), fd.get("map_type")) {
            held.maps.push((id as u32, kind));
        }
    }
    held.progs.sort_unstable();
    held.progs.dedup();
    held.maps.sort_unstable();
    held.maps.dedup();
    Ok(held)
}

/// Starts bpftrace on the one-liner of `strategy`.
pub fn open(strategy: &Strategy) -> Result<BpftraceCounter, CounterError> {
    let text = script(strategy)?;
    let binary = tool::binary()?;
    binary.known()?;
    let started = Instant::now();
    let started_boot = boottime_ns();
    let tool = Tool::start(
        &binary,
        &text,
        strategy.keys().max_entries,
        strategy.attach(),
    )?;
    let attached = Instant::now();

    let Held { progs, maps } = held(tool.pid())?;
    let [prog] = progs[..] else {
        return Err(backend_error(format!(
            "`{text}` should load one program; bpftrace holds {progs:?}"
        )));
    };
    // bpftrace makes a perf buffer for its output (printf and the like)
    // whatever the program: not where it counts.
    let output = u64::from(MapKind::PerfEventArray.kernel_type());
    let counting: Vec<u32> = maps
        .iter()
        .filter(|(_, kind)| *kind != output)
        .map(|&(id, _)| id)
        .collect();
    let [map] = counting[..] else {
        return Err(backend_error(format!(
            "`{text}` should count in one map; bpftrace holds maps {maps:?} (id, type)"
        )));
    };
    let count = ToolCount::open(map_by_id(map)?)?;
    if count.map_type() != strategy.map().kernel_type() {
        return Err(backend_error(format!(
            "bpftrace counts `{text}` in a map of type {}, not the {}'s type {}: its map choice \
             differs in this version ({})",
            count.map_type(),
            strategy.map(),
            strategy.map().kernel_type(),
            tool::version()
        )));
    }

    // Before its program's load: process start, parsing, LLVM's codegen
    // and map creation; after: the verifier and attaching, which bpftrace
    // reports only together.
    let loaded_at = prog_info::load_time_ns(prog_by_id(prog)?.as_raw_fd())?;
    let up = attached - started;
    let open = Duration::from_nanos(loaded_at.saturating_sub(started_boot)).min(up);
    let timings = LoadTimings {
        open,
        load: up - open,
        attach: Duration::ZERO,
    };
    Ok(BpftraceCounter {
        strategy: *strategy,
        timings,
        loaded: Loaded {
            progs: vec![prog],
            maps: maps.iter().map(|&(id, _)| id).collect(),
        },
        count,
        tool,
    })
}

impl BpftraceCounter {
    /// The count bpftrace itself prints for its map (SIGUSR1, JSON
    /// output), where the map holds something: how a user reads it.
    pub fn printed(&mut self) -> Result<u64, CounterError> {
        self.tool.printed()
    }

    fn alive(&mut self) -> Result<(), CounterError> {
        match self.tool.exited() {
            None => Ok(()),
            Some((status, said)) => Err(backend_error(format!(
                "bpftrace exited ({status}) while counting: {said}"
            ))),
        }
    }
}

impl Counter for BpftraceCounter {
    fn strategy(&self) -> &Strategy {
        &self.strategy
    }

    fn timings(&self) -> LoadTimings {
        self.timings
    }

    /// bpftrace counts nothing it cannot count: `dropped` stays 0 (a full
    /// map refuses a new key without a word).
    fn read(&mut self) -> Result<Reading, CounterError> {
        self.alive()?;
        let sum = self.count.read()?;
        Ok(Reading {
            count: sum.count,
            keys_live: sum.keys_live,
            ..Reading::default()
        })
    }

    /// As bpftrace's `clear(@)`.
    fn reset(&mut self) -> Result<(), CounterError> {
        self.alive()?;
        self.count.reset()
    }

    fn loaded(&self) -> &Loaded {
        &self.loaded
    }
}
