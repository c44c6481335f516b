//! tracefs, which tracepoint attachment and perf tracepoint counters need.
//! It is not mounted on every boot, so it is mounted on demand.

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

const MOUNT_POINT: &str = "/sys/kernel/tracing";
const DEBUGFS_PATH: &str = "/sys/kernel/debug/tracing";

/// The tracefs root, mounting it at /sys/kernel/tracing when absent.
pub fn ensure_mounted() -> io::Result<PathBuf> {
    for dir in [MOUNT_POINT, DEBUGFS_PATH] {
        if Path::new(dir).join("events").is_dir() {
            return Ok(PathBuf::from(dir));
        }
    }
    let target = CString::new(MOUNT_POINT).expect("no NUL in a literal");
    let fstype = CString::new("tracefs").expect("no NUL in a literal");
    // SAFETY: plain mount(2) with valid NUL-terminated strings and no data.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(
            err.kind(),
            format!("tracefs is not mounted and mounting it at {MOUNT_POINT} failed ({err}): run as root, or `mount -t tracefs tracefs {MOUNT_POINT}`"),
        ));
    }
    Ok(PathBuf::from(MOUNT_POINT))
}
