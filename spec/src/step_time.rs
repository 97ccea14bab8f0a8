//! Step-time models: how long one iteration (step) of a batch takes.
//!
//! Three models, as one enum ([`StepTime`]):
//! - [`StepTime::UnitRounds`]: every step takes one round (the MC-SF paper's theory model,
//!   arXiv 2502.07115 §2). One round is one simulated second.
//! - [`StepTime::Affine`]: the WAIT paper's Eq. 1, `tau = d0 + d1 * sum over the batch of
//!   (l + s)`, where a prefill item contributes the KV tokens it attends (its prompt) and a decode
//!   item at stage `s` contributes `l + s`.
//! - [`StepTime::Rich`]: separate terms for prefill tokens, prefill attention (chunk times
//!   context), decode requests and attended KV tokens, plus a piecewise-linear term in the
//!   batch's token count. The Vidur A100 profiles show why: the token-wise GEMMs are flat up to
//!   about 100 tokens and linear after, which no single affine law in KV tokens captures.
//!
//! # Exactness
//! Durations are computed in integer attoseconds and floored to nanoseconds once per step
//! ([`CompiledStepTime::duration_ns`]). Because every coefficient is an integer, the total
//! duration of `n` decode-only steps whose composition does not change has an exact closed form
//! ([`CompiledStepTime::decode_stretch_ns`], a floor sum computed in `O(log)`), equal to the sum
//! of the per-step durations. The simulator's fast-forward relies on that equality.

use crate::units::Nanos;
use serde::{Deserialize, Serialize};

/// A step-time model, as written in workload files (`[step_time]`, seconds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StepTime {
    /// Every step takes one round (one simulated second).
    UnitRounds,
    /// `tau = d0_s + d1_s_per_token * attended KV tokens`.
    Affine {
        /// Fixed per-iteration overhead d0 (seconds).
        d0_s: f64,
        /// Time per attended KV token d1 (seconds per token).
        d1_s_per_token: f64,
    },
    /// `tau = base + prefill * P + attn * sum(chunk * context) + decode * D + kv * K
    /// + tokenwise(P + D)`.
    Rich {
        /// Fixed per-iteration overhead (seconds).
        base_s: f64,
        /// Per prefill token (seconds per token).
        #[serde(default)]
        prefill_s_per_token: f64,
        /// Prefill attention: per (chunk token x context token) pair (seconds).
        #[serde(default)]
        prefill_attn_s_per_token2: f64,
        /// Per decode request (seconds per request).
        #[serde(default)]
        decode_s_per_request: f64,
        /// Per KV token attended by decode and prefill items (seconds per token).
        #[serde(default)]
        kv_s_per_token: f64,
        /// Piecewise-linear token-wise term: `(batch tokens, seconds)` breakpoints, sorted by
        /// tokens, linearly interpolated and extrapolated from the last segment. Empty means 0.
        #[serde(default)]
        tokenwise: Vec<(u64, f64)>,
    },
}

/// The aggregate shape of one batch, which is all a step-time model reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchShape {
    /// Prefill tokens computed in this step (sum of chunk sizes).
    pub prefill_tokens: u64,
    /// Sum over prefill items of `chunk * (context after the chunk)`.
    pub prefill_attn_token2: u64,
    /// Number of decode items.
    pub decode_requests: u64,
    /// KV tokens attended: for a prefill item, its context after the chunk; for a decode item at
    /// stage `s` of a prompt of `l` tokens, `l + s`.
    pub attended_kv_tokens: u64,
}

const AS_PER_S: f64 = 1e18;
const AS_PER_NS: u128 = 1_000_000_000;

/// A step-time model with integer coefficients in attoseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledStepTime {
    base_as: u128,
    prefill_as: u128,
    prefill_attn_as: u128,
    decode_as: u128,
    kv_as: u128,
    tokenwise: Vec<(u64, u128)>,
}

fn to_as(field: &str, secs: f64) -> Result<u128, String> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("step_time.{field}: expected a finite number >= 0, got {secs}"));
    }
    let value = (secs * AS_PER_S).round();
    if value > 1e30 {
        return Err(format!("step_time.{field}: value {secs} s is too large"));
    }
    Ok(value as u128)
}

