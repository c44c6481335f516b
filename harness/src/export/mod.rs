//! Results on disk.

pub mod csv;
pub mod escape;
pub mod markdown;
pub mod read;
pub mod svg;
