//! What the terminal shows.

pub mod progress;
pub mod summary;
pub mod table;
