//! The libbpf-rs backend: loads the shared BPF C object through a
//! libbpf-cargo skeleton and turns a [`Strategy`] into a live [`Counter`].

mod counter;
mod errors;
mod skel {
    include!(concat!(env!("OUT_DIR"), "/bpfstorm.skel.rs"));
}
mod stream;

use bpfstorm_common::{Backend, Counter, CounterError, Strategy};

pub use counter::LibbpfCounter;

/// The libbpf-rs backend (`--backend libbpf`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Libbpf;

impl Backend for Libbpf {
    fn name(&self) -> &'static str {
        "libbpf"
    }

    fn version(&self) -> String {
        format!("libbpf-rs 0.27 / libbpf {}", errors::libbpf_version())
    }

    fn open(&self, strategy: &Strategy) -> Result<Box<dyn Counter>, CounterError> {
        Ok(Box::new(counter::open(strategy)?))
    }
}
