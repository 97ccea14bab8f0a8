//! The analysis: per-iteration step times composed from Vidur's per-layer profiles (or read from
//! a GPU run's table), the affine and rich fits, fit quality by region, and the calibration file.
//!
//! Composition for a target model (the Vidur route), per iteration, in seconds:
//! - token-wise: `layers * mlp(tokens) + emb(tokens)` from the MLP profile at the target's TP,
//!   where the ops on the MLP's intermediate width (`mlp_up_proj`, `mlp_act`, `mlp_down_proj`)
//!   are scaled by `r_mlp = target intermediate / profiled n_expanded_embd` (1 when the profile
//!   is of the target). Their work (FLOPs, and the weight bytes read at small batches) is linear
//!   in that width at a fixed hidden size and TP, and Vidur's own Llama-2-7B profile shows it:
//!   halving the per-GPU width (TP 1 to TP 2) halves these ops' time within about 5 % at 1 and
//!   at 4096 tokens. This is how the Llama-2-70B (28,672) calibration uses the 8192-wide, 22,016
//!   MLP profile (CodeLlama-34B's MLP) at TP 2: `r_mlp = 1.3023`. Tensor-parallel all-reduces
//!   are not in the profile and are not added;
//! - decode attention: the attention profile's per-layer time for `(batch, kv per request)`,
//!   plus `(r_kv - 1)` times its fitted per-KV-token slope, times `layers`, where
//!   `r_kv = target KV bytes per token per layer per GPU / profiled ones`. Decode attention reads
//!   the KV cache and is memory-bound, so its per-token cost scales with the bytes read. The
//!   constant and per-request parts are kept as measured (an assumption: launch overheads do not
//!   depend on the geometry);
//! - prefill attention: the profiled time scaled by `r_q = target query width per GPU / profiled`
//!   (compute-bound: FLOPs per chunk-token x context-token pair scale with the query width).
//!
//! The decode-only composite is what the WAIT paper's affine law describes: [`fit_affine`] on it
//! gives `d0` and `d1`. The rich model takes the token-wise curve above as its token-wise term
//! (every profiled token count a breakpoint) and fits its constant and linear terms to the
//! decode and prefill composites' remainder, the attention part ([`fit_rich_on_tokenwise`]).
//! Until 2026-12-06 the token-wise term was fitted too (hinges at `2^k`, `3 * 2^k`), and it came
//! out 8-18 % above the token-wise data from 128 to 4,096 tokens for Llama-2-7B: the term that
//! overcharged Sarathi's many-request batches (BENCHMARKS.md, "Step time against Vidur").

use crate::fit::{
    default_knots, fit_affine, fit_rich, fit_rich_on_tokenwise, flat_region_end, region_fit,
    Fitted, RichTerms, Sample,
};
use crate::geometry::Geometry;
use crate::lsq::lstsq;
use crate::vidur::{AttnRow, MlpRow};
use kvsched_spec::calibration::{AffineFit, Calibration, RegionFit, CALIBRATION_FORMAT_VERSION};
use kvsched_spec::BatchShape;

/// Tolerance on the flat region of the token-wise curve (a fraction of its value at 1 token).
pub const FLAT_TOL: f64 = 0.06;

/// The affine law is said to hold in a region where its MAPE there is at most this.
pub const AFFINE_HOLDS_MAPE: f64 = 0.05;

/// Everything the Vidur route computes.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// Token-wise time of one pass (seconds) by batch tokens.
    pub tokenwise: Vec<(u64, f64)>,
    /// Last batch-token count of the flat region ([`FLAT_TOL`]).
    pub flat_end: u64,
    /// Slope of the token-wise time above the flat region (seconds per token) and its R².
    pub tokenwise_slope: (f64, f64),
    /// Decode attention per layer (ms): `[const, per request, per KV token]` as profiled.
    pub decode_attn_ms: [f64; 3],
    /// Prefill attention per layer (ms): `[const, per chunk token, per chunk x context pair]`.
    pub prefill_attn_ms: [f64; 3],
    /// KV bytes ratio (target / profiled) and query width ratio.
    pub ratios: (f64, f64),
    /// MLP intermediate width ratio (target / profiled), applied to the MLP-width ops.
    pub mlp_ratio: f64,
    /// Composite decode-only iterations.
    pub decode: Vec<Sample>,
    /// Composite prefill-only iterations.
    pub prefill: Vec<Sample>,
    /// The affine law on `decode`, with regions.
    pub affine: Fitted,
    /// The rich model on `decode` and `prefill`, with regions.
    pub rich: Fitted,
}

