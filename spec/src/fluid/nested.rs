//! Nested WAIT quantities (WAIT paper §5, `unknown_type.tex`, Algorithm 2 and Theorem 2).
//!
//! Output lengths `l'_1 < ... < l'_m` with rates `lambda_k` (classes with equal outputs are
//! merged; see [`Segments::from_outputs`]), common prefill `l` (heterogeneous prompts: use an
//! upper bound, as the paper's appendix does with `l-bar_k`), `l'_0 = 0`.
//! - Segment `k` covers decode stages `l'_{k-1}+1 .. l'_k` (segment 1: stages `0 .. l'_1`).
//! - `Lambda_k = sum_{j >= k} lambda_j`; continuation probability `p_k = Lambda_k / Lambda_{k-1}`.
//! - Base memory `M^pi = sum_k n_k (l + sbar_k) delta_k` with `delta_1 = l'_1 + 1`,
//!   `sbar_1 = l'_1 / 2`, `delta_k = l'_k - l'_{k-1}`, `sbar_k = (l'_{k-1} + 1 + l'_k) / 2`;
//!   `dT(n) = d0 + d1 M^pi`.
//! - Drift conditions (Eq. nested_wait_thresholds): `dT(n) < n_1 / Lambda_1` and
//!   `p_k < n_k / n_{k-1} < 1` for `k >= 2` (`n_k >= n_{k-1}`: the boundary queue is
//!   deterministically bounded, and the buffer term is 0).
//! - `theta_k > 0` is the root of `exp(-theta n_k) (1 - p_k + p_k e^theta)^{n_{k-1}} = 1`
//!   ([`theta`]).
//! - Required memory (Eq. nested_wait_memory_total):
//!   `M_req = M^pi + sum_{k>=2} (l + l'_{k-1}) (n_k + ln(m (1 + zeta T / d0) / delta) / theta_k)`.
//!
//! **The lower bound** `theta_k >= 8 (n_k - n_{k-1} p_k) / n_{k-1}` quoted in the notes is true:
//! by Hoeffding's lemma `ln(1 - p + p e^t) <= p t + t^2 / 8`, so the root's equation
//! `n_{k-1} ln(1 - p + p e^t) = n_k t` has no solution below that bound. It is tight only near
//! `p = 1/2`; near criticality the root is `~ 2 (n_k - n_{k-1} p) / (n_{k-1} p (1 - p))`.
//! [`theta`] checks it on every call ([`Theta::lower_bound`]).

use serde::Serialize;

/// The Nested WAIT segments of a set of output lengths.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Segments {
    /// Common prefill length `l` (tokens).
    pub prompt_tokens: f64,
    /// `l'_k`, strictly increasing.
    pub outputs: Vec<u64>,
    /// `lambda_k` (requests per second) for output `l'_k`.
    pub rates: Vec<f64>,
}

impl Segments {
    /// Sorts `(output, rate)` pairs by output, merges equal outputs, drops zero rates (segments
    /// with `p_k = 0` are dropped, as the paper allows). `None` if no positive rate remains.
    pub fn from_outputs(prompt_tokens: f64, pairs: &[(u64, f64)]) -> Option<Segments> {
        let mut v: Vec<(u64, f64)> = pairs.iter().copied().filter(|p| p.1 > 0.0).collect();
        v.sort_by_key(|p| p.0);
        let mut outputs: Vec<u64> = Vec::new();
        let mut rates: Vec<f64> = Vec::new();
        for (o, r) in v {
            if outputs.last() == Some(&o) {
                *rates.last_mut()? += r;
            } else {
                outputs.push(o);
                rates.push(r);
            }
        }
        (!outputs.is_empty()).then_some(Segments { prompt_tokens, outputs, rates })
    }

