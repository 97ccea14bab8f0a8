//! The Vidur route on synthetic profiles with known coefficients (see [`crate::synth`]).

use super::*;
use crate::synth::{self, ATT_KV, MLP_KNEE, MLP_SLOPE_MS, PRE_A2};
use crate::vidur::{parse, Profile};
use kvsched_spec::StepTime;

fn grid() -> (Vec<u64>, Vec<(u64, u64)>, Vec<(u64, u64)>) {
    let tokens: Vec<u64> =
        (1..=64).map(|i| i * 64).chain([1, 2, 4, 8, 16, 24, 32, 40, 48]).collect();
    let decode: Vec<(u64, u64)> = [1u64, 2, 4, 8, 16, 32, 64, 96, 128]
        .iter()
        .flat_map(|&b| [32u64, 256, 512, 1024, 2048, 4032].map(move |kv| (b, kv)))
        .collect();
    let prefill: Vec<(u64, u64)> = [64u64, 128, 256, 512, 1024, 2048, 3072, 4096]
        .iter()
        .flat_map(|&c| [0u64, 256, 512, 1024, 2048, 3072].map(move |kv| (c, kv)))
        .collect();
    (tokens, decode, prefill)
}

pub(crate) fn synthetic(sd: f64) -> (Vec<MlpRow>, Vec<AttnRow>) {
    let (tokens, decode, prefill) = grid();
    let Profile::Mlp(mlp) = parse("m.csv", &synth::mlp_csv(&tokens, sd, 1)).unwrap() else {
        panic!()
    };
    let text = synth::attention_csv(&decode, &prefill, sd, 2);
    let Profile::Attention(attn) = parse("a.csv", &text).unwrap() else { panic!() };
    (mlp, attn)
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

/// Tolerances with 2 % noise per profile row: attention slopes within 3 %, the token-wise slope
/// within 3 %, the flat region's end within one grid step of the knee, and the composed KV cost
/// per token (scaled by the KV bytes ratio 8 and 32 layers) within 3 %.
#[test]
fn vidur_route_recovers_known_coefficients() {
    let (mlp, attn) = synthetic(0.02);
    let g = Geometry::preset("llama-2-7b", 1).unwrap();
    let a = analyze_vidur(&mlp, &attn, &g).unwrap();
    assert_eq!(a.ratios, (8.0, 1.0));
    assert!(rel(a.decode_attn_ms[2], ATT_KV) < 0.03, "{:?}", a.decode_attn_ms);
    assert!(rel(a.prefill_attn_ms[2], PRE_A2) < 0.03, "{:?}", a.prefill_attn_ms);
    assert!(rel(a.tokenwise_slope.0, 32.0 * MLP_SLOPE_MS / 1e3) < 0.03, "{:?}", a.tokenwise_slope);
    assert!(a.flat_end >= 64 && a.flat_end <= MLP_KNEE + 64, "{}", a.flat_end);
    let StepTime::Rich { kv_s_per_token, .. } = a.rich.step_time else { panic!() };
    let want_kv = 32.0 * 8.0 * ATT_KV / 1e3;
    println!("kv {kv_s_per_token:e} (want {want_kv:e})");
    assert!(rel(kv_s_per_token, want_kv) < 0.03);
    let clean = analyze_vidur(&synthetic(0.0).0, &synthetic(0.0).1, &g).unwrap();
    let truth: Vec<Sample> = clean.decode.iter().chain(&clean.prefill).copied().collect();
    let q = crate::fit::evaluate(&a.rich.step_time, &truth, "").quality;
    assert!(q.mape < 0.02, "fit on noisy data vs noise-free composites: {q:?}");
    assert!(a.rich.quality.mape < 0.03, "{:?}", a.rich.quality);
    println!("{}", report(&a.affine, &a.rich));
}

/// The affine law fitted to the decode composites: d0 near the flat token-wise time plus the
/// attention constant, d1 near the scaled KV cost; it misfits the region above the flat part.
#[test]
fn affine_on_composites() {
    let (mlp, attn) = synthetic(0.0);
    let g = Geometry::preset("llama-2-7b", 1).unwrap();
    let a = analyze_vidur(&mlp, &attn, &g).unwrap();
    let StepTime::Affine { d0_s, d1_s_per_token } = a.affine.step_time else { panic!() };
    assert!(d0_s > 0.009 && d0_s < 0.0115, "{d0_s}");
    assert!(rel(d1_s_per_token, 32.0 * 8.0 * ATT_KV / 1e3) < 0.15, "{d1_s_per_token}");
    let names: Vec<&str> = a.affine.quality.regions.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["flat", "above flat", "short kv", "long kv", "kv <= 137k", "prefill (not fitted)"]
    );
    let cal = calibration(&a, "A100", &g, "synthetic");
    let text = cal.to_toml().unwrap();
    assert_eq!(Calibration::parse("c.toml", &text).unwrap(), cal);
}

#[test]
fn tokenwise_curve_averages_duplicates_and_selects_tp() {
    let row = |n, tp, ms| MlpRow {
        num_tokens: n,
        tp,
        n_embd: 4096,
        n_expanded_embd: 11008,
        layer_ms: ms,
        mlp_ms: 0.5,
        emb_ms: 0.0,
    };
    let rows = [row(1, 1, 1.0), row(1, 1, 3.0), row(2, 1, 4.0), row(1, 2, 9.0)];
    let mut g = Geometry::preset("llama-2-7b", 1).unwrap();
    g.layers = 2;
    let c = tokenwise_curve(&rows, &g).unwrap();
    assert_eq!(c, vec![(1, 0.004), (2, 0.008)]);
    g.tp = 2;
    g.layers = 1;
    // One token count at TP 2 only.
    assert!(tokenwise_curve(&rows, &g).is_err());
    assert_eq!(interp(&c, 3), 0.012);
}

/// A wider target MLP scales only the MLP-width ops: 0.5 of 2.0 ms per layer at width ratio 2
/// gives 2.5 ms per layer.
#[test]
fn tokenwise_curve_scales_the_mlp_width_ops() {
    let row = |n| MlpRow {
        num_tokens: n,
        tp: 1,
        n_embd: 4096,
        n_expanded_embd: 5504,
        layer_ms: 2.0,
        mlp_ms: 0.5,
        emb_ms: 0.0,
    };
    let g = Geometry::preset("llama-2-7b", 1).unwrap();
    let rows = [row(1), row(2)];
    assert_eq!(mlp_ratio(&rows, &g).unwrap(), 2.0);
    let c = tokenwise_curve(&rows, &g).unwrap();
    assert!((c[0].1 - 32.0 * 2.5 / 1e3).abs() < 1e-12, "{c:?}");
    let mut mixed = rows.to_vec();
    mixed[1].n_expanded_embd = 11008;
    assert!(mlp_ratio(&mixed, &g).is_err());
}

#[test]
fn table_analysis_fits_decode_rows() {
    let mut samples = Vec::new();
    for b in [1u64, 8, 32, 128] {
        for kv in [256u64, 1024, 4096] {
            let shape =
                BatchShape { decode_requests: b, attended_kv_tokens: b * kv, ..Default::default() };
            let t = 0.01 + 3e-7 * (b * kv) as f64 + 1e-5 * b as f64;
            samples.push(("decode".to_string(), Sample { shape, time_s: t }));
        }
    }
    let (affine, rich, _) = analyze_rows(&samples).unwrap();
    assert!(affine.quality.r2 > 0.99);
    assert!(rich.quality.mape < 1e-6, "{:?}", rich.quality);
}
