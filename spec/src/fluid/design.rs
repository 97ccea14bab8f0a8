//! Threshold design for the WAIT and Nested WAIT schedulers (WAIT paper §5 and §6; notes §3).
//!
//! Two families:
//! - **Fluid design** ([`fluid_design`], WAIT Algorithm 1): `n_j = ceil(tau lambda_j)` for a
//!   common scale `tau >= dT*`, re-checked against the WAIT conditions (Eq. wait_thresholds):
//!   (i) load balance `dT(n) <= n_j / lambda_j` for every class with `lambda_j > 0`, and
//!   (ii) memory `M* <= M^pi <= C`, with `M^pi = sum_j n_j S_j`, `dT(n) = d0 + d1 M^pi`.
//!   The real-valued design `n_j = tau lambda_j` satisfies both iff `dT* <= tau` and
//!   `tau A <= C`, so it exists iff `M* <= C` ([`fluid_design_real`]). Rounding up can break
//!   (i); the integer design therefore iterates `tau <- dT(ceil(tau lambda))`, which increases,
//!   stops after finitely many steps, and never exceeds
//!   `tau_bar = (d0 + d1 sum_j S_j) / (1 - d1 A)` (sum over classes with `lambda_j > 0`). So it
//!   succeeds whenever `C >= tau_bar A + sum_j S_j` ([`integer_capacity_bound`]); between `M*`
//!   and that bound it may report [`DesignError::RoundingExceedsCapacity`].
//! - **The experiments' knob `tl`** (notes §3.3): [`tl_single`] spreads `tl` evenly over the
//!   `K + l'` stages of one type (chunked prefill of `cs` tokens gives `K = ceil(l / cs)`);
//!   [`tl_nested`] sets `q_k = min(p_k + seg_margin, 0.99)`, `n_k = n_1 prod_{r<k} q_r` and
//!   `n_1` from `sum_k (r_k - r_{k-1}) n_k = tl`, with caps `B_k = round((r_k - r_{k-1}) n_k)`
//!   spread over the segment's stages.
//!
//! By Little's law the fluid design's total population is `sum_j n_j (l'_j + 1)`, which is the
//! `tl` that corresponds to it ([`WaitDesign::total_limit`]).

use super::{FluidInputs, FluidSolution};
use serde::Serialize;

/// Why no threshold vector was produced.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum DesignError {
    /// `d1 A >= 1`: no equilibrium.
    Unbounded,
    /// `M* > C`: no threshold vector satisfies (ii) at all.
    MemoryBound {
        /// `M*` (tokens).
        m_star: f64,
    },
    /// `M* <= C` but the integer design needs more than `C`.
    RoundingExceedsCapacity {
        /// `M^pi` of the integer design (tokens).
        m_pi: f64,
    },
    /// A bad argument (the message names it).
    BadArgument(String),
}

/// A WAIT threshold vector with its checks.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WaitDesign {
    /// The scale `tau` used (seconds).
    pub tau_s: f64,
    /// Per-stage thresholds `n_j`, one per class (0 for classes with `lambda_j = 0`).
    pub n: Vec<f64>,
    /// `M^pi = sum_j n_j S_j` (tokens).
    pub m_pi_tokens: f64,
    /// `dT(n) = d0 + d1 M^pi` (seconds).
    pub iteration_time_s: f64,
    /// `min_j n_j / lambda_j - dT(n)` over classes with `lambda_j > 0` (`>= 0`; `> 0` is strict
    /// slack, Theorem 1's O(1)-delay regime).
    pub slack_s: f64,
}

impl WaitDesign {
    /// `tl = sum_j n_j (l'_j + 1)`: requests in service across all stages.
    pub fn total_limit(&self, inputs: &FluidInputs) -> f64 {
        self.n.iter().zip(&inputs.classes).map(|(n, c)| n * (c.output_tokens as f64 + 1.0)).sum()
    }
}

/// Checks the WAIT conditions (i) and (ii) for thresholds `n`; returns `(M^pi, dT(n), slack)`,
/// or `None` when (i) or (ii) fails. `tol` is a relative tolerance for float round-off.
pub fn wait_conditions(inputs: &FluidInputs, n: &[f64], tol: f64) -> Option<(f64, f64, f64)> {
    let sol = FluidSolution::solve(inputs);
    let m_star = sol.memory_tokens?;
    let m_pi: f64 = n.iter().zip(&inputs.classes).map(|(n, c)| n * c.mass()).sum();
    let dt = inputs.d0_s + inputs.d1_s_per_token * m_pi;
    let slack = inputs
        .classes
        .iter()
        .zip(n)
        .filter(|(c, _)| c.rate_per_s > 0.0)
        .map(|(c, n)| n / c.rate_per_s - dt)
        .fold(f64::INFINITY, f64::min);
    let mem_ok = m_star <= m_pi * (1.0 + tol) && m_pi <= inputs.capacity_tokens * (1.0 + tol);
    (slack >= -tol * dt && mem_ok).then_some((m_pi, dt, slack))
}

