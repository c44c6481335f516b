//! The C loader's ABI (`loader.h`), and [`call`], which turns its
//! convention (negative errno, message in a buffer) into a `Result`.

use std::ffi::{c_char, c_int, c_uint, CStr};
use std::mem::MaybeUninit;

/// `struct bpfstorm_c_strategy`.
#[repr(C)]
pub struct Strategy {
    pub program: *const c_char,
    pub map: *const c_char,
    pub slot_stride: u32,
    pub value_size: u32,
    pub wakeup_events: u32,
    pub poll_ms: i32,
    /// One of the `READ_*` paths.
    pub read_path: u32,
    pub key_count: u32,
    pub max_entries: u32,
    pub filter_cgroup_id: u64,
}

/// `enum bpfstorm_c_read_path`.
pub const READ_SYSCALL: u32 = 0;
pub const READ_MMAP: u32 = 1;
pub const READ_BATCH: u32 = 2;

/// `struct bpfstorm_c_reading`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Reading {
    pub count: u64,
    pub dropped: u64,
    pub lost_records: u64,
    pub keys_live: u64,
}

/// The opaque `struct bpfstorm_c`.
#[repr(C)]
pub struct Loader {
    _private: [u8; 0],
}

extern "C" {
    pub fn bpfstorm_c_open(
        strategy: *const Strategy,
        out: *mut *mut Loader,
        err: *mut c_char,
        errlen: usize,
    ) -> c_int;
    pub fn bpfstorm_c_load(c: *mut Loader, err: *mut c_char, errlen: usize) -> c_int;
    pub fn bpfstorm_c_attach(c: *mut Loader, err: *mut c_char, errlen: usize) -> c_int;
    pub fn bpfstorm_c_start_stream(c: *mut Loader, err: *mut c_char, errlen: usize) -> c_int;
    pub fn bpfstorm_c_read(
        c: *mut Loader,
        out: *mut Reading,
        err: *mut c_char,
        errlen: usize,
    ) -> c_int;
    pub fn bpfstorm_c_reset(c: *mut Loader, err: *mut c_char, errlen: usize) -> c_int;
    pub fn bpfstorm_c_prog_fd(c: *const Loader) -> c_int;
    pub fn bpfstorm_c_map_fds(c: *const Loader, fds: *mut c_int, n: usize) -> c_int;
    pub fn bpfstorm_c_destroy(c: *mut Loader);
    pub fn bpfstorm_c_libbpf_version() -> *const c_char;
    pub fn bpfstorm_c_libbpf_headers_version() -> *const c_char;
    pub fn bpfstorm_c_counter_loop(
        strategy: *const Strategy,
        interval_ms: c_uint,
        err: *mut c_char,
        errlen: usize,
    ) -> c_int;
}

/// A failed call: the errno (positive) and the C side's message.
#[derive(Debug)]
pub struct Failure {
    pub errno: i32,
    pub message: String,
}

/// Room for the message, libbpf's last lines included.
const ERR_BYTES: usize = 4096;

/// Runs `f` with an error buffer; a negative return becomes a [`Failure`].
pub fn call(f: impl FnOnce(*mut c_char, usize) -> c_int) -> Result<c_int, Failure> {
    // Left unwritten but its first byte: zeroing 4 KiB would cost every
    // call (a read among them) some 100 ns.
    let mut buf = [MaybeUninit::<c_char>::uninit(); ERR_BYTES];
    buf[0] = MaybeUninit::new(0);
    let rc = f(buf.as_mut_ptr().cast(), buf.len());
    if rc >= 0 {
        return Ok(rc);
    }
    // SAFETY: the buffer starts with a NUL, and the C side NUL-terminates
    // whatever it writes within `errlen`, so the string ends inside what
    // was written.
    let message = unsafe { CStr::from_ptr(buf.as_ptr().cast()) }
        .to_string_lossy()
        .into_owned();
    Err(Failure {
        errno: -rc,
        message,
    })
}

/// The string one of the C side's version functions returns.
pub fn version(f: unsafe extern "C" fn() -> *const c_char) -> String {
    // SAFETY: `f` is one of the version functions above, which take no
    // arguments and return a string literal (non-NULL, NUL-terminated,
    // alive for the whole program).
    unsafe { CStr::from_ptr(f()) }
        .to_string_lossy()
        .into_owned()
}
