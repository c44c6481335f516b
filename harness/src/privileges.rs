//! Checked up front, so a missing capability is reported as such rather
//! than as a kernel "refusal" of the first program loaded.

use std::fs;

use thiserror::Error;

const CAP_SYS_ADMIN: u32 = 21;

#[derive(Debug, Error)]
pub enum PrivilegeError {
    #[error(
        "bpfstorm needs CAP_SYS_ADMIN (it loads BPF programs, creates cgroups, opens perf \
         counters on other tasks and enables BPF stats), and this process has effective \
         capabilities {0:#x}: run it as root, e.g. with sudo"
    )]
    Missing(u64),
    #[error(
        "bpfstorm must run as root (effective uid {0}): capabilities alone are not enough, \
         since the storm cgroups and perf counters it makes belong to root; run it with sudo"
    )]
    NotRoot(u32),
    #[error("cannot read this process's capabilities from /proc/self/status: {0}")]
    Unreadable(String),
}

/// The effective capability set of this process.
fn effective() -> Result<u64, PrivilegeError> {
    let status = fs::read_to_string("/proc/self/status")
        .map_err(|e| PrivilegeError::Unreadable(e.to_string()))?;
    parse_cap_eff(&status).ok_or_else(|| PrivilegeError::Unreadable("no CapEff line".into()))
}

fn parse_cap_eff(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).ok()
}

pub fn check() -> Result<(), PrivilegeError> {
    let euid = nix::unistd::geteuid().as_raw();
    if euid != 0 {
        return Err(PrivilegeError::NotRoot(euid));
    }
    let caps = effective()?;
    if caps & (1 << CAP_SYS_ADMIN) == 0 {
        return Err(PrivilegeError::Missing(caps));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_effective_set() {
        let status = "Name:\tbpfstorm\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_cap_eff(status), Some(0x1ff_ffff_ffff));
        assert_eq!(parse_cap_eff("Name:\tx\n"), None);
    }
}
