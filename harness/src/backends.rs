//! The one place backends are registered.

use bpfstorm_common::Backend;
use thiserror::Error;

pub const NAMES: &[&str] = &["libbpf", "c", "aya"];

#[derive(Debug, Error)]
#[error("unknown backend `{0}`: expected one of {names}", names = NAMES.join(", "))]
pub struct UnknownBackend(pub String);

/// The backends named, in order; the first unknown name is an error.
pub fn by_names(names: &[String]) -> Result<Vec<Box<dyn Backend>>, UnknownBackend> {
    names.iter().map(|name| by_name(name)).collect()
}

pub fn by_name(name: &str) -> Result<Box<dyn Backend>, UnknownBackend> {
    match name {
        "libbpf" => Ok(Box::new(bpfstorm_libbpf::Libbpf)),
        "c" => Ok(Box::new(bpfstorm_ebpf_c::CLoader)),
        "aya" => Ok(Box::new(bpfstorm_aya::Aya)),
        other => Err(UnknownBackend(other.to_string())),
    }
}
