//! Writes one instance of the MC-SF paper's synthetic distribution (arXiv 2502.07115 §6) as a
//! round-model TOML file (`spec/ROUNDS.md`), for `kvsched opt`.
//!
//! `cargo run --release --example round_instance -- SEED [zero|online] [N_LO N_HI] > FILE.toml`
//! (`N_LO N_HI`: draw `n ~ U[N_LO, N_HI]` instead of the paper's 40–60, as
//! `families::synthetic_sized`; the exact solvers are compared at small `n` this way)
//! (`SEED` is the instance seed: `derive_seed(1, i)` is trial `i` of the all-at-0 M-SYNTH runs,
//! `derive_seed(2, i)` of the online ones; pass `trial:I` to get those).

use kvsched::opt::families::{synthetic, synthetic_sized};
use kvsched::prng::derive_seed;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let online = args.get(2).is_some_and(|a| a == "online");
    let seed = match args.get(1).map(String::as_str) {
        Some(s) if s.starts_with("trial:") => {
            let i: u64 = s["trial:".len()..].parse().expect("trial:I with an integer I");
            derive_seed(1 + u64::from(online), i)
        }
        Some(s) => s.parse().expect("SEED: an integer or trial:I"),
        None => derive_seed(1, 0),
    };
    let size = |a: &String| a.parse().expect("N_LO, N_HI: integers");
    let inst = match (args.get(3), args.get(4)) {
        (Some(lo), Some(hi)) => synthetic_sized(seed, online, size(lo), size(hi)),
        _ => synthetic(seed, online),
    };
    print!("{}", kvsched::opt::families::to_toml(&inst));
}
