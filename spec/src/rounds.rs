//! The MC-SF paper's round model (arXiv 2502.07115 §2–3), its schedules and simple bounds.
//!
//! A [`RoundInstance`] is a KV capacity `M` (tokens) and requests `(a_i, s_i, o_i)`: arrival
//! round, prompt tokens, output tokens (`o_i ≥ 1`, `s_i ≥ 1`, `s_i + o_i ≤ M`). A schedule gives
//! each request a start round `k_i ≥ a_i`. A request started at `k` holds `s_i + j` tokens after
//! its `j`-th round, at rounds `t = k+1 ..= k+o_i`, and completes at `c_i = k + o_i`. Feasibility:
//! at every round the held tokens sum to at most `M`. No preemption. Objective: total latency
//! `Σ (c_i − a_i)`. This is the paper's IP (1)–(4), and the spec's
//! `FirstToken::WithPrefill` + `StepTime::UnitRounds` semantics with one round = 1 s
//! ([`to_spec`] converts a schedule into an instance and an action list for [`crate::apply`]).
//!
//! # File format (TOML or JSON, see `spec/ROUNDS.md`)
//!
//! ```toml
//! format_version = 1
//! memory_tokens = 10
//! requests = [
//!   { arrival_round = 0, prompt_tokens = 2, output_tokens = 3 },
//!   { arrival_round = 1, prompt_tokens = 1, output_tokens = 2 },
//! ]
//! ```
//!
//! # Bounds
//! - [`latency_floor`]: `Σ o_i`, valid for every instance.
//! - [`volume_bound_all_at_zero`]: valid whenever all requests arrive at round 0 (any prompts).
//! - [`lemma47_bound`]: the paper's Lemma 4.7, stated for identical prompts and all arrivals at
//!   0; it refuses other instances.

use crate::instance::{EvictionRule, FirstToken, Instance, ModelConfig, Preemption};
use crate::memory::MemoryConfig;
use crate::model::{Action, BatchItem};
use crate::request::{Information, Request, RequestId};
use crate::step_time::StepTime;
use crate::units::{Nanos, Tokens, NANOS_PER_S};
use serde::{Deserialize, Serialize};

/// The file format version this module reads and writes.
pub const ROUND_FORMAT_VERSION: u32 = 1;

fn default_version() -> u32 {
    ROUND_FORMAT_VERSION
}

/// One request of the round model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundRequest {
    /// Arrival round `a_i`: the earliest round it may start.
    pub arrival_round: u64,
    /// Prompt tokens `s_i` (at least 1).
    pub prompt_tokens: u64,
    /// Output tokens `o_i` (at least 1).
    pub output_tokens: u64,
}

impl RoundRequest {
    /// Peak tokens held, `s + o`.
    pub fn peak(&self) -> u64 {
        self.prompt_tokens + self.output_tokens
    }
    /// Tokens held at round `t` when started at `k` (0 when not running then).
    pub fn held_at(&self, start: u64, t: u64) -> u64 {
        if t > start && t <= start + self.output_tokens {
            self.prompt_tokens + (t - start)
        } else {
            0
        }
    }
}

/// An instance of the round model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundInstance {
    /// Must be [`ROUND_FORMAT_VERSION`]; defaults to it when absent.
    #[serde(default = "default_version")]
    pub format_version: u32,
    /// KV capacity `M` in tokens.
    pub memory_tokens: u64,
    /// The requests, in any order; a request's id is its index.
    pub requests: Vec<RoundRequest>,
}

/// A schedule: the start round of every request, indexed like the instance's requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundSchedule {
    /// `starts[i]` is `k_i`.
    pub starts: Vec<u64>,
}

impl RoundInstance {
    /// A version-1 instance.
    pub fn new(memory_tokens: u64, requests: Vec<RoundRequest>) -> RoundInstance {
        RoundInstance { format_version: ROUND_FORMAT_VERSION, memory_tokens, requests }
    }

