//! Claims checks for the hardware assumptions (H-KV-BYTES, H-AFFINE-A100), without a GPU and
//! without the shared data: the recorded A100 calibration (`spec/calibration/`) and small
//! Vidur-schema fixtures (`tests/fixtures/`, written by `kvsched_gpu_check::synth`).
//!
//! With the Vidur A100 profiles present (`KVSCHED_VIDUR_DIR`, or else `../shared/data/vidur-a100`
//! beside the repository, where CI has them), the analysis is also re-run on them and compared
//! with the recorded calibrations; without them those tests print a `SKIP` line and pass.

use kvsched_gpu_check::analyze::{analyze_vidur, WAIT_D0, WAIT_D1};
use kvsched_gpu_check::geometry::{Geometry, A100_80GB_BYTES};
use kvsched_gpu_check::synth;
use kvsched_gpu_check::vidur::{parse, Profile};
use kvsched_spec::calibration::Calibration;
use kvsched_spec::StepTime;

const A100: &str = include_str!("../../spec/calibration/a100-llama2-7b.toml");
const A100X2_70B: &str = include_str!("../../spec/calibration/a100x2-llama2-70b-tp2.toml");
const A100_L3_8B: &str = include_str!("../../spec/calibration/a100-llama3-8b.toml");

fn fixture_grid() -> (Vec<u64>, Vec<(u64, u64)>, Vec<(u64, u64)>) {
    let tokens: Vec<u64> = [1, 2, 4, 8, 16, 32, 64, 96, 128, 256, 512, 1024, 2048, 4096].into();
    let decode = [1u64, 4, 16, 64, 128]
        .iter()
        .flat_map(|&b| [32u64, 512, 2048, 4032].map(move |kv| (b, kv)))
        .collect();
    let prefill = [64u64, 512, 2048, 4096]
        .iter()
        .flat_map(|&c| [0u64, 1024, 3072].map(move |kv| (c, kv)))
        .collect();
    (tokens, decode, prefill)
}

/// The fixtures are the synthetic profiles (1 % noise, seeds 1 and 2); regenerate them with
/// `UPDATE_FIXTURES=1`.
#[test]
fn fixtures_are_current() {
    let (tokens, decode, prefill) = fixture_grid();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let files = [
        ("vidur-mlp-small.csv", synth::mlp_csv(&tokens, 0.01, 1)),
        ("vidur-attention-small.csv", synth::attention_csv(&decode, &prefill, 0.01, 2)),
    ];
    for (name, text) in files {
        let path = format!("{dir}/{name}");
        if std::env::var_os("UPDATE_FIXTURES").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "{path} is stale");
    }
}

/// Checks H-KV-BYTES (KV bytes per token by the formula, and C on an A100-80GB after the
/// weights and a 1 % margin).
#[test]
fn h_kv_bytes_formula_and_a100_capacity() {
    let g = Geometry::preset("llama-2-7b", 1).unwrap();
    let bytes = g.kv_bytes_per_token();
    let c = g.kv_capacity_tokens(A100_80GB_BYTES, 0.01);
    let rel = (c as f64 - 137_000.0).abs() / 137_000.0;
    println!("H-KV-BYTES: paper 524288 B/token, C ~ 137,000; ours {bytes} B/token, C = {c}");
    println!(
        "  ({} parameters, {} weight bytes, 80 GiB, 1 % margin)",
        g.params(),
        g.weight_bytes_per_gpu()
    );
    let verdict = if bytes == 524_288 && rel < 0.01 { "reproduced" } else { "not reproduced" };
    println!("  verdict: {verdict} (C within {:.2} % of 137,000)", rel * 100.0);
    assert_eq!(bytes, 524_288);
    assert!(rel < 0.01, "C = {c}");
    let cal = Calibration::parse("a100-llama2-7b.toml", A100).unwrap();
    assert_eq!(cal.kv_bytes_per_token, Some(bytes));
    assert_eq!(cal.kv_capacity_tokens, Some(c));
}

fn affine_of(cal: &Calibration) -> (f64, f64) {
    let a = cal.affine.as_ref().expect("the A100 calibration records the affine fit");
    (a.d0_s, a.d1_s_per_token)
}

