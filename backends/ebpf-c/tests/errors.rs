//! A refused load comes back as a typed error that carries libbpf's errno
//! and its own log lines, through the C ABI.

use bpfstorm_common::{AttachPoint, Backend, CounterError, Filter, MapKind, Strategy, UpdateMode};
use bpfstorm_ebpf_c::CLoader;

/// `struct __user_cap_header_struct` and `__user_cap_data_struct` (v3).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Drops every capability of the calling thread (capabilities are per
/// thread, so the rest of the test process keeps root's).
fn drop_capabilities() {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: capset(2) reads the header and two data structs.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    assert_eq!(rc, 0, "capset: {}", std::io::Error::last_os_error());
}

#[test]
fn load_without_privileges_is_refused_with_errno_and_libbpf_log() {
    let strategy = Strategy::new(
        AttachPoint::TpSysEnterExecve,
        MapKind::Array,
        UpdateMode::Atomic,
        Filter::All,
    )
    .unwrap();
    let result = std::thread::spawn(move || {
        drop_capabilities();
        CLoader.open(&strategy).map(drop)
    })
    .join()
    .unwrap();
    let err = result.expect_err("loaded without CAP_BPF");
    let (errno, message) = match &err {
        CounterError::Unsupported { errno, reason, .. } => (*errno, reason),
        CounterError::Kernel { errno, message, .. } => (Some(*errno), message),
        other => panic!("expected a kernel error, got {other:?}"),
    };
    assert_eq!(errno, Some(libc::EPERM), "{err}");
    assert!(message.contains("bpfstorm__load: "), "{err}");
    assert!(message.contains("; libbpf: "), "no libbpf log: {err}");
    // Misleading here: BPF memory is charged to cgroups, not RLIMIT_MEMLOCK.
    assert!(!message.contains("RLIMIT_MEMLOCK"), "{err}");
}
