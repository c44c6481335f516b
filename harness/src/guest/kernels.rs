//! Which kernel a command runs on: this machine's own, or a Debian cloud
//! kernel that `scripts/setup-guests` unpacked into the cache.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::GuestError;

/// The series `scripts/setup-guests` fetches.
pub const SERIES: [&str; 2] = ["6.1", "6.12"];

/// One entry of `--kernel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelChoice {
    /// The kernel this machine runs.
    Host,
    /// A cached Debian kernel series, booted in a guest.
    Guest(String),
}

impl KernelChoice {
    pub fn is_host(&self) -> bool {
        matches!(self, KernelChoice::Host)
    }
}

impl FromStr for KernelChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "host" => Ok(KernelChoice::Host),
            s if SERIES.contains(&s) => Ok(KernelChoice::Guest(s.to_string())),
            _ => Err(format!(
                "unknown kernel `{s}`: choose `host` (this machine's kernel) or a Debian \
                 series booted in a guest: {}",
                SERIES.join(", ")
            )),
        }
    }
}

impl fmt::Display for KernelChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelChoice::Host => f.write_str("host"),
            KernelChoice::Guest(series) => f.write_str(series),
        }
    }
}

/// Where `scripts/setup-guests` puts the VM tools and kernels.
pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache")
        });
    base.join("bpfstorm").join("guests")
}

/// An unpacked Debian kernel package.
#[derive(Debug, Clone)]
pub struct GuestKernel {
    pub series: String,
    /// `uname -r` inside the guest, e.g. 6.12.95+deb12-cloud-amd64.
    pub release: String,
    pub vmlinuz: PathBuf,
}

impl GuestKernel {
    /// The cached kernel of `series`, or what to run to fetch it.
    pub fn find(cache: &Path, series: &str) -> Result<GuestKernel, GuestError> {
        let boot = cache.join("kernels").join(series).join("boot");
        let missing = || GuestError::MissingKernel {
            series: series.to_string(),
            looked: boot.clone(),
        };
        let vmlinuz = super::find_file(&boot, "vmlinuz-", "").ok_or_else(missing)?;
        let release = vmlinuz
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("vmlinuz-"))
            .unwrap_or_default()
            .to_string();
        Ok(GuestKernel {
            series: series.to_string(),
            release,
            vmlinuz,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn choices_parse_and_print_back() {
        for s in ["host", "6.1", "6.12"] {
            assert_eq!(s.parse::<KernelChoice>().unwrap().to_string(), s);
        }
        let err = "6.6".parse::<KernelChoice>().unwrap_err();
        assert!(err.contains("6.1, 6.12"), "{err}");
    }

    #[test]
    fn a_missing_kernel_says_how_to_fetch_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = GuestKernel::find(dir.path(), "6.12").unwrap_err();
        assert!(err.to_string().contains("scripts/setup-guests"), "{err}");
    }

    #[test]
    fn release_comes_from_the_image_name() {
        let dir = tempfile::tempdir().unwrap();
        let boot = dir.path().join("kernels/6.1/boot");
        fs::create_dir_all(&boot).unwrap();
        fs::write(boot.join("config-6.1.0-56-cloud-amd64"), "").unwrap();
        fs::write(boot.join("vmlinuz-6.1.0-56-cloud-amd64"), "").unwrap();
        let k = GuestKernel::find(dir.path(), "6.1").unwrap();
        assert_eq!(k.release, "6.1.0-56-cloud-amd64");
        assert!(k.vmlinuz.ends_with("boot/vmlinuz-6.1.0-56-cloud-amd64"));
    }
}
