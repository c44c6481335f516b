//! Results on disk.

pub mod chart;
pub mod csv;
pub mod escape;
pub mod json;
pub mod markdown;
pub mod read;