    /// The segments of fluid inputs: one per distinct output length, with the common prefill
    /// taken as the largest prompt (the conservative per-segment bound `l-bar` of the paper's
    /// appendix, here shared by all segments).
    pub fn from_inputs(inputs: &super::FluidInputs) -> Option<Segments> {
        let l = inputs.classes.iter().map(|c| c.prompt_tokens).max()? as f64;
        let pairs: Vec<(u64, f64)> =
            inputs.classes.iter().map(|c| (c.output_tokens, c.rate_per_s)).collect();
        Segments::from_outputs(l, &pairs)
    }

    /// Number of segments `m`.
    pub fn len(&self) -> usize {
        self.outputs.len()
    }

    /// Whether there are no segments (never, for a value built by `from_outputs`).
    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
    }

    /// `Lambda_k = sum_{j >= k} lambda_j` (0-based `k`).
    pub fn tail_rates(&self) -> Vec<f64> {
        let mut out = self.rates.clone();
        for k in (0..out.len().saturating_sub(1)).rev() {
            out[k] += out[k + 1];
        }
        out
    }

    /// `p_k = Lambda_k / Lambda_{k-1}` for 0-based `k >= 1`; `p[0] = 1` by convention.
    pub fn continuation(&self) -> Vec<f64> {
        let t = self.tail_rates();
        (0..t.len()).map(|k| if k == 0 { 1.0 } else { t[k] / t[k - 1] }).collect()
    }

    /// `(delta_k, sbar_k)` for each segment (module docs).
    pub fn widths(&self) -> Vec<(f64, f64)> {
        let mut prev = 0u64;
        let mut out = Vec::with_capacity(self.len());
        for (k, &o) in self.outputs.iter().enumerate() {
            out.push(if k == 0 {
                (o as f64 + 1.0, o as f64 / 2.0)
            } else {
                ((o - prev) as f64, (prev as f64 + 1.0 + o as f64) / 2.0)
            });
            prev = o;
        }
        out
    }

    /// `M^pi = sum_k n_k (l + sbar_k) delta_k` for per-stage thresholds `n` (one per segment).
    pub fn base_memory(&self, n: &[f64]) -> f64 {
        self.widths().iter().zip(n).map(|(&(d, s), &nk)| nk * (self.prompt_tokens + s) * d).sum()
    }
}

/// `ln(1 - p + p e^t)` in log space, accurate for small and large `t` (`0 < p < 1`, `t >= 0`).
fn ln_mgf(p: f64, t: f64) -> f64 {
    if t < 1.0 {
        (p * t.exp_m1()).ln_1p()
    } else {
        t + (p + (1.0 - p) * (-t).exp()).ln()
    }
}

/// The root `theta_k` and its check.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Theta {
    /// The positive root; `None` when there is none (`n_k >= n_{k-1}`: bounded queue).
    pub root: Option<f64>,
    /// The notes' lower bound `8 (n_k - n_{k-1} p_k) / n_{k-1}`.
    pub lower_bound: f64,
    /// `root >= lower_bound` (up to `1e-12` relative); `true` when there is no root.
    pub bound_holds: bool,
}

