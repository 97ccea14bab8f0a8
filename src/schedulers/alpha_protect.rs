//! The MC-SF paper's α-protection greedy baseline: admit FCFS while used memory stays at most
//! `(1 - α)·M`; when the running requests' growth overflows `M`, clear them (all but the
//! oldest, see the deviations).
//!
//! Models the benchmark of Jaillet et al., "Online Scheduling for LLM Inference with KV Cache
//! Constraints" (arXiv 2502.07115, v4/v5 §"Numerical experiments", real-trace comparison), as
//! summarised in `shared/papers/mcsf.md` §7.2. The paper gives no code; this is our reading
//! (marked [C] in the notes):
//! - **Round structure (MC-SF model).** Every iteration, each running request decodes one token
//!   and newly admitted requests prefill their whole prompt in the same iteration.
//! - **α-protection.** Waiting requests are admitted in FCFS order while the memory used after
//!   the iteration (running requests grown by one token, plus the admitted prompts) stays at
//!   most `(1 - α)·M`; the first that does not fit stops admission. The protected `α·M` absorbs
//!   the growth of the running requests, like vLLM's watermark but much larger.
//! - **Clearing.** If the running requests' next token does not fit in `M`, requests are
//!   cleared (evicted, restarting later from scratch): the greedy variant clears *all* running
//!   requests; φ-clearing ([`super::alpha_clear`]) clears a fraction φ, most recent first.
//!   Cleared requests go back to the waiting queue in arrival order and may be re-admitted in
//!   the same iteration under the α rule.
//!
//! Default `α = 0.21`: the paper's tuned ("smallest feasible") value for high demand (0.24 for
//! low demand).
//!
//! Deliberate deviations:
//! - "Clear all" keeps the oldest running request. Clearing every request can livelock: two
//!   requests whose joint peak exceeds `M` but whose prompts fit under `(1 - α)·M` are
//!   re-admitted together and cleared again forever. Keeping the oldest (which fits alone in
//!   any feasible instance) guarantees progress; φ-clearing keeps it anyway. Progress is all it
//!   guarantees: in overload (lmsys-like mix at 86 req/s, BENCHMARKS.md "Every scheduler at
//!   its own load") almost every iteration clears all but the oldest and re-admits the cleared
//!   requests, thousands of restarts per request, and the server completes about one request
//!   at a time; every request still finishes (no livelock).
//! - If nothing is running after clearing and the head of the queue does not fit under
//!   `(1 - α)·M` but fits in `M`, it is admitted anyway; otherwise a request larger than
//!   `(1 - α)·M` would never run.

use super::mem;
use crate::sim::{Plan, Repeat, ResidentView, Scheduler, View};
use kvsched_spec::{BatchItem, Information, RequestId, Tokens};

/// α-protection greedy parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct AlphaProtect {
    /// Protected fraction of memory.
    pub alpha: f64,
    /// Take the `O(admissions + block)` path when nothing must be cleared (default): a
    /// `decode_all` plan with the growth from the engine's aggregate. Off, every decision reads
    /// the whole batch; the records are the same (tested).
    pub fast_path: bool,
}

impl Default for AlphaProtect {
    fn default() -> Self {
        AlphaProtect { alpha: 0.21, fast_path: true }
    }
}