/// Checks H-AFFINE-A100 (the per-iteration time on an A100 with Llama-2-7B is affine in the
/// batch's KV tokens, d0 ~ 10 ms, d1 ~ 0.33-0.39 us per token) on the recorded calibration fitted
/// to Vidur's A100 profiles, and that the analysis recovers the scaled KV cost from fixtures.
#[test]
fn h_affine_a100_vidur_fit() {
    let cal = Calibration::parse("a100-llama2-7b.toml", A100).unwrap();
    let (d0, d1) = affine_of(&cal);
    let q = &cal.affine.as_ref().unwrap().fit;
    println!("H-AFFINE-A100: paper d0 {:?} s, d1 {:?} s/token", WAIT_D0, WAIT_D1);
    println!("  ours (from {}): d0 = {d0:.5} s, d1 = {d1:.4e} s/token", cal.source);
    println!("  affine fit over {}: R2 {:.4}, MAPE {:.2} %", q.range, q.r2, q.mape * 100.0);
    let mut holds = Vec::new();
    for r in &q.regions {
        let v = if r.mape <= 0.05 { "holds" } else { "does not hold" };
        println!("  region {} ({}): MAPE {:.2} % -> {v}", r.name, r.range, r.mape * 100.0);
        holds.push((r.name.as_str(), r.mape <= 0.05));
    }
    let d0_ok = d0 > 0.9 * WAIT_D0.0 && d0 < 1.1 * WAIT_D0.1;
    let d1_ok = d1 >= WAIT_D1.0 && d1 <= WAIT_D1.1;
    let decode_ok = q.r2 > 0.99 && q.mape <= 0.05;
    let verdict = if d0_ok && d1_ok && decode_ok { "holds for decode" } else { "does not hold" };
    println!(
        "  verdict: {verdict}; d0 within 10 % of the paper: {d0_ok}, d1 in its range: {d1_ok}"
    );
    assert!(d0_ok && d1_ok && decode_ok);
    // Where it does not hold: prefill chunks, which the decode-fitted law cannot describe.
    assert!(holds.contains(&("prefill (not fitted)", false)), "{holds:?}");
    assert!(matches!(cal.step_time, StepTime::Rich { .. }));
    assert!(cal.fit.mape < q.mape, "the rich model should fit better than the affine law");
}

/// The pipeline behind the recorded numbers, on the fixtures: the composed KV cost per token
/// (fixture slope x KV bytes ratio 8 x 32 layers) is recovered within 5 %.
#[test]
fn h_affine_a100_pipeline_on_fixtures() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let read = |n: &str| {
        let p = format!("{dir}/{n}");
        parse(&p, &std::fs::read_to_string(&p).unwrap()).unwrap()
    };
    let (Profile::Mlp(mlp), Profile::Attention(attn)) =
        (read("vidur-mlp-small.csv"), read("vidur-attention-small.csv"))
    else {
        panic!("fixture kinds")
    };
    let g = Geometry::preset("llama-2-7b", 1).unwrap();
    let a = analyze_vidur(&mlp, &attn, &g).unwrap();
    let StepTime::Rich { kv_s_per_token, .. } = a.rich.step_time else { panic!() };
    let want = 32.0 * 8.0 * synth::ATT_KV / 1e3;
    println!("fixtures: kv {kv_s_per_token:.4e} s/token, want {want:.4e}");
    assert!((kv_s_per_token - want).abs() / want < 0.05);
    assert!(a.rich.quality.r2 > 0.99);
}

