//! Fitting the spec's step-time models to a table of measured iterations.
//!
//! A measurement is a [`Sample`]: a batch shape (the spec's [`BatchShape`]) and its time. Two
//! fits, both ordinary least squares ([`crate::lsq`]):
//! - [`fit_affine`]: the WAIT paper's law `tau = d0 + d1 * K` in attended KV tokens `K`.
//! - [`fit_rich`]: the spec's rich model,
//!   `base + prefill * P + attn * A2 + decode * D + kv * K + tokenwise(P + D)`, with the
//!   token-wise term piecewise linear between given knots (hinge basis). Terms that come out
//!   negative are dropped and the fit repeated, because the spec requires non-negative
//!   coefficients; terms the data cannot identify are dropped too.
//! - [`fit_rich_on_tokenwise`]: the same model with the token-wise term **given** (a measured
//!   token-wise curve, e.g. Vidur's token-wise profile) rather than fitted: the other terms are
//!   fitted to what is left of each sample. When the samples are composed as token-wise ops plus
//!   attention kernels (the Vidur route), the remainder is the attention part alone, and a free
//!   token-wise term would absorb whatever attention the linear terms miss (prefill attention
//!   above all); on Vidur's Llama-2-7B profile that put `base + tokenwise` 8-18 % above the
//!   token-wise data between 128 and 4,096 batch tokens (BENCHMARKS.md, "Step time against
//!   Vidur").
//!
//! Fit quality is R² and MAPE overall and per region ([`region_fit`]).

use crate::lsq::lstsq;
use kvsched_spec::calibration::{FitQuality, RegionFit};
use kvsched_spec::{BatchShape, StepTime};

/// One measured iteration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// The batch.
    pub shape: BatchShape,
    /// Its measured time (seconds).
    pub time_s: f64,
}

impl Sample {
    /// Batch tokens: prefill tokens plus decode requests (the token-wise term's argument).
    pub fn batch_tokens(&self) -> u64 {
        self.shape.prefill_tokens + self.shape.decode_requests
    }
}

/// A fitted model with its residuals (`measured - predicted`, seconds, in sample order).
#[derive(Clone, Debug, PartialEq)]
pub struct Fitted {
    /// The model.
    pub step_time: StepTime,
    /// Overall quality (no regions; add them with [`region_fit`]).
    pub quality: FitQuality,
    /// Residuals.
    pub residuals: Vec<f64>,
}

/// Piecewise-linear interpolation as the spec does it: flat before the first point, extrapolated
/// along the last segment, never negative.
fn interpolate(points: &[(u64, f64)], x: u64) -> f64 {
    match points.len() {
        0 => 0.0,
        1 => points[0].1,
        _ if x <= points[0].0 => points[0].1,
        n => {
            let seg = points.windows(2).position(|w| x <= w[1].0).unwrap_or(n - 2);
            let ((x0, y0), (x1, y1)) = (points[seg], points[seg + 1]);
            let y = y0 + (y1 - y0) * (x as f64 - x0 as f64) / (x1 as f64 - x0 as f64);
            y.max(0.0)
        }
    }
}

/// The model's time for `shape` in seconds, in `f64` (the spec computes the same in integer
/// attoseconds).
pub fn predict(model: &StepTime, shape: &BatchShape) -> f64 {
    match model {
        StepTime::UnitRounds => 1.0,
        StepTime::Affine { d0_s, d1_s_per_token } => {
            d0_s + d1_s_per_token * shape.attended_kv_tokens as f64
        }
        StepTime::Rich {
            base_s,
            prefill_s_per_token,
            prefill_attn_s_per_token2,
            decode_s_per_request,
            kv_s_per_token,
            tokenwise,
        } => {
            base_s
                + prefill_s_per_token * shape.prefill_tokens as f64
                + prefill_attn_s_per_token2 * shape.prefill_attn_token2 as f64
                + decode_s_per_request * shape.decode_requests as f64
                + kv_s_per_token * shape.attended_kv_tokens as f64
                + interpolate(tokenwise, shape.prefill_tokens + shape.decode_requests)
        }
    }
}

