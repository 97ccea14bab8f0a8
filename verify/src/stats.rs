//! Statistics for reproduction claims, on `statrs` distributions.
//!
//! - [`mean_ci`]: sample mean with a two-sided Student-t confidence interval.
//! - [`wilson`] and [`clopper_pearson`]: intervals for a proportion.
//! - [`linear_slope`]: least-squares slope of `y` on `x` with a Student-t interval (a regret
//!   that should stay flat).
//! - [`loglog_slope`]: least-squares slope of `ln y` on `ln x` with a Student-t interval, for
//!   scaling claims ("latency grows like n^k").
//! - [`Verdict`]: whether an interval supports a value reported in a paper.
//!
//! Intervals assume independent samples (one per seed); they say nothing about bias in the
//! simulator or workload. A `Supported` verdict means the paper's value is consistent with our
//! runs at the stated confidence, not that the claim is proven.

use statrs::distribution::{Beta, ContinuousCDF, Normal, StudentsT};
use std::fmt;

/// A point estimate with a two-sided confidence interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    /// Point estimate.
    pub estimate: f64,
    /// Lower bound.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
    /// Confidence level, e.g. 0.95.
    pub confidence: f64,
}

impl Interval {
    /// Whether `x` lies in `[lo, hi]`.
    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = self.confidence * 100.0;
        write!(f, "{:.6} [{:.6}, {:.6}] ({pct:.0}% CI)", self.estimate, self.lo, self.hi)
    }
}

/// Why a statistic could not be computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatsError {
    /// Not enough samples (the minimum is given).
    TooFewSamples {
        /// Samples given.
        got: usize,
        /// Samples needed.
        need: usize,
    },
    /// A value is NaN or infinite, or not positive where a logarithm is taken.
    BadValue(String),
    /// Confidence outside (0, 1), or successes above trials.
    BadParameter(String),
}

impl fmt::Display for StatsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatsError::TooFewSamples { got, need } => {
                write!(f, "{got} samples; at least {need} needed")
            }
            StatsError::BadValue(m) | StatsError::BadParameter(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for StatsError {}

fn check_confidence(confidence: f64) -> Result<(), StatsError> {
    if confidence > 0.0 && confidence < 1.0 {
        Ok(())
    } else {
        Err(StatsError::BadParameter(format!("confidence {confidence}: expected in (0, 1)")))
    }
}

/// The `1 - (1 - confidence) / 2` quantile of Student's t with `df` degrees of freedom.
pub fn t_quantile(confidence: f64, df: f64) -> Result<f64, StatsError> {
    check_confidence(confidence)?;
    let t = StudentsT::new(0.0, 1.0, df).map_err(|e| StatsError::BadParameter(e.to_string()))?;
    Ok(t.inverse_cdf(1.0 - (1.0 - confidence) / 2.0))
}

/// Mean of `samples` with a Student-t interval (needs 2 samples).
pub fn mean_ci(samples: &[f64], confidence: f64) -> Result<Interval, StatsError> {
    let n = samples.len();
    if n < 2 {
        return Err(StatsError::TooFewSamples { got: n, need: 2 });
    }
    if let Some(x) = samples.iter().find(|x| !x.is_finite()) {
        return Err(StatsError::BadValue(format!("sample {x} is not finite")));
    }
    let nf = n as f64;
    let mean = samples.iter().sum::<f64>() / nf;
    let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (nf - 1.0);
    let half = t_quantile(confidence, nf - 1.0)? * (var / nf).sqrt();
    Ok(Interval { estimate: mean, lo: mean - half, hi: mean + half, confidence })
}

fn check_counts(successes: u64, trials: u64) -> Result<(), StatsError> {
    if trials == 0 {
        return Err(StatsError::TooFewSamples { got: 0, need: 1 });
    }
    if successes > trials {
        let m = format!("{successes} successes in {trials} trials");
        return Err(StatsError::BadParameter(m));
    }
    Ok(())
}

/// Wilson score interval for a proportion.
pub fn wilson(successes: u64, trials: u64, confidence: f64) -> Result<Interval, StatsError> {
    check_counts(successes, trials)?;
    check_confidence(confidence)?;
    let z = Normal::new(0.0, 1.0).expect("standard normal").inverse_cdf(0.5 + confidence / 2.0);
    let (n, p) = (trials as f64, successes as f64 / trials as f64);
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    Ok(Interval { estimate: p, lo: centre - half, hi: centre + half, confidence })
}

/// Clopper-Pearson ("exact") interval for a proportion, from Beta quantiles.
pub fn clopper_pearson(
    successes: u64,
    trials: u64,
    confidence: f64,
) -> Result<Interval, StatsError> {
    check_counts(successes, trials)?;
    check_confidence(confidence)?;
    let alpha = 1.0 - confidence;
    let (k, n) = (successes as f64, trials as f64);
    let beta = |a: f64, b: f64| Beta::new(a, b).map_err(|e| StatsError::BadValue(e.to_string()));
    let lo = if successes == 0 { 0.0 } else { beta(k, n - k + 1.0)?.inverse_cdf(alpha / 2.0) };
    let hi = if successes == trials {
        1.0
    } else {
        beta(k + 1.0, n - k)?.inverse_cdf(1.0 - alpha / 2.0)
    };
    Ok(Interval { estimate: k / n, lo, hi, confidence })
}

/// A least-squares fit `ln y = intercept + slope * ln x`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlopeFit {
    /// The slope (the scaling exponent) with its interval.
    pub slope: Interval,
    /// The intercept (in log space).
    pub intercept: f64,
    /// Coefficient of determination.
    pub r_squared: f64,
}