/// The profile directory: `KVSCHED_VIDUR_DIR`, else `../shared/data/vidur-a100` beside the
/// repository; `None` (with a `SKIP` line) when neither holds the profiles.
fn vidur_dir() -> Option<std::path::PathBuf> {
    let default = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/vidur-a100");
    let dir = std::env::var_os("KVSCHED_VIDUR_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(default));
    if dir.join("h8192-q64-kv8-tp2-attention.csv").is_file() {
        Some(dir)
    } else {
        println!(
            "SKIP: no Vidur A100 profiles at {} (set KVSCHED_VIDUR_DIR): the re-fit on the \
             shared data is not checked",
            dir.display()
        );
        None
    }
}

/// Re-fits `mlp_file` + the attention profile for `preset` at `tp` and checks that the result
/// equals the recorded calibration `text`: coefficients, and the fit quality (R2, MAPE, max and
/// median relative error over the composed profile rows) to 1e-12.
fn refit_matches(
    dir: &std::path::Path,
    mlp_file: &str,
    preset: &str,
    tp: u64,
    name: &str,
    text: &str,
) {
    let (Profile::Mlp(mlp), Profile::Attention(attn)) =
        (read_profile(dir, mlp_file), read_profile(dir, "h8192-q64-kv8-tp2-attention.csv"))
    else {
        panic!("profile kinds")
    };
    let a = analyze_vidur(&mlp, &attn, &Geometry::preset(preset, tp).unwrap()).unwrap();
    let cal = Calibration::parse(name, text).unwrap();
    assert_eq!(a.affine.step_time, cal.affine.as_ref().unwrap().step_time(), "{name}: affine");
    assert_eq!(a.rich.step_time, cal.step_time, "{name}: rich");
    let (q, r) = (&a.rich.quality, &cal.fit);
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-12 * x.abs().max(1.0);
    println!(
        "{name}: re-fit from {}: R2 {:.4}, MAPE {:.2} %, max {:.2} %, median {:.2} % over {} rows",
        dir.display(),
        q.r2,
        q.mape * 100.0,
        q.max_rel_err.unwrap() * 100.0,
        q.median_rel_err.unwrap() * 100.0,
        q.points
    );
    assert!(close(q.r2, r.r2) && close(q.mape, r.mape) && q.points == r.points, "{r:?}");
    assert!(close(q.max_rel_err.unwrap(), r.max_rel_err.expect("max_rel_err recorded")));
    assert!(close(q.median_rel_err.unwrap(), r.median_rel_err.expect("median_rel_err recorded")));
}

fn read_profile(dir: &std::path::Path, name: &str) -> Profile {
    parse(name, &std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
}

/// The Llama-2-70B / TP 2 calibration of M-TRACE-SLOPE, without the data: its geometry, the
/// paper's M, and the MLP width correction recorded in its notes.
#[test]
fn llama2_70b_tp2_calibration_is_consistent() {
    let cal = Calibration::parse("a100x2-llama2-70b-tp2.toml", A100X2_70B).unwrap();
    let g = Geometry::preset("llama-2-70b", 2).unwrap();
    assert_eq!(cal.kv_bytes_per_token, Some(g.kv_bytes_per_token()));
    assert_eq!(cal.kv_capacity_tokens, Some(16_492), "the MC-SF paper's M");
    // Fitted from Llama-2-70B's own token-wise profile: nothing scaled.
    assert!(cal.source.contains("llama-2-70b-mlp.csv"), "{}", cal.source);
    assert!(!cal.fit.notes.contains("MLP width ratio"), "{}", cal.fit.notes);
    let StepTime::Rich { base_s, kv_s_per_token, .. } = cal.step_time else { panic!() };
    println!("70B/TP2: base {base_s:.4} s, kv {kv_s_per_token:.3e} s/token, {}", cal.fit.notes);
    assert!(cal.fit.mape < 0.05, "{:?}", cal.fit);
}

/// With the profiles present: re-run the 70B / TP 2 fit on Llama-2-70B's own token-wise profile
/// (`llama-2-70b-mlp.csv`, MLP width 28,672: ratio 1) and compare with the record, fit quality
/// included.
#[test]
fn recorded_70b_calibration_matches_the_profiles_when_available() {
    let Some(dir) = vidur_dir() else { return };
    let name = "a100x2-llama2-70b-tp2.toml";
    refit_matches(&dir, "llama-2-70b-mlp.csv", "llama-2-70b", 2, name, A100X2_70B);
}

/// The Meta-Llama-3-8B calibration without the data: its geometry (GQA, 8 KV heads: 131,072 KV
/// bytes per token), the WAIT authors' capacity, and a recorded fit quality that holds.
#[test]
fn llama3_8b_calibration_is_consistent() {
    let cal = Calibration::parse("a100-llama3-8b.toml", A100_L3_8B).unwrap();
    let g = Geometry::preset("llama-3-8b", 1).unwrap();
    assert_eq!(cal.kv_bytes_per_token, Some(g.kv_bytes_per_token()));
    assert_eq!(cal.kv_capacity_tokens, Some(29_952 * 16), "the WAIT authors' num_blocks x 16");
    assert!(cal.source.contains("llama-3-8b-mlp.csv"), "{}", cal.source);
    assert!(cal.fit.notes.contains("KV bytes ratio 2.000"), "{}", cal.fit.notes);
    let (max, med) = (cal.fit.max_rel_err.unwrap(), cal.fit.median_rel_err.unwrap());
    println!(
        "Llama-3-8B: MAPE {:.2} %, max {:.2} %, median {:.2} %",
        cal.fit.mape * 100.0,
        max * 100.0,
        med * 100.0
    );
    assert!(cal.fit.mape < 0.05 && med < cal.fit.mape && max < 0.25, "{:?}", cal.fit);
}

/// With the profiles present: re-run the Llama-3-8B fit and compare with the record.
#[test]
fn recorded_llama3_8b_calibration_matches_the_profiles_when_available() {
    let Some(dir) = vidur_dir() else { return };
    let name = "a100-llama3-8b.toml";
    refit_matches(&dir, "llama-3-8b-mlp.csv", "llama-3-8b", 1, name, A100_L3_8B);
}

/// With `KVSCHED_VIDUR_DIR` set: re-run on the real profiles and compare with the record.
#[test]
fn recorded_calibration_matches_the_profiles_when_available() {
    let Some(dir) = vidur_dir() else { return };
    let read = |n: &str| read_profile(&dir, n);
    let (Profile::Mlp(mlp), Profile::Attention(attn)) =
        (read("llama-2-7b-mlp.csv"), read("h8192-q64-kv8-tp2-attention.csv"))
    else {
        panic!("profile kinds")
    };
    let a = analyze_vidur(&mlp, &attn, &Geometry::preset("llama-2-7b", 1).unwrap()).unwrap();
    let cal = Calibration::parse("a100-llama2-7b.toml", A100).unwrap();
    assert_eq!(a.affine.step_time, cal.affine.as_ref().unwrap().step_time());
    assert_eq!(a.rich.step_time, cal.step_time);
}
