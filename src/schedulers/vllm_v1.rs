//! vLLM v1's scheduler: one token budget per step, running requests first (chunked prefill),
//! preempt the last running request by recompute, no admission in a step that preempted.
//!
//! Models `vllm/v1/core/sched/scheduler.py`, `Scheduler.schedule()` (vLLM 0.8 to 0.11, FCFS
//! policy; the structure has not changed across those versions):
//! - **Running first.** Running requests are visited in order (oldest first). Each gets
//!   `min(tokens it still needs, remaining budget)` new tokens: one for a decode, a prefill chunk
//!   for a partly prefilled request. Visiting stops when the budget is spent.
//! - **Preempt the last.** When a running request's new tokens do not fit in free KV
//!   (`allocate_slots` fails), the *last* running request is preempted (`self.running.pop()`),
//!   repeatedly, until they fit; if the request itself is the one popped, scheduling of running
//!   requests stops there.
//! - **Waiting next, only if nothing was preempted** (`if not preempted_reqs:`). Waiting
//!   requests are admitted FCFS while the budget lasts, `len(running) < max_num_seqs`, and the
//!   first chunk (`min(prompt, budget)`, chunked prefill on) fits in free KV; the first that
//!   does not fit stops admission. There is no watermark in v1.
//! - **Reserve the full prompt** (`reserve_full_isl`, on by default). vLLM 0.33 defaults to
//!   `scheduler_reserve_full_isl=True`: the waiting loop passes `full_sequence_must_fit` to
//!   `KVCacheManager.allocate_slots`, which refuses a new request unless the blocks of its
//!   whole sequence (`request.num_tokens`: the prompt) are free, although it allocates only
//!   the first chunk. Off (`vllm-v1-no-reserve`, vLLM 0.8 to 0.11 behaviour), only the first
//!   chunk must fit, so a huge prompt is admitted piecemeal and preempted later. The real
//!   scheduler's runs with both settings are in `tests/data/engines/vllm-0.33.0/`
//!   (`spec/ENGINES.md`).
//!
//! Defaults (`vllm/engine/arg_utils.py`, `EngineArgs` batch defaults for `vllm serve`, i.e. the
//! OpenAI server usage context): on GPUs with less than 70 GiB or on any A100 (the papers'
//! hardware), `max_num_batched_tokens = 2048` and `max_num_seqs = 256`; on H100/H200-class
//! GPUs they are 8192 and 1024 (offline `LLM` class: 16384 / 1024). We default to the A100
//! pair; set the fields for the H100 one.
//!
//! Deliberate deviations:
//! - Preemption follows the run's rule (`spec/ENGINES.md`, "Preemption"). Under
//!   `keep_generated` (`--preemption keep-generated`) it is vLLM's: a preempted request keeps
//!   its output and resumes by prefilling prompt + generated tokens (its view's prompt,
//!   `request.num_tokens` in vLLM, which `reserve_full_isl` then reserves). Under `restart`,
//!   the papers' rule and the default, it loses its generated tokens and restarts from the
//!   prompt, which vLLM does not do.
//! - vLLM puts preempted requests at the head of the waiting queue; we take waiting requests in
//!   arrival order, which is the same order unless a request was preempted twice.
//! - When a step preempted every running request and scheduled nothing, vLLM's next step would
//!   run at once with an empty running list; we admit in the same decision instead (the engine
//!   would otherwise idle until the next arrival).
//! - No prefix caching, no `long_prefill_token_threshold` (0 by default), no speculative tokens.

use super::mem;
use crate::sim::{Plan, ResidentView, Scheduler, View};
use kvsched_spec::{BatchItem, Information, RequestId, Tokens};

/// vLLM v1 parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct VllmV1 {
    /// Token budget of one step (`max_num_batched_tokens`).
    pub max_num_batched_tokens: u64,
    /// Maximum running requests (`max_num_seqs`).
    pub max_num_seqs: usize,
    /// Admit a waiting request only if the blocks of its whole prompt are free
    /// (`scheduler_reserve_full_isl`, vLLM 0.33's default).
    pub reserve_full_isl: bool,
    /// Take the `O(admissions)` path in the common case (default). Off, every decision takes
    /// the general `O(running)` path; the plans are the same (tested).
    pub fast_path: bool,
}

impl Default for VllmV1 {
    fn default() -> Self {
        VllmV1 {
            max_num_batched_tokens: 2048,
            max_num_seqs: 256,
            reserve_full_isl: true,
            fast_path: true,
        }
    }
}

impl VllmV1 {
    /// vLLM 0.8 to 0.11 behaviour: only the first prefill chunk must fit at admission.
    pub fn no_reserve() -> Self {
        VllmV1 { reserve_full_isl: false, ..VllmV1::default() }
    }
}

