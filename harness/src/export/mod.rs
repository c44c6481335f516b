//! Results on disk.

pub mod csv;
pub mod markdown;
pub mod read;
pub mod svg;
