//! A small pure simulator of *non-preemptive* policies in the round model (no randomness).
//!
//! At each decision round `t` the policy sees the requests in progress and the arrived waiting
//! ones, and returns which waiting requests start at `t`. The simulator advances until every
//! request has started, and returns the start rounds; callers check them with
//! `kvsched_spec::rounds::check_schedule`. Policies see true output lengths (õ = o, as in the
//! paper's synthetic experiment) unless they choose otherwise.

use super::mcsf_core::{fcfs_admit, mcsf_admit, ActiveReq, WaitingReq};
use kvsched_spec::rounds::RoundInstance;

/// A non-preemptive online policy of the round model.
pub trait RoundPolicy {
    /// Round-indices (into `inst.requests`) of waiting requests to start at round `t`.
    /// `active` holds `(index, start)` of requests still running at round `t + 1`; `waiting`
    /// holds indices of arrived, unstarted requests. Only arrived requests may be used.
    fn decide(
        &mut self,
        t: u64,
        inst: &RoundInstance,
        active: &[(usize, u64)],
        waiting: &[usize],
    ) -> Vec<usize>;
}

/// Memory-checked shortest-first (MC-SF) with true output lengths.
pub struct Mcsf;
/// Memory-checked FCFS (the paper's MC-Benchmark: FCFS order plus MC-SF's check).
pub struct Fcfs;

fn views(inst: &RoundInstance, active: &[(usize, u64)], waiting: &[usize]) -> Views {
    let act = active
        .iter()
        .map(|&(i, p)| ActiveReq {
            prompt_tokens: inst.requests[i].prompt_tokens,
            start_round: p,
            predicted_output: inst.requests[i].output_tokens,
        })
        .collect();
    let wait = waiting
        .iter()
        .map(|&i| {
            let r = &inst.requests[i];
            WaitingReq {
                id: i as u64,
                prompt_tokens: r.prompt_tokens,
                arrival_round: r.arrival_round,
                predicted_output: r.output_tokens,
            }
        })
        .collect();
    (act, wait)
}

type Views = (Vec<ActiveReq>, Vec<WaitingReq>);

type AdmitFn = fn(u64, &[ActiveReq], &[WaitingReq], u64) -> Vec<u64>;

/// The decision of a memory-checked policy whose admission order is `admit`'s.
fn checked_decide(
    admit: AdmitFn,
    t: u64,
    inst: &RoundInstance,
    a: &[(usize, u64)],
    w: &[usize],
) -> Vec<usize> {
    let (act, wait) = views(inst, a, w);
    admit(t, &act, &wait, inst.memory_tokens).into_iter().map(|i| i as usize).collect()
}

impl RoundPolicy for Mcsf {
    fn decide(
        &mut self,
        t: u64,
        inst: &RoundInstance,
        a: &[(usize, u64)],
        w: &[usize],
    ) -> Vec<usize> {
        checked_decide(mcsf_admit, t, inst, a, w)
    }
}

impl RoundPolicy for Fcfs {
    fn decide(
        &mut self,
        t: u64,
        inst: &RoundInstance,
        a: &[(usize, u64)],
        w: &[usize],
    ) -> Vec<usize> {
        checked_decide(fcfs_admit, t, inst, a, w)
    }
}

/// Runs `policy` on `inst`; returns the start rounds. Errors on a policy that starts a request
/// twice, starts one not waiting, or never finishes (no progress for `safe_horizon` rounds).
pub fn simulate(inst: &RoundInstance, policy: &mut dyn RoundPolicy) -> Result<Vec<u64>, String> {
    let n = inst.len();
    let mut starts: Vec<Option<u64>> = vec![None; n];
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (inst.requests[i].arrival_round, i));
    let limit = inst.safe_horizon() * 2 + 2;
    let (mut t, mut started, mut next) = (0u64, 0usize, 0usize);
    let mut waiting: Vec<usize> = Vec::new();
    let mut active: Vec<(usize, u64)> = Vec::new();
    while started < n {
        if t > limit {
            return Err(format!("policy made no progress by round {t}"));
        }
        while next < n && inst.requests[order[next]].arrival_round <= t {
            waiting.push(order[next]);
            next += 1;
        }
        active.retain(|&(i, p)| p + inst.requests[i].output_tokens > t);
        if waiting.is_empty() && active.is_empty() {
            t = inst.requests[order[next]].arrival_round; // jump to the next arrival
            continue;
        }
        let chosen =
            if waiting.is_empty() { Vec::new() } else { policy.decide(t, inst, &active, &waiting) };
        for i in chosen {
            let pos = waiting.iter().position(|&w| w == i);
            let pos = pos.ok_or_else(|| format!("round {t}: request {i} is not waiting"))?;
            waiting.swap_remove(pos);
            starts[i] = Some(t);
            active.push((i, t));
            started += 1;
        }
        waiting.sort_by_key(|&i| (inst.requests[i].arrival_round, i));
        t += 1;
    }
    Ok(starts.into_iter().map(|k| k.expect("all started")).collect())
}
