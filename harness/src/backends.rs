//! The one place backends are registered.

use std::fmt;

use bpfstorm_common::Backend;
use clap::ValueEnum;

/// A registered backend, as `--backend` names it; its doc comment is what
/// `--help` says of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendName {
    /// libbpf-rs, loading the shared BPF C programs.
    Libbpf,
    /// The classic C skeleton loader (same BPF C programs), through a small C ABI.
    C,
    /// aya, loading BPF programs written in Rust with aya-ebpf.
    Aya,
    /// bpftrace one-liners (`@ = count()`), run by the installed bpftrace.
    Bpftrace,
}

/// Every backend's name, in `BackendName` order: what the CSV may say.
pub const NAMES: &[&str] = &["libbpf", "c", "aya", "bpftrace"];

/// The backends that load bpfstorm's own BPF programs (one object, every
/// strategy): what the tests of those programs' code and size go through.
/// The others run a tool that writes its own program (bpftrace).
pub const LOADERS: &[&str] = &["libbpf", "c", "aya"];

impl BackendName {
    /// Its name on the command line, in the CSV and as `Backend::name`.
    pub const fn name(self) -> &'static str {
        match self {
            BackendName::Libbpf => "libbpf",
            BackendName::C => "c",
            BackendName::Aya => "aya",
            BackendName::Bpftrace => "bpftrace",
        }
    }

    pub fn backend(self) -> Box<dyn Backend> {
        match self {
            BackendName::Libbpf => Box::new(bpfstorm_libbpf::Libbpf),
            BackendName::C => Box::new(bpfstorm_ebpf_c::CLoader),
            BackendName::Aya => Box::new(bpfstorm_aya::Aya),
            BackendName::Bpftrace => Box::new(bpfstorm_bpftrace::Bpftrace),
        }
    }
}

impl fmt::Display for BackendName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The backends named, in order.
pub fn by_names(names: &[BackendName]) -> Vec<Box<dyn Backend>> {
    names.iter().map(|name| name.backend()).collect()
}

/// The backend of a name from `NAMES` (tests and benches iterate those).
pub fn by_name(name: &str) -> Option<Box<dyn Backend>> {
    BackendName::from_str(name, false)
        .ok()
        .map(BackendName::backend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_name_everywhere() {
        let variants = BackendName::value_variants();
        assert_eq!(variants.len(), NAMES.len());
        for (&variant, &name) in variants.iter().zip(NAMES) {
            let listed = variant.to_possible_value().expect("not skipped");
            assert_eq!(listed.get_name(), name);
            assert_eq!(variant.name(), name);
            assert_eq!(variant.backend().name(), name);
            assert_eq!(by_name(name).map(|b| b.name()), Some(name));
        }
        assert!(LOADERS.iter().all(|name| NAMES.contains(name)));
        assert!(by_name("bcc").is_none());
    }
}
