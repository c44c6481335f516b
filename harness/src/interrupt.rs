//! Ctrl-C, SIGTERM, SIGHUP (a closed terminal) and SIGQUIT become a flag
//! the run loop checks, so every counter, storm, cgroup and guest VM is torn
//! down by its normal Drop path.

use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// The signal received, 0 while none was.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    RECEIVED.store(signal, Ordering::SeqCst);
}

/// Installs the handler for SIGINT, SIGTERM, SIGHUP and SIGQUIT.
pub fn install() -> nix::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(signal, &action) }?;
    }
    Ok(())
}

pub fn requested() -> bool {
    RECEIVED.load(Ordering::SeqCst) != 0
}

/// The shell's exit status for death by the signal received: 128 + signal.
pub fn exit_status() -> u8 {
    128u8.saturating_add(RECEIVED.load(Ordering::SeqCst) as u8)
}
