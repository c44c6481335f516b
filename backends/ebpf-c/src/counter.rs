//! [`CCounter`]: a [`Counter`] on the C loader, through its ABI.

use std::ffi::{c_char, c_int, CString};
use std::os::fd::{BorrowedFd, RawFd};
use std::ptr::{self, NonNull};
use std::time::{Duration, Instant};

use bpfstorm_common::count::ensure_slots_fit;
use bpfstorm_common::{
    tracefs, Counter, CounterError, LoadTimings, Loaded, Op, ReadPath, Reading, Slots, Strategy,
    Wakeup, POLL_INTERVAL,
};

use crate::ffi::{self, Failure};

/// A strategy as the C side takes it; owns the names it points to.
struct AbiStrategy {
    program: CString,
    map: CString,
    slot_stride: u32,
    value_size: u32,
    wakeup_events: u32,
    poll_ms: i32,
    read_path: u32,
    key_count: u32,
    max_entries: u32,
    filter_cgroup_id: u64,
}

impl AbiStrategy {
    fn new(strategy: &Strategy) -> AbiStrategy {
        let name = |n: &str| CString::new(n).expect("strategy names hold no NUL");
        // The map's value: a u64 per CPU's slot, or the slots it holds.
        let (slot_stride, value_size) = match strategy.map().slots() {
            Some(Slots::InValue { count, stride }) => (stride, count * stride),
            Some(Slots::PerPossibleCpu) | None => (8, 8),
        };
        AbiStrategy {
            program: name(&strategy.program_name()),
            map: name(&strategy.map().object_name()),
            slot_stride: slot_stride as u32,
            value_size: value_size as u32,
            wakeup_events: match strategy.wakeup() {
                Some(Wakeup::Batch(n)) => n,
                _ => 1,
            },
            poll_ms: match strategy.wakeup() {
                Some(Wakeup::Poll) => POLL_INTERVAL.as_millis() as i32,
                _ => -1,
            },
            read_path: match strategy.read() {
                ReadPath::Syscall => ffi::READ_SYSCALL,
                ReadPath::Mmap => ffi::READ_MMAP,
                ReadPath::Batch => ffi::READ_BATCH,
            },
            key_count: strategy.keys().count,
            // 0: the object's own entries (one key, a global, a buffer).
            max_entries: strategy.keys().max_entries.unwrap_or(0),
            filter_cgroup_id: strategy.filter().cgroup_id().unwrap_or(0),
        }
    }

    /// Borrows `self`: the result must not outlive it.
    fn ffi(&self) -> ffi::Strategy {
        ffi::Strategy {
            program: self.program.as_ptr(),
            map: self.map.as_ptr(),
            slot_stride: self.slot_stride,
            value_size: self.value_size,
            wakeup_events: self.wakeup_events,
            poll_ms: self.poll_ms,
            read_path: self.read_path,
            key_count: self.key_count,
            max_entries: self.max_entries,
            filter_cgroup_id: self.filter_cgroup_id,
        }
    }
}

/// A failed map or buffer operation after load.
fn kernel(op: &str) -> impl FnOnce(Failure) -> CounterError + '_ {
    move |f| CounterError::Kernel {
        op: op.to_string(),
        errno: f.errno,
        message: f.message,
    }
}

/// A loaded, attached strategy. Dropping it stops the buffer poller, then
/// detaches and unloads everything (`bpfstorm_c_destroy`).
pub struct CCounter {
    strategy: Strategy,
    timings: LoadTimings,
    loaded: Loaded,
    loader: NonNull<ffi::Loader>,
}

type LoaderCall = unsafe extern "C" fn(*mut ffi::Loader, *mut c_char, usize) -> c_int;

impl CCounter {
    pub fn open(strategy: &Strategy) -> Result<CCounter, CounterError> {
        let attach = strategy.attach();
        let refused =
            |op: Op| move |f: Failure| CounterError::from_kernel(attach, op, f.errno, f.message);
        tracefs::ensure_mounted()?;
        ensure_slots_fit(strategy.map())?;
        let abi = AbiStrategy::new(strategy);

        let started = Instant::now();
        let mut raw = ptr::null_mut();
        // SAFETY: the strategy and its names outlive the call; on success
        // `raw` holds a handle that only this CCounter destroys.
        ffi::call(|err, len| unsafe { ffi::bpfstorm_c_open(&abi.ffi(), &mut raw, err, len) })
            .map_err(refused(Op::Open))?;
        let mut counter = CCounter {
            strategy: *strategy,
            timings: LoadTimings::default(),
            loaded: Loaded::default(),
            loader: NonNull::new(raw).ok_or_else(|| CounterError::Backend {
                backend: "c",
                message: "bpfstorm_c_open succeeded without a handle".into(),
            })?,
        };
        let opened = Instant::now();
        counter
            .call(ffi::bpfstorm_c_load)
            .map_err(refused(Op::Load))?;
        let loaded = Instant::now();
        counter
            .call(ffi::bpfstorm_c_attach)
            .map_err(refused(Op::Attach))?;
        let attached = Instant::now();
        counter
            .call(ffi::bpfstorm_c_start_stream)
            .map_err(kernel("starting the buffer poller"))?;
        counter.loaded = counter.ids()?;
        counter.timings = LoadTimings {
            open: opened - started,
            load: loaded - opened,
            attach: attached - loaded,
        };
        Ok(counter)
    }

