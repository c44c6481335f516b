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

/// The mean of a small sample (repetitions of a cell) and its 95% Student-t
/// interval: a real 95% interval of that mean, assuming the values scatter
/// roughly normally around it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanEstimate {
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
}

impl MeanEstimate {
    /// `None` below two values, or for a value that is not finite.
    pub fn from_samples(samples: &[f64]) -> Option<MeanEstimate> {
        let n = samples.len();
        if n < 2 || samples.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let mean = samples.iter().sum::<f64>() / n as f64;
        let var = samples.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let half = t_975(n - 1) * (var / n as f64).sqrt();
        Some(MeanEstimate {
            mean,
            lo: mean - half,
            hi: mean + half,
            n,
        })
    }

    pub fn half_width(&self) -> f64 {
        (self.hi - self.lo) / 2.0
    }

    /// Whether the interval leaves out zero: the effect is resolved.
    pub fn excludes_zero(&self) -> bool {
        self.lo > 0.0 || self.hi < 0.0
    }
}

/// The 97.5% quantile of Student's t with `df` degrees of freedom.
fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df - 1],
        31..=60 => 2.000,
        61..=120 => 1.980,
        _ => 1.960,
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
        let m = MeanEstimate::from_samples(&[10.0, 12.0, 14.0]).unwrap();
        assert_eq!(m.mean, 12.0);
        // sd 2, n 3, t(2) 4.303: half-width 4.303 * 2 / sqrt(3).
        assert!(
            (m.half_width() - 4.303 * 2.0 / 3f64.sqrt()).abs() < 1e-9,
            "{m:?}"
        );
        assert!(m.excludes_zero());
        assert!(!MeanEstimate::from_samples(&[-1.0, 1.0])
            .unwrap()
            .excludes_zero());
        assert!(MeanEstimate::from_samples(&[1.0]).is_none());
        assert!(Estimate::from_samples(&[f64::NAN]).is_none());
    }
}
