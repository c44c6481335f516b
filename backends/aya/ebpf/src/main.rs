//! Counts execs, in Rust: the twin of `backends/ebpf-c/bpf/bpfstorm.bpf.c`.
//! Same program names (one per attach point), same map names (one per map
//! kind), same read-only globals `map_kind`, `update_mode` and
//! `filter_cgroup_id` set by the loader before load so the verifier prunes
//! every branch the strategy does not take, same `dropped` counter. The
//! numeric values of the globals are those of `bpfstorm.h`.
//!
//! Unlike libbpf, aya loads programs one by one (only the chosen one ever
//! reaches the verifier) but creates every map of the object at load.

#![no_std]
#![no_main]
#![feature(core_intrinsics)]
#![allow(internal_features, non_upper_case_globals)]

use core::ffi::c_void;
use core::intrinsics::{atomic_xadd, AtomicOrdering};

use aya_ebpf::bindings::{BPF_F_CURRENT_CPU, BPF_NOEXIST};
use aya_ebpf::helpers::{
    bpf_get_current_cgroup_id, bpf_get_current_pid_tgid, bpf_get_smp_processor_id,
    bpf_perf_event_output,
};
use aya_ebpf::macros::map;
use aya_ebpf::maps::{Array, HashMap, PerCpuArray, PerCpuHashMap, PerfEventArray, RingBuf};
use aya_ebpf::Global;

/// Values of `map_kind` (bpfstorm.h `enum storm_map_kind`).
const STORM_MAP_ARRAY: u32 = 0;
const STORM_MAP_HASH: u32 = 1;
const STORM_MAP_PERCPU_ARRAY: u32 = 2;
const STORM_MAP_PERCPU_HASH: u32 = 3;
const STORM_MAP_RINGBUF: u32 = 4;
const STORM_MAP_PERF_EVENT_ARRAY: u32 = 5;

/// Values of `update_mode` (bpfstorm.h `enum storm_update_mode`).
const STORM_UPDATE_ATOMIC: u32 = 0;

/// bpfstorm.h `STORM_RINGBUF_BYTES`.
const STORM_RINGBUF_BYTES: u32 = 256 * 1024;

const NR_EXECVE: u64 = 59;
const NR_EXECVEAT: u64 = 322;

/// One record per event for the ring and perf buffers (bpfstorm.h `struct storm_event`).
#[repr(C)]
struct StormEvent {
    tgid: u32,
    cpu: u32,
}

#[map(name = "array")]
static ARRAY: Array<u64> = Array::with_max_entries(1, 0);

#[map(name = "hash")]
static HASH: HashMap<u32, u64> = HashMap::with_max_entries(1, 0);

#[map(name = "percpu_array")]
static PERCPU_ARRAY: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "percpu_hash")]
static PERCPU_HASH: PerCpuHashMap<u32, u64> = PerCpuHashMap::with_max_entries(1, 0);

#[map(name = "ringbuf")]
static RINGBUF: RingBuf = RingBuf::with_byte_size(STORM_RINGBUF_BYTES, 0);

/// max_entries 0: the loader sizes it to the number of CPUs.
#[map(name = "perf_event_array")]
static PERF_EVENT_ARRAY: PerfEventArray<StormEvent> = PerfEventArray::new(0);

#[unsafe(no_mangle)]
static map_kind: Global<u32> = Global::new(STORM_MAP_ARRAY);
#[unsafe(no_mangle)]
static update_mode: Global<u32> = Global::new(STORM_UPDATE_ATOMIC);
/// 0 counts every task; otherwise only tasks in this cgroup v2.
#[unsafe(no_mangle)]
static filter_cgroup_id: Global<u64> = Global::new(0);

/// Events the ring or perf buffer had no room for.
#[unsafe(no_mangle)]
static mut dropped: u64 = 0;

#[unsafe(no_mangle)]
#[unsafe(link_section = "license")]
static LICENSE: [u8; 13] = *b"Dual BSD/GPL\0";

