//! The bpftrace backend: the one-liner a user would type for a strategy
//! (`tracepoint:syscalls:sys_enter_execve { @ = count(); }`), run by the
//! bpftrace installed on the machine as a child process, and measured like
//! every other backend through the ids of what it loaded.

mod counter;
mod script;
mod tool;

use bpfstorm_common::{Backend, Counter, CounterError, Strategy};

pub use counter::{open, BpftraceCounter};
pub use script::script;

/// The bpftrace backend (`--backend bpftrace`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Bpftrace;

impl Backend for Bpftrace {
    fn name(&self) -> &'static str {
        "bpftrace"
    }

    fn version(&self) -> String {
        tool::version()
    }

    fn open(&self, strategy: &Strategy) -> Result<Box<dyn Counter>, CounterError> {
        Ok(Box::new(counter::open(strategy)?))
    }
}
