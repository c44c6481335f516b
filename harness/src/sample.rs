//! Small-sample statistics: a median with a distribution-free 95% interval.

/// The median of a sample and a 95% confidence interval for it, taken from
/// order statistics (no assumption about the distribution).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub median: f64,
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
}

impl Estimate {
    /// `None` for an empty sample or one holding NaN.
    pub fn from_samples(samples: &[f64]) -> Option<Estimate> {
        if samples.is_empty() || samples.iter().any(|v| v.is_nan()) {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        // Ranks n/2 -+ 1.96 * sqrt(n)/2 bound the median with ~95% coverage
        // (normal approximation of the binomial); small samples widen to the range.
        let half_width = 0.98 * (n as f64).sqrt();
        let lo_rank = ((n as f64 / 2.0 - half_width).floor() as isize).max(0) as usize;
        let hi_rank = ((n as f64 / 2.0 + half_width).ceil() as usize).min(n - 1);
        Some(Estimate {
            median,
            lo: sorted[lo_rank],
            hi: sorted[hi_rank],
            n,
        })
    }

    /// The chance that an interval built this way holds the true median:
    /// the ranks' binomial coverage. Small samples fall short of 95% (three
    /// values give their range, which covers the median 75% of the time).
    pub fn coverage(&self) -> f64 {
        let n = self.n as i32;
        let half_width = 0.98 * f64::from(n).sqrt();
        let lo = ((f64::from(n) / 2.0 - half_width).floor() as i32).max(0);
        let hi = ((f64::from(n) / 2.0 + half_width).ceil() as i32).min(n - 1);
        // P(lo < B <= hi) for B ~ Binomial(n, 1/2), in logs to stay finite.
        let ln_choose = |k: i32| -> f64 {
            (1..=k)
                .map(|i| f64::from(n - k + i).ln() - f64::from(i).ln())
                .sum()
        };
        ((lo + 1)..=hi)
            .map(|k| (ln_choose(k) - f64::from(n) * std::f64::consts::LN_2).exp())
            .sum()
    }

    /// Half the interval's width relative to the median, in percent.
    pub fn relative_half_width_pct(&self) -> f64 {
        if self.median == 0.0 {
            return f64::INFINITY;
        }
        (self.hi - self.lo) / 2.0 / self.median.abs() * 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_interval_of_literal_samples() {
        let e = Estimate::from_samples(&[5.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!(e.median, 3.0);
        assert_eq!((e.lo, e.hi), (1.0, 5.0));
        let many: Vec<f64> = (1..=100).map(f64::from).collect();
        let e = Estimate::from_samples(&many).unwrap();
        assert_eq!(e.median, 50.5);
        assert!(
            e.lo > 35.0 && e.lo < 50.0 && e.hi > 51.0 && e.hi < 65.0,
            "{e:?}"
        );
        assert!(
            e.coverage() > 0.95 && e.coverage() < 0.97,
            "{}",
            e.coverage()
        );
        let three = Estimate::from_samples(&[1.0, 2.0, 3.0]).unwrap();
        assert!(
            (three.coverage() - 0.75).abs() < 1e-9,
            "{}",
            three.coverage()
        );
        assert!(Estimate::from_samples(&[]).is_none());
        assert!(Estimate::from_samples(&[f64::NAN]).is_none());
    }
}
