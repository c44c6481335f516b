//! Progress on stderr: a bar with the time left for a matrix of cells, a
//! spinner with the time spent for a guest. Both are hidden when stderr is
//! no terminal (indicatif's stderr target draws only on a terminal).

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::style::ProgressTracker;
use indicatif::{HumanDuration, ProgressBar, ProgressState, ProgressStyle, WeakProgressBar};

/// The bar last shown, so a line written to stderr meanwhile goes above it
/// instead of through it (see [`above`]).
static SHOWN: Mutex<Option<WeakProgressBar>> = Mutex::new(None);

fn show(bar: ProgressBar, template: &str) -> ProgressBar {
    bar.set_style(
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key("left", TimeLeft::default()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    *SHOWN.lock().unwrap_or_else(PoisonError::into_inner) = Some(bar.downgrade());
    bar
}

/// `{left}`: the time left at the mean pace of the cells done, less the
/// time the current cell has run; unknown before the first cell ends. The
/// mean, not indicatif's `{eta}` (which weighs the last ~15 s): cells
/// differ widely and come round again, repetition by repetition.
#[derive(Clone, Default)]
struct TimeLeft {
    /// Cells started (the bar's position): all but the last are done.
    started: u64,
    /// When the last cell started, from the start: when the others ended.
    ended: Duration,
}

impl ProgressTracker for TimeLeft {
    fn clone_box(&self) -> Box<dyn ProgressTracker> {
        Box::new(self.clone())
    }

    fn tick(&mut self, state: &ProgressState, _: Instant) {
        if state.pos() != self.started {
            self.started = state.pos();
            self.ended = state.elapsed();
        }
    }

    fn reset(&mut self, _: &ProgressState, _: Instant) {
        *self = TimeLeft::default();
    }

    fn write(&self, state: &ProgressState, out: &mut dyn fmt::Write) {
        let len = state.len().unwrap_or(0);
        let done = self.started.saturating_sub(1);
        let running = state.elapsed().saturating_sub(self.ended);
        let _ = match left(self.ended, done, len, running) {
            Some(left) => write!(out, "{:#}", HumanDuration(left)),
            None => out.write_str("?"),
        };
    }
}

/// The time left when `done` of `len` cells ended after `ended`, and the
/// next one has run for `running`.
fn left(ended: Duration, done: u64, len: u64, running: Duration) -> Option<Duration> {
    let remaining = u32::try_from(len.saturating_sub(done)).ok()?;
    let done = u32::try_from(done).ok().filter(|&d| d > 0)?;
    Some((ended / done * remaining).saturating_sub(running))
}

/// A bar for `cells` cells, told of each as it starts (`set_message` with
/// its name, then `inc(1)`): `cell 3/8` while the third one runs.
pub fn matrix_bar(cells: usize) -> ProgressBar {
    show(
        ProgressBar::new(cells as u64),
        "{spinner} [{elapsed_precise}] {bar:30} cell {pos}/{len}, {left} left  {msg}",
    )
}

/// A spinner with the time spent, for work whose length is unknown.
pub fn spinner(message: String) -> ProgressBar {
    let bar = show(
        ProgressBar::new_spinner(),
        "{spinner} [{elapsed_precise}] {msg}",
    );
    bar.set_message(message);
    bar
}

/// Runs `write` (to stderr) with the bar on screen, if any, cleared, and
/// draws the bar again below what it wrote.
pub fn above<R>(write: impl FnOnce() -> R) -> R {
    let shown = SHOWN
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .and_then(WeakProgressBar::upgrade);
    match shown {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::IsTerminal;

    use super::*;

    #[test]
    fn time_left_is_the_mean_pace_less_the_current_cell() {
        let minute = Duration::from_secs(60);
        let none = Duration::ZERO;
        assert_eq!(left(none, 0, 10, minute), None, "no pace before a cell");
        assert_eq!(left(minute, 2, 10, none), Some(4 * minute));
        assert_eq!(
            left(minute, 2, 10, minute / 2),
            Some(3 * minute + minute / 2)
        );
        assert_eq!(left(minute, 2, 3, 2 * minute), Some(none), "overrun");
        assert_eq!(left(minute, 10, 10, none), Some(none));
        assert_eq!(left(minute, 12, 10, none), Some(none));
    }

    #[test]
    fn bars_are_hidden_unless_stderr_is_a_terminal() {
        let terminal = std::io::stderr().is_terminal();
        assert_eq!(matrix_bar(3).is_hidden(), !terminal);
        let shown = spinner("booting".into());
        assert_eq!(shown.is_hidden(), !terminal);
        assert_eq!(above(|| 7), 7, "a line written while a bar is shown");
    }
}
