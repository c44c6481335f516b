//! Results on disk.

pub mod csv;