fn precheck(inputs: &FluidInputs, tau: Option<f64>) -> Result<f64, DesignError> {
    let sol = FluidSolution::solve(inputs);
    let dt = sol.iteration_time_s.ok_or(DesignError::Unbounded)?;
    let m = sol.memory_tokens.ok_or(DesignError::Unbounded)?;
    if m > inputs.capacity_tokens {
        return Err(DesignError::MemoryBound { m_star: m });
    }
    match tau {
        None => Ok(dt),
        Some(t) if t.is_finite() && t >= dt && t * inputs.load() <= inputs.capacity_tokens => Ok(t),
        Some(t) => {
            let hi = inputs.capacity_tokens / inputs.load();
            let m = format!("tau = {t}: expected dT* = {dt} <= tau <= C / A = {hi}");
            Err(DesignError::BadArgument(m))
        }
    }
}

fn build(inputs: &FluidInputs, tau: f64, n: Vec<f64>) -> Result<WaitDesign, DesignError> {
    let m_pi: f64 = n.iter().zip(&inputs.classes).map(|(n, c)| n * c.mass()).sum();
    match wait_conditions(inputs, &n, 1e-12) {
        Some((m_pi, dt, slack)) => Ok(WaitDesign {
            tau_s: tau,
            n,
            m_pi_tokens: m_pi,
            iteration_time_s: dt,
            slack_s: slack,
        }),
        None => Err(DesignError::RoundingExceedsCapacity { m_pi }),
    }
}

/// The real-valued fluid design `n_j = tau lambda_j` (`tau = dT*` when `None`). Satisfies (i)
/// and (ii) exactly (up to round-off) whenever `M* <= C` and `dT* <= tau <= C / A`.
pub fn fluid_design_real(
    inputs: &FluidInputs,
    tau: Option<f64>,
) -> Result<WaitDesign, DesignError> {
    let tau = precheck(inputs, tau)?;
    let n = inputs.classes.iter().map(|c| tau * c.rate_per_s).collect();
    build(inputs, tau, n)
}

/// The integer fluid design `n_j = ceil(tau lambda_j)`, with `tau` raised by the fixed-point
/// iteration of the module docs until (i) holds, then (ii) re-checked.
pub fn fluid_design(inputs: &FluidInputs, tau: Option<f64>) -> Result<WaitDesign, DesignError> {
    let mut tau = precheck(inputs, tau)?;
    let ceil =
        |t: f64| -> Vec<f64> { inputs.classes.iter().map(|c| (t * c.rate_per_s).ceil()).collect() };
    for _ in 0..100_000 {
        let n = ceil(tau);
        let m_pi: f64 = n.iter().zip(&inputs.classes).map(|(n, c)| n * c.mass()).sum();
        if m_pi > inputs.capacity_tokens {
            return Err(DesignError::RoundingExceedsCapacity { m_pi });
        }
        let dt = inputs.d0_s + inputs.d1_s_per_token * m_pi;
        if dt <= tau {
            return build(inputs, tau, n);
        }
        tau = dt;
    }
    Err(DesignError::BadArgument("fluid_design: fixed point did not converge".into()))
}

/// A capacity that guarantees [`fluid_design`] (with `tau = dT*`) succeeds:
/// `tau_bar A + sum_{j: lambda_j > 0} S_j`, `tau_bar = (d0 + d1 sum S_j) / (1 - d1 A)`.
/// `None` beyond the cut.
pub fn integer_capacity_bound(inputs: &FluidInputs) -> Option<f64> {
    let a = inputs.load();
    let slack = 1.0 - inputs.d1_s_per_token * a;
    let s: f64 = inputs.classes.iter().filter(|c| c.rate_per_s > 0.0).map(|c| c.mass()).sum();
    (slack > 0.0).then(|| (inputs.d0_s + inputs.d1_s_per_token * s) / slack * a + s)
}

/// `budget` spread evenly over `stages`: the first `budget % stages` get one more.
pub fn spread(budget: u64, stages: u64) -> Vec<u64> {
    if stages == 0 {
        return Vec::new();
    }
    (0..stages).map(|i| budget / stages + u64::from(i < budget % stages)).collect()
}