impl StepTime {
    /// The WAIT paper's Llama-2-7B / A100 constants from its lmsys fit (d0 = 10.248 ms,
    /// d1 = 0.38777 us per token).
    pub fn wait_paper_lmsys() -> StepTime {
        StepTime::Affine { d0_s: 0.010248, d1_s_per_token: 3.8777e-7 }
    }

    /// Converts to integer coefficients, validating every field.
    pub fn compile(&self) -> Result<CompiledStepTime, String> {
        let zero = CompiledStepTime {
            base_as: 0,
            prefill_as: 0,
            prefill_attn_as: 0,
            decode_as: 0,
            kv_as: 0,
            tokenwise: Vec::new(),
        };
        match self {
            StepTime::UnitRounds => Ok(CompiledStepTime { base_as: AS_PER_S as u128, ..zero }),
            StepTime::Affine { d0_s, d1_s_per_token } => Ok(CompiledStepTime {
                base_as: to_as("d0_s", *d0_s)?,
                kv_as: to_as("d1_s_per_token", *d1_s_per_token)?,
                ..zero
            }),
            StepTime::Rich {
                base_s,
                prefill_s_per_token,
                prefill_attn_s_per_token2,
                decode_s_per_request,
                kv_s_per_token,
                tokenwise,
            } => {
                let mut points = Vec::with_capacity(tokenwise.len());
                for (i, &(tokens, secs)) in tokenwise.iter().enumerate() {
                    if let Some(&(prev, _)) = points.last() {
                        if tokens <= prev {
                            return Err(format!(
                                "step_time.tokenwise[{i}]: expected token counts strictly \
                                 increasing, got {tokens} after {prev}"
                            ));
                        }
                    }
                    points.push((tokens, to_as(&format!("tokenwise[{i}]"), secs)?));
                }
                Ok(CompiledStepTime {
                    base_as: to_as("base_s", *base_s)?,
                    prefill_as: to_as("prefill_s_per_token", *prefill_s_per_token)?,
                    prefill_attn_as: to_as(
                        "prefill_attn_s_per_token2",
                        *prefill_attn_s_per_token2,
                    )?,
                    decode_as: to_as("decode_s_per_request", *decode_s_per_request)?,
                    kv_as: to_as("kv_s_per_token", *kv_s_per_token)?,
                    tokenwise: points,
                })
            }
        }
    }
}

impl CompiledStepTime {
    /// Piecewise-linear interpolation of the token-wise term, floored to attoseconds; flat before
    /// the first breakpoint, extrapolated along the last segment, never negative.
    fn tokenwise_as(&self, tokens: u64) -> u128 {
        let pts = &self.tokenwise;
        match pts.len() {
            0 => 0,
            1 => pts[0].1,
            _ => {
                if tokens <= pts[0].0 {
                    return pts[0].1;
                }
                let seg = pts.windows(2).position(|w| tokens <= w[1].0).unwrap_or(pts.len() - 2);
                let (x0, y0) = (pts[seg].0 as i128, pts[seg].1 as i128);
                let (x1, y1) = (pts[seg + 1].0 as i128, pts[seg + 1].1 as i128);
                let x = tokens as i128;
                let y = y0 + (y1 - y0) * (x - x0) / (x1 - x0);
                y.max(0) as u128
            }
        }
    }

    /// The part of a step's duration that does not depend on attended KV tokens (attoseconds).
    fn fixed_as(&self, shape: &BatchShape) -> u128 {
        let batch_tokens = shape.prefill_tokens + shape.decode_requests;
        self.base_as
            + self.prefill_as * shape.prefill_tokens as u128
            + self.prefill_attn_as * shape.prefill_attn_token2 as u128
            + self.decode_as * shape.decode_requests as u128
            + self.tokenwise_as(batch_tokens)
    }

    /// Duration of one step.
    pub fn duration_ns(&self, shape: &BatchShape) -> Nanos {
        let total = self.fixed_as(shape) + self.kv_as * shape.attended_kv_tokens as u128;
        Nanos(u64::try_from(total / AS_PER_NS).unwrap_or(u64::MAX))
    }