/// Solves `exp(-theta n_k) (1 - p + p e^theta)^{n_prev} = 1` for `theta > 0`.
///
/// Requires `0 < p < 1`, `n_prev > 0` and `p n_prev < n_k` (negative drift); returns `None`
/// otherwise. Method: the function `g(t) = n_prev ln(1 - p + p e^t) / t - n_k` is increasing in
/// `t` (the log-MGF is convex and vanishes at 0), `g(0+) = n_prev p - n_k < 0`, and
/// `g(t) > 0` for `t > n_prev ln(1/p) / (n_prev - n_k)` when `n_k < n_prev`; bisection on that
/// bracket to the last bit.
pub fn theta(p: f64, n_prev: f64, n_k: f64) -> Option<Theta> {
    let ok = p > 0.0 && p < 1.0 && n_prev > 0.0 && n_k.is_finite() && p * n_prev < n_k;
    if !ok {
        return None;
    }
    let lower_bound = 8.0 * (n_k - n_prev * p) / n_prev;
    if n_k >= n_prev {
        return Some(Theta { root: None, lower_bound, bound_holds: true });
    }
    let g = |t: f64| n_prev * ln_mgf(p, t) / t - n_k;
    let mut hi = n_prev * (1.0 / p).ln() / (n_prev - n_k) + 1.0;
    while g(hi) <= 0.0 {
        hi *= 2.0;
    }
    let mut lo = 0.0f64;
    for _ in 0..2000 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if lo == 0.0 && mid < 1e-300 {
            break;
        }
        if g(mid) > 0.0 {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let root = 0.5 * (lo + hi);
    let bound_holds = root >= lower_bound * (1.0 - 1e-12);
    Some(Theta { root: Some(root), lower_bound, bound_holds })
}

/// Parameters of the safety buffer `ln(m (1 + zeta T / d0) / delta)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BufferParams {
    /// Horizon `T` (seconds, unscaled).
    pub horizon_s: f64,
    /// Scale `zeta >= 1` (1 for calendar time).
    pub zeta: f64,
    /// Number of boundaries in the union bound `m` (usually the segment count).
    pub segments: usize,
    /// Failure probability `delta` in `(0, 1)`.
    pub delta: f64,
}

impl BufferParams {
    /// `ln(m (1 + zeta T / d0) / delta)`.
    pub fn log_factor(&self, d0_s: f64) -> f64 {
        (self.segments as f64 * (1.0 + self.zeta * self.horizon_s / d0_s) / self.delta).ln()
    }
}

/// The Nested WAIT check of per-stage thresholds `n_k`: drift conditions and `M_req`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NestedCheck {
    /// `p_k` (entry 0 is 1).
    pub continuation: Vec<f64>,
    /// `M^pi`.
    pub base_memory_tokens: f64,
    /// `dT(n) = d0 + d1 M^pi`.
    pub iteration_time_s: f64,
    /// `dT(n) < n_1 / Lambda_1`.
    pub entry_drift_ok: bool,
    /// For `k >= 2` (index `k - 1`): `p_k < n_k / n_{k-1} < 1`, or `n_k >= n_{k-1} > 0`
    /// (bounded queue). Entry 0 is `true`.
    pub boundary_drift_ok: Vec<bool>,
    /// `theta_k` for `k >= 2` (entry 0 is `None`; `None` also where the drift fails).
    pub theta: Vec<Option<Theta>>,
    /// `M_req`, `None` when a drift condition fails (no finite buffer).
    pub required_memory_tokens: Option<f64>,
}

/// Evaluates the drift conditions and `M_req` for thresholds `n` (one per segment).
pub fn check_thresholds(
    seg: &Segments,
    n: &[f64],
    d0_s: f64,
    d1_s_per_token: f64,
    buffer: &BufferParams,
) -> NestedCheck {
    assert_eq!(n.len(), seg.len(), "one threshold per segment");
    let p = seg.continuation();
    let base = seg.base_memory(n);
    let dt = d0_s + d1_s_per_token * base;
    let entry_drift_ok = dt < n[0] / seg.tail_rates()[0];
    let mut boundary = vec![true];
    let mut thetas = vec![None];
    let mut buf = Some(0.0);
    let log = buffer.log_factor(d0_s);
    for k in 1..seg.len() {
        let th = theta(p[k], n[k - 1], n[k]);
        let ok = th.is_some();
        let weight = seg.prompt_tokens + seg.outputs[k - 1] as f64;
        buf = match (buf, th.map(|t| t.root)) {
            (Some(b), Some(Some(r))) => Some(b + weight * (n[k] + log / r)),
            (Some(b), Some(None)) => Some(b + weight * n[k]),
            _ => None,
        };
        boundary.push(ok);
        thetas.push(th);
    }
    NestedCheck {
        continuation: p,
        base_memory_tokens: base,
        iteration_time_s: dt,
        entry_drift_ok,
        boundary_drift_ok: boundary,
        theta: thetas,
        required_memory_tokens: buf.map(|b| base + b),
    }
}
