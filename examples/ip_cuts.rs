//! Root LP bounds and HiGHS solve times of the hindsight IP (`kvsched::opt::ip`) with and
//! without the clique rows ("at most `k` requests hold more than `M/(k+1)` per round",
//! `spec/MCSF_NOTES.md` §0.2) on the MC-SF paper's synthetic distribution with `n` fixed.
//!
//! `cargo run --release --example ip_cuts -- N TRIALS [zero|online] [K] [IP_LIMIT_S]`
//! (seed stream as `bnb_scaling`: `derive_seed(1, i)` all-at-0, `derive_seed(2, i)` online).
//! Prints, per instance, MC-SF's total, the LP bound with `k = 0` (no cuts) and `k = K`, and
//! (when `IP_LIMIT_S > 0`) the IP's result and time without and with the cuts.

use kvsched::opt::families::synthetic_sized;
use kvsched::opt::ip::{solve_ip, IpOptions};
use kvsched::opt::lp::solve_lp_cuts;
use kvsched::opt::round_sim::{simulate, Mcsf};
use kvsched::prng::derive_seed;
use kvsched_spec::rounds::check_schedule;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let n: usize = arg(1, "10").parse().expect("N");
    let trials: u64 = arg(2, "3").parse().expect("TRIALS");
    let online = arg(3, "zero") == "online";
    let k: u32 = arg(4, "3").parse().expect("K");
    let limit: f64 = arg(5, "0").parse().expect("IP_LIMIT_S");
    for i in 0..trials {
        let inst = synthetic_sized(derive_seed(1 + u64::from(online), i), online, n, n);
        let s = simulate(&inst, &mut Mcsf).expect("MC-SF runs");
        let mc = check_schedule(&inst, &s).expect("MC-SF feasible");
        let mut line = format!("trial {i}: n={n} M={} MC-SF={mc}", inst.memory_tokens);
        for kk in [0, k] {
            let lp = solve_lp_cuts(&inst, Some(&s), kk).expect("LP solves");
            line += &format!(
                " | LP(k={kk})={:.1} ({:.1}% of MC-SF, {:.2}s, split {}/{n}, {:.1} starts/req)",
                lp.lower_bound,
                100.0 * lp.lower_bound / mc as f64,
                lp.solve_time_s,
                lp.split_requests,
                lp.mean_starts
            );
        }
        if limit > 0.0 {
            for kk in [0, k] {
                let opts = IpOptions {
                    time_limit_s: Some(limit),
                    warm_start: Some(s.clone()),
                    background: vec![],
                    clique_k: kk,
                    node_limit: None,
                };
                let sol = solve_ip(&inst, &opts).expect("IP runs");
                line += &format!(
                    " | IP(k={kk}) best={} lb={:.1} proven={} {:.2}s rows={}",
                    sol.total_latency,
                    sol.lower_bound,
                    sol.proven_optimal,
                    sol.solve_time_s,
                    sol.num_rows
                );
            }
        }
        println!("{line}");
    }
}
