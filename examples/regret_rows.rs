//! One line per sample path of the regret experiment (`kvsched::opt::regret`, claim
//! M-V1-REGRET): policies' total latencies, the hindsight IP's bound and whether it is proven.
//!
//! `cargo run --release --example regret_rows -- H1,H2,... SEEDS [IP_LIMIT_S] [RESOLVE_NODES]`
//! (re-solve's IPs also stop after 2 s)

use kvsched::opt::families::stochastic;
use kvsched::opt::regret::regret_row;
use kvsched::prng::derive_seed;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let hs: Vec<u64> = args
        .get(1)
        .map_or("10,20,40", String::as_str)
        .split(',')
        .map(|h| h.parse().expect("horizons"))
        .collect();
    let seeds: u64 = args.get(2).map_or(Ok(2), |s| s.parse()).expect("SEEDS");
    let limit: f64 = args.get(3).map_or(Ok(20.0), |s| s.parse()).expect("IP_LIMIT_S");
    let nodes: u64 = args.get(4).map_or(Ok(200), |s| s.parse()).expect("RESOLVE_NODES");
    for &h in &hs {
        for j in 0..seeds {
            let inst = stochastic(derive_seed(1, h * 100 + j), h, 0.6, 20, 8);
            let t0 = std::time::Instant::now();
            let r = regret_row(&inst, h, limit, (nodes, 2.0), derive_seed(1, h * 100 + j))
                .expect("row");
            let secs = t0.elapsed().as_secs_f64();
            println!(
                "H={h} seed={j} n={} opt_lb={:.1} proven={} ub={} mcsf={} fcfs={} resolve={} \
                 ({secs:.1} s)",
                r.n, r.opt_lb, r.proven, r.opt_ub, r.mcsf, r.fcfs, r.resolve
            );
        }
    }
}
