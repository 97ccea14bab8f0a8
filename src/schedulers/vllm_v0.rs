//! vLLM v0's default scheduler: FCFS, prefill-first, watermark admission, preempt the most
//! recent request by recompute.
//!
//! Models `vllm/core/scheduler.py` (`_schedule_default`, v0.6-era) and Vidur's
//! `vllm_replica_scheduler.py`, which the WAIT and MC-SF papers used as their vLLM baseline:
//! - **Prefill first.** If any waiting request can be admitted, the iteration is prefill-only:
//!   waiting requests are taken in FCFS order while the batch stays within
//!   `max_num_batched_tokens` prompt tokens and `max_num_seqs` running requests, and memory
//!   stays at least `watermark` blocks free after the admission. Admission stops at the first
//!   request that does not fit (no skipping: head-of-line blocking, as in vLLM).
//! - **Otherwise decode** every running request. If the next token does not fit, preempt the
//!   most recently admitted running request by recompute (it loses its KV and returns to the
//!   front of the waiting queue), until it fits.
//!
//! Defaults: `max_num_seqs = 256` (vLLM), `max_num_batched_tokens = 4096` (Vidur's
//! `max_tokens_in_batch`; vLLM v0 uses `max(max_model_len, 2048)` without chunked prefill),
//! watermark from the workload's `memory.watermark_fraction` (vLLM's default is 0.01).
//!
//! Deliberate deviations: a prompt longer than `max_num_batched_tokens` is admitted alone
//! instead of being rejected; swapping to CPU is not modelled (the papers model recompute only).

use crate::sim::{Plan, Repeat, Scheduler, View};
use kvsched_spec::{BatchItem, Information, RequestId, Tokens};

/// vLLM v0 parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct VllmV0 {
    /// Maximum running requests.
    pub max_num_seqs: usize,
    /// Maximum prompt tokens in one prefill iteration.
    pub max_num_batched_tokens: u64,
}

impl Default for VllmV0 {
    fn default() -> Self {
        VllmV0 { max_num_seqs: 256, max_num_batched_tokens: 4096 }
    }
}

impl VllmV0 {
    fn admissions(&self, view: &View<'_>) -> Vec<BatchItem> {
        let mut batch = Vec::new();
        let mut tokens = 0u64;
        let mut free = view.kv_free();
        let watermark = view.memory().watermark();
        for r in view.waiting() {
            let prompt = r.prompt_tokens();
            let need = view.footprint(prompt + Tokens(1));
            let over_budget =
                tokens + prompt.get() > self.max_num_batched_tokens && !batch.is_empty();
            let no_memory = free < need || free - need < watermark;
            if over_budget || no_memory || view.running_len() + batch.len() >= self.max_num_seqs {
                break;
            }
            batch.push(BatchItem::Prefill { id: r.id(), tokens: prompt });
            tokens += prompt.get();
            free -= need;
        }
        batch
    }
}

impl Scheduler for VllmV0 {
    fn name(&self) -> String {
        "vllm-v0".into()
    }

    fn information(&self) -> Information {
        Information::Hidden
    }

    fn decide(&mut self, view: &View<'_>) -> Plan {
        let admissions = self.admissions(view);
        if !admissions.is_empty() {
            return Plan {
                evict: vec![],
                batch: admissions,
                repeat: Repeat::Once,
                decode_all: false,
                hold: Vec::new(),
            };
        }
        // Decode every running request (`decode_all`: the engine's O(1) path). Preempt the most
        // recent running requests until one more token fits for the rest.
        let block = view.memory().block_size_tokens.max(1);
        let mut evict: Vec<RequestId> = Vec::new();
        let mut freed = Tokens::ZERO;
        let mut growth = view.decode_all_growth(1);
        let mut decoding = view.decode_ready_len();
        let mut victims = view.running().rev();
        while decoding > 0 && view.kv_used() - freed + growth > view.capacity() {
            let victim = victims.next().expect("a running request");
            let held = victim.held();
            if victim.prefill_done() {
                decoding -= 1;
                if held.get().is_multiple_of(block) {
                    growth -= Tokens(block);
                }
            }
            freed += view.footprint(held);
            evict.push(victim.id());
        }
        if decoding == 0 {
            return Plan {
                evict,
                batch: vec![],
                decode_all: false,
                hold: Vec::new(),
                repeat: Repeat::Once,
            };
        }
        let repeat = if evict.is_empty() {
            Repeat::UpTo(view.decode_all_steps_within(view.kv_free(), u64::MAX).max(1))
        } else {
            Repeat::Once
        };
        Plan { evict, batch: vec![], decode_all: true, hold: Vec::new(), repeat }
    }
}
