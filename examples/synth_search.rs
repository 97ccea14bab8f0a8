//! MC-SF against the list-scheduling local search (`kvsched::opt::search`) on the MC-SF
//! paper's synthetic distribution (arXiv 2502.07115 §6), one line per instance.
//!
//! `cargo run --release --example synth_search -- N_LO N_HI TRIALS [zero|online] [ITERS] [TEMP]`
//! (instances: `derive_seed(1, i)` all at 0, `derive_seed(2, i)` with arrivals, as in
//! `bnb_scaling`). Each line also gives the latency of MC-SF with skip-and-continue admission
//! (`skip=`); with `PEEK=1` it splits total completion rounds into long (`2(s + o) > M`) and
//! short requests, and gives both makespans (`spec/MCSF_NOTES.md` §0.3).

use kvsched::opt::families::synthetic_sized;
use kvsched::opt::mcsf_core::{mcsf_admit, ActiveReq, WaitingReq};
use kvsched::opt::round_sim::{simulate, Mcsf, RoundPolicy};
use kvsched_spec::rounds::RoundInstance;

/// MC-SF that skips a failing candidate and tries the next (backfilling).
struct McsfSkip;
impl RoundPolicy for McsfSkip {
    fn decide(
        &mut self,
        t: u64,
        inst: &RoundInstance,
        a: &[(usize, u64)],
        w: &[usize],
    ) -> Vec<usize> {
        let mut act: Vec<ActiveReq> = a
            .iter()
            .map(|&(i, p)| ActiveReq {
                prompt_tokens: inst.requests[i].prompt_tokens,
                start_round: p,
                predicted_output: inst.requests[i].output_tokens,
            })
            .collect();
        let mut order = w.to_vec();
        order.sort_by_key(|&i| (inst.requests[i].output_tokens, inst.requests[i].arrival_round, i));
        let mut out = Vec::new();
        for i in order {
            let r = &inst.requests[i];
            let c = WaitingReq {
                id: i as u64,
                prompt_tokens: r.prompt_tokens,
                arrival_round: r.arrival_round,
                predicted_output: r.output_tokens,
            };
            if !mcsf_admit(t, &act, &[c], inst.memory_tokens).is_empty() {
                act.push(ActiveReq {
                    prompt_tokens: r.prompt_tokens,
                    start_round: t,
                    predicted_output: r.output_tokens,
                });
                out.push(i);
            }
        }
        out
    }
}
use kvsched::opt::search::{improve, SearchOptions};
use kvsched::prng::{derive_seed, stream, Stream};
use kvsched_spec::rounds::check_schedule;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let n_lo: usize = arg(1, "40").parse().expect("N_LO");
    let n_hi: usize = arg(2, "60").parse().expect("N_HI");
    let trials: u64 = arg(3, "10").parse().expect("TRIALS");
    let online = arg(4, "zero") == "online";
    let iters: u64 = arg(5, "20000").parse().expect("ITERS");
    let temp: f64 = arg(6, "3").parse().expect("TEMP");
    let (mut better, mut ratio) = (0, 0.0);
    for i in 0..trials {
        let inst = synthetic_sized(derive_seed(1 + u64::from(online), i), online, n_lo, n_hi);
        let s = simulate(&inst, &mut Mcsf).expect("MC-SF runs");
        let mc = check_schedule(&inst, &s).expect("MC-SF feasible");
        let sk = simulate(&inst, &mut McsfSkip).expect("skip runs");
        let skc = check_schedule(&inst, &sk).expect("skip feasible");
        let t0 = std::time::Instant::now();
        let mut rng = stream(derive_seed(7, i), Stream::Policy);
        let opts = SearchOptions { iterations: iters, temperature: temp, interrupt: None };
        let f = improve(&inst, &s, &opts, &mut rng);
        let c = check_schedule(&inst, &f.starts).expect("search feasible");
        assert_eq!(c, f.total_latency);
        println!(
            "trial {i}: n={} M={} MC-SF={mc} skip={skc} found={c} ratio={:.4} time={:.2}s",
            inst.len(),
            inst.memory_tokens,
            mc as f64 / c as f64,
            t0.elapsed().as_secs_f64()
        );
        if std::env::var("PEEK").is_ok() {
            let m = inst.memory_tokens;
            let stat = |st: &[u64]| {
                let mk =
                    inst.requests.iter().zip(st).map(|(r, &k)| k + r.output_tokens).max().unwrap();
                let (mut lc, mut ln, mut sc) = (0u64, 0u64, 0u64);
                for (r, &k) in inst.requests.iter().zip(st) {
                    if 2 * r.peak() > m {
                        lc += k + r.output_tokens;
                        ln += 1;
                    } else {
                        sc += k + r.output_tokens;
                    }
                }
                format!("makespan {mk} long(n={ln}) sum C {lc} short sum C {sc}")
            };
            println!("  MC-SF: {}\n  found: {}", stat(&s), stat(&f.starts));
        }
        better += u64::from(c < mc);
        ratio += mc as f64 / c as f64;
    }
    println!("MC-SF beaten on {better}/{trials}; mean MC-SF/found {:.4}", ratio / trials as f64);
}