/// Working state of one decision.
struct Step {
    budget: u64,
    free: Tokens,
    batch: Vec<BatchItem>,
    evict: Vec<RequestId>,
}

impl VllmV1 {
    /// The common case in `O(admissions + block)` instead of `O(running)`: no resident is
    /// mid-prefill, every one fits in the token budget, and one more token fits for all. Then
    /// the running phase decodes every resident without preempting (a `decode_all` plan) and
    /// the waiting phase admits as usual: the plan the general path builds, without listing
    /// the decodes.
    fn common_case(&self, view: &View<'_>) -> Option<Plan> {
        let n = view.decode_ready_len();
        if n != view.running_len() || n as u64 > self.max_num_batched_tokens {
            return None;
        }
        let free = view.kv_free();
        let growth = view.decode_all_growth(1);
        if growth > free {
            return None;
        }
        let budget = self.max_num_batched_tokens - n as u64;
        let mut st = Step { budget, free: free - growth, batch: vec![], evict: vec![] };
        self.schedule_waiting(view, n, &mut st);
        let repeat = if st.batch.is_empty() && n > 0 {
            crate::sim::Repeat::UpTo(view.decode_all_steps_within(free, u64::MAX / 4).max(1))
        } else {
            crate::sim::Repeat::Once
        };
        Some(Plan { evict: vec![], batch: st.batch, decode_all: n > 0, hold: Vec::new(), repeat })
    }

    /// Schedules running requests; returns how many remain running (not preempted).
    fn schedule_running(&self, view: &View<'_>, running: &[ResidentView], st: &mut Step) -> usize {
        let mut alive = running.len();
        let mut i = 0;
        while i < alive && st.budget > 0 {
            let r = &running[i];
            let item = if r.prefill_done() {
                BatchItem::Decode { id: r.id() }
            } else {
                let chunk = r.prefill_remaining().get().min(st.budget);
                BatchItem::Prefill { id: r.id(), tokens: Tokens(chunk) }
            };
            let need = mem::item_growth(view, r, &item);
            let mut preempted_self = false;
            while need > st.free {
                alive -= 1;
                let victim = &running[alive];
                st.evict.push(victim.id());
                st.free += view.footprint(victim.held());
                if alive == i {
                    preempted_self = true;
                    break;
                }
            }
            if preempted_self {
                break;
            }
            st.budget -= match item {
                BatchItem::Decode { .. } => 1,
                BatchItem::Prefill { tokens, .. } => tokens.get(),
            };
            st.free -= need;
            st.batch.push(item);
            i += 1;
        }
        alive
    }

    /// Admits waiting requests FCFS (those evicted in this decision included, by arrival).
    fn schedule_waiting(&self, view: &View<'_>, running: usize, st: &mut Step) {
        // Lazy: only what is admitted (plus one) of the waiting queue is read.
        let candidates = crate::sim::util::fcfs_after_evictions(view, &st.evict);
        let base = st.batch.len();
        for (id, prompt) in candidates {
            if st.budget == 0 || running + st.batch.len() - base >= self.max_num_seqs {
                break;
            }
            let chunk = prompt.get().min(st.budget);
            let need = mem::chunk_growth(view, Tokens::ZERO, prompt, chunk);
            if need > st.free || (self.reserve_full_isl && view.footprint(prompt) > st.free) {
                break;
            }
            st.batch.push(BatchItem::Prefill { id, tokens: Tokens(chunk) });
            st.budget -= chunk;
            st.free -= need;
        }
    }
}

impl Scheduler for VllmV1 {
    fn name(&self) -> String {
        if self.reserve_full_isl { "vllm-v1" } else { "vllm-v1-no-reserve" }.into()
    }

    fn information(&self) -> Information {
        Information::Hidden
    }

    fn decide(&mut self, view: &View<'_>) -> Plan {
        if let Some(plan) = self.fast_path.then(|| self.common_case(view)).flatten() {
            return plan;
        }
        let running: Vec<ResidentView> = view.running().collect();
        let mut st = Step {
            budget: self.max_num_batched_tokens,
            free: view.kv_free(),
            batch: Vec::new(),
            evict: Vec::new(),
        };
        let alive = self.schedule_running(view, &running, &mut st);
        if st.evict.is_empty() || st.batch.is_empty() {
            self.schedule_waiting(view, alive, &mut st);
        }
        // Over a decode-only stretch free memory only shrinks, so a failed admission stays
        // failed; the decision changes only when a decode no longer fits.
        let repeat = if st.evict.is_empty() {
            mem::repeat_for(view, &st.batch, view.kv_free())
        } else {
            crate::sim::Repeat::Once
        };
        Plan { evict: st.evict, batch: st.batch, repeat, decode_all: false, hold: Vec::new() }
    }
}
