//! Where a run happened, stamped on every CSV row so runs from different
//! machines and kernels can be told apart.

use std::fs;

use serde::Serialize;

use crate::export::csv::Timing;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Host {
    pub host: String,
    pub kernel: String,
    pub cpus: usize,
    pub cpu_model: String,
    /// Emulated inside a guest booted by `--kernel`.
    pub timing: Timing,
    pub git_rev: String,
}

impl Host {
    pub fn detect() -> Host {
        let uts = nix::sys::utsname::uname().ok();
        let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
            uts.as_ref()
                .map(|u| f(u).to_string_lossy().into_owned())
                .unwrap_or_else(|| "unknown".into())
        };
        Host {
            host: field(|u| u.nodename()),
            kernel: field(|u| u.release()),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: cpu_model().unwrap_or_else(|| "unknown".into()),
            timing: if crate::guest::inside() {
                Timing::Emulated
            } else {
                Timing::Native
            },
            git_rev: source_rev(),
        }
    }
}

fn cpu_model() -> Option<String> {
    let info = fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// The source revision of this build, "-dirty" when it had local changes,
/// stamped in at build time (never asked of git at run time: as root, that
/// would run hooks of whoever owns the tree).
pub fn source_rev() -> String {
    env!("BPFSTORM_GIT_REV").to_string()
}
