//! Types shared by the bpfstorm harness and its backends: what to count
//! ([`Strategy`]), and the [`Counter`] a backend turns it into.

pub mod btf;
mod counter;
mod error;
pub mod fdinfo;
pub mod prog_info;
mod strategy;
pub mod tracefs;
pub mod wakeup;

pub use counter::{Backend, Counter, LoadTimings, ProgStats, Reading};
pub use error::{CounterError, InvalidStrategy};
pub use prog_info::ProgInsns;
pub use strategy::{AttachPoint, Filter, MapKind, Strategy, UpdateMode};
