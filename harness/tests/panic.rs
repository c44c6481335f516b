//! A panic inside a backend, mid-measurement: unwinding tears down the
//! counter, the storm and its cgroup, and BPF stats.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use bpfstorm::measure::{measure, FilterKind};
use bpfstorm::storm::{SpawnMethod, StormSpec, Target};
use bpfstorm::{bpf_stats, cgroup, leaks};
use bpfstorm_common::{
    AttachPoint, Backend, Counter, CounterError, Filter, LoadTimings, Loaded, MapKind, Reading,
    Strategy, UpdateMode,
};
use bpfstorm_libbpf::Libbpf;

/// The libbpf backend, with a counter that panics on its second read (the
/// one after the storm), like a backend bug would.
struct Faulty {
    loaded: RefCell<Vec<u32>>,
}

struct FaultyCounter {
    inner: Box<dyn Counter>,
    reads: u32,
}

impl Backend for Faulty {
    fn name(&self) -> &'static str {
        "faulty"
    }
    fn version(&self) -> String {
        Libbpf.version()
    }
    fn open(&self, strategy: &Strategy) -> Result<Box<dyn Counter>, CounterError> {
        let inner = Libbpf.open(strategy)?;
        self.loaded.borrow_mut().extend(&inner.loaded().progs);
        Ok(Box::new(FaultyCounter { inner, reads: 0 }))
    }
}

impl Counter for FaultyCounter {
    fn strategy(&self) -> &Strategy {
        self.inner.strategy()
    }
    fn timings(&self) -> LoadTimings {
        self.inner.timings()
    }
    fn read(&mut self) -> Result<Reading, CounterError> {
        self.reads += 1;
        assert!(self.reads < 2, "injected backend panic");
        self.inner.read()
    }
    fn reset(&mut self) -> Result<(), CounterError> {
        self.inner.reset()
    }
    fn loaded(&self) -> &Loaded {
        self.inner.loaded()
    }
}

#[test]
fn a_backend_panic_mid_run_leaves_nothing_behind() {
    let backend = Faulty {
        loaded: RefCell::new(Vec::new()),
    };
    let strategy = Strategy::new(
        AttachPoint::TpSysEnterExecve,
        MapKind::Ringbuf,
        UpdateMode::Stream,
        Filter::All,
    )
    .unwrap();
    let spec = StormSpec::new(
        2,
        300,
        Target::Tiny,
        SpawnMethod::Fork,
        Duration::from_secs(60),
    )
    .unwrap();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        measure(&backend, strategy, FilterKind::Cgroup, &spec)
    }));
    let panic = outcome.expect_err("the injected panic propagates");
    assert_eq!(
        panic.downcast_ref::<&str>(),
        Some(&"injected backend panic")
    );

    let loaded = backend.loaded.borrow().clone();
    assert_eq!(loaded.len(), 1, "the program was loaded before the panic");
    let left = leaks::find(&loaded);
    assert!(left.programs.is_empty(), "programs left: {left:?}");
    assert!(!bpf_stats::enabled().unwrap(), "stats left on");
    assert!(
        cgroup::owned_by(std::process::id()).is_empty(),
        "storm cgroup left"
    );
}
