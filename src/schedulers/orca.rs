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
    /// Take the fast path (default): the running requests' reservations kept incrementally and
    /// the decodes as a `decode_all` plan, `O(log n)` per decision plus what it admits. It
    /// applies while every running request is within its planned reservation and the next
    /// decode fits; otherwise (a broken contract) the decision takes the general path. Off,
    /// every decision reads the whole batch; the records are the same (tested).
    pub fast_path: bool,
    book: Book,
}

impl Default for Orca {
    fn default() -> Self {
        Orca {
            max_output_tokens: 2048,
            max_batch_size: 128,
            fast_path: true,
            book: Book::default(),
        }
    }
}

/// The running requests' reservations, kept incrementally (fast path). Every Orca iteration
/// decodes every running request (prompts are prefilled whole), so a request's held tokens are
/// `held at admission + clock - clock at admission`, with `clock` the iterations run. Its
/// reservation is its fixed planned part until `held + 1` outgrows it, at the clock `over`.
#[derive(Clone, Debug, PartialEq, Default)]
struct Book {
    clock: u64,
    /// Per running request: (planned reservation, clock at which it is outgrown).
    entry: std::collections::BTreeMap<RequestId, (Tokens, u64)>,
    /// `(over, id)` of every running request.
    over: std::collections::BTreeSet<(u64, RequestId)>,
    /// Sum of the planned reservations.
    planned: Tokens,
    /// Admitted by the previous plan.
    joining: Vec<RequestId>,
}

impl Book {
    fn remove(&mut self, id: RequestId) {
        if let Some((planned, over)) = self.entry.remove(&id) {
            self.over.remove(&(over, id));
            self.planned -= planned;
        }
    }
}

impl Orca {
    /// The fixed part of a request's reservation: its prompt plus the maximum output (capped at
    /// the capacity), at least its prompt's footprint.
    fn planned(&self, view: &View<'_>, prompt: Tokens) -> Tokens {
        let planned = view.footprint(prompt + Tokens(self.max_output_tokens)).min(view.capacity());
        planned.max(view.footprint(mem::prompt_hold(view, prompt)))
    }

    /// Memory reserved for a request with `prompt` tokens that holds `held` now.
    fn reservation(&self, view: &View<'_>, prompt: Tokens, held: Tokens) -> Tokens {
        self.planned(view, prompt).max(view.footprint(held + Tokens(1)))
    }

    /// Brings [`Book`] up to date: the iterations run since the previous decision (each
    /// decoded every running request), completions, and the requests admitted by the previous
    /// plan (running now, holding their whole prompt).
    fn sync(&mut self, view: &View<'_>) {
        let mut book = std::mem::take(&mut self.book);
        for c in view.completed_since_last() {
            book.remove(c.id);
        }
        let running = view.running_len() as u64;
        // The clock counts iterations; it only needs to be exact relative to the residents'
        // admission clocks, so it moves with the steps the engine reports.
        book.clock = view.steps_total();
        for id in std::mem::take(&mut book.joining) {
            let Some(r) = view.resident(id) else { continue };
            let planned = self.planned(view, r.request().prompt_tokens());
            // Outgrown once `held + 1 > planned` (footprints are whole blocks), that is after
            // `planned - held` more iterations.
            let over = book.clock + planned.get().saturating_sub(r.held().get());
            book.planned += planned;
            book.entry.insert(id, (planned, over));
            book.over.insert((over, id));
        }
        debug_assert_eq!(book.entry.len() as u64, running, "every running request is booked");
        self.book = book;
    }

    /// The fast decision (`None` when the general path must decide: a running request has
    /// outgrown its planned reservation, or the next decode does not fit).
    fn decide_fast(&self, view: &View<'_>) -> Option<Plan> {
        let outgrown = self.book.over.first().is_some_and(|&(over, _)| over <= self.book.clock);
        if outgrown || view.decode_all_growth(1) > view.kv_free() {
            return None;
        }
        let mut reserved = self.book.planned;
        let room = self.max_batch_size.saturating_sub(view.running_len());
        let mut batch = Vec::new();
        for r in view.waiting().take(room) {
            let need = self.reservation(view, r.prompt_tokens(), Tokens::ZERO);
            if reserved + need > view.capacity() {
                break;
            }
            reserved += need;
            batch.push(BatchItem::Prefill { id: r.id(), tokens: r.prompt_tokens() });
        }
        if batch.is_empty() && view.running_len() == 0 {
            return Some(Plan::idle());
        }
        let repeat = if batch.is_empty() {
            Repeat::UpTo(view.decode_all_steps_within(view.kv_free(), u64::MAX / 4).max(1))
        } else {
            Repeat::Once
        };
        Some(Plan { evict: vec![], batch, repeat, decode_all: true, hold: Vec::new() })
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
        if !self.fast_path {
            return self.decide_general(view);
        }
        self.sync(view);
        let plan = self.decide_fast(view).unwrap_or_else(|| self.decide_general(view));
        for id in &plan.evict {
            self.book.remove(*id);
        }
        self.book.joining = crate::sim::util::prefilled(&plan);
        plan
    }
}

impl Orca {
    /// Every decision on the general path: the whole batch read and listed.
    fn decide_general(&self, view: &View<'_>) -> Plan {
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
        Plan { evict, batch, repeat, decode_all: false, hold: Vec::new() }
    }
}
