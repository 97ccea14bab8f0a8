//! MC-SF, "Memory Constrained Shortest First" (Jaillet et al., arXiv 2502.07115 v4/v5 §4,
//! Eq. 5; notes `../shared/papers/mcsf.md` §5), and MC-Benchmark (the same check in FCFS order).
//!
//! Every iteration: keep every running request (no preemption), sort the waiting requests by
//! predicted output length (ties: arrival, then id), and admit the maximal prefix that passes the
//! future-memory check at the predicted completion points, stopping at the first failure. The
//! check is [`crate::opt::mcsf_core`], `O(M)` per candidate. Admitted requests are prefilled
//! whole in this iteration, which also produces their first token, so with
//! `FirstToken::WithPrefill` and unit rounds the engine runs exactly the paper's round model: a
//! request started in iteration `p` holds `s + j` tokens after iteration `p + j`.
//!
//! Choices where the paper is silent (documented in `spec/CLAIMS.md` and tested):
//! - **Information.** MC-SF reads `Information::Predicted` (exact predictions give the paper's
//!   clairvoyant setting). A request without a prediction is charged the worst case
//!   `capacity - prompt`.
//! - **Protection.** The check runs against `(1 - protection) * M` (the paper's "protection 0.1"
//!   read as headroom against under-estimates). Default 0.
//! - **Outliving a prediction.** A running request older than its prediction is charged as if it
//!   completes in the next iteration (it cannot be predicted better). If the next iteration would
//!   then overflow memory, the most recently admitted requests are evicted (recompute, as the
//!   baselines do) until it fits; with over-estimating predictions this never happens
//!   (property-tested).
//! - **Liveness.** An idle server whose head candidate fails only the conservative check (paged
//!   memory, unknown lengths) starts it anyway when its prompt fits.
//! - **Repeat.** With an empty waiting queue the decode batch repeats until the next event.

use crate::opt::mcsf_core::{admit_prefix, ActiveReq, WaitingReq};
use crate::sched::util::{decode_all, decode_steps_within_memory, decode_steps_within_room};
use crate::sched::{Plan, Repeat, Scheduler, View};
use kvsched_spec::{BatchItem, Information, RequestId, RequestView};

/// Admission order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Shortest predicted output first (MC-SF).
    ShortestFirst,
    /// Arrival order (MC-Benchmark).
    Fcfs,
}

/// MC-SF or MC-Benchmark.
#[derive(Clone, Debug, PartialEq)]
pub struct Mcsf {
    /// Admission order.
    pub order: Order,
    /// Fraction of capacity held back from the check (0 = none).
    pub protection: f64,
}

impl Default for Mcsf {
    fn default() -> Self {
        Mcsf { order: Order::ShortestFirst, protection: 0.0 }
    }
}

impl Mcsf {
    /// MC-Benchmark: FCFS order with MC-SF's memory check.
    pub fn benchmark() -> Mcsf {
        Mcsf { order: Order::Fcfs, protection: 0.0 }
    }

    /// The predicted output, clamped to what can fit alone in `budget`.
    fn predicted(view: &View<'_>, budget: u64, r: &RequestView) -> u64 {
        let worst = budget.saturating_sub(Self::charged_prompt(view, r)).max(1);
        r.output_hint().tokens().map_or(worst, |t| t.get().clamp(1, worst))
    }

    /// Capacity the check may use: capacity minus the protection.
    fn budget(&self, view: &View<'_>) -> u64 {
        (view.capacity().get() as f64 * (1.0 - self.protection)).floor() as u64
    }

    /// The prompt as the check charges it: with paged memory, plus one block minus a token, so
    /// that `s' + j` bounds the block-rounded footprint of `s + j` (exact when token-granular).
    fn charged_prompt(view: &View<'_>, r: &RequestView) -> u64 {
        r.prompt_tokens().get() + view.memory().block_size_tokens - 1
    }

    fn admissions(&self, view: &View<'_>, t: u64) -> Vec<BatchItem> {
        let budget = self.budget(view);
        let active: Vec<ActiveReq> = view
            .running()
            .map(|r| ActiveReq {
                prompt_tokens: Self::charged_prompt(view, r.request()),
                start_round: t - r.generated().get().min(t),
                predicted_output: Self::predicted(view, budget, r.request()),
            })
            .collect();
        let mut waiting: Vec<WaitingReq> = view
            .waiting()
            .map(|r| WaitingReq {
                id: u64::from(r.id().0),
                prompt_tokens: Self::charged_prompt(view, &r),
                arrival_round: r.arrival_ns().get(),
                predicted_output: Self::predicted(view, budget, &r),
            })
            .collect();
        match self.order {
            Order::ShortestFirst => {
                waiting.sort_by_key(|w| (w.predicted_output, w.arrival_round, w.id))
            }
            Order::Fcfs => waiting.sort_by_key(|w| (w.arrival_round, w.id)),
        }
        let mut ids = admit_prefix(t, &active, &waiting, budget);
        // Liveness: an idle server whose head candidate fails the check only because of the
        // conservative charges (paging, worst-case lengths) starts it anyway if its prompt fits.
        if ids.is_empty() && active.is_empty() {
            if let Some(w) = waiting.first() {
                let prompt = view.request(RequestId(w.id as u32)).expect("waiting").prompt_tokens();
                if view.footprint(prompt + kvsched_spec::Tokens(1)) <= view.capacity() {
                    ids.push(w.id);
                }
            }
        }
        ids.into_iter()
            .map(|id| {
                let id = RequestId(id as u32);
                let prompt = view.request(id).expect("waiting request").prompt_tokens();
                BatchItem::Prefill { id, tokens: prompt }
            })
            .collect()
    }
}

impl Scheduler for Mcsf {
    fn name(&self) -> String {
        match self.order {
            Order::ShortestFirst => "mcsf".into(),
            Order::Fcfs => "mc-benchmark".into(),
        }
    }

    fn information(&self) -> Information {
        Information::Predicted
    }

    fn decide(&mut self, view: &View<'_>) -> Plan {
        let mut batch = decode_all(view);
        // Overflow fallback (only with under-estimated predictions): evict the most recent.
        let mut evict = Vec::new();
        let mut room = view.kv_free();
        while !batch.is_empty() {
            let ids: Vec<RequestId> = batch.iter().map(BatchItem::id).collect();
            if decode_steps_within_room(view, &ids, room, 1) == 1 {
                break;
            }
            let victim = batch.pop().expect("non-empty").id();
            room += view.footprint(view.resident(victim).expect("running").held());
            evict.push(victim);
        }
        if !evict.is_empty() {
            return Plan { evict, batch, repeat: Repeat::Once };
        }
        let admitted = self.admissions(view, view.steps_total());
        let decode_only = admitted.is_empty();
        batch.extend(admitted);
        let repeat = if decode_only && view.waiting_len() == 0 && !batch.is_empty() {
            let ids: Vec<RequestId> = batch.iter().map(BatchItem::id).collect();
            Repeat::UpTo(decode_steps_within_memory(view, &ids, u64::MAX).max(1))
        } else {
            Repeat::Once
        };
        Plan { evict: vec![], batch, repeat }
    }
}