    /// Total duration of `steps` consecutive decode-only steps of the same `decode_requests`
    /// requests, the first of which attends `first_attended_kv_tokens`; each later step attends
    /// `decode_requests` more tokens (every request grew by one). Exactly the sum of
    /// [`Self::duration_ns`] over those steps.
    pub fn decode_stretch_ns(
        &self,
        decode_requests: u64,
        first_attended_kv_tokens: u64,
        steps: u64,
    ) -> Nanos {
        let shape = BatchShape { decode_requests, ..BatchShape::default() };
        let c = self.fixed_as(&shape) + self.kv_as * first_attended_kv_tokens as u128;
        let a = self.kv_as * decode_requests as u128;
        Nanos(u64::try_from(floor_sum(steps as u128, AS_PER_NS, a, c)).unwrap_or(u64::MAX))
    }
}

/// `sum_{i=0}^{n-1} floor((a * i + b) / m)`, in `O(log m)` (the classic Euclid-like reduction).
pub fn floor_sum(n: u128, m: u128, mut a: u128, mut b: u128) -> u128 {
    assert!(m > 0, "floor_sum: modulus must be positive");
    let (mut n, mut m) = (n, m);
    let mut ans: u128 = 0;
    loop {
        if n == 0 {
            return ans;
        }
        if a >= m {
            // Saturating: a sum past u128 is far past the end of simulated time anyway.
            let pairs = if n % 2 == 0 {
                (n / 2).saturating_mul(n - 1)
            } else {
                n.saturating_mul((n - 1) / 2)
            };
            ans = ans.saturating_add(pairs.saturating_mul(a / m));
            a %= m;
        }
        if b >= m {
            ans = ans.saturating_add(n.saturating_mul(b / m));
            b %= m;
        }
        let y_max = a.saturating_mul(n).saturating_add(b);
        if y_max < m {
            return ans;
        }
        n = y_max / m;
        b = y_max % m;
        std::mem::swap(&mut m, &mut a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_sum_matches_naive() {
        for n in 0..20u128 {
            for m in 1..12u128 {
                for a in 0..15u128 {
                    for b in 0..15u128 {
                        let naive: u128 = (0..n).map(|i| (a * i + b) / m).sum();
                        assert_eq!(floor_sum(n, m, a, b), naive, "n={n} m={m} a={a} b={b}");
                    }
                }
            }
        }
    }

    #[test]
    fn stretch_equals_sum_of_steps() {
        let model = StepTime::Rich {
            base_s: 0.0093,
            prefill_s_per_token: 6.2e-5,
            prefill_attn_s_per_token2: 1.1e-10,
            decode_s_per_request: 1.3e-5,
            kv_s_per_token: 3.3333e-7,
            tokenwise: vec![(1, 0.0), (100, 0.0001), (4096, 0.25)],
        }
        .compile()
        .unwrap();
        for (b, a0, n) in [(1u64, 513u64, 50u64), (37, 20_000, 999), (256, 77_777, 3)] {
            let naive: u64 = (0..n)
                .map(|k| {
                    let shape = BatchShape {
                        decode_requests: b,
                        attended_kv_tokens: a0 + b * k,
                        ..BatchShape::default()
                    };
                    model.duration_ns(&shape).get()
                })
                .sum();
            assert_eq!(model.decode_stretch_ns(b, a0, n).get(), naive);
        }
    }

    #[test]
    fn affine_matches_paper_formula() {
        let m = StepTime::wait_paper_lmsys().compile().unwrap();
        let shape = BatchShape { attended_kv_tokens: 100_000, ..BatchShape::default() };
        // 0.010248 + 3.8777e-7 * 1e5 = 0.049025 s.
        assert_eq!(m.duration_ns(&shape), Nanos(49_025_000));
    }

    #[test]
    fn bad_coefficients_are_named() {
        let err = StepTime::Affine { d0_s: -1.0, d1_s_per_token: 0.0 }.compile().unwrap_err();
        assert!(err.contains("step_time.d0_s"), "{err}");
        let err = StepTime::Rich {
            base_s: 0.0,
            prefill_s_per_token: 0.0,
            prefill_attn_s_per_token2: 0.0,
            decode_s_per_request: 0.0,
            kv_s_per_token: f64::NAN,
            tokenwise: vec![],
        }
        .compile()
        .unwrap_err();
        assert!(err.contains("kv_s_per_token"), "{err}");
    }
}
