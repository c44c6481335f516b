//! Types shared by the bpfstorm harness and its backends: what to count
//! ([`Strategy`]), and the [`Counter`] a backend turns it into.

pub mod btf;
pub mod count;
mod counter;
mod error;
pub mod fdinfo;
pub mod introspect;
pub mod prog_info;
mod strategy;
pub mod stream;
mod sys;
pub mod tracefs;
mod wakeup;

pub use counter::{Backend, Counter, LoadTimings, ProgStats, Reading};
pub use error::{CounterError, InvalidStrategy, Op};
pub use introspect::{Introspection, Loaded};
pub use prog_info::ProgInsns;
pub use strategy::{
    gives_up, AttachPoint, Filter, Keys, MapKind, ReadPath, Slots, Strategy, UpdateMode, Wakeup,
    GLOBAL_PERCPU_SLOTS, GLOBAL_SLOT_BYTES, POLL_INTERVAL, WAKEUP_BATCH,
};