/// `__sync_fetch_and_add(slot, 1)`: `AtomicU64::fetch_add` does not exist
/// on the BPF target, the intrinsic compiles to a BPF atomic add.
#[inline(always)]
unsafe fn atomic_inc(slot: *mut u64) {
    atomic_xadd::<u64, u64, { AtomicOrdering::SeqCst }>(slot, 1);
}

#[inline(always)]
unsafe fn bump(slot: *mut u64) {
    if update_mode.load() == STORM_UPDATE_ATOMIC {
        atomic_inc(slot);
    } else {
        // Racy on shared slots, exact on per-CPU ones.
        slot.write_volatile(slot.read_volatile() + 1);
    }
}

macro_rules! bump_hash {
    ($map:expr) => {{
        let key = 0u32;
        match $map.get_ptr_mut(key) {
            Some(slot) => bump(slot),
            None => {
                if $map.insert(key, 1u64, u64::from(BPF_NOEXIST)).is_err() {
                    // Another CPU inserted the key first.
                    if let Some(slot) = $map.get_ptr_mut(key) {
                        bump(slot);
                    }
                }
            }
        }
    }};
}

#[inline(always)]
fn event() -> StormEvent {
    // SAFETY: plain helpers without arguments.
    unsafe {
        StormEvent {
            tgid: (bpf_get_current_pid_tgid() >> 32) as u32,
            cpu: bpf_get_smp_processor_id(),
        }
    }
}

#[inline(always)]
unsafe fn count_event(ctx: *mut c_void) {
    let filter = filter_cgroup_id.load();
    if filter != 0 && bpf_get_current_cgroup_id() != filter {
        return;
    }
    match map_kind.load() {
        STORM_MAP_ARRAY => {
            if let Some(slot) = ARRAY.get_ptr_mut(0) {
                bump(slot);
            }
        }
        STORM_MAP_HASH => bump_hash!(HASH),
        STORM_MAP_PERCPU_ARRAY => {
            if let Some(slot) = PERCPU_ARRAY.get_ptr_mut(0) {
                bump(slot);
            }
        }
        STORM_MAP_PERCPU_HASH => bump_hash!(PERCPU_HASH),
        STORM_MAP_RINGBUF => match RINGBUF.reserve::<StormEvent>(0) {
            Some(mut entry) => {
                entry.write(event());
                entry.submit(0);
            }
            None => atomic_inc(&raw mut dropped),
        },
        STORM_MAP_PERF_EVENT_ARRAY => {
            let e = event();
            // aya-ebpf's PerfEventArray::output drops the helper's result;
            // the helper is called directly so a full buffer is counted.
            let rc = bpf_perf_event_output(
                ctx,
                (&raw const PERF_EVENT_ARRAY).cast_mut().cast(),
                BPF_F_CURRENT_CPU,
                (&raw const e).cast_mut().cast(),
                size_of::<StormEvent>() as u64,
            );
            if rc != 0 {
                atomic_inc(&raw mut dropped);
            }
        }
        _ => {}
    }
}

// The programs below are entry points the kernel calls with its context;
// `#[no_mangle]` exports them (they need not be `pub`).

/// A tracepoint program's return value decides whether perf events on the
/// same tracepoint see the event: 0 would hide every exec from `perf stat`
/// (and from the perf oracle). aya-ebpf's `#[tracepoint]` macro always
/// returns 0, so the tracepoint programs are written out by hand.
const TP_PASS_TO_PERF: u32 = 1;

#[inline(always)]
fn is_exec_syscall(id: u64) -> bool {
    id == NR_EXECVE || id == NR_EXECVEAT
}

/// The n-th u64 of the context. aya 0.14 mis-relocates `ctx->args[i]` of
/// the flexible array in its bindings (aya#1662), so it is read through a
/// plain pointer, as the kernel lays it out.
#[inline(always)]
unsafe fn ctx_arg(ctx: *mut c_void, n: usize) -> u64 {
    (ctx as *const u64).add(n).read()
}

