//! Which kernel BTF the loaders use: the running kernel's, or the file
//! named by `BPFSTORM_BTF` (the same variable the build reads).

use std::env;
use std::path::{Path, PathBuf};

use crate::CounterError;

pub const ENV: &str = "BPFSTORM_BTF";
pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// `Some(path)` when `BPFSTORM_BTF` names a BTF file to use instead of the
/// kernel's; an error when it names nothing, or when there is no BTF at all.
pub fn custom_path() -> Result<Option<PathBuf>, CounterError> {
    match env::var_os(ENV) {
        Some(path) if Path::new(&path).is_file() => Ok(Some(PathBuf::from(path))),
        Some(path) => Err(CounterError::Setup(format!(
            "{ENV}={} does not exist: point it at a BTF file for this kernel, or unset it to use {KERNEL_BTF}",
            Path::new(&path).display()
        ))),
        None if Path::new(KERNEL_BTF).exists() => Ok(None),
        None => Err(CounterError::Setup(format!(
            "this kernel has no BTF ({KERNEL_BTF} is missing; it needs CONFIG_DEBUG_INFO_BTF): \
             CO-RE programs cannot be relocated. Set {ENV} to a BTF file for this kernel"
        ))),
    }
}
