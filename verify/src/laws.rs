//! Algebraic laws of the unit newtypes (`kvsched_spec::units`) and of memory footprints.
//!
//! Each law is a plain function returning `bool` over small inputs, so it can be checked by
//! quickcheck (below, with a fixed seed) or called from other tests. Inputs are reduced into
//! the ranges where the law is meant to hold (e.g. no overflow), which the doc of each states.

use kvsched_spec::{KvBlocks, MemoryConfig, Nanos, Tokens};

/// Block sizes used by the laws: `1..=64`.
fn block(b: u8) -> u64 {
    u64::from(b % 64) + 1
}

/// Rounding up to whole blocks covers the tokens and wastes less than one block:
/// `t <= from_tokens_div_ceil(t, b).to_tokens(b) < t + b`. Tokens below 2^40.
pub fn blocks_round_up(tokens: u64, b: u8) -> bool {
    let (t, b) = (Tokens(tokens % (1 << 40)), block(b));
    let back = KvBlocks::from_tokens_div_ceil(t, b).to_tokens(b);
    t <= back && back < t + Tokens(b)
}

/// Rounding down fits inside the tokens and loses less than one block; whole blocks
/// round-trip exactly both ways. Tokens below 2^40.
pub fn blocks_round_down(tokens: u64, b: u8) -> bool {
    let (t, b) = (Tokens(tokens % (1 << 40)), block(b));
    let down = KvBlocks::from_tokens_div_floor(t, b).to_tokens(b);
    let blocks = KvBlocks(t.get() / b);
    down <= t
        && t < down + Tokens(b)
        && KvBlocks::from_tokens_div_ceil(blocks.to_tokens(b), b) == blocks
        && KvBlocks::from_tokens_div_floor(blocks.to_tokens(b), b) == blocks
}

/// Addition and subtraction are inverse on every unit: `(a + b) - b == a`, `(a + b) - a == b`,
/// and `checked_sub` refuses exactly when the result would be negative. Values below 2^62.
pub fn add_sub_inverse(a: u64, b: u64) -> bool {
    let (a, b) = (a >> 2, b >> 2);
    let tokens = (Tokens(a) + Tokens(b)) - Tokens(b) == Tokens(a)
        && (Tokens(a) + Tokens(b)) - Tokens(a) == Tokens(b);
    let nanos = (Nanos(a) + Nanos(b)) - Nanos(b) == Nanos(a);
    let blocks = (KvBlocks(a) + KvBlocks(b)) - KvBlocks(a) == KvBlocks(b);
    let checked = Tokens(a).checked_sub(Tokens(b)).is_some() == (a >= b)
        && Tokens(a).saturating_sub(Tokens(b)) == Tokens(a.saturating_sub(b));
    tokens && nanos && blocks && checked
}

/// `Nanos::from_secs_f64(n.as_secs_f64())` is within 1 ns of `n` for `n` below 2^52 ns (about
/// 52 days), where `f64` still resolves a nanosecond.
pub fn nanos_secs_round_trip(ns: u64) -> bool {
    let n = Nanos(ns % (1 << 52));
    match Nanos::from_secs_f64(n.as_secs_f64()) {
        Some(back) => back.get().abs_diff(n.get()) <= 1,
        None => false,
    }
}

/// Footprints are monotone (`a <= b` implies `footprint(a) <= footprint(b)`), idempotent
/// (`footprint(footprint(a)) == footprint(a)`), cover what is held, and token-granular memory
/// is the identity. Tokens below 2^40, block sizes `1..=64`.
pub fn footprint_monotone_idempotent(a: u64, b: u64, bs: u8) -> bool {
    let mem = MemoryConfig {
        kv_capacity_tokens: 1 << 50,
        block_size_tokens: block(bs),
        watermark_fraction: 0.0,
    };
    let (x, y) = (Tokens(a % (1 << 40)), Tokens(b % (1 << 40)));
    let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
    let f = |t| mem.footprint(t);
    f(lo) <= f(hi)
        && f(f(lo)) == f(lo)
        && f(lo) >= lo
        && MemoryConfig::tokens(1 << 50).footprint(lo) == lo
        && mem.capacity().get().is_multiple_of(mem.block_size_tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies::{replay_line, seed_from_env};
    use quickcheck::{Gen, QuickCheck, Testable};

    /// Runs a law 2,000 times with a fixed seed (or `KVSCHED_SEED`).
    fn check<F: Testable>(name: &str, law: F) {
        let seed = seed_from_env(0x5eed_1a55);
        let gen = Gen::from_size_and_seed(1 << 20, seed);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            QuickCheck::new().rng(gen).tests(2_000).max_tests(4_000).quickcheck(law)
        }));
        if let Err(e) = result {
            eprintln!("{}", replay_line(seed, name));
            std::panic::resume_unwind(e);
        }
    }

    #[test]
    fn law_blocks_round_up() {
        check("law_blocks_round_up", blocks_round_up as fn(u64, u8) -> bool);
    }

    #[test]
    fn law_blocks_round_down() {
        check("law_blocks_round_down", blocks_round_down as fn(u64, u8) -> bool);
    }

    #[test]
    fn law_add_sub_inverse() {
        check("law_add_sub_inverse", add_sub_inverse as fn(u64, u64) -> bool);
    }

    #[test]
    fn law_nanos_secs_round_trip() {
        check("law_nanos_secs_round_trip", nanos_secs_round_trip as fn(u64) -> bool);
    }

    #[test]
    fn law_footprint_monotone_idempotent() {
        let law = footprint_monotone_idempotent as fn(u64, u64, u8) -> bool;
        check("law_footprint_monotone_idempotent", law);
    }

    #[test]
    fn laws_hold_at_edges() {
        // Known answers at the boundaries quickcheck rarely picks.
        assert!(blocks_round_up(0, 15) && blocks_round_up(16, 15) && blocks_round_up(17, 15));
        assert!(nanos_secs_round_trip((1 << 52) - 1) && nanos_secs_round_trip(0));
        assert!(footprint_monotone_idempotent(0, 1, 63));
        assert_eq!(KvBlocks::from_tokens_div_ceil(Tokens(17), 16), KvBlocks(2));
        assert_eq!(MemoryConfig::tokens(8).footprint(Tokens(3)), Tokens(3));
    }
}
