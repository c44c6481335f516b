//! The collateral-cost microbenchmark, in the style of the kernel selftests'
//! trigger bench: every CPU calls a cheap syscall (getppid) in a tight loop.
//! Hooks such as raw_tp/tp_btf `sys_enter` run on every syscall, not only on
//! exec; comparing rounds with and without a hook attached shows what it adds
//! to every syscall on the machine.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use bpfstorm_common::{Backend, CounterError, Strategy};

use crate::sample::Estimate;

/// Mean wall time per getppid() over `threads` threads busy for `length`.
pub fn round(threads: usize, length: Duration) -> f64 {
    let stop = AtomicBool::new(false);
    let start = Barrier::new(threads + 1);
    let (calls, busy) = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    let began = Instant::now();
                    let mut calls = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..64 {
                            // SAFETY: getppid takes no arguments and cannot fail.
                            unsafe { libc::syscall(libc::SYS_getppid) };
                        }
                        calls += 64;
                    }
                    (calls, began.elapsed())
                })
            })
            .collect();
        start.wait();
        std::thread::sleep(length);
        stop.store(true, Ordering::Relaxed);
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or((0, Duration::ZERO)))
            .fold((0u64, Duration::ZERO), |(c, b), (wc, wb)| (c + wc, b + wb))
    });
    busy.as_nanos() as f64 / calls.max(1) as f64
}

/// What one hook adds to every syscall.
#[derive(Debug, Clone)]
pub struct Collateral {
    pub strategy: Strategy,
    /// ns per syscall without the hook.
    pub baseline: Estimate,
    /// ns per syscall with it attached.
    pub hooked: Estimate,
    /// Paired differences hooked - baseline, ns per syscall.
    pub added: Estimate,
}

impl Collateral {
    /// The difference is real only when its 95% interval excludes zero.
    pub fn resolvable(&self) -> bool {
        self.added.lo > 0.0 || self.added.hi < 0.0
    }
}

/// Interleaves `rounds` pairs of rounds without and with the hook, so drift
/// hits both alike, alternating which goes first so order does not bias the
/// difference; the hook is loaded afresh for each hooked round.
pub fn collateral(
    backend: &dyn Backend,
    strategy: &Strategy,
    threads: usize,
    rounds: usize,
    length: Duration,
) -> Result<Collateral, CounterError> {
    let mut without = Vec::with_capacity(rounds);
    let mut with = Vec::with_capacity(rounds);
    let hooked = || -> Result<f64, CounterError> {
        let _counter = backend.open(strategy)?;
        Ok(round(threads, length))
    };
    for i in 0..rounds {
        if i % 2 == 0 {
            without.push(round(threads, length));
            with.push(hooked()?);
        } else {
            with.push(hooked()?);
            without.push(round(threads, length));
        }
    }
    let added: Vec<f64> = with.iter().zip(&without).map(|(w, b)| w - b).collect();
    let estimate = |v: &[f64]| {
        Estimate::from_samples(v).ok_or_else(|| CounterError::Backend {
            backend: "trigger",
            message: "no rounds were measured".into(),
        })
    };
    Ok(Collateral {
        strategy: *strategy,
        baseline: estimate(&without)?,
        hooked: estimate(&with)?,
        added: estimate(&added)?,
    })
}

/// What turning BPF run-time stats on adds to each program run: a hook that
/// runs on every syscall is attached throughout, and rounds with stats on and
/// off are interleaved. The kernel adds two clock reads per run with stats on,
/// so ns/run figures from bpf_stats include this bias.
pub fn stats_bias(
    backend: &dyn Backend,
    threads: usize,
    rounds: usize,
    length: Duration,
) -> Result<Estimate, CounterError> {
    let hook = Strategy::new(
        bpfstorm_common::AttachPoint::RawTpSysEnter,
        bpfstorm_common::MapKind::Array,
        bpfstorm_common::UpdateMode::Atomic,
        bpfstorm_common::Filter::All,
    )
    .map_err(|e| CounterError::Setup(e.to_string()))?;
    let _counter = backend.open(&hook)?;
    let with_stats = || -> Result<f64, CounterError> {
        let _stats = crate::bpf_stats::StatsGuard::enable()?;
        Ok(round(threads, length))
    };
    let mut added = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let (on, off) = if i % 2 == 0 {
            let off = round(threads, length);
            (with_stats()?, off)
        } else {
            let on = with_stats()?;
            (on, round(threads, length))
        };
        added.push(on - off);
    }
    Estimate::from_samples(&added).ok_or_else(|| CounterError::Backend {
        backend: "trigger",
        message: "no rounds were measured".into(),
    })
}
