//! The hardware claims (`H-KV-BYTES`, `H-AFFINE-A100` of `spec/CLAIMS.md`): the KV bytes per
//! token of Llama-2-7B from the formula, and the KV capacity and affine step time of an
//! A100-80GB from the project's recorded calibration. No GPU is needed: the calibration is
//! committed, and its fit is re-run by gpu-check's tests.

use super::{result, ClaimResult, ClaimVerdict, Ctx, Output};

/// The hardware claims as an experiment of `kvsched reproduce`.
pub fn run(_: &Ctx) -> Output {
    hardware_claims().into()
}

/// H-KV-BYTES and H-AFFINE-A100 from the formula and the project's recorded A100 calibration
/// (`spec/calibration/a100-llama2-7b.toml`, fitted by gpu-check from Vidur's profiles; the fit
/// itself is re-run by gpu-check's tests). Tolerances fixed before looking: capacity within 1%
/// of 137,000; d1 inside the paper's range; d0 within 5% of the paper's range.
fn hardware_claims() -> Vec<ClaimResult> {
    let text = include_str!("../../spec/calibration/a100-llama2-7b.toml");
    let cal = match kvsched_spec::calibration::Calibration::parse("a100-llama2-7b.toml", text) {
        Ok(c) => c,
        Err(e) => {
            let why = ClaimVerdict::NotReproducible(format!("calibration unreadable: {e}"));
            let r = result("H-AFFINE-A100", "", None, "", None, None, why, String::new());
            return vec![r];
        }
    };
    let bytes = kvsched_spec::Bytes::kv_per_token(32, 32, 128, 2).get() as f64;
    let ok = |c: bool, why: &str| {
        if c {
            ClaimVerdict::Supported
        } else {
            ClaimVerdict::NotSupported(why.into())
        }
    };
    let mut out = vec![result(
        "H-KV-BYTES",
        "bytes per token",
        Some(524_288.0),
        "524288 B/token",
        Some(bytes),
        None,
        ok(bytes == 524_288.0, "formula disagrees"),
        "2 x 32 layers x 32 KV heads x 128 x 2 bytes".into(),
    )];
    let cap = cal.kv_capacity_tokens.map(|c| c as f64);
    let cap_ok = cap.is_some_and(|c| (c / 137_000.0 - 1.0).abs() <= 0.01);
    out.push(result(
        "H-KV-BYTES",
        "capacity (tokens)",
        Some(137_000.0),
        "C ≈ 1.37e5",
        cap,
        None,
        ok(cap_ok, "capacity more than 1% from 137,000"),
        "80 GiB minus fp16 weights, 1% margin, over the bytes per token".into(),
    ));
    let Some(a) = cal.affine else { return out };
    let d1_ok = (3.06e-7..=3.88e-7).contains(&a.d1_s_per_token);
    let d0_ok = (0.0100 * 0.95..=0.0102 * 1.05).contains(&a.d0_s);
    let notes = format!(
        "affine fit on {} decode points: d0 = {:.4} s, R2 = {:.4}, MAPE = {:.1}%; {}",
        a.fit.points,
        a.d0_s,
        a.fit.r2,
        100.0 * a.fit.mape,
        cal.source
    );
    out.push(result(
        "H-AFFINE-A100",
        "d1 (s/token), decode",
        Some(3.5e-7),
        "d0 ≈ 0.0100–0.0102 s; d1 ≈ 3.06e-7–3.88e-7 s/token",
        Some(a.d1_s_per_token),
        None,
        ok(d1_ok && d0_ok, "d1 outside the paper's range or d0 more than 5% outside it"),
        notes,
    ));
    out
}
