//! Helpers shared by the integration tests.

#![allow(dead_code)]

/// Whether the slow tier is enabled (`KVSCHED_SLOW=1`).
pub fn slow() -> bool {
    std::env::var("KVSCHED_SLOW").is_ok_and(|v| v == "1")
}

/// The seed for a randomized test: `KVSCHED_SEED` when set (decimal or 0x-hex), else `default`.
pub fn seed(default: u64) -> u64 {
    kvsched_verify::strategies::seed_from_env(default)
}

/// The one-line replay command for a failing randomized test.
pub fn replay(seed: u64, test: &str) -> String {
    format!("note: rerun with KVSCHED_SEED={seed:#x} cargo test --test it {test}")
}

/// Float comparison with a named relative tolerance that prints both values to 15 digits.
pub fn assert_close(what: &str, ours: f64, expected: f64, rel_tol: f64) {
    let denom = expected.abs().max(1e-300);
    let rel = (ours - expected).abs() / denom;
    assert!(
        rel <= rel_tol,
        "{what}: ours {ours:.15e} vs expected {expected:.15e} (rel err {rel:.3e} > {rel_tol:.1e})"
    );
}