/// Fits `ln y` on `ln x` (needs 3 points, positive finite values, two distinct x).
pub fn loglog_slope(xs: &[f64], ys: &[f64], confidence: f64) -> Result<SlopeFit, StatsError> {
    let logs = |v: &[f64]| -> Result<Vec<f64>, StatsError> {
        v.iter()
            .map(|&x| match x.is_finite() && x > 0.0 {
                true => Ok(x.ln()),
                false => Err(StatsError::BadValue(format!("{x}: expected positive and finite"))),
            })
            .collect()
    };
    if xs.len() != ys.len() {
        let m = format!("{} x values and {} y values", xs.len(), ys.len());
        return Err(StatsError::BadParameter(m));
    }
    if xs.len() < 3 {
        return Err(StatsError::TooFewSamples { got: xs.len(), need: 3 });
    }
    linear_slope(&logs(xs)?, &logs(ys)?, confidence)
}

/// Ordinary least squares `y = intercept + slope * x` with a Student-t interval on the slope
/// (needs 3 points, finite values, two distinct x). For `O(1)`-type claims where `y` can be 0
/// (a regret), which a log-log fit cannot take.
pub fn linear_slope(xs: &[f64], ys: &[f64], confidence: f64) -> Result<SlopeFit, StatsError> {
    if xs.len() != ys.len() {
        let m = format!("{} x values and {} y values", xs.len(), ys.len());
        return Err(StatsError::BadParameter(m));
    }
    let n = xs.len();
    if n < 3 {
        return Err(StatsError::TooFewSamples { got: n, need: 3 });
    }
    if let Some(v) = xs.iter().chain(ys).find(|v| !v.is_finite()) {
        return Err(StatsError::BadValue(format!("{v}: expected a finite value")));
    }
    let nf = n as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / nf, ys.iter().sum::<f64>() / nf);
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let syy: f64 = ys.iter().map(|y| (y - my).powi(2)).sum();
    if sxx == 0.0 {
        return Err(StatsError::BadValue("all x values are equal".into()));
    }
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    // Residuals directly, not Syy - slope * Sxy, which cancels catastrophically on exact fits.
    let sse: f64 = xs.iter().zip(ys).map(|(x, y)| (y - intercept - slope * x).powi(2)).sum();
    let se = (sse / (nf - 2.0) / sxx).sqrt();
    let half = t_quantile(confidence, nf - 2.0)? * se;
    let r_squared = if syy == 0.0 { 1.0 } else { 1.0 - sse / syy };
    let slope = Interval { estimate: slope, lo: slope - half, hi: slope + half, confidence };
    Ok(SlopeFit { slope, intercept, r_squared })
}