    fn call(&mut self, f: LoaderCall) -> Result<c_int, Failure> {
        let loader = self.loader.as_ptr();
        // SAFETY: the handle is live until Drop, and `&mut self` keeps
        // calls on it from overlapping.
        ffi::call(|err, len| unsafe { f(loader, err, len) })
    }

    fn prog_fd(&self) -> Result<RawFd, CounterError> {
        // SAFETY: the handle is live until Drop.
        let fd = unsafe { ffi::bpfstorm_c_prog_fd(self.loader.as_ptr()) };
        if fd < 0 {
            return Err(kernel("getting the program fd")(Failure {
                errno: -fd,
                message: "the program is not loaded".into(),
            }));
        }
        Ok(fd)
    }

    /// Ids of the program and of every map the object created.
    fn ids(&self) -> Result<Loaded, CounterError> {
        // SAFETY: the loader keeps its fds open until Drop, past this call.
        let borrow = |fd| unsafe { BorrowedFd::borrow_raw(fd) };
        let prog = borrow(self.prog_fd()?);
        Ok(Loaded::of_fds(
            [prog],
            self.map_fds().into_iter().map(borrow),
        )?)
    }

    fn map_fds(&self) -> Vec<RawFd> {
        let loader = self.loader.as_ptr();
        // SAFETY: the handle is live until Drop; the C side writes at most
        // `fds.len()` fds and returns how many maps there are.
        let count = unsafe { ffi::bpfstorm_c_map_fds(loader, ptr::null_mut(), 0) };
        let mut fds = vec![-1; usize::try_from(count).unwrap_or(0)];
        // SAFETY: as above.
        unsafe { ffi::bpfstorm_c_map_fds(loader, fds.as_mut_ptr(), fds.len()) };
        fds
    }
}

impl Drop for CCounter {
    fn drop(&mut self) {
        // SAFETY: the handle came from bpfstorm_c_open and is destroyed once.
        unsafe { ffi::bpfstorm_c_destroy(self.loader.as_ptr()) };
    }
}

impl Counter for CCounter {
    fn strategy(&self) -> &Strategy {
        &self.strategy
    }

    fn timings(&self) -> LoadTimings {
        self.timings
    }

    fn read(&mut self) -> Result<Reading, CounterError> {
        let loader = self.loader.as_ptr();
        let mut reading = ffi::Reading::default();
        // SAFETY: the handle is live until Drop; `reading` outlives the call.
        ffi::call(|err, len| unsafe { ffi::bpfstorm_c_read(loader, &mut reading, err, len) })
            .map_err(kernel("read"))?;
        Ok(Reading {
            count: reading.count,
            dropped: reading.dropped,
            lost_records: reading.lost_records,
            keys_live: reading.keys_live,
        })
    }

    fn reset(&mut self) -> Result<(), CounterError> {
        self.call(ffi::bpfstorm_c_reset).map_err(kernel("reset"))?;
        Ok(())
    }

    fn loaded(&self) -> &Loaded {
        &self.loaded
    }
}

/// The tutorial's program (`counter.c`): counts with `strategy`, prints the
/// count every `interval` until SIGINT or SIGTERM, and returns once the
/// program is detached and unloaded.
pub fn counter_loop(strategy: &Strategy, interval: Duration) -> Result<(), CounterError> {
    tracefs::ensure_mounted()?;
    ensure_slots_fit(strategy.map())?;
    let abi = AbiStrategy::new(strategy);
    let interval_ms = u32::try_from(interval.as_millis())
        .unwrap_or(u32::MAX)
        .max(1);
    // SAFETY: the strategy and its names outlive the call.
    ffi::call(|err, len| unsafe {
        ffi::bpfstorm_c_counter_loop(&abi.ffi(), interval_ms, err, len)
    })
    .map_err(kernel("counting"))?;
    Ok(())
}