    /// Every problem found, each naming its field (`requests[3].output_tokens: ...`).
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.format_version != ROUND_FORMAT_VERSION {
            problems.push(format!(
                "format_version: expected {ROUND_FORMAT_VERSION}, got {}",
                self.format_version
            ));
        }
        if self.memory_tokens == 0 {
            problems.push("memory_tokens: expected a positive integer".into());
        }
        for (i, r) in self.requests.iter().enumerate() {
            if r.prompt_tokens == 0 {
                problems.push(format!("requests[{i}].prompt_tokens: expected at least 1"));
            }
            if r.output_tokens == 0 {
                problems.push(format!("requests[{i}].output_tokens: expected at least 1"));
            }
            if r.prompt_tokens.saturating_add(r.output_tokens) > self.memory_tokens {
                problems.push(format!(
                    "requests[{i}].output_tokens: peak prompt+output = {} exceeds memory_tokens {}",
                    r.prompt_tokens.saturating_add(r.output_tokens),
                    self.memory_tokens
                ));
            }
            if r.arrival_round > 1 << 40 || r.output_tokens > 1 << 30 {
                problems.push(format!("requests[{i}]: values too large for the round model"));
            }
        }
        problems
    }

    /// Number of requests.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// Whether there are no requests.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// Whether every request arrives at round 0 (the semi-online model).
    pub fn all_at_zero(&self) -> bool {
        self.requests.iter().all(|r| r.arrival_round == 0)
    }

    /// `max a_i + Σ o_i`: some optimal schedule completes every request by this round
    /// (after the last arrival, an optimal schedule has no round with nothing running, else
    /// shifting everything after it one round earlier is feasible and strictly better; so each
    /// round after `max a` runs at least one of the `Σ o` request-rounds).
    pub fn safe_horizon(&self) -> u64 {
        let max_a = self.requests.iter().map(|r| r.arrival_round).max().unwrap_or(0);
        max_a + self.requests.iter().map(|r| r.output_tokens).sum::<u64>()
    }
}

/// Memory held at rounds `0..=last completion` (index `t`; entry 0 is always 0).
pub fn memory_profile(inst: &RoundInstance, starts: &[u64]) -> Vec<u64> {
    let end = inst.requests.iter().zip(starts).map(|(r, &k)| k + r.output_tokens).max();
    let mut prof = vec![0u64; end.map_or(1, |e| e as usize + 1)];
    for (r, &k) in inst.requests.iter().zip(starts) {
        for j in 1..=r.output_tokens {
            prof[(k + j) as usize] += r.prompt_tokens + j;
        }
    }
    prof
}

/// Checks a schedule; returns its total latency `Σ (k_i + o_i − a_i)` or the first problem.
pub fn check_schedule(inst: &RoundInstance, starts: &[u64]) -> Result<u64, String> {
    if starts.len() != inst.requests.len() {
        return Err(format!("{} start rounds for {} requests", starts.len(), inst.len()));
    }
    let mut total = 0u64;
    for (i, (r, &k)) in inst.requests.iter().zip(starts).enumerate() {
        if k < r.arrival_round {
            return Err(format!(
                "request {i} starts at {k} before its arrival {}",
                r.arrival_round
            ));
        }
        if k > 1 << 40 {
            return Err(format!("request {i} starts at {k}: too late for the round model"));
        }
        total += k + r.output_tokens - r.arrival_round;
    }
    let prof = memory_profile(inst, starts);
    if let Some((t, &m)) = prof.iter().enumerate().find(|(_, &m)| m > inst.memory_tokens) {
        return Err(format!("round {t}: {m} tokens held exceeds memory {}", inst.memory_tokens));
    }
    Ok(total)
}

/// Memory volume of one request, `Σ_{j=1..o} (s + j) = s·o + o(o+1)/2` token-rounds.
pub fn volume(prompt: u64, output: u64) -> u64 {
    prompt * output + output * (output + 1) / 2
}

