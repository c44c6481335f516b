//! The machine's own noise, from a fixed calibration workload that involves
//! nothing bpfstorm loads: [`CALLS`] getppid() calls on one thread, timed.
//! Sampled between a cell's rounds and around its storms while no program
//! is attached, its scatter (coefficient of variation) is how much the
//! machine alone moves a figure, and its level over a run is the drift.

use std::time::Instant;

/// Calls per sample: a few milliseconds, short against a cell.
pub const CALLS: u32 = 10_000;

/// Wall ns per getppid() over one sample.
pub fn sample() -> f64 {
    let started = Instant::now();
    for _ in 0..CALLS {
        // SAFETY: getppid takes no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
    started.elapsed().as_nanos() as f64 / f64::from(CALLS)
}

/// Standard deviation over mean; `None` below two samples.
pub fn cv(samples: &[f64]) -> Option<f64> {
    let n = samples.len();
    if n < 2 {
        return None;
    }
    let mean = samples.iter().sum::<f64>() / n as f64;
    let var = samples.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean > 0.0).then(|| var.sqrt() / mean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cv_of_literal_samples() {
        assert_eq!(cv(&[1.0]), None);
        assert_eq!(cv(&[5.0, 5.0, 5.0]), Some(0.0));
        // mean 10, sample sd 2.
        let v = cv(&[8.0, 10.0, 12.0]).unwrap();
        assert!((v - 0.2).abs() < 1e-12, "{v}");
    }
}
