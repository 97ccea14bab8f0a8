//! Orca-style reservation: admit a request only if its prompt plus its maximum output fit next
//! to the reservations of the running requests; with that reservation it never needs evicting.
//!
//! Models the Orca paper's scheduler (Yu et al., OSDI 2022, §4.2 and Algorithm 1: FCFS
//! iteration-level scheduling with selective batching, where a request is scheduled only if
//! the KV slots for its prompt plus `max_tokens` are available, so that no running request is
//! ever preempted) and Vidur's `vidur/scheduler/replica_scheduler/orca_replica_scheduler.py`
//! (one iteration mixes the full prompts of newly admitted requests with one decode of every
//! running request, up to `batch_size_cap`).
//!
//! **Information.** The policy knows only a maximum output length, the parameter
//! `max_output_tokens` (the `max_tokens` a client sends), never the true length. Its contract:
//! if every true output is at most `max_output_tokens`, the policy never evicts. The reservation
//! of a request is `footprint(prompt + max_output_tokens)`, capped at the capacity so that a
//! request alone is always admissible. If a request outgrows its reservation anyway (the
//! contract is broken), its reservation grows with it (`held + 1` each step), and should the
//! next decode not fit, the most recently admitted request is evicted (recompute): the plan
//! never breaks the memory limit, and the run still completes.
//!
//! Defaults: `max_output_tokens = 2048` (a common client `max_tokens`; set it to the workload's
//! maximum output to honour the contract), `max_batch_size = 128` (Vidur's `batch_size_cap`).
//!
//! Deliberate deviations: no per-batch token budget (Orca has none); prompts are not chunked.

use super::mem;
use crate::sim::{Plan, Repeat, ResidentView, Scheduler, View};
use kvsched_spec::{BatchItem, Information, RequestId, Tokens};

/// Orca parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Orca {
    /// The maximum output length every request is assumed to have.
    pub max_output_tokens: u64,
    /// Maximum running requests (and batch size).
    pub max_batch_size: usize,
}

impl Default for Orca {
    fn default() -> Self {
        Orca { max_output_tokens: 2048, max_batch_size: 128 }
    }
}

impl Orca {
    /// Memory reserved for a request with `prompt` tokens that holds `held` now.
    fn reservation(&self, view: &View<'_>, prompt: Tokens, held: Tokens) -> Tokens {
        let planned = view.footprint(prompt + Tokens(self.max_output_tokens)).min(view.capacity());
        let floor =
            view.footprint(mem::prompt_hold(view, prompt)).max(view.footprint(held + Tokens(1)));
        planned.max(floor)
    }

    /// Decodes of every running request, evicting the most recent while they do not fit.
    fn decodes(&self, view: &View<'_>) -> (Vec<BatchItem>, Vec<RequestId>) {
        let running: Vec<ResidentView> = view.running().collect();
        let mut alive = running.len();
        let mut evict = Vec::new();
        loop {
            let grow = running[..alive]
                .iter()
                .fold(Tokens::ZERO, |acc, r| acc + mem::decode_growth(view, r.held()));
            let used = view.kv_used()
                - running[alive..].iter().fold(Tokens::ZERO, |a, r| a + view.footprint(r.held()));
            if alive == 0 || used + grow <= view.capacity() {
                break;
            }
            alive -= 1;
            evict.push(running[alive].id());
        }
        let batch = running[..alive].iter().map(|r| BatchItem::Decode { id: r.id() }).collect();
        (batch, evict)
    }
}

impl Scheduler for Orca {
    fn name(&self) -> String {
        "orca".into()
    }

    fn information(&self) -> Information {
        Information::Hidden
    }

    fn decide(&mut self, view: &View<'_>) -> Plan {
        let (mut batch, evict) = self.decodes(view);
        let kept = view.running().filter(|r| !evict.contains(&r.id()));
        let mut reserved = kept
            .map(|r| self.reservation(view, r.request().prompt_tokens(), r.held()))
            .fold(Tokens::ZERO, |a, b| a + b);
        let room = self.max_batch_size.saturating_sub(view.running_len() - evict.len());
        // FCFS by arrival, read lazily: admission stops at the first request that does not fit.
        for (id, prompt) in crate::sim::util::fcfs_after_evictions(view, &evict).take(room) {
            let need = self.reservation(view, prompt, Tokens::ZERO);
            if reserved + need > view.capacity() {
                break;
            }
            reserved += need;
            batch.push(BatchItem::Prefill { id, tokens: prompt });
        }
        // Reservations only grow during a decode stretch, so a failed admission stays failed.
        let repeat = if evict.is_empty() {
            mem::repeat_for(view, &batch, view.kv_free())
        } else {
            Repeat::Once
        };
        Plan { evict, batch, repeat, decode_all: false }
    }
}