/// `Σ o_i`: every request's latency is at least its output length. Valid for every instance.
pub fn latency_floor(inst: &RoundInstance) -> u64 {
    inst.requests.iter().map(|r| r.output_tokens).sum()
}

/// A volume bound valid when all requests arrive at 0 (any prompts): the `k`-th completion
/// `C_(k)` is at least `⌈V_k / M⌉`, where `V_k` is the sum of the `k` smallest volumes (the
/// first `k` finishers' volume fits in `M·C_(k)` token-rounds), and at least the `k`-th
/// smallest output length. Returns `None` unless all arrivals are 0.
pub fn volume_bound_all_at_zero(inst: &RoundInstance) -> Option<u64> {
    if !inst.all_at_zero() || inst.memory_tokens == 0 {
        return None;
    }
    let mut vols: Vec<u64> =
        inst.requests.iter().map(|r| volume(r.prompt_tokens, r.output_tokens)).collect();
    let mut outs: Vec<u64> = inst.requests.iter().map(|r| r.output_tokens).collect();
    vols.sort_unstable();
    outs.sort_unstable();
    let (mut acc, mut total) = (0u64, 0u64);
    for (v, o) in vols.iter().zip(&outs) {
        acc += v;
        total += acc.div_ceil(inst.memory_tokens).max(*o);
    }
    Some(total)
}

/// The paper's Lemma 4.7 lower bound on OPT (as transcribed in the notes, [B:S6]):
/// `(1/(6M)) Σ_o n_o Σ_{o' ≤ o} n_{o'} vol_{o'} + (1/6) Σ_o n_o o`.
///
/// Stated only for identical prompts and all arrivals at 0; returns an error otherwise. Its
/// validity is checked against the exact IP on small instances in the tests (it is a secondary
/// source's transcription, not something proved here).
pub fn lemma47_bound(inst: &RoundInstance) -> Result<f64, String> {
    if !inst.all_at_zero() {
        return Err("Lemma 4.7 needs all arrivals at round 0".into());
    }
    let s = inst.requests.first().map_or(0, |r| r.prompt_tokens);
    if inst.requests.iter().any(|r| r.prompt_tokens != s) {
        return Err("Lemma 4.7 needs identical prompt lengths".into());
    }
    let mut outs: Vec<u64> = inst.requests.iter().map(|r| r.output_tokens).collect();
    outs.sort_unstable();
    let (mut i, mut prefix_vol, mut quad, mut lin) = (0usize, 0f64, 0f64, 0f64);
    while i < outs.len() {
        let o = outs[i];
        let n_o = outs[i..].iter().take_while(|&&x| x == o).count();
        prefix_vol += n_o as f64 * volume(s, o) as f64;
        quad += n_o as f64 * prefix_vol;
        lin += (n_o as u64 * o) as f64;
        i += n_o;
    }
    Ok(quad / (6.0 * inst.memory_tokens as f64) + lin / 6.0)
}

/// A round schedule as a spec instance plus the action list that replays it.
#[derive(Clone, Debug)]
pub struct SpecReplay {
    /// `UnitRounds`, `WithPrefill`, token memory `M`, arrivals at `a_i` seconds, known lengths.
    pub instance: Instance,
    /// Arrive / Step / Idle actions; applying them in order completes every request.
    pub actions: Vec<Action>,
    /// `spec_index[i]` is the spec request id of round request `i` (spec ids are sorted by
    /// arrival, ties by round index).
    pub spec_index: Vec<u32>,
}

