//! The stochastic-arrival regret experiment (v1/v2 claim "constant regret"; design and
//! findings in `spec/MCSF_NOTES.md` §4).
//!
//! Policies, all non-preemptive, in the round model:
//! - [`Resolve`]: at every round with waiting requests, solve the hindsight IP *of what is known
//!   now* (waiting requests, the running ones as background memory, no future arrivals) and
//!   start the requests it starts now. A certainty-equivalent re-solving policy.
//! - MC-SF and memory-checked FCFS ([`super::round_sim`]).
//!
//! Regret of a policy on one sample path = its total latency − the hindsight optimum (the IP
//! with every arrival known). When the IP is not proven optimal within its time limit, the
//! regret is only bracketed: `[ALG − UB, ALG − LB]`, with `UB` the best feasible schedule known
//! (the policies', the local search's from the best of them, the IP's incumbent) and `LB` the
//! IP's proven bound. Growth is judged on the lower end, flatness on the upper end
//! ([`regret_verdict`]); a verdict never rests on a bound on the wrong side.

use super::ip::{solve_ip, IpOptions};
use super::mcsf_core::{mcsf_admit, ActiveReq, WaitingReq};
use super::round_sim::{simulate, Fcfs, Mcsf, RoundPolicy};
use super::search::{improve, serial_schedule, SearchOptions};
use crate::prng::{derive_seed, stream, Stream};
use kvsched_spec::rounds::{check_schedule, RoundInstance, RoundRequest};
use kvsched_verify::stats::{linear_slope, Interval};
use rayon::prelude::*;

/// The re-solving policy. Each IP solve stops at `node_limit` HiGHS branch-and-bound nodes (a
/// deterministic limit) or after `time_limit_s` seconds, whichever comes first. The time limit
/// is needed because HiGHS's root processing (presolve, cuts, heuristics) is not bounded by
/// nodes and takes seconds on long queues; where it binds, the decision depends on the
/// machine's speed and load (`spec/MCSF_NOTES.md` §4). When a solve finds no schedule the
/// policy falls back to MC-SF's decision for that round.
pub struct Resolve {
    /// Per-round IP node limit.
    pub node_limit: u64,
    /// Per-round IP wall-clock limit (seconds).
    pub time_limit_s: f64,
}

impl RoundPolicy for Resolve {
    fn decide(
        &mut self,
        t: u64,
        inst: &RoundInstance,
        a: &[(usize, u64)],
        w: &[usize],
    ) -> Vec<usize> {
        let mut background = vec![0u64];
        for &(i, p) in a {
            let r = inst.requests[i];
            for tp in t + 1..=p + r.output_tokens {
                let j = (tp - t) as usize;
                if background.len() <= j {
                    background.resize(j + 1, 0);
                }
                background[j] += r.held_at(p, tp);
            }
        }
        let reqs: Vec<RoundRequest> =
            w.iter().map(|&i| RoundRequest { arrival_round: 0, ..inst.requests[i] }).collect();
        let residual = RoundInstance::new(inst.memory_tokens, reqs);
        // Warm start: the shortest-first serial schedule on top of the running requests. It
        // bounds every start window (`opt::ip`), which keeps the model small.
        let mut spt: Vec<usize> = (0..residual.len()).collect();
        spt.sort_by_key(|&i| (residual.requests[i].output_tokens, i));
        let warm = serial_schedule(&residual, &spt, &background).ok();
        let opts = IpOptions {
            time_limit_s: Some(self.time_limit_s),
            node_limit: Some(self.node_limit),
            warm_start: warm,
            background,
            clique_k: 0,
        };
        match solve_ip(&residual, &opts) {
            Ok(sol) => {
                w.iter().zip(&sol.starts).filter(|(_, &k)| k == 0).map(|(&i, _)| i).collect()
            }
            Err(_) => mcsf_fallback(t, inst, a, w),
        }
    }
}

fn mcsf_fallback(t: u64, inst: &RoundInstance, a: &[(usize, u64)], w: &[usize]) -> Vec<usize> {
    let act: Vec<ActiveReq> = a
        .iter()
        .map(|&(i, p)| ActiveReq {
            prompt_tokens: inst.requests[i].prompt_tokens,
            start_round: p,
            predicted_output: inst.requests[i].output_tokens,
        })
        .collect();
    let wait: Vec<WaitingReq> = w
        .iter()
        .map(|&i| WaitingReq {
            id: i as u64,
            prompt_tokens: inst.requests[i].prompt_tokens,
            arrival_round: inst.requests[i].arrival_round,
            predicted_output: inst.requests[i].output_tokens,
        })
        .collect();
    let ids = mcsf_admit(t, &act, &wait, inst.memory_tokens);
    ids.into_iter().map(|i| i as usize).collect()
}

/// One sample path's results.
#[derive(Clone, Debug)]
pub struct RegretRow {
    /// Arrival horizon (rounds).
    pub horizon: u64,
    /// Requests on the path.
    pub n: usize,
    /// Hindsight optimum, or its proven lower bound when not proven.
    pub opt_lb: f64,
    /// Whether the hindsight IP was proven optimal.
    pub proven: bool,
    /// The best feasible schedule's total latency (policies, local search, IP incumbent): an
    /// upper bound on the hindsight optimum, equal to it when `proven`.
    pub opt_ub: u64,
    /// Total latencies of MC-SF, FCFS (memory-checked) and the re-solving policy.
    pub mcsf: u64,
    /// FCFS total latency.
    pub fcfs: u64,
    /// Re-solving policy total latency.
    pub resolve: u64,
}