/// The MLP intermediate width ratio of `target` to the profile's rows at its TP (1 without rows
/// or without a recorded width); an error when the rows disagree on the width.
pub fn mlp_ratio(rows: &[MlpRow], target: &Geometry) -> Result<f64, String> {
    let mut widths: Vec<u64> =
        rows.iter().filter(|r| r.tp == target.tp).map(|r| r.n_expanded_embd).collect();
    widths.sort_unstable();
    widths.dedup();
    match widths[..] {
        [] | [0] => Ok(1.0),
        [w] => Ok(target.intermediate as f64 / w as f64),
        _ => Err(format!("mlp profile: several MLP widths at TP {}: {widths:?}", target.tp)),
    }
}

/// The token-wise curve of one pass of `target` (its TP selects the rows, its layers multiply
/// them, its MLP width scales the MLP-width ops by [`mlp_ratio`]), in seconds; duplicate token
/// counts are averaged.
pub fn tokenwise_curve(rows: &[MlpRow], target: &Geometry) -> Result<Vec<(u64, f64)>, String> {
    let (tp, layers) = (target.tp, target.layers);
    let r_mlp = mlp_ratio(rows, target)?;
    let mut pts: Vec<(u64, f64, u32)> = Vec::new();
    for r in rows.iter().filter(|r| r.tp == tp) {
        let layer_ms = r.layer_ms + (r_mlp - 1.0) * r.mlp_ms;
        let t = (layers as f64 * layer_ms + r.emb_ms) / 1e3;
        match pts.iter_mut().find(|p| p.0 == r.num_tokens) {
            Some(p) => {
                p.1 += t;
                p.2 += 1;
            }
            None => pts.push((r.num_tokens, t, 1)),
        }
    }
    if pts.len() < 2 {
        return Err(format!("mlp profile: fewer than 2 token counts at tensor parallelism {tp}"));
    }
    pts.sort_by_key(|p| p.0);
    Ok(pts.into_iter().map(|(x, t, n)| (x, t / n as f64)).collect())
}

/// Linear interpolation of a sorted curve, extrapolated along the end segments.
pub fn interp(curve: &[(u64, f64)], x: u64) -> f64 {
    let n = curve.len();
    let seg = curve.windows(2).position(|w| x <= w[1].0).unwrap_or(n.saturating_sub(2));
    let ((x0, y0), (x1, y1)) = (curve[seg], curve[(seg + 1).min(n - 1)]);
    if x1 == x0 {
        return y0;
    }
    y0 + (y1 - y0) * (x as f64 - x0 as f64) / (x1 as f64 - x0 as f64)
}

/// Least-squares fit of per-layer attention time (ms): decode rows against
/// `[1, batch, batch * kv]`, prefill rows against `[1, chunk, chunk * (kv + chunk)]`.
pub fn fit_attention(rows: &[AttnRow], prefill: bool) -> Result<[f64; 3], String> {
    let rows: Vec<&AttnRow> = rows.iter().filter(|r| r.is_prefill == prefill).collect();
    let feats = |r: &AttnRow| -> [f64; 2] {
        if prefill {
            let c = r.prefill_chunk_size as f64;
            [c, c * (r.kv_cache_size as f64 + c)]
        } else {
            let b = r.batch_size as f64;
            [b, b * r.kv_cache_size as f64]
        }
    };
    let cols = vec![
        vec![1.0; rows.len()],
        rows.iter().map(|r| feats(r)[0]).collect(),
        rows.iter().map(|r| feats(r)[1]).collect(),
    ];
    let y: Vec<f64> = rows.iter().map(|r| r.layer_ms).collect();
    let s = lstsq(&cols, &y)?;
    Ok([s.get(0), s.get(1), s.get(2)])
}