#[unsafe(no_mangle)]
#[unsafe(link_section = "tracepoint/syscalls/sys_enter_execve")]
fn tp_sys_enter_execve(ctx: *mut c_void) -> u32 {
    unsafe { count_event(ctx) };
    TP_PASS_TO_PERF
}

#[unsafe(no_mangle)]
#[unsafe(link_section = "tracepoint/syscalls/sys_enter_execveat")]
fn tp_sys_enter_execveat(ctx: *mut c_void) -> u32 {
    unsafe { count_event(ctx) };
    TP_PASS_TO_PERF
}

#[unsafe(no_mangle)]
#[unsafe(link_section = "tracepoint/sched/sched_process_exec")]
fn tp_sched_process_exec(ctx: *mut c_void) -> u32 {
    unsafe { count_event(ctx) };
    TP_PASS_TO_PERF
}

/// sys_enter(struct pt_regs *regs, long id)
#[unsafe(no_mangle)]
#[unsafe(link_section = "raw_tp/sys_enter")]
fn raw_tp_sys_enter(ctx: *mut c_void) -> i32 {
    unsafe {
        if is_exec_syscall(ctx_arg(ctx, 1)) {
            count_event(ctx);
        }
    }
    0
}

#[unsafe(no_mangle)]
#[unsafe(link_section = "tp_btf/sys_enter")]
fn tp_btf_sys_enter(ctx: *mut c_void) -> i32 {
    unsafe {
        if is_exec_syscall(ctx_arg(ctx, 1)) {
            count_event(ctx);
        }
    }
    0
}

#[unsafe(no_mangle)]
#[unsafe(link_section = "raw_tp/sched_process_exec")]
fn raw_tp_sched_process_exec(ctx: *mut c_void) -> i32 {
    unsafe { count_event(ctx) };
    0
}

#[unsafe(no_mangle)]
#[unsafe(link_section = "tp_btf/sched_process_exec")]
fn tp_btf_sched_process_exec(ctx: *mut c_void) -> i32 {
    unsafe { count_event(ctx) };
    0
}

/// libc's execve(): sees only callers that go through libc's wrapper.
#[unsafe(no_mangle)]
#[unsafe(link_section = "uprobe/libc.so.6:execve")]
fn uprobe_libc_execve(ctx: *mut c_void) -> u32 {
    unsafe { count_event(ctx) };
    0
}

/// The exec syscall's entry through a BPF trampoline (needs fentry support).
#[unsafe(no_mangle)]
#[unsafe(link_section = "fentry/__x64_sys_execve")]
fn fentry_sys_execve(ctx: *mut c_void) -> i32 {
    unsafe { count_event(ctx) };
    0
}

#[unsafe(no_mangle)]
#[unsafe(link_section = "fexit/__x64_sys_execve")]
fn fexit_sys_execve(ctx: *mut c_void) -> i32 {
    unsafe { count_event(ctx) };
    0
}

#[unsafe(no_mangle)]
#[unsafe(link_section = "kprobe/__x64_sys_execve")]
fn kprobe_sys_execve(ctx: *mut c_void) -> u32 {
    unsafe { count_event(ctx) };
    0
}

/// aya has no ksyscall section: this is a kprobe that user space attaches to
/// the arch's syscall wrapper (`__x64_sys_execve`), as libbpf's ksyscall does.
#[unsafe(no_mangle)]
#[unsafe(link_section = "kprobe/__x64_sys_execve")]
fn ksyscall_execve(ctx: *mut c_void) -> u32 {
    unsafe { count_event(ctx) };
    0
}

/// LSM hooks must return 0, or the exec is denied.
#[unsafe(no_mangle)]
#[unsafe(link_section = "lsm/bprm_check_security")]
fn lsm_bprm_check_security(ctx: *mut c_void) -> i32 {
    unsafe { count_event(ctx) };
    0
}

#[unsafe(no_mangle)]
#[unsafe(link_section = "lsm/bprm_committed_creds")]
fn lsm_bprm_committed_creds(ctx: *mut c_void) -> i32 {
    unsafe { count_event(ctx) };
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