/// Runs the three policies and the hindsight IP on one instance (`seed` seeds the local search
/// that improves the IP's warm start; `resolve` = (node limit, seconds) of each of re-solve's
/// IPs; the hindsight IP stops at `ip_limit_s` seconds, which moves only the bracket).
pub fn regret_row(
    inst: &RoundInstance,
    horizon: u64,
    ip_limit_s: f64,
    resolve: (u64, f64),
    seed: u64,
) -> Result<RegretRow, String> {
    let run = |p: &mut dyn RoundPolicy| -> Result<(Vec<u64>, u64), String> {
        let s = simulate(inst, p)?;
        let v = check_schedule(inst, &s)?;
        Ok((s, v))
    };
    let m = run(&mut Mcsf)?;
    let f = run(&mut Fcfs)?;
    let r = run(&mut Resolve { node_limit: resolve.0, time_limit_s: resolve.1 })?;
    let best = [&m, &f, &r].into_iter().min_by_key(|x| x.1).expect("three").0.clone();
    let search = SearchOptions { iterations: 5_000, ..SearchOptions::default() };
    let found = improve(inst, &best, &search, &mut stream(seed, Stream::Policy));
    check_schedule(inst, &found.starts)?;
    let opts = IpOptions {
        time_limit_s: Some(ip_limit_s),
        warm_start: Some(found.starts),
        background: vec![],
        clique_k: 0,
        node_limit: None,
    };
    let sol = solve_ip(inst, &opts)?;
    Ok(RegretRow {
        horizon,
        n: inst.len(),
        opt_lb: sol.lower_bound,
        proven: sol.proven_optimal,
        opt_ub: sol.total_latency,
        mcsf: m.1,
        fcfs: f.1,
        resolve: r.1,
    })
}

impl RegretRow {
    /// Regret bracket `[ALG − UB, ALG − LB]` of MC-SF, FCFS and re-solve (in that order).
    pub fn brackets(&self) -> [(f64, f64); 3] {
        [self.mcsf, self.fcfs, self.resolve]
            .map(|v| (v as f64 - self.opt_ub as f64, v as f64 - self.opt_lb))
    }
}

/// The sample paths of the experiment: for each horizon `h` in `horizons`, `seeds` paths
/// `stochastic(derive_seed(seed, h·100 + j), h, 0.6, 20, 8)`, in that order (computed in
/// parallel; the order and the policies' latencies do not depend on the thread count, the IP's
/// bounds can, through its time limit).
pub fn regret_paths(
    seed: u64,
    horizons: &[u64],
    seeds: u64,
    ip_limit_s: f64,
    resolve: (u64, f64),
) -> Result<Vec<RegretRow>, String> {
    let jobs: Vec<(u64, u64)> =
        horizons.iter().flat_map(|&h| (0..seeds).map(move |j| (h, j))).collect();
    jobs.par_iter()
        .map(|&(h, j)| {
            let s = derive_seed(seed, h * 100 + j);
            let inst = super::families::stochastic(s, h, 0.6, 20, 8);
            regret_row(&inst, h, ip_limit_s, resolve, s)
        })
        .collect()
}

/// Linear slopes of regret against the horizon, fitted over every path, for both ends of the
/// bracket, and the verdict on "constant regret" for the re-solving policy.
#[derive(Clone, Debug)]
pub struct RegretVerdict {
    /// Slope of the lower end `ALG − UB` per policy (MC-SF, FCFS, re-solve).
    pub slope_lo: [Interval; 3],
    /// Slope of the upper end `ALG − LB` per policy.
    pub slope_hi: [Interval; 3],
    /// Paths in the fit whose hindsight optimum was proven.
    pub proven: usize,
    /// Paths in the fit.
    pub paths: usize,
    /// `Some(true)`: re-solve's regret is consistent with no growth (its upper end's slope
    /// interval reaches 0) and provably grows slower than FCFS's (that interval lies below
    /// FCFS's lower-end interval, so the design can see growth); `Some(false)`: re-solve's
    /// lower end grows (interval above 0); `None`: neither can be shown.
    pub constant: Option<bool>,
}

/// Fits and judges the rows with `horizon ≥ min_horizon` (95 % Student-t intervals on the
/// slopes). Short horizons are left out of the fit: a policy with constant regret `C` still
/// climbs from about 0 (tiny paths are scheduled optimally) to `C`, and a fit over that
/// transient would read it as growth.
pub fn regret_verdict(rows: &[RegretRow], min_horizon: u64) -> Result<RegretVerdict, String> {
    let rows: Vec<&RegretRow> = rows.iter().filter(|r| r.horizon >= min_horizon).collect();
    let xs: Vec<f64> = rows.iter().map(|r| r.horizon as f64).collect();
    let fit = |k: usize, hi: bool| -> Result<Interval, String> {
        let ys: Vec<f64> =
            rows.iter().map(|r| if hi { r.brackets()[k].1 } else { r.brackets()[k].0 }).collect();
        linear_slope(&xs, &ys, 0.95).map(|f| f.slope).map_err(|e| e.to_string())
    };
    let slope_lo = [fit(0, false)?, fit(1, false)?, fit(2, false)?];
    let slope_hi = [fit(0, true)?, fit(1, true)?, fit(2, true)?];
    let constant = if slope_lo[2].lo > 0.0 {
        Some(false)
    } else if slope_hi[2].lo <= 0.0 && slope_hi[2].hi < slope_lo[1].lo {
        Some(true)
    } else {
        None
    };
    let proven = rows.iter().filter(|r| r.proven).count();
    Ok(RegretVerdict { slope_lo, slope_hi, proven, paths: rows.len(), constant })
}