fn decode_shape(b: u64, kv: u64) -> BatchShape {
    BatchShape { decode_requests: b, attended_kv_tokens: b * kv, ..BatchShape::default() }
}

fn prefill_shape(chunk: u64, kv_before: u64) -> BatchShape {
    let ctx = kv_before + chunk;
    BatchShape {
        prefill_tokens: chunk,
        prefill_attn_token2: chunk * ctx,
        attended_kv_tokens: ctx,
        ..BatchShape::default()
    }
}

/// Composes per-iteration samples (see the module docs); returns `(decode, prefill, ratios)`.
pub fn compose(
    tokenwise: &[(u64, f64)],
    attn: &[AttnRow],
    decode_attn_ms: &[f64; 3],
    target: &Geometry,
) -> Result<(Vec<Sample>, Vec<Sample>, (f64, f64)), String> {
    let first = attn.first().ok_or("attention profile: no rows")?;
    let r_kv = target.kv_bytes_per_token_per_layer_per_gpu() as f64
        / first.kv_bytes_per_token_per_layer_per_gpu() as f64;
    let r_q = (target.heads_per_gpu() * target.head_dim) as f64 / first.q_width_per_gpu() as f64;
    let layers = target.layers as f64;
    let (mut decode, mut prefill) = (Vec::new(), Vec::new());
    for r in attn {
        if r.is_prefill {
            let shape = prefill_shape(r.prefill_chunk_size, r.kv_cache_size);
            let t = interp(tokenwise, r.prefill_chunk_size) + layers * r_q * r.layer_ms / 1e3;
            prefill.push(Sample { shape, time_s: t });
        } else {
            let shape = decode_shape(r.batch_size, r.kv_cache_size);
            let extra = (r_kv - 1.0) * decode_attn_ms[2] * shape.attended_kv_tokens as f64;
            let t = interp(tokenwise, r.batch_size) + layers * (r.layer_ms + extra) / 1e3;
            decode.push(Sample { shape, time_s: t });
        }
    }
    if decode.len() < 2 {
        return Err("attention profile: fewer than 2 decode rows".into());
    }
    Ok((decode, prefill, (r_kv, r_q)))
}

