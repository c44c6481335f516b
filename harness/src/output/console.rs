//! Printing that a closed pipe (`bpfstorm run | head`) or a terminal gone
//! away cannot turn into a panic: std's `print!` panics when the write
//! fails. Once a stream fails it is given up for the rest of the run, and
//! the run goes on (its files are already written).

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
static STDERR_GONE: AtomicBool = AtomicBool::new(false);

fn write_to(mut stream: impl Write, gone: &AtomicBool, text: fmt::Arguments<'_>) {
    if gone.load(Ordering::Relaxed) {
        return;
    }
    if stream
        .write_fmt(text)
        .and_then(|()| stream.flush())
        .is_err()
    {
        gone.store(true, Ordering::Relaxed);
    }
}

pub fn stdout(text: fmt::Arguments<'_>) {
    write_to(io::stdout().lock(), &STDOUT_GONE, text);
}

pub fn stderr(text: fmt::Arguments<'_>) {
    // Above a progress bar on screen, not through it.
    super::progress::above(|| write_to(io::stderr().lock(), &STDERR_GONE, text));
}

/// Whether standard output failed (a closed pipe, a terminal gone).
pub fn stdout_gone() -> bool {
    STDOUT_GONE.load(Ordering::Relaxed)
}

/// `print!` that never panics.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::console::stdout(format_args!($($arg)*)) };
}

/// `println!` that never panics.
#[macro_export]
macro_rules! outln {
    () => { $crate::output::console::stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::console::stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprintln!` that never panics.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => { $crate::output::console::stderr(format_args!("{}\n", format_args!($($arg)*))) };
}