/// Whether our runs support a value reported in a paper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The paper's value (widened by the tolerance) overlaps our interval.
    Supported,
    /// Our interval excludes the paper's value even with the tolerance.
    NotSupported,
    /// We could not compute an interval.
    NotReproducible(String),
}

impl Verdict {
    /// Compares `ours` with `paper`: supported when `[paper * (1 - rel_tol), paper * (1 +
    /// rel_tol)]` overlaps the interval. `rel_tol = 0` asks that the interval contain the value.
    pub fn compare(ours: Result<Interval, StatsError>, paper: f64, rel_tol: f64) -> Verdict {
        let ci = match ours {
            Ok(ci) => ci,
            Err(e) => return Verdict::NotReproducible(e.to_string()),
        };
        if !(ci.lo.is_finite() && ci.hi.is_finite() && paper.is_finite()) {
            return Verdict::NotReproducible(format!("non-finite interval {ci} or value {paper}"));
        }
        let slack = (paper * rel_tol).abs();
        if ci.hi >= paper - slack && ci.lo <= paper + slack {
            Verdict::Supported
        } else {
            Verdict::NotSupported
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Supported => write!(f, "SUPPORTED"),
            Verdict::NotSupported => write!(f, "NOT SUPPORTED"),
            Verdict::NotReproducible(why) => write!(f, "NOT REPRODUCIBLE ({why})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compares with a named tolerance, printing both values to 15 digits.
    fn close(what: &str, ours: f64, expected: f64, tol: f64) {
        assert!(
            (ours - expected).abs() <= tol,
            "{what}: ours {ours:.15e} vs expected {expected:.15e} (tol {tol:e})"
        );
    }

    #[test]
    fn t_quantiles_match_tables() {
        // Standard t-table values.
        close("t(0.95, 9)", t_quantile(0.95, 9.0).unwrap(), 2.262157, 1e-6);
        close("t(0.99, 4)", t_quantile(0.99, 4.0).unwrap(), 4.604095, 1e-6);
        close("t(0.90, 30)", t_quantile(0.90, 30.0).unwrap(), 1.697261, 1e-6);
    }

    #[test]
    fn mean_ci_of_one_to_ten() {
        // mean 5.5, s = 3.0276504, s/sqrt(10) = 0.9574271, half width = 2.262157 * that.
        let xs: Vec<f64> = (1..=10).map(f64::from).collect();
        let ci = mean_ci(&xs, 0.95).unwrap();
        close("mean", ci.estimate, 5.5, 1e-12);
        close("lo", ci.lo, 3.334149, 1e-5);
        close("hi", ci.hi, 7.665851, 1e-5);
        assert_eq!(mean_ci(&[1.0], 0.95), Err(StatsError::TooFewSamples { got: 1, need: 2 }));
        assert!(mean_ci(&[1.0, f64::NAN], 0.95).is_err());
    }

    #[test]
    fn wilson_matches_known_values() {
        // 8 of 10 at 95%: (0.4901625, 0.9433178) (Wilson 1927; e.g. R's prop.test without
        // continuity correction).
        let ci = wilson(8, 10, 0.95).unwrap();
        close("lo", ci.lo, 0.4901625, 1e-6);
        close("hi", ci.hi, 0.9433178, 1e-6);
        let zero = wilson(0, 20, 0.95).unwrap();
        close("lo(0/20)", zero.lo, 0.0, 1e-12);
        close("hi(0/20)", zero.hi, 0.1611252, 1e-6);
    }

    #[test]
    fn clopper_pearson_matches_known_values() {
        // R: binom.test(8, 10)$conf.int = 0.4439045 0.9747893.
        let ci = clopper_pearson(8, 10, 0.95).unwrap();
        close("lo", ci.lo, 0.4439045, 1e-6);
        close("hi", ci.hi, 0.9747893, 1e-6);
        // 0 of 10: upper bound 1 - 0.025^(1/10) = 0.3084971.
        let zero = clopper_pearson(0, 10, 0.95).unwrap();
        close("hi(0/10)", zero.hi, 0.3084971, 1e-6);
        assert_eq!(clopper_pearson(10, 10, 0.95).unwrap().hi, 1.0);
        assert!(clopper_pearson(11, 10, 0.95).is_err());
    }

    #[test]
    fn loglog_slope_recovers_exponent() {
        let xs = [1.0, 2.0, 4.0, 8.0, 16.0];
        let ys: Vec<f64> = xs.iter().map(|x: &f64| 3.0 * x.powi(2)).collect();
        let fit = loglog_slope(&xs, &ys, 0.95).unwrap();
        close("slope", fit.slope.estimate, 2.0, 1e-12);
        close("width", fit.slope.hi - fit.slope.lo, 0.0, 1e-9);
        close("intercept", fit.intercept, 3f64.ln(), 1e-12);
        close("r2", fit.r_squared, 1.0, 1e-12);
    }

    #[test]
    fn linear_slope_of_a_line_and_of_noise() {
        let xs = [10.0, 20.0, 30.0, 40.0];
        let fit = linear_slope(&xs, &[3.0, 5.0, 7.0, 9.0], 0.95).unwrap();
        assert!((fit.slope.estimate - 0.2).abs() < 1e-12 && fit.slope.hi - fit.slope.lo < 1e-9);
        assert!((fit.intercept - 1.0).abs() < 1e-9);
        // Flat data with scatter: the interval contains 0; zeros are allowed.
        let fit = linear_slope(&xs, &[0.0, 2.0, 0.0, 2.0], 0.95).unwrap();
        assert!(fit.slope.lo < 0.0 && fit.slope.hi > 0.0, "{:?}", fit.slope);
        assert!(linear_slope(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0], 0.95).is_err());
        assert!(linear_slope(&[1.0, 2.0, 3.0], &[1.0, f64::NAN, 3.0], 0.95).is_err());
    }

    #[test]
    fn loglog_slope_interval_matches_hand_computation() {
        // ln x = 0, 1, 2, 3 (x = e^k); ln y = 0, 1, 1, 3. Sxx = 5, Sxy = 4.5, slope = 0.9,
        // SSE = Syy - slope*Sxy = 4.75 - 4.05 = 0.7, se = sqrt(0.7 / 2 / 5) = 0.2645751,
        // t(0.95, 2) = 4.302653, half width = 1.138375.
        let xs: Vec<f64> = (0..4).map(|k| f64::from(k).exp()).collect();
        let ys: Vec<f64> = [0.0f64, 1.0, 1.0, 3.0].iter().map(|v| v.exp()).collect();
        let fit = loglog_slope(&xs, &ys, 0.95).unwrap();
        close("slope", fit.slope.estimate, 0.9, 1e-12);
        close("lo", fit.slope.lo, 0.9 - 1.138375, 1e-5);
        close("hi", fit.slope.hi, 0.9 + 1.138375, 1e-5);
        assert!(loglog_slope(&[1.0, 2.0], &[1.0, 2.0], 0.95).is_err());
        assert!(loglog_slope(&[1.0, 2.0, -1.0], &[1.0, 2.0, 3.0], 0.95).is_err());
    }

    #[test]
    fn verdicts() {
        let ci = Interval { estimate: 1.0, lo: 0.9, hi: 1.1, confidence: 0.95 };
        assert_eq!(Verdict::compare(Ok(ci), 1.05, 0.0), Verdict::Supported);
        assert_eq!(Verdict::compare(Ok(ci), 1.2, 0.0), Verdict::NotSupported);
        assert_eq!(Verdict::compare(Ok(ci), 1.2, 0.1), Verdict::Supported);
        let v = Verdict::compare(mean_ci(&[1.0], 0.95), 1.0, 0.0);
        assert!(matches!(v, Verdict::NotReproducible(_)));
        assert_eq!(v.to_string(), "NOT REPRODUCIBLE (1 samples; at least 2 needed)");
        assert_eq!(Verdict::Supported.to_string(), "SUPPORTED");
    }
}
