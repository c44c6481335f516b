//! Which kernel BTF the loaders use: the running kernel's, or the file
//! named by `BPFSTORM_BTF` (the same variable the build reads).

use std::env;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::CounterError;

pub const ENV: &str = "BPFSTORM_BTF";
pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// `Some(path)` when `BPFSTORM_BTF` names a BTF file to use instead of the
/// kernel's; an error that says what is wrong when it names anything else
/// (nothing, a folder, a file that is not BTF), or when there is no BTF at all.
pub fn custom_path() -> Result<Option<PathBuf>, CounterError> {
    let Some(value) = env::var_os(ENV) else {
        if Path::new(KERNEL_BTF).exists() {
            return Ok(None);
        }
        return Err(CounterError::Setup(format!(
            "this kernel has no BTF ({KERNEL_BTF} is missing; it needs CONFIG_DEBUG_INFO_BTF): \
             CO-RE programs cannot be relocated. Set {ENV} to a BTF file for this kernel"
        )));
    };
    let path = PathBuf::from(value);
    let fix = format!("point it at a BTF file for this kernel, or unset it to use {KERNEL_BTF}");
    let problem = if path.as_os_str().is_empty() {
        Some("is empty".to_string())
    } else if path.is_dir() {
        Some("is a folder, not a file".to_string())
    } else {
        match read_magic(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("does not exist".into()),
            Err(e) => Some(format!("cannot be read: {e}")),
            Ok(magic) if magic == BTF_MAGIC_LE || magic == BTF_MAGIC_BE => None,
            Ok(_) => Some("is not a BTF file (it does not start with BTF's magic 0xeB9F)".into()),
        }
    };
    match problem {
        None => Ok(Some(path)),
        Some(problem) => Err(CounterError::Setup(format!(
            "{ENV}={} {problem}: {fix}",
            path.display()
        ))),
    }
}

/// BTF's header magic 0xeB9F as stored by a little- and a big-endian kernel.
const BTF_MAGIC_LE: [u8; 2] = [0x9f, 0xeb];
const BTF_MAGIC_BE: [u8; 2] = [0xeb, 0x9f];

fn read_magic(path: &Path) -> std::io::Result<[u8; 2]> {
    let mut magic = [0u8; 2];
    std::fs::File::open(path)?.read_exact(&mut magic)?;
    Ok(magic)
}