/// R² and MAPE of predictions `pred` against measurements `y`.
pub fn r2_mape(y: &[f64], pred: &[f64]) -> (f64, f64) {
    let n = y.len().max(1) as f64;
    let mean = y.iter().sum::<f64>() / n;
    let ss_tot: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    let ss_res: f64 = y.iter().zip(pred).map(|(v, p)| (v - p).powi(2)).sum();
    let r2 = if ss_tot > 0.0 {
        1.0 - ss_res / ss_tot
    } else if ss_res == 0.0 {
        1.0
    } else {
        0.0
    };
    let mape = y.iter().zip(pred).map(|(v, p)| ((v - p) / v).abs()).sum::<f64>() / n;
    (r2, mape)
}

/// Largest and median relative error `|pred - y| / y` (`None`, `None` without points).
pub fn rel_err_max_median(y: &[f64], pred: &[f64]) -> (Option<f64>, Option<f64>) {
    let mut e: Vec<f64> = y.iter().zip(pred).map(|(v, p)| ((p - v) / v).abs()).collect();
    if e.is_empty() {
        return (None, None);
    }
    e.sort_by(f64::total_cmp);
    let n = e.len();
    let median = if n % 2 == 1 { e[n / 2] } else { (e[n / 2 - 1] + e[n / 2]) / 2.0 };
    (Some(e[n - 1]), Some(median))
}

/// Quality of `model` over `samples`, with residuals.
pub fn evaluate(model: &StepTime, samples: &[Sample], range: &str) -> Fitted {
    let y: Vec<f64> = samples.iter().map(|s| s.time_s).collect();
    let pred: Vec<f64> = samples.iter().map(|s| predict(model, &s.shape)).collect();
    let (r2, mape) = r2_mape(&y, &pred);
    let (max_rel_err, median_rel_err) = rel_err_max_median(&y, &pred);
    Fitted {
        step_time: model.clone(),
        quality: FitQuality {
            r2,
            mape,
            points: samples.len() as u64,
            max_rel_err,
            median_rel_err,
            range: range.to_string(),
            notes: String::new(),
            regions: Vec::new(),
        },
        residuals: y.iter().zip(&pred).map(|(v, p)| v - p).collect(),
    }
}

/// Quality of `model` over the samples that satisfy `keep`, or `None` when there are none.
pub fn region_fit(
    model: &StepTime,
    samples: &[Sample],
    name: &str,
    range: &str,
    keep: impl Fn(&Sample) -> bool,
) -> Option<RegionFit> {
    let sub: Vec<Sample> = samples.iter().copied().filter(|s| keep(s)).collect();
    if sub.is_empty() {
        return None;
    }
    let q = evaluate(model, &sub, range).quality;
    Some(RegionFit {
        name: name.to_string(),
        range: range.to_string(),
        points: q.points,
        r2: q.r2,
        mape: q.mape,
    })
}

fn check_samples(samples: &[Sample]) -> Result<(), String> {
    if samples.len() < 2 {
        return Err(format!("fit: expected at least 2 samples, got {}", samples.len()));
    }
    if let Some(s) = samples.iter().find(|s| !(s.time_s.is_finite() && s.time_s > 0.0)) {
        return Err(format!("fit: expected positive finite times, got {} s", s.time_s));
    }
    Ok(())
}

/// Fits `tau = d0 + d1 * attended KV tokens` by least squares.
pub fn fit_affine(samples: &[Sample], range: &str) -> Result<Fitted, String> {
    check_samples(samples)?;
    let ones = vec![1.0; samples.len()];
    let k: Vec<f64> = samples.iter().map(|s| s.shape.attended_kv_tokens as f64).collect();
    let y: Vec<f64> = samples.iter().map(|s| s.time_s).collect();
    let sol = lstsq(&[ones, k], &y)?;
    let model = StepTime::Affine { d0_s: sol.get(0), d1_s_per_token: sol.get(1) };
    if model.compile().is_err() {
        return Err(format!("fit: affine fit is not a valid model (negative term): {model:?}"));
    }
    Ok(evaluate(&model, samples, range))
}

/// Which linear terms of the rich model to fit, besides the constant.
#[derive(Clone, Debug, PartialEq)]
pub struct RichTerms {
    /// Per prefill token.
    pub prefill: bool,
    /// Per (chunk x context) pair.
    pub prefill_attn: bool,
    /// Per decode request.
    pub decode: bool,
    /// Per attended KV token.
    pub kv: bool,
    /// Knots of the token-wise term in batch tokens (empty: no token-wise term). The term is
    /// flat up to the first knot.
    pub knots: Vec<u64>,
}

