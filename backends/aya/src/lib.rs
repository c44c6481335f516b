//! The aya backend: the counting programs written in Rust with aya-ebpf
//! (backends/aya/ebpf), loaded by aya, so that Rust-made BPF can be set
//! beside clang-made BPF, and aya's loader beside libbpf's. The C programs
//! are never loaded here.

mod counter;
mod errors;
mod stream;

use bpfstorm_common::{Backend, Counter, CounterError, Strategy};

pub use counter::{open, AyaCounter};

/// Why build.rs could not build the Rust BPF object (empty when it could).
const UNAVAILABLE: &str = include_str!(concat!(env!("OUT_DIR"), "/bpfstorm-aya.unavailable"));

/// Why this build of the backend cannot load anything (bpf-linker or
/// rust-src missing when it was built, or the eBPF crate failed to build),
/// or `None` when the Rust BPF object is there.
pub fn unavailable() -> Option<&'static str> {
    (!UNAVAILABLE.is_empty()).then_some(UNAVAILABLE)
}

/// The aya backend (`--backend aya`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Aya;

impl Backend for Aya {
    fn name(&self) -> &'static str {
        "aya"
    }

    fn version(&self) -> String {
        "aya 0.14.0 / aya-ebpf 0.2.1 (Rust BPF)".into()
    }

    fn open(&self, strategy: &Strategy) -> Result<Box<dyn Counter>, CounterError> {
        if let Some(reason) = unavailable() {
            return Err(CounterError::Backend {
                backend: "aya",
                message: format!("unavailable: {reason}"),
            });
        }
        Ok(Box::new(open(strategy)?))
    }
}