/// Converts an instance and start rounds into a spec instance and its actions (pure). The spec's
/// total latency of the replay, in seconds, equals [`check_schedule`]'s value.
pub fn to_spec(inst: &RoundInstance, starts: &[u64]) -> Result<SpecReplay, String> {
    check_schedule(inst, starts)?;
    let mut order: Vec<usize> = (0..inst.len()).collect();
    order.sort_by_key(|&i| (inst.requests[i].arrival_round, i));
    let mut spec_index = vec![0u32; inst.len()];
    let requests = order
        .iter()
        .enumerate()
        .map(|(new, &old)| {
            spec_index[old] = new as u32;
            let r = &inst.requests[old];
            Request {
                id: RequestId(new as u32),
                arrival_ns: Nanos(r.arrival_round * NANOS_PER_S),
                prompt_tokens: Tokens(r.prompt_tokens),
                output_tokens: Tokens(r.output_tokens),
                predicted_output_tokens: None,
                class: 0,
            }
        })
        .collect();
    let instance = Instance {
        config: ModelConfig {
            memory: MemoryConfig::tokens(inst.memory_tokens),
            step_time: StepTime::UnitRounds,
            first_token: FirstToken::WithPrefill,
            eviction: EvictionRule::Any,
            preemption: Preemption::Restart,
            information: Information::Known,
        },
        requests,
    };
    let actions = replay_actions(inst, starts, &order);
    Ok(SpecReplay { instance, actions, spec_index })
}

fn replay_actions(inst: &RoundInstance, starts: &[u64], order: &[usize]) -> Vec<Action> {
    let end = inst.requests.iter().zip(starts).map(|(r, &k)| k + r.output_tokens).max();
    let end = end.unwrap_or(0);
    let mut actions = Vec::new();
    let mut next = 0usize; // next arrival (position in `order`)
    let mut t = 0u64;
    while t < end {
        while next < order.len() && inst.requests[order[next]].arrival_round <= t {
            actions.push(Action::Arrive(RequestId(next as u32)));
            next += 1;
        }
        let mut batch = Vec::new();
        for (pos, &i) in order.iter().enumerate() {
            let (r, k) = (&inst.requests[i], starts[i]);
            let id = RequestId(pos as u32);
            if k == t {
                batch.push(BatchItem::Prefill { id, tokens: Tokens(r.prompt_tokens) });
            } else if k < t && t < k + r.output_tokens {
                batch.push(BatchItem::Decode { id });
            }
        }
        if batch.is_empty() {
            let next_start = starts.iter().copied().filter(|&k| k > t).min().unwrap_or(end);
            let next_arr = order.get(next).map_or(u64::MAX, |&i| inst.requests[i].arrival_round);
            let until = next_start.min(next_arr);
            actions.push(Action::Idle { until_ns: Nanos(until * NANOS_PER_S) });
            t = until;
        } else {
            actions.push(Action::Step(batch));
            t += 1;
        }
    }
    while next < order.len() {
        actions.push(Action::Arrive(RequestId(next as u32)));
        next += 1;
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst() -> RoundInstance {
        RoundInstance::new(
            8,
            vec![
                RoundRequest { arrival_round: 0, prompt_tokens: 2, output_tokens: 3 },
                RoundRequest { arrival_round: 1, prompt_tokens: 1, output_tokens: 2 },
            ],
        )
    }

    #[test]
    fn check_and_replay_agree() {
        let i = inst();
        assert_eq!(check_schedule(&i, &[0, 1]), Ok(3 + 2));
        assert!(check_schedule(&i, &[0, 0]).is_err());
        let rep = to_spec(&i, &[0, 3]).unwrap();
        let mut s = crate::State::init(&rep.instance);
        for a in &rep.actions {
            s = crate::apply(&rep.instance, &s, a).unwrap();
        }
        assert!(s.all_done());
    }

    #[test]
    fn bounds_are_below_a_schedule() {
        let i = RoundInstance::new(
            6,
            vec![
                RoundRequest { arrival_round: 0, prompt_tokens: 1, output_tokens: 2 },
                RoundRequest { arrival_round: 0, prompt_tokens: 1, output_tokens: 3 },
            ],
        );
        let ub = check_schedule(&i, &[0, 2]).unwrap();
        assert!(volume_bound_all_at_zero(&i).unwrap() <= ub);
        assert!(lemma47_bound(&i).unwrap() <= ub as f64);
        assert_eq!(latency_floor(&i), 5);
    }
}
