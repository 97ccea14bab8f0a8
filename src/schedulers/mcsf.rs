//! MC-SF, "Memory Constrained Shortest First" (Jaillet et al., arXiv 2502.07115 v4/v5 §4,
//! Eq. 5; notes `../shared/papers/mcsf.md` §5), and MC-Benchmark (the same check in FCFS order).
//!
//! Every iteration: keep every running request (no preemption), sort the waiting requests by
//! predicted output length (ties: arrival, then id), and admit the maximal prefix that passes the
//! future-memory check at the predicted completion points, stopping at the first failure. The
//! check is [`crate::opt::mcsf_core`], `O(M)` per candidate, exact for paged memory (each
//! request's footprint rounded up to blocks). Admitted requests are prefilled
//! whole in this iteration, which also produces their first token, so with
//! `FirstToken::WithPrefill` and unit rounds the engine runs exactly the paper's round model: a
//! request started in iteration `p` holds `s + j` tokens after iteration `p + j`.
//!
//! Choices where the paper is silent (documented in `spec/CLAIMS.md` and tested):
//! - **Information.** MC-SF reads `Information::Predicted` (exact predictions give the paper's
//!   clairvoyant setting). A run gives exact predictions unless it names a noise
//!   ([`crate::workload::default_predictions`]), and the engine stops a run with a request
//!   that has none (`SimErrorKind::MissingPrediction`). Only a client of the wire protocol that
//!   sends no prediction reaches the policy without one; that request is charged the worst
//!   case `capacity - prompt`.
//! - **Protection.** The check runs against `(1 - protection) * M` (the paper's "protection 0.1"
//!   read as headroom against under-estimates). Default 0.
//! - **Outliving a prediction.** A running request older than its prediction is charged as if it
//!   completes in the next iteration (it cannot be predicted better). If the next iteration would
//!   then overflow memory, the most recently admitted requests are evicted (recompute, as the
//!   baselines do) until it fits; with over-estimating predictions this never happens
//!   (property-tested).
//! - **Liveness.** An idle server whose head candidate fails only the conservative check
//!   (unknown lengths charged the worst case) starts it anyway when its prompt fits.
//! - **Repeat.** With an empty waiting queue the decode batch repeats until the next event.
//!
//! Deliberate deviation, off in the paper's algorithm ([`Mcsf::default`]) and on in the catalog
//! (`kvsched schedulers`, [`super::by_name`]): **patience** ([`Mcsf::patience_ns`]). Shortest
//! first starves long requests while short ones keep arriving, and "stop at the first failure"
//! can hold back a request that fits while a shorter one does not; the conformance battery
//! flags both (`starvation`; test `paper_mcsf_starves_and_the_catalog_one_does_not`). With
//! patience, a waiting request older than `patience_ns` goes ahead of every non-aged one
//! (aged ones in arrival order), still through the same memory check. The catalog default is
//! [`DEFAULT_PATIENCE_NS`].

use crate::opt::mcsf_core::{
    admit_prefix_paged, admit_prefix_with, ActiveReq, Checkpoints, WaitingReq,
};
use crate::sim::util::{decode_all, decode_steps_within_memory, decode_steps_within_room};
use crate::sim::{Plan, Repeat, Scheduler, View};
use kvsched_spec::{BatchItem, Information, RequestId, RequestView};

/// Admission order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Shortest predicted output first (MC-SF).
    ShortestFirst,
    /// Arrival order (MC-Benchmark).
    Fcfs,
}

/// The catalog's patience: half a second, half of the conformance battery's default
/// starvation bound (`kvsched conform --starvation-bound-ns`), so that an aged request is
/// served (memory permitting) before the battery would call it starved.
pub const DEFAULT_PATIENCE_NS: u64 = 500_000_000;