impl RichTerms {
    /// All linear terms, with the given knots.
    pub fn all(knots: Vec<u64>) -> RichTerms {
        RichTerms { prefill: true, prefill_attn: true, decode: true, kv: true, knots }
    }
}

/// Default knots for the token-wise term: the smallest batch-token count, then `2^k` and
/// `3 * 2^k` inside the range, each kept only when the segment it closes and the data above it
/// both hold at least two distinct batch-token counts (so every hinge is identifiable).
pub fn default_knots(samples: &[Sample]) -> Vec<u64> {
    let mut xs: Vec<u64> = samples.iter().map(Sample::batch_tokens).collect();
    xs.sort_unstable();
    xs.dedup();
    let (Some(&lo), Some(&hi)) = (xs.first(), xs.last()) else { return Vec::new() };
    let mut cand: Vec<u64> = (0..40).flat_map(|k| [1u64 << k, 3u64 << k]).collect();
    cand.retain(|&c| c > lo && c < hi);
    cand.sort_unstable();
    let count = |a: u64, b: u64| xs.iter().filter(|&&x| x >= a && x < b).count();
    let mut knots = vec![lo];
    for c in cand {
        let last = knots[knots.len() - 1];
        if count(last, c) >= 2 && count(c, hi + 1) >= 2 {
            knots.push(c);
        }
    }
    knots
}

/// The linear terms of the rich model, in the order they are fitted (after the constant and the
/// hinges): prefill tokens, prefill attention pairs, KV tokens, decode requests.
fn linear_term(shape: &BatchShape, term: usize) -> f64 {
    match term {
        0 => shape.prefill_tokens as f64,
        1 => shape.prefill_attn_token2 as f64,
        2 => shape.attended_kv_tokens as f64,
        _ => shape.decode_requests as f64,
    }
}

/// Token-wise breakpoints from hinge coefficients: the value at each knot and at `x_max`.
fn tokenwise_points(knots: &[u64], hinge: &[f64], x_max: u64) -> Vec<(u64, f64)> {
    let mut xs: Vec<u64> = knots.to_vec();
    if xs.last().is_some_and(|&k| x_max > k) {
        xs.push(x_max);
    }
    xs.iter()
        .map(|&x| {
            let v: f64 =
                knots.iter().zip(hinge).map(|(&k, c)| c * (x as f64 - k as f64).max(0.0)).sum();
            (x, v)
        })
        .collect()
}

/// One least-squares solve of the rich model with the linear terms in `active`; returns
/// `(base, hinge coefficients, linear coefficients)`.
fn solve_rich(
    samples: &[Sample],
    knots: &[u64],
    active: &[bool; 4],
) -> Result<(f64, Vec<f64>, [f64; 4]), String> {
    let mut cols = vec![vec![1.0; samples.len()]];
    for &k in knots {
        cols.push(samples.iter().map(|s| (s.batch_tokens() as f64 - k as f64).max(0.0)).collect());
    }
    let terms: Vec<usize> = (0..4).filter(|&t| active[t]).collect();
    for &t in &terms {
        cols.push(samples.iter().map(|s| linear_term(&s.shape, t)).collect());
    }
    let y: Vec<f64> = samples.iter().map(|s| s.time_s).collect();
    let sol = lstsq(&cols, &y)?;
    let hinge: Vec<f64> = (0..knots.len()).map(|i| sol.get(1 + i)).collect();
    let mut lin = [0.0; 4];
    for (j, &t) in terms.iter().enumerate() {
        lin[t] = sol.get(1 + knots.len() + j);
    }
    Ok((sol.get(0), hinge, lin))
}

