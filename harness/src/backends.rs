//! The one place backends are registered.

use bpfstorm_common::Backend;
use thiserror::Error;

pub const NAMES: &[&str] = &["libbpf"];

#[derive(Debug, Error)]
#[error("unknown backend `{0}`: expected one of {names}", names = NAMES.join(", "))]
pub struct UnknownBackend(pub String);

pub fn by_name(name: &str) -> Result<Box<dyn Backend>, UnknownBackend> {
    match name {
        "libbpf" => Ok(Box::new(bpfstorm_libbpf::Libbpf)),
        other => Err(UnknownBackend(other.to_string())),
    }
}