/// MC-SF or MC-Benchmark.
#[derive(Clone, Debug, PartialEq)]
pub struct Mcsf {
    /// Admission order.
    pub order: Order,
    /// Fraction of capacity held back from the check (0 = none).
    pub protection: f64,
    /// Anti-starvation aging (a deviation; `None` in the paper's algorithm): a request waiting
    /// at least this long is considered before every younger one.
    pub patience_ns: Option<u64>,
    /// Take the fast path (default): the waiting queue kept in the admission order
    /// incrementally, read only as far as admission goes, and a `decode_all` plan when no
    /// eviction is needed. Off, every decision sorts the whole queue and lists the batch; the
    /// records are the same (tested).
    pub fast_path: bool,
    /// Waiting requests by `(predicted output, arrival, id)`, as of the last plan (fast path,
    /// shortest first only).
    queue: std::collections::BTreeSet<(u64, u64, RequestId)>,
    /// The running requests' checkpoints (fast path), kept across decisions while every
    /// running request ends exactly at its committed end (see [`Mcsf::admissions_fast`]).
    checkpoints: Option<Checkpoints>,
    /// `(committed end round, id)` of the requests in `checkpoints`.
    ends: std::collections::BTreeSet<(u64, RequestId)>,
}

impl Default for Mcsf {
    fn default() -> Self {
        Mcsf {
            order: Order::ShortestFirst,
            protection: 0.0,
            patience_ns: None,
            fast_path: true,
            queue: std::collections::BTreeSet::new(),
            checkpoints: None,
            ends: std::collections::BTreeSet::new(),
        }
    }
}

impl Mcsf {
    /// MC-Benchmark: FCFS order with MC-SF's memory check.
    pub fn benchmark() -> Mcsf {
        Mcsf { order: Order::Fcfs, ..Mcsf::default() }
    }

    /// The same policy with anti-starvation aging after `ns` nanoseconds of waiting.
    pub fn with_patience(self, ns: u64) -> Mcsf {
        Mcsf { patience_ns: Some(ns), ..self }
    }

    /// The predicted output, clamped to what can fit alone in `budget`.
    fn predicted(budget: u64, r: &RequestView) -> u64 {
        let worst = budget.saturating_sub(r.prompt_tokens().get()).max(1);
        r.output_hint().tokens().map_or(worst, |t| t.get().clamp(1, worst))
    }

    /// The request's key in [`Mcsf::queue`].
    fn key(budget: u64, r: &RequestView) -> (u64, u64, RequestId) {
        (Self::predicted(budget, r), r.arrival_ns().get(), r.id())
    }

    fn waiting_req(budget: u64, r: &RequestView) -> WaitingReq {
        WaitingReq {
            id: u64::from(r.id().0),
            prompt_tokens: r.prompt_tokens().get(),
            arrival_round: r.arrival_ns().get(),
            predicted_output: Self::predicted(budget, r),
        }
    }

    /// The running set's checkpoints at round `t`: the kept ones moved to `t` when still
    /// exact, else rebuilt from the running set.
    fn checkpoints_at(&mut self, view: &View<'_>, t: u64, budget: u64, block: u64) -> Checkpoints {
        // The checkpoints describe the running set in absolute rounds. They stay exact while
        // the requests that left since the last decision are exactly those whose committed end
        // has passed (exact predictions); otherwise (a prediction missed, an eviction by the
        // general path) they are rebuilt from the running set.
        let mut ended = Vec::new();
        while let Some(&(end, id)) = self.ends.first() {
            if end > t {
                break;
            }
            self.ends.pop_first();
            ended.push(id);
        }
        let mut done: Vec<RequestId> = view.completed_since_last().iter().map(|c| c.id).collect();
        ended.sort_unstable();
        done.sort_unstable();
        if ended != done {
            self.checkpoints = None;
        }
        match self.checkpoints.take() {
            Some(mut cp) => {
                cp.advance_to(t);
                cp
            }
            None => {
                self.ends.clear();
                let active: Vec<ActiveReq> = view
                    .running()
                    .map(|r| {
                        let a = ActiveReq {
                            prompt_tokens: r.request().prompt_tokens().get(),
                            start_round: t - r.generated().get().min(t),
                            predicted_output: Self::predicted(budget, r.request()),
                        };
                        let o = a.predicted_output.max(t - a.start_round + 1);
                        self.ends.insert((a.start_round + o, r.id()));
                        a
                    })
                    .collect();
                Checkpoints::paged(t, &active, budget, block)
            }
        }
    }