/// Fits the rich model (see the module docs). Negative linear terms are dropped, most negative
/// contribution first, and the fit repeated.
pub fn fit_rich(samples: &[Sample], terms: &RichTerms, range: &str) -> Result<Fitted, String> {
    check_samples(samples)?;
    let mut knots = terms.knots.clone();
    knots.sort_unstable();
    knots.dedup();
    let mut active = [terms.prefill, terms.prefill_attn, terms.kv, terms.decode];
    let n = samples.len() as f64;
    let mean: Vec<f64> =
        (0..4).map(|t| samples.iter().map(|s| linear_term(&s.shape, t)).sum::<f64>() / n).collect();
    let (base, hinge, lin) = loop {
        let (base, hinge, lin) = solve_rich(samples, &knots, &active)?;
        let worst = (0..4)
            .filter(|&t| active[t] && lin[t] < 0.0)
            .min_by(|&a, &b| (lin[a] * mean[a]).total_cmp(&(lin[b] * mean[b])));
        match worst {
            Some(t) => active[t] = false,
            None => break (base, hinge, lin),
        }
    };
    let x_max = samples.iter().map(Sample::batch_tokens).max().unwrap_or(0);
    let mut tokenwise = tokenwise_points(&knots, &hinge, x_max);
    // A constant moves freely between base and the token-wise term: keep the latter >= 0.
    let min_tw = tokenwise.iter().map(|p| p.1).fold(0.0, f64::min);
    tokenwise.iter_mut().for_each(|p| p.1 -= min_tw);
    let model = StepTime::Rich {
        base_s: (base + min_tw).max(0.0),
        prefill_s_per_token: lin[0],
        prefill_attn_s_per_token2: lin[1],
        decode_s_per_request: lin[3],
        kv_s_per_token: lin[2],
        tokenwise,
    };
    model.compile().map_err(|e| format!("fit: rich fit is not a valid model: {e}"))?;
    Ok(evaluate(&model, samples, range))
}

/// Fits the rich model with its token-wise term fixed to `tokenwise` (breakpoints in batch
/// tokens and seconds, sorted, as the spec interpolates them): the constant and the linear terms
/// of `terms` (its knots are ignored) are fitted by least squares to `time - tokenwise(batch
/// tokens)`, negative terms dropped as in [`fit_rich`]; a negative constant is moved into the
/// token-wise term so that every coefficient stays >= 0.
pub fn fit_rich_on_tokenwise(
    samples: &[Sample],
    tokenwise: &[(u64, f64)],
    terms: &RichTerms,
    range: &str,
) -> Result<Fitted, String> {
    check_samples(samples)?;
    if tokenwise.windows(2).any(|w| w[1].0 <= w[0].0) {
        return Err("fit: token-wise curve: expected strictly increasing token counts".into());
    }
    let rest: Vec<Sample> = samples
        .iter()
        .map(|s| Sample { time_s: s.time_s - interpolate(tokenwise, s.batch_tokens()), ..*s })
        .collect();
    let mut active = [terms.prefill, terms.prefill_attn, terms.kv, terms.decode];
    let n = samples.len() as f64;
    let mean: Vec<f64> =
        (0..4).map(|t| samples.iter().map(|s| linear_term(&s.shape, t)).sum::<f64>() / n).collect();
    let (base, lin) = loop {
        let (base, _, lin) = solve_rich(&rest, &[], &active)?;
        let worst = (0..4)
            .filter(|&t| active[t] && lin[t] < 0.0)
            .min_by(|&a, &b| (lin[a] * mean[a]).total_cmp(&(lin[b] * mean[b])));
        match worst {
            Some(t) => active[t] = false,
            None => break (base, lin),
        }
    };
    let shift = base.min(0.0);
    let model = StepTime::Rich {
        base_s: base - shift,
        prefill_s_per_token: lin[0],
        prefill_attn_s_per_token2: lin[1],
        decode_s_per_request: lin[3],
        kv_s_per_token: lin[2],
        tokenwise: tokenwise.iter().map(|&(x, y)| (x, (y + shift).max(0.0))).collect(),
    };
    model.compile().map_err(|e| format!("fit: rich fit is not a valid model: {e}"))?;
    Ok(evaluate(&model, samples, range))
}

/// The end of the flat region of a curve `(x, y)`: the largest `x` such that every point at or
/// below it is within `tol` (a fraction) of the value at the smallest `x`.
pub fn flat_region_end(points: &[(u64, f64)], tol: f64) -> u64 {
    let mut pts = points.to_vec();
    pts.sort_by_key(|p| p.0);
    let Some(&(x0, y0)) = pts.first() else { return 0 };
    let mut end = x0;
    for &(x, y) in &pts {
        if (y - y0).abs() > tol * y0 {
            break;
        }
        end = x;
    }
    end
}

#[cfg(test)]
mod tests;