/// Regions for decode samples: by batch size around the flat region, and by KV per request.
pub fn decode_regions(fitted: &Fitted, samples: &[Sample], flat_end: u64) -> Vec<RegionFit> {
    let m = &fitted.step_time;
    let kv = |s: &Sample| s.shape.attended_kv_tokens / s.shape.decode_requests.max(1);
    let bmax = samples.iter().map(|s| s.shape.decode_requests).max().unwrap_or(0);
    let fe = flat_end;
    [
        region_fit(m, samples, "flat", &format!("decode batch 1..={fe}"), |s| {
            s.shape.decode_requests <= fe
        }),
        region_fit(m, samples, "above flat", &format!("decode batch {}..={bmax}", fe + 1), |s| {
            s.shape.decode_requests > fe
        }),
        region_fit(m, samples, "short kv", "KV per request <= 1024", |s| kv(s) <= 1024),
        region_fit(m, samples, "long kv", "KV per request > 1024", |s| kv(s) > 1024),
        region_fit(m, samples, "kv <= 137k", "attended KV tokens <= 137,000", |s| {
            s.shape.attended_kv_tokens <= 137_000
        }),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The Vidur route, end to end, for `target` (its layers and TP select and scale the data).
pub fn analyze_vidur(
    mlp: &[MlpRow],
    attn: &[AttnRow],
    target: &Geometry,
) -> Result<Analysis, String> {
    let tokenwise = tokenwise_curve(mlp, target)?;
    let mlp_ratio = mlp_ratio(mlp, target)?;
    let flat_end = flat_region_end(&tokenwise, FLAT_TOL);
    let above: Vec<(u64, f64)> = tokenwise.iter().copied().filter(|p| p.0 > flat_end).collect();
    let tokenwise_slope = slope_r2(&above);
    let decode_attn_ms = fit_attention(attn, false)?;
    let prefill_attn_ms =
        if attn.iter().any(|r| r.is_prefill) { fit_attention(attn, true)? } else { [0.0; 3] };
    let (decode, prefill, ratios) = compose(&tokenwise, attn, &decode_attn_ms, target)?;
    let bmax = decode.iter().map(|s| s.shape.decode_requests).max().unwrap_or(0);
    let mut affine = fit_affine(&decode, &format!("decode batches 1..={bmax}"))?;
    affine.quality.regions = decode_regions(&affine, &decode, flat_end);
    // Not fitted to prefill: how the decode-fitted law extrapolates to prefill chunks.
    let name = "prefill (not fitted)";
    if let Some(r) = region_fit(&affine.step_time, &prefill, name, "prefill chunks", |_| true) {
        affine.quality.regions.push(r);
    }
    let all: Vec<Sample> = decode.iter().chain(&prefill).copied().collect();
    // The token-wise term is the profile's own token-wise curve, not a fitted one (see
    // `fit_rich_on_tokenwise`); the other terms model the attention part.
    let terms = RichTerms::all(Vec::new());
    let range = "decode and prefill composites";
    let mut rich = fit_rich_on_tokenwise(&all, &tokenwise, &terms, range)?;
    rich.quality.regions = decode_regions(&rich, &decode, flat_end);
    if let Some(r) = region_fit(&rich.step_time, &prefill, "prefill", "prefill chunks", |_| true) {
        rich.quality.regions.push(r);
    }
    Ok(Analysis {
        tokenwise,
        flat_end,
        tokenwise_slope,
        decode_attn_ms,
        prefill_attn_ms,
        ratios,
        mlp_ratio,
        decode,
        prefill,
        affine,
        rich,
    })
}

/// Least-squares slope of a curve and its R² (0 and 0 with fewer than two points).
pub fn slope_r2(pts: &[(u64, f64)]) -> (f64, f64) {
    let x: Vec<f64> = pts.iter().map(|p| p.0 as f64).collect();
    let y: Vec<f64> = pts.iter().map(|p| p.1).collect();
    match lstsq(&[vec![1.0; x.len()], x.clone()], &y) {
        Ok(s) if pts.len() >= 2 => {
            let pred: Vec<f64> = x.iter().map(|v| s.get(0) + s.get(1) * v).collect();
            (s.get(1), crate::fit::r2_mape(&y, &pred).0)
        }
        _ => (0.0, 0.0),
    }
}

/// The calibration file for an analysis.
pub fn calibration(a: &Analysis, hardware: &str, target: &Geometry, source: &str) -> Calibration {
    let mut fit = a.rich.quality.clone();
    fit.notes = notes(a);
    let mut affine_q = a.affine.quality.clone();
    affine_q.notes = format!(
        "the WAIT paper's law fitted to the decode-only composites; it holds (MAPE <= {:.0} %) \
         in the regions with mape <= {AFFINE_HOLDS_MAPE}",
        AFFINE_HOLDS_MAPE * 100.0
    );
    let (d0_s, d1_s_per_token) = match a.affine.step_time {
        kvsched_spec::StepTime::Affine { d0_s, d1_s_per_token } => (d0_s, d1_s_per_token),
        _ => (0.0, 0.0),
    };
    Calibration {
        format_version: CALIBRATION_FORMAT_VERSION,
        hardware: hardware.to_string(),
        model: format!("{} fp16, TP {}", target.name, target.tp),
        source: source.to_string(),
        kv_bytes_per_token: Some(target.kv_bytes_per_token()),
        kv_capacity_tokens: None,
        step_time: a.rich.step_time.clone(),
        fit,
        affine: Some(AffineFit { d0_s, d1_s_per_token, fit: affine_q }),
    }
}

fn notes(a: &Analysis) -> String {
    let mlp = if a.mlp_ratio == 1.0 {
        String::new()
    } else {
        format!("; MLP-width ops (up, act, down) scaled by the MLP width ratio {:.4}", a.mlp_ratio)
    };
    let base = format!(
        "token-wise time flat (within {:.0} %) up to {} batch tokens, then {:.3e} s per token \
         (R2 {:.4}); decode attention per layer as profiled: {:.4} ms + {:.3e} ms/request + \
         {:.3e} ms/KV token, scaled by KV bytes ratio {:.3}; prefill attention scaled by query \
         width ratio {:.3}",
        FLAT_TOL * 100.0,
        a.flat_end,
        a.tokenwise_slope.0,
        a.tokenwise_slope.1,
        a.decode_attn_ms[0],
        a.decode_attn_ms[1],
        a.decode_attn_ms[2],
        a.ratios.0,
        a.ratios.1
    );
    base + &mlp
}

#[cfg(test)]
mod tests;

/// The WAIT paper's constants: d0 range (s) and d1 range (s per token) over its Vidur fits.
pub const WAIT_D0: (f64, f64) = (0.0100, 0.0102);
/// See [`WAIT_D0`].
pub const WAIT_D1: (f64, f64) = (3.06e-7, 3.88e-7);

/// Fits of a GPU run's table: the affine law on its decode rows, the rich model on all rows.
pub fn analyze_rows(samples: &[(String, Sample)]) -> Result<(Fitted, Fitted, u64), String> {
    let decode: Vec<Sample> =
        samples.iter().filter(|(k, _)| k == "decode").map(|(_, s)| *s).collect();
    let tokenwise: Vec<(u64, f64)> = samples
        .iter()
        .filter(|(k, _)| k == "tokenwise")
        .map(|(_, s)| (s.batch_tokens(), s.time_s))
        .collect();
    let flat_end = flat_region_end(&tokenwise, FLAT_TOL);
    let mut affine = fit_affine(&decode, "decode rows")?;
    affine.quality.regions = decode_regions(&affine, &decode, flat_end);
    let all: Vec<Sample> = samples.iter().map(|(_, s)| *s).collect();
    let mut rich = fit_rich(&all, &RichTerms::all(default_knots(&all)), "all rows")?;
    rich.quality.regions = decode_regions(&rich, &decode, flat_end);
    Ok((affine, rich, flat_end))
}

/// A human-readable report of fits, regions and the comparison with the WAIT paper.
pub fn report(affine: &Fitted, rich: &Fitted) -> String {
    let mut out = String::new();
    if let kvsched_spec::StepTime::Affine { d0_s, d1_s_per_token } = affine.step_time {
        let q = &affine.quality;
        out += &format!(
            "affine law (WAIT Eq. 1): d0 = {:.4} ms, d1 = {:.4e} s/token; R2 {:.4}, MAPE {:.2} % \
             over {} points ({})\n",
            d0_s * 1e3,
            d1_s_per_token,
            q.r2,
            q.mape * 100.0,
            q.points,
            q.range
        );
        out += &format!(
            "  WAIT paper: d0 {:.4}-{:.4} s, d1 {:.3e}-{:.3e} s/token; ours: d0/paper {:.3}, \
             d1/paper {:.3} (to the range's ends)\n",
            WAIT_D0.0,
            WAIT_D0.1,
            WAIT_D1.0,
            WAIT_D1.1,
            d0_s / WAIT_D0.1,
            d1_s_per_token / WAIT_D1.1
        );
    }
    for (name, f) in [("affine", affine), ("rich", rich)] {
        for r in &f.quality.regions {
            let verdict = if r.mape <= AFFINE_HOLDS_MAPE { "holds" } else { "does not hold" };
            out += &format!(
                "  {name:6} region {:12} ({}): {} points, R2 {:.4}, MAPE {:.2} % -> {verdict}\n",
                r.name,
                r.range,
                r.points,
                r.r2,
                r.mape * 100.0
            );
        }
    }
    let q = &rich.quality;
    out += &format!(
        "rich model: R2 {:.4}, MAPE {:.2} %, max / median relative error {:.2} / {:.2} % over \
         {} points\n  {:?}\n",
        q.r2,
        q.mape * 100.0,
        q.max_rel_err.unwrap_or(f64::NAN) * 100.0,
        q.median_rel_err.unwrap_or(f64::NAN) * 100.0,
        q.points,
        rich.step_time
    );
    out
}