/// The single-type `tl` design: `K = ceil(l / cs)` prefill stages (`K = 1` without chunking,
/// the paper's model) plus `l'` decode stages; per-stage thresholds spread `tl` evenly, so
/// they sum to `tl`. Example: p512d20, cs = 256, tl = 21: 22 stages, 21 of them 1 and one 0.
pub fn tl_single(tl: u64, prompt_tokens: u64, output_tokens: u64, chunk: Option<u64>) -> Vec<u64> {
    let k = match chunk {
        Some(cs) if cs > 0 => prompt_tokens.div_ceil(cs).max(1),
        _ => 1,
    };
    spread(tl, k + output_tokens)
}

/// One segment of a [`tl_nested`] design.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TlSegment {
    /// Decode boundaries `(r_{k-1}, r_k]`.
    pub start: u64,
    /// End boundary `r_k`.
    pub end: u64,
    /// Rate of classes ending in this segment.
    pub rate_per_s: f64,
    /// Probability of continuing past this segment, `sum_{r>k} lambda'_r / sum_{r>=k} lambda'_r`.
    pub p_next: f64,
    /// `q_k = min(p_next + seg_margin, 0.99)`.
    pub q_next: f64,
    /// Real per-stage threshold `n_k`.
    pub n: f64,
    /// Cap `B_k = round((r_k - r_{k-1}) n_k)`.
    pub cap: u64,
    /// `B_k` spread over the segment's stages.
    pub per_stage: Vec<u64>,
}

/// Equal-width decode boundaries `0 = r_0 < ... < r_L = horizon` (duplicates removed).
pub fn equal_width_boundaries(horizon: u64, segments: u64) -> Vec<u64> {
    let mut b: Vec<u64> = (0..=segments.max(1)).map(|k| horizon * k / segments.max(1)).collect();
    b.dedup();
    b
}

/// The Nested WAIT `tl` design of notes §3.3 for classes `(output, rate)`, decode boundaries
/// `0 = r_0 < r_1 < ... < r_L` (every output must be `<= r_L`), budget `tl` and `seg_margin`.
/// Two-type example: boundaries `[0, 20, 50]`, rates `0.7, 0.3`, margin 0, tl = 30 gives caps
/// 21 and 9.
pub fn tl_nested(
    classes: &[(u64, f64)],
    boundaries: &[u64],
    tl: f64,
    seg_margin: f64,
) -> Result<Vec<TlSegment>, DesignError> {
    let bad = |m: &str| Err(DesignError::BadArgument(m.to_string()));
    if boundaries.len() < 2 || boundaries[0] != 0 || boundaries.windows(2).any(|w| w[0] >= w[1]) {
        return bad("boundaries: expected 0 = r_0 < r_1 < ... < r_L");
    }
    let last = *boundaries.last().unwrap_or(&0);
    if classes.iter().any(|&(o, r)| o > last || !(r >= 0.0 && r.is_finite())) {
        return bad("classes: expected outputs <= r_L and finite rates >= 0");
    }
    if !(tl > 0.0 && tl.is_finite() && seg_margin >= 0.0 && seg_margin.is_finite()) {
        return bad("tl > 0 and seg_margin >= 0 expected");
    }
    let l = boundaries.len() - 1;
    let mut rates = vec![0.0; l];
    for &(o, r) in classes {
        let k = boundaries.windows(2).position(|w| o > w[0] && o <= w[1]).unwrap_or(0);
        rates[k] += r;
    }
    let tail: Vec<f64> = (0..l).map(|k| rates[k..].iter().sum()).collect();
    let p: Vec<f64> = (0..l)
        .map(|k| if k + 1 < l && tail[k] > 0.0 { tail[k + 1] / tail[k] } else { 0.0 })
        .collect();
    let q: Vec<f64> = p.iter().map(|p| (p + seg_margin).min(0.99)).collect();
    let mut rel = vec![1.0; l];
    for k in 1..l {
        rel[k] = rel[k - 1] * q[k - 1];
    }
    let width = |k: usize| (boundaries[k + 1] - boundaries[k]) as f64;
    let n1 = tl / (0..l).map(|k| width(k) * rel[k]).sum::<f64>();
    Ok((0..l)
        .map(|k| {
            let cap = (width(k) * n1 * rel[k]).round() as u64;
            TlSegment {
                start: boundaries[k],
                end: boundaries[k + 1],
                rate_per_s: rates[k],
                p_next: p[k],
                q_next: q[k],
                n: n1 * rel[k],
                cap,
                per_stage: spread(cap, boundaries[k + 1] - boundaries[k]),
            }
        })
        .collect())
}
