//! Solve times of the exact branch-and-bound (`kvsched::opt::bnb`) on the MC-SF paper's
//! synthetic distribution (arXiv 2502.07115 §6: `M ~ U[30,50]`, `s ~ U[1,5]`,
//! `o ~ U[1, M − s]`) at a chosen size range, one line per instance.
//!
//! `cargo run --release --example bnb_scaling -- N_LO N_HI TRIALS [zero|online] [LIMIT_S]
//! [SEARCH_ITERS]` (with `SEARCH_ITERS > 0` the local search of `opt::search` improves the
//! MC-SF warm start first)
//! (seed stream: `derive_seed(1, i)` for all-at-0, `derive_seed(2, i)` with arrivals; with
//! `N_LO N_HI = 40 60` these are the instances of the M-SYNTH tests).

use kvsched::opt::bnb::{solve_bnb, BnbOptions};
use kvsched::opt::families::synthetic_sized;
use kvsched::opt::round_sim::{simulate, Mcsf};
use kvsched::opt::search::{improve, SearchOptions};
use kvsched::prng::{derive_seed, stream, Stream};
use kvsched_spec::rounds::check_schedule;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let n_lo: usize = arg(1, "6").parse().expect("N_LO");
    let n_hi: usize = arg(2, "8").parse().expect("N_HI");
    let trials: u64 = arg(3, "20").parse().expect("TRIALS");
    let online = arg(4, "zero") == "online";
    let limit: f64 = arg(5, "60").parse().expect("LIMIT_S");
    let iters: u64 = arg(6, "0").parse().expect("SEARCH_ITERS");
    let (mut times, mut proven, mut optimal, mut ratio) = (Vec::new(), 0, 0, 0.0);
    for i in 0..trials {
        let inst = synthetic_sized(derive_seed(1 + u64::from(online), i), online, n_lo, n_hi);
        let s = simulate(&inst, &mut Mcsf).expect("MC-SF runs");
        let mc = check_schedule(&inst, &s).expect("MC-SF feasible");
        let warm = if iters > 0 {
            let o = SearchOptions { iterations: iters, ..SearchOptions::default() };
            improve(&inst, &s, &o, &mut stream(derive_seed(7, i), Stream::Policy)).starts
        } else {
            s
        };
        let opts = BnbOptions {
            time_limit_s: Some(limit),
            warm_start: Some(warm),
            ..BnbOptions::default()
        };
        let sol = solve_bnb(&inst, &opts).expect("branch-and-bound runs");
        println!(
            "trial {i}: n={} M={} MC-SF={mc} best={} lb={} proven={} nodes={} time={:.3}s",
            inst.len(),
            inst.memory_tokens,
            sol.total_latency,
            sol.lower_bound,
            sol.proven_optimal,
            sol.nodes,
            sol.solve_time_s
        );
        times.push(sol.solve_time_s);
        proven += u64::from(sol.proven_optimal);
        optimal += u64::from(sol.proven_optimal && sol.total_latency == mc);
        ratio += mc as f64 / sol.total_latency as f64;
    }
    times.sort_by(f64::total_cmp);
    println!(
        "proven {proven}/{trials}; MC-SF optimal {optimal}; mean MC-SF/best {:.4}; \
         time median {:.3}s max {:.3}s",
        ratio / trials as f64,
        times[times.len() / 2],
        times[times.len() - 1]
    );
}
