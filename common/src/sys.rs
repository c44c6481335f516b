//! The few bpf(2) commands the backend-independent code needs, called
//! directly so every loader (libbpf, aya, C, an external tool) is read and
//! measured the same way.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_MAP_GET_FD_BY_ID: libc::c_long = 14;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const BPF_ANY: u64 = 0;

/// bpf(`cmd`, `attr`): its return value, or errno as an error.
fn bpf<A>(cmd: libc::c_long, attr: &mut A) -> io::Result<libc::c_long> {
    // SAFETY: every caller passes the `union bpf_attr` member of `cmd`,
    // whose pointers point to buffers that outlive the call.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut A, mem::size_of::<A>()) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn fd_u32(fd: RawFd) -> io::Result<u32> {
    u32::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))
}

/// Fills `info` (a prefix of `struct bpf_prog_info` or `bpf_map_info`,
/// zeroed) for the object behind `fd`. Older kernels fill less of it.
pub(crate) fn obj_info<T>(fd: RawFd, info: &mut T) -> io::Result<()> {
    /// The `info` member of `union bpf_attr` for BPF_OBJ_GET_INFO_BY_FD.
    #[repr(C, align(8))]
    struct InfoByFd {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    let mut attr = InfoByFd {
        bpf_fd: fd_u32(fd)?,
        info_len: mem::size_of::<T>() as u32,
        info: info as *mut T as u64,
    };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)
        .map(drop)
        .map_err(|e| io::Error::new(e.kind(), format!("BPF_OBJ_GET_INFO_BY_FD on fd {fd}: {e}")))
}

/// What a BPF object kind is called in messages, and how it is opened by id.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Object {
    Prog,
    Map,
}

/// A new fd on the program or map with kernel id `id`.
pub(crate) fn fd_by_id(object: Object, id: u32) -> io::Result<OwnedFd> {
    /// The `*_GET_FD_BY_ID` member of `union bpf_attr`.
    #[repr(C)]
    struct ById {
        id: u32,
        next_id: u32,
        open_flags: u32,
    }
    let cmd = match object {
        Object::Prog => BPF_PROG_GET_FD_BY_ID,
        Object::Map => BPF_MAP_GET_FD_BY_ID,
    };
    let mut attr = ById {
        id,
        next_id: 0,
        open_flags: 0,
    };
    let fd = bpf(cmd, &mut attr)
        .map_err(|e| io::Error::new(e.kind(), format!("{object:?} id {id}: {e}")))?;
    // SAFETY: the kernel just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `struct bpf_map_info` up to `max_entries`, field for field as in
/// `include/uapi/linux/bpf.h`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MapInfo {
    pub map_type: u32,
    pub id: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
}

pub(crate) fn map_info(fd: BorrowedFd<'_>) -> io::Result<MapInfo> {
    let mut info = MapInfo::default();
    obj_info(fd.as_raw_fd(), &mut info)?;
    Ok(info)
}

/// The `elem` member of `union bpf_attr` (lookup, update).
#[repr(C, align(8))]
struct Elem {
    map_fd: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// BPF_MAP_LOOKUP_ELEM of `key` into `value`; `Ok(false)` when absent.
pub(crate) fn lookup(map: BorrowedFd<'_>, key: &[u8], value: &mut [u8]) -> io::Result<bool> {
    let mut attr = Elem {
        map_fd: fd_u32(map.as_raw_fd())?,
        key: key.as_ptr() as u64,
        value: value.as_mut_ptr() as u64,
        flags: 0,
    };
    match bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// BPF_MAP_UPDATE_ELEM of `key` to `value`, inserting it where absent.
pub(crate) fn update(map: BorrowedFd<'_>, key: &[u8], value: &[u8]) -> io::Result<()> {
    let mut attr = Elem {
        map_fd: fd_u32(map.as_raw_fd())?,
        key: key.as_ptr() as u64,
        value: value.as_ptr() as u64,
        flags: BPF_ANY,
    };
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
}

/// BPF_MAP_DELETE_ELEM of `key`; `Ok(false)` when it was absent.
pub(crate) fn delete(map: BorrowedFd<'_>, key: &[u8]) -> io::Result<bool> {
    let mut attr = Elem {
        map_fd: fd_u32(map.as_raw_fd())?,
        key: key.as_ptr() as u64,
        value: 0,
        flags: 0,
    };
    match bpf(BPF_MAP_DELETE_ELEM, &mut attr) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// BPF_MAP_GET_NEXT_KEY: the key after `key` (the first with `None`) into
/// `next`; `Ok(false)` past the last.
pub(crate) fn next_key(
    map: BorrowedFd<'_>,
    key: Option<&[u8]>,
    next: &mut [u8],
) -> io::Result<bool> {
    let mut attr = Elem {
        map_fd: fd_u32(map.as_raw_fd())?,
        key: key.map_or(0, |k| k.as_ptr() as u64),
        value: next.as_mut_ptr() as u64,
        flags: 0,
    };
    match bpf(BPF_MAP_GET_NEXT_KEY, &mut attr) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The `batch` member of `union bpf_attr`.
#[repr(C, align(8))]
struct Batch {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Where a batched lookup goes on from: the kernel's opaque position
/// (a bucket, or the next key), as large as any map's here needs.
#[derive(Default)]
pub(crate) struct BatchToken {
    at: [u8; 8],
    started: bool,
}

/// BPF_MAP_LOOKUP_BATCH: up to as many entries as `keys` has room for
/// (`key_size` bytes each) into `keys` and `values`, going on from
/// `token`, which it moves past them. Returns how many came and whether
/// the map has more.
pub(crate) fn lookup_batch(
    map: BorrowedFd<'_>,
    token: &mut BatchToken,
    key_size: usize,
    keys: &mut [u8],
    values: &mut [u8],
) -> io::Result<(usize, bool)> {
    let mut out = [0u8; 8];
    let mut attr = Batch {
        in_batch: if token.started {
            token.at.as_ptr() as u64
        } else {
            0
        },
        out_batch: out.as_mut_ptr() as u64,
        keys: keys.as_mut_ptr() as u64,
        values: values.as_mut_ptr() as u64,
        count: u32::try_from(keys.len() / key_size).unwrap_or(u32::MAX),
        map_fd: fd_u32(map.as_raw_fd())?,
        elem_flags: 0,
        flags: 0,
    };
    let more = match bpf(BPF_MAP_LOOKUP_BATCH, &mut attr) {
        Ok(_) => true,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => false,
        Err(e) => return Err(e),
    };
    *token = BatchToken {
        at: out,
        started: true,
    };
    Ok((attr.count as usize, more))
}

/// The number of possible CPUs, which sizes per-CPU values: the highest
/// index in `/sys/devices/system/cpu/possible` ("0-3,5") plus one.
pub(crate) fn possible_cpus() -> io::Result<usize> {
    const PATH: &str = "/sys/devices/system/cpu/possible";
    let text = std::fs::read_to_string(PATH)?;
    text.trim()
        .split(',')
        .filter_map(|range| range.rsplit('-').next()?.parse::<usize>().ok())
        .max()
        .map(|last| last + 1)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{PATH}: {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_kernel_uapi() {
        assert_eq!(mem::size_of::<Elem>(), 32);
        assert_eq!(mem::size_of::<Batch>(), 56);
        // struct bpf_map_info up to map_flags.
        assert_eq!(mem::size_of::<MapInfo>(), 24);
    }

    #[test]
    fn possible_cpus_counts_this_machine() {
        let n = possible_cpus().unwrap();
        assert!(n >= std::thread::available_parallelism().unwrap().get());
    }
}
