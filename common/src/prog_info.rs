//! How big a loaded BPF program is, as the kernel sees it: instructions
//! after the verifier's rewrite, bytes of JIT-ed native code, and the
//! instructions the verifier walked. Read from any program fd with
//! `bpf(BPF_OBJ_GET_INFO_BY_FD)`, so every loader (libbpf, aya, C) is
//! measured the same way and clang-made code can be set beside Rust-made.

use std::io;
use std::mem;
use std::os::fd::RawFd;

use crate::sys;

/// Instruction counts of one loaded BPF program.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgInsns {
    /// BPF instructions after the verifier's rewrite (`xlated_prog_len / 8`).
    pub xlated_insns: u32,
    /// Bytes of native code the JIT produced (0 without a JIT).
    pub jited_bytes: u32,
    /// Instructions the verifier processed over all paths (0 before Linux 5.16).
    pub verified_insns: u32,
}

const BPF_INSN_BYTES: u32 = 8;

/// `struct bpf_prog_info` up to `verified_insns` (Linux 5.16), field for
/// field as in `include/uapi/linux/bpf.h`. Older kernels fill a prefix; the
/// pointer fields stay 0, so the kernel copies out no arrays.
#[repr(C, align(8))]
struct BpfProgInfo {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    name: [u8; 16],
    ifindex: u32,
    gpl_compatible: u32,
    netns_dev: u64,
    netns_ino: u64,
    nr_jited_ksyms: u32,
    nr_jited_func_lens: u32,
    jited_ksyms: u64,
    jited_func_lens: u64,
    btf_id: u32,
    func_info_rec_size: u32,
    func_info: u64,
    nr_func_info: u32,
    nr_line_info: u32,
    line_info: u64,
    jited_line_info: u64,
    nr_jited_line_info: u32,
    line_info_rec_size: u32,
    jited_line_info_rec_size: u32,
    nr_prog_tags: u32,
    prog_tags: u64,
    run_time_ns: u64,
    run_cnt: u64,
    recursion_misses: u64,
    verified_insns: u32,
    attach_btf_obj_id: u32,
    attach_btf_id: u32,
}

/// `struct bpf_prog_info` of the program behind `fd`.
fn info(fd: RawFd) -> io::Result<BpfProgInfo> {
    // Zeroed padding included: the 4 bytes after `attach_btf_id` are a
    // field in newer kernels (6.18 answers E2BIG to garbage there).
    // SAFETY: all-zero bytes are a valid BpfProgInfo (integers only).
    let mut info: BpfProgInfo = unsafe { mem::zeroed() };
    sys::obj_info(fd, &mut info)?;
    Ok(info)
}

/// Instruction counts of the BPF program behind `fd`.
pub fn of_fd(fd: RawFd) -> io::Result<ProgInsns> {
    let info = info(fd)?;
    Ok(ProgInsns {
        xlated_insns: info.xlated_prog_len / BPF_INSN_BYTES,
        jited_bytes: info.jited_prog_len,
        verified_insns: info.verified_insns,
    })
}

/// The kernel id of the BPF program behind `fd`.
pub fn id_of_fd(fd: RawFd) -> io::Result<u32> {
    Ok(info(fd)?.id)
}

/// When the BPF program behind `fd` was loaded, in ns of CLOCK_BOOTTIME.
pub fn load_time_ns(fd: RawFd) -> io::Result<u64> {
    Ok(info(fd)?.load_time)
}

impl std::ops::Add for ProgInsns {
    type Output = ProgInsns;

    fn add(self, other: ProgInsns) -> ProgInsns {
        ProgInsns {
            xlated_insns: self.xlated_insns + other.xlated_insns,
            jited_bytes: self.jited_bytes + other.jited_bytes,
            verified_insns: self.verified_insns + other.verified_insns,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use super::*;

    #[test]
    fn layout_matches_the_kernel_uapi() {
        // offsetof(struct bpf_prog_info, verified_insns) == 216, sizeof == 232.
        assert_eq!(mem::size_of::<BpfProgInfo>(), 232);
        assert_eq!(mem::offset_of!(BpfProgInfo, jited_prog_len), 16);
        assert_eq!(mem::offset_of!(BpfProgInfo, run_time_ns), 192);
        assert_eq!(mem::offset_of!(BpfProgInfo, verified_insns), 216);
    }

    /// Loads `r0 = 0; exit` as a socket filter (root needed, as for every
    /// kernel-facing test here).
    fn load_tiny_program() -> OwnedFd {
        #[repr(C)]
        struct ProgLoad {
            prog_type: u32,
            insn_cnt: u32,
            insns: u64,
            license: u64,
        }
        // BPF_ALU64 | BPF_MOV | BPF_K to r0, imm 0; BPF_JMP | BPF_EXIT.
        let insns: [u64; 2] = [0xb7, 0x95];
        let license = b"GPL\0";
        let attr = ProgLoad {
            prog_type: 1, // BPF_PROG_TYPE_SOCKET_FILTER
            insn_cnt: 2,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
        };
        // SAFETY: bpf(2) reads `attr` and the arrays it points to.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                5, // BPF_PROG_LOAD
                &attr as *const ProgLoad,
                mem::size_of::<ProgLoad>(),
            )
        };
        assert!(fd >= 0, "BPF_PROG_LOAD: {}", io::Error::last_os_error());
        // SAFETY: the kernel just returned this fd.
        unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
    }

    #[test]
    fn a_file_that_is_no_bpf_program_is_an_error() {
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        let fd = file.as_raw_fd();
        assert!(of_fd(fd).is_err());
    }

    /// These need root (and a kernel): `scripts/test kernel` runs them, the
    /// fast layer skips them.
    mod as_root {
        use super::*;

        #[test]
        fn counts_the_instructions_of_a_loaded_program() {
            let prog = load_tiny_program();
            let insns = of_fd(prog.as_raw_fd()).unwrap();
            assert_eq!(insns.xlated_insns, 2, "{insns:?}");
            assert!(insns.jited_bytes > 0, "{insns:?}");
            assert_eq!(insns.verified_insns, 2, "{insns:?}");
            assert!(id_of_fd(prog.as_raw_fd()).unwrap() > 0);
        }
    }
}
