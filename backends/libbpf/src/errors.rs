//! libbpf errors made readable: errno plus what libbpf itself logged.

use std::ffi::CStr;
use std::sync::Mutex;

use bpfstorm_common::{CounterError, Op, Strategy};
use libbpf_rs::PrintLevel;

/// libbpf's log of the operation under way (verifier messages included).
static LOG: Mutex<String> = Mutex::new(String::new());

fn capture(level: PrintLevel, msg: String) {
    if level != PrintLevel::Debug {
        if let Ok(mut log) = LOG.lock() {
            log.push_str(&msg);
        }
    }
}

/// Routes libbpf's messages into the capture buffer instead of stderr, so
/// they end up in the typed error rather than interleaved with the table.
pub fn start_capture() {
    libbpf_rs::set_print(Some((PrintLevel::Info, capture)));
    if let Ok(mut log) = LOG.lock() {
        log.clear();
    }
}

fn captured() -> String {
    LOG.lock()
        .map(|mut log| std::mem::take(&mut *log))
        .unwrap_or_default()
}

/// The errno behind a libbpf-rs error. libbpf-rs keeps the `io::Error`
/// private, but its alternate display ends with "(os error N)".
pub fn errno(err: &libbpf_rs::Error) -> i32 {
    let text = format!("{err:#}");
    text.rsplit_once("(os error ")
        .and_then(|(_, rest)| rest.split(')').next()?.parse().ok())
        .unwrap_or(0)
}

/// A failed `op` of the program for `strategy`.
pub fn kernel(strategy: &Strategy, op: Op, err: &libbpf_rs::Error) -> CounterError {
    let log = captured();
    // libbpf's lines about the program say why (verifier included); its
    // "raise ulimit -l" hint on EPERM is wrong where BPF memory is charged
    // to cgroups, so it is left out.
    let about_prog = format!("prog '{}'", strategy.program_name());
    let said: Vec<&str> = log
        .lines()
        .map(|l| l.trim_start_matches("libbpf: ").trim())
        .filter(|l| l.contains(&about_prog) || l.contains("kprobe") || l.contains("tracepoint"))
        .filter(|l| !l.contains("ulimit"))
        .collect();
    let mut message = format!("{err:#}");
    if !said.is_empty() {
        message.push_str("; libbpf: ");
        message.push_str(&said.join(" | "));
    }
    CounterError::from_kernel(strategy.attach(), op, errno(err), message)
}

/// A map or buffer operation that failed after load.
pub fn map(op: &str, err: &libbpf_rs::Error) -> CounterError {
    CounterError::Kernel {
        op: op.to_string(),
        errno: errno(err),
        message: err.to_string(),
    }
}

pub fn libbpf_version() -> String {
    // SAFETY: libbpf returns a pointer to a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(libbpf_rs::libbpf_sys::libbpf_version_string()) };
    version.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_comes_from_the_source_chain() {
        let err = libbpf_rs::Error::from_raw_os_error(2);
        assert_eq!(errno(&err), 2);
    }
}
