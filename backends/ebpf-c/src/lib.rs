//! The C backend: the classic tutorial's loader in C, on a skeleton that
//! `bpftool gen skeleton` makes at build time from the shared
//! `bpfstorm.bpf.c`, called through a small C ABI (`src/loader.h`).

// The C loader's libbpf symbols resolve against libbpf-sys's static,
// vendored libbpf: the very copy the libbpf-rs backend links (`links =
// "bpf"` lets only one libbpf-sys into a build).
extern crate libbpf_sys;

mod counter;
mod ffi;

use bpfstorm_common::{Backend, Counter, CounterError, Strategy};

pub use counter::{counter_loop, CCounter};

/// The C loader backend (`--backend c`).
#[derive(Debug, Default, Clone, Copy)]
pub struct CLoader;

impl Backend for CLoader {
    fn name(&self) -> &'static str {
        "c"
    }

    fn version(&self) -> String {
        format!("C skeleton loader / libbpf {}", libbpf_version())
    }

    fn open(&self, strategy: &Strategy) -> Result<Box<dyn Counter>, CounterError> {
        Ok(Box::new(CCounter::open(strategy)?))
    }
}

/// The version of the libbpf the C loader runs on.
pub fn libbpf_version() -> String {
    ffi::version(ffi::bpfstorm_c_libbpf_version)
}

/// The version of the libbpf headers the C loader was compiled against.
pub fn libbpf_headers_version() -> String {
    ffi::version(ffi::bpfstorm_c_libbpf_headers_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_loader_runs_on_the_libbpf_of_libbpf_sys() {
        // SAFETY: both return string literals of the linked libbpf.
        let (ours, theirs) = unsafe {
            (
                ffi::bpfstorm_c_libbpf_version(),
                libbpf_sys::libbpf_version_string(),
            )
        };
        // One libbpf in the process: the same literal, not an equal one.
        assert_eq!(ours, theirs, "the C loader sees another libbpf");
        assert_eq!(libbpf_headers_version(), libbpf_version());
        assert!(CLoader.version().ends_with(&libbpf_version()));
    }
}
