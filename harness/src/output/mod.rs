//! What the terminal shows.

pub mod collateral;
pub mod console;
pub mod progress;
pub mod summary;
pub mod table;
