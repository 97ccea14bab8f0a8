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
//! with every arrival known). When the IP is not proven optimal within its time limit, its
//! lower bound is used, which over-states regret (reported as such).

use super::ip::{solve_ip, IpOptions};
use super::mcsf_core::{mcsf_admit, ActiveReq, WaitingReq};
use super::round_sim::{simulate, Fcfs, Mcsf, RoundPolicy};
use kvsched_spec::rounds::{check_schedule, RoundInstance, RoundRequest};

/// The re-solving policy. `time_limit_s` bounds each IP solve; on failure it falls back to
/// MC-SF's decision for that round.
pub struct Resolve {
    /// Per-round IP time limit (seconds).
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
        let opts = IpOptions {
            time_limit_s: Some(self.time_limit_s),
            warm_start: None,
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
    /// Total latencies of MC-SF, FCFS (memory-checked) and the re-solving policy.
    pub mcsf: u64,
    /// FCFS total latency.
    pub fcfs: u64,
    /// Re-solving policy total latency.
    pub resolve: u64,
}

/// Runs the three policies and the hindsight IP on one instance.
pub fn regret_row(
    inst: &RoundInstance,
    horizon: u64,
    ip_limit_s: f64,
) -> Result<RegretRow, String> {
    let run = |p: &mut dyn RoundPolicy| -> Result<(Vec<u64>, u64), String> {
        let s = simulate(inst, p)?;
        let v = check_schedule(inst, &s)?;
        Ok((s, v))
    };
    let m = run(&mut Mcsf)?;
    let f = run(&mut Fcfs)?;
    let r = run(&mut Resolve { time_limit_s: 2.0 })?;
    let best = [&m, &f, &r].into_iter().min_by_key(|x| x.1).expect("three").0.clone();
    let opts = IpOptions {
        time_limit_s: Some(ip_limit_s),
        warm_start: Some(best),
        background: vec![],
        clique_k: 0,
    };
    let sol = solve_ip(inst, &opts)?;
    Ok(RegretRow {
        horizon,
        n: inst.len(),
        opt_lb: sol.lower_bound,
        proven: sol.proven_optimal,
        mcsf: m.1,
        fcfs: f.1,
        resolve: r.1,
    })
}