    /// [`Mcsf::admissions`] from the incrementally kept queue: aged requests (a prefix of the
    /// arrival-ordered waiting queue) in arrival order, then the rest by `(predicted, arrival,
    /// id)`, drawn lazily. Admission stops at the first failure, so this reads only what it
    /// admits, plus one, plus the aged requests it skips in the ordered set (each of which was
    /// admitted just before).
    fn admissions_fast(&mut self, view: &View<'_>, t: u64) -> Vec<BatchItem> {
        let budget = self.budget(view);
        let block = view.memory().block_size_tokens;
        let mut cp = self.checkpoints_at(view, t, budget, block);
        let idle = cp.is_empty();
        let now = view.now_ns().get();
        let aged =
            |arrival: u64| self.patience_ns.is_some_and(|p| now.saturating_sub(arrival) >= p);
        let candidates = || -> Box<dyn Iterator<Item = WaitingReq> + '_> {
            match self.order {
                Order::Fcfs => Box::new(view.waiting().map(move |r| Self::waiting_req(budget, &r))),
                Order::ShortestFirst => {
                    let old = view
                        .waiting()
                        .take_while(move |r| aged(r.arrival_ns().get()))
                        .map(move |r| Self::waiting_req(budget, &r));
                    let rest = self.queue.iter().filter(move |k| !aged(k.1)).map(move |k| {
                        Self::waiting_req(budget, &view.request(k.2).expect("waiting"))
                    });
                    Box::new(old.chain(rest))
                }
            }
        };
        let mut ids = admit_prefix_with(&mut cp, candidates());
        // An admitted request starts now (round t) in the checkpoints; it does in the engine
        // too when its first token comes with the prefill. Otherwise rebuild next time.
        let with_prefill = view.config().first_token == kvsched_spec::FirstToken::WithPrefill;
        if ids.is_empty() || with_prefill {
            for &id in &ids {
                let r = view.request(RequestId(id as u32)).expect("waiting");
                self.ends.insert((t + Self::predicted(budget, &r).max(1), r.id()));
            }
            self.checkpoints = Some(cp);
        }
        if ids.is_empty() && idle {
            if let Some(w) = candidates().next() {
                let prompt = view.request(RequestId(w.id as u32)).expect("waiting").prompt_tokens();
                if view.footprint(prompt + kvsched_spec::Tokens(1)) <= view.capacity() {
                    ids.push(w.id);
                    // Admitted outside the check: the checkpoints no longer describe it.
                    self.checkpoints = None;
                }
            }
        }
        prefills(view, ids)
    }

    /// The fast path's plan, `None` when a decode does not fit (the general path evicts).
    fn decide_fast(&mut self, view: &View<'_>) -> Option<Plan> {
        let budget = self.budget(view);
        if self.order == Order::ShortestFirst {
            for &id in view.arrived_since_last() {
                self.queue.insert(Self::key(budget, &view.request(id).expect("arrived")));
            }
        }
        let n = view.decode_ready_len();
        if n != view.running_len() || view.decode_all_growth(1) > view.kv_free() {
            return None;
        }
        let admitted = self.admissions_fast(view, view.steps_total());
        for item in &admitted {
            self.queue.remove(&Self::key(budget, &view.request(item.id()).expect("waiting")));
        }
        let repeat = if admitted.is_empty() && view.waiting_len() == 0 && n > 0 {
            Repeat::UpTo(view.decode_all_steps_within(view.kv_free(), u64::MAX).max(1))
        } else {
            Repeat::Once
        };
        Some(Plan { evict: vec![], batch: admitted, repeat, decode_all: n > 0, hold: Vec::new() })
    }

    /// Capacity the check may use: capacity minus the protection.
    fn budget(&self, view: &View<'_>) -> u64 {
        (view.capacity().get() as f64 * (1.0 - self.protection)).floor() as u64
    }

    fn admissions(&self, view: &View<'_>, t: u64) -> Vec<BatchItem> {
        let budget = self.budget(view);
        let active: Vec<ActiveReq> = view
            .running()
            .map(|r| ActiveReq {
                prompt_tokens: r.request().prompt_tokens().get(),
                start_round: t - r.generated().get().min(t),
                predicted_output: Self::predicted(budget, r.request()),
            })
            .collect();
        let mut waiting: Vec<WaitingReq> = view
            .waiting()
            .map(|r| WaitingReq {
                id: u64::from(r.id().0),
                prompt_tokens: r.prompt_tokens().get(),
                arrival_round: r.arrival_ns().get(),
                predicted_output: Self::predicted(budget, &r),
            })
            .collect();
        let now = view.now_ns().get();
        let aged = |w: &WaitingReq| match self.patience_ns {
            Some(p) if now.saturating_sub(w.arrival_round) >= p => 0,
            _ => 1,
        };
        match self.order {
            Order::ShortestFirst => waiting.sort_by_key(|w| match aged(w) {
                0 => (0, 0, w.arrival_round, w.id),
                _ => (1, w.predicted_output, w.arrival_round, w.id),
            }),
            Order::Fcfs => waiting.sort_by_key(|w| (w.arrival_round, w.id)),
        }
        let block = view.memory().block_size_tokens;
        let mut ids = admit_prefix_paged(t, &active, &waiting, budget, block);
        // Liveness: an idle server whose head candidate fails the check only because of the
        // conservative charges (worst-case lengths) starts it anyway if its prompt fits.
        if ids.is_empty() && active.is_empty() {
            if let Some(w) = waiting.first() {
                let prompt = view.request(RequestId(w.id as u32)).expect("waiting").prompt_tokens();
                if view.footprint(prompt + kvsched_spec::Tokens(1)) <= view.capacity() {
                    ids.push(w.id);
                }
            }
        }
        prefills(view, ids)
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
        if self.fast_path {
            if let Some(plan) = self.decide_fast(view) {
                return plan;
            }
            self.checkpoints = None;
        }
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
            if self.fast_path && self.order == Order::ShortestFirst {
                let budget = self.budget(view);
                for id in &evict {
                    let r = view.request_after_eviction(*id).expect("running");
                    self.queue.insert(Self::key(budget, &r));
                }
            }
            return Plan { evict, batch, ..Plan::default() };
        }
        let admitted = self.admissions(view, view.steps_total());
        if self.fast_path && self.order == Order::ShortestFirst {
            let budget = self.budget(view);
            for item in &admitted {
                let r = view.request(item.id()).expect("waiting");
                self.queue.remove(&Self::key(budget, &r));
            }
        }
        let decode_only = admitted.is_empty();
        batch.extend(admitted);
        let repeat = if decode_only && view.waiting_len() == 0 && !batch.is_empty() {
            let ids: Vec<RequestId> = batch.iter().map(BatchItem::id).collect();
            Repeat::UpTo(decode_steps_within_memory(view, &ids, u64::MAX).max(1))
        } else {
            Repeat::Once
        };
        Plan { evict: vec![], batch, repeat, decode_all: false, hold: Vec::new() }
    }
}

/// The batch of whole-prompt prefills for the admitted waiting requests `ids`.
fn prefills(view: &View<'_>, ids: Vec<u64>) -> Vec<BatchItem> {
    ids.into_iter()
        .map(|id| {
            let id = RequestId(id as u32);
            let prompt = view.request(id).expect("waiting request").prompt_tokens();
            BatchItem::Prefill { id, tokens: prompt }
        })
        .collect()
}