/// The decision when no request needs clearing (every resident decodes and its next token
/// fits), in `O(admissions + block)`; `None` otherwise. The plan [`decide_alpha`] builds,
/// with the decodes as `decode_all`.
fn common_case(view: &View<'_>, alpha: f64) -> Option<Plan> {
    let n = view.decode_ready_len();
    let growth = view.decode_all_growth(1);
    if n != view.running_len() || view.kv_used() + growth > view.capacity() {
        return None;
    }
    let limit = Tokens(((1.0 - alpha) * view.capacity().get() as f64).floor().max(0.0) as u64);
    let mut used = view.kv_used() + growth;
    let mut batch = Vec::new();
    for (id, prompt) in crate::sim::util::fcfs_after_evictions(view, &[]) {
        let need = view.footprint(mem::prompt_hold(view, prompt));
        let alone = n == 0 && batch.is_empty() && used + need <= view.capacity();
        if used + need > limit && !alone {
            break;
        }
        used += need;
        batch.push(BatchItem::Prefill { id, tokens: prompt });
    }
    let repeat = if batch.is_empty() && n > 0 {
        Repeat::UpTo(view.decode_all_steps_within(view.kv_free(), u64::MAX / 4).max(1))
    } else {
        Repeat::Once
    };
    Some(Plan { evict: vec![], batch, repeat, decode_all: n > 0, hold: Vec::new() })
}

/// What to clear when the running requests overflow.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Clearing {
    /// Evict every running request but the oldest.
    All,
    /// Evict `ceil(phi * running)` (at least one), most recent first, until the rest fit.
    Fraction(f64),
}

/// One decision of an α-protection policy.
pub(crate) fn decide_alpha(view: &View<'_>, alpha: f64, clearing: Clearing, fast: bool) -> Plan {
    if let Some(plan) = fast.then(|| common_case(view, alpha)).flatten() {
        return plan;
    }
    let running: Vec<ResidentView> = view.running().collect();
    let mut alive = running.len();
    let mut evict: Vec<RequestId> = Vec::new();
    // `grown[n]`: footprint growth of one decode of the `n` oldest; `held[n]`: footprint of
    // all but the `n` oldest (prefix sums: each clearing round is then `O(1)`).
    let mut grown = vec![Tokens::ZERO; running.len() + 1];
    let mut held = vec![Tokens::ZERO; running.len() + 1];
    for (i, r) in running.iter().enumerate() {
        grown[i + 1] = grown[i] + mem::decode_growth(view, r.held());
    }
    for (i, r) in running.iter().enumerate().rev() {
        held[i] = held[i + 1] + view.footprint(r.held());
    }
    let after = |n: usize| -> Tokens { view.kv_used() - held[n] + grown[n] };
    while alive > 0 && after(alive) > view.capacity() {
        let k = match clearing {
            Clearing::All => (alive - 1).max(1),
            Clearing::Fraction(phi) => ((phi * alive as f64).ceil() as usize).clamp(1, alive),
        };
        for r in running[alive - k..alive].iter().rev() {
            evict.push(r.id());
        }
        alive -= k;
    }
    let mut batch: Vec<BatchItem> =
        running[..alive].iter().map(|r| BatchItem::Decode { id: r.id() }).collect();
    let limit = Tokens(((1.0 - alpha) * view.capacity().get() as f64).floor().max(0.0) as u64);
    let mut used = after(alive);
    // FCFS by arrival, read lazily: admission stops at the first request that does not fit.
    for (id, prompt) in crate::sim::util::fcfs_after_evictions(view, &evict) {
        let need = view.footprint(mem::prompt_hold(view, prompt));
        let alone = batch.is_empty() && used + need <= view.capacity();
        if used + need > limit && !alone {
            break;
        }
        used += need;
        batch.push(BatchItem::Prefill { id, tokens: prompt });
    }
    // Over a decode-only stretch memory only grows, so a failed admission stays failed; the
    // decision changes when the growth no longer fits (clearing).
    let repeat =
        if evict.is_empty() { mem::repeat_for(view, &batch, view.kv_free()) } else { Repeat::Once };
    Plan { evict, batch, repeat, decode_all: false, hold: Vec::new() }
}

impl Scheduler for AlphaProtect {
    fn name(&self) -> String {
        "alpha-protect".into()
    }

    fn information(&self) -> Information {
        Information::Hidden
    }

    fn decide(&mut self, view: &View<'_>) -> Plan {
        decide_alpha(view, self.alpha, Clearing::All, self.fast_path)
    }
}
