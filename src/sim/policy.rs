//! The scheduler interface, owned by the engine: a policy sees a [`View`] and returns a [`Plan`].
//!
//! A scheduler never mutates the simulator. At every decision point the engine builds a
//! read-only [`View`], filtered by the policy's [`Information`] set, and asks for a [`Plan`]:
//! which resident requests to evict, and which batch to run next. The engine validates the plan
//! against the spec's rules before it applies it, and rejects an invalid plan with the spec's
//! [`kvsched_spec::Violation`]; it never repairs a plan.
//!
//! Decision points are: the start, every arrival, every completion, and the end of every batch,
//! unless the plan allowed the engine to repeat a decode-only batch ([`Repeat::UpTo`]), in which
//! case the engine repeats it until the bound, an arrival or a completion, whichever is first.

pub use super::view::{DecodeAllGrowth, ResidentView, View};

use kvsched_spec::{BatchItem, Information, RequestId, Tokens};

/// A scheduling policy.
pub trait Scheduler {
    /// Name, as listed by `kvsched schedulers`.
    fn name(&self) -> String;
    /// The information set the policy needs; the engine shows it nothing more.
    fn information(&self) -> Information;
    /// Decides what to do now.
    fn decide(&mut self, view: &View<'_>) -> Plan;
}

/// How long the engine may keep running a plan's batch without asking again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Repeat {
    /// One iteration.
    #[default]
    Once,
    /// Up to this many identical decode-only iterations (at least 1). The engine stops earlier
    /// at the first arrival or completion. The policy guarantees the batch stays valid (in
    /// particular within memory) for that many iterations; the engine checks it.
    UpTo(u64),
}

/// A decision: evict these, then run this batch (an empty batch idles until the next arrival).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Resident requests to evict first, in order (each loses its KV and progress).
    pub evict: Vec<RequestId>,
    /// The batch of the next iteration.
    pub batch: Vec<BatchItem>,
    /// Also decode every resident request whose prompt is complete (after the evictions),
    /// without listing them; `batch` must then list no decode. The engine runs this in
    /// `O(block size + log n)` per step instead of `O(batch)`. The batch it stands for is
    /// [`Plan::expanded`]: these decodes in admission order, then `batch`.
    pub decode_all: bool,
    /// With `decode_all`: decode-ready residents the batch leaves out ("decode all except
    /// these"). Each must be a decode-group member after the evictions (resident, prompt
    /// complete), listed once and not in `batch`; it does not advance in this batch (nor in
    /// any repeat of it: a repeated batch is the same batch). Must be empty without
    /// `decode_all`. The engine runs it in `O(block size + |hold| log n)` per step; a bad list
    /// is [`super::SimErrorKind::BadHold`].
    pub hold: Vec<RequestId>,
    /// How many identical iterations the engine may run.
    pub repeat: Repeat,
}

impl Plan {
    /// An empty plan: run nothing, wait for the next arrival.
    pub fn idle() -> Plan {
        Plan::default()
    }

    /// The explicit batch this plan stands for in `view`, after its evictions: with
    /// `decode_all`, a decode for every decode-ready resident neither evicted nor held
    /// (admission order), then `batch`. `O(residents + hold log hold)`; for protocols, traces
    /// and checks. It does not validate the hold list (the engine does).
    pub fn expanded(&self, view: &View<'_>) -> Vec<BatchItem> {
        if !self.decode_all {
            return self.batch.clone();
        }
        let mut hold = self.hold.clone();
        hold.sort_unstable();
        let mut items: Vec<BatchItem> = view
            .running()
            .filter(|r| {
                r.prefill_done()
                    && !self.evict.contains(&r.id())
                    && hold.binary_search(&r.id()).is_err()
            })
            .map(|r| BatchItem::Decode { id: r.id() })
            .collect();
        items.extend(self.batch.iter().copied());
        items
    }
}

/// Helpers shared by policies.
pub mod util {
    use super::*;

    /// A decode item for every resident request whose prefill is complete, in admission order.
    pub fn decode_all(view: &View<'_>) -> Vec<BatchItem> {
        view.running()
            .filter(|r| r.prefill_done())
            .map(|r| BatchItem::Decode { id: r.id() })
            .collect()
    }

    /// The requests `plan` prefills (admits or continues), in batch order.
    pub fn prefilled(plan: &Plan) -> Vec<RequestId> {
        let prefill = |i: &&BatchItem| matches!(i, BatchItem::Prefill { .. });
        plan.batch.iter().filter(prefill).map(BatchItem::id).collect()
    }

    /// The FCFS queue after a decision's evictions: the waiting requests (arrival = id order)
    /// merged by id with the resident requests `evicted` in this decision, as
    /// `(id, prompt tokens)` (an evicted request's prompt as it shows once evicted,
    /// [`View::prompt_after_eviction`]). Lazy: a policy that stops admitting early reads only
    /// what it admits (plus one), never the whole queue; `O(evicted log evicted)` to set up.
    pub fn fcfs_after_evictions<'v>(
        view: &'v View<'_>,
        evicted: &[RequestId],
    ) -> impl Iterator<Item = (RequestId, Tokens)> + 'v {
        let mut extra: Vec<(RequestId, Tokens)> = evicted
            .iter()
            .map(|id| {
                let r = view.resident(*id).expect("evicted from residents");
                (*id, view.prompt_after_eviction(&r))
            })
            .collect();
        extra.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
        let mut waiting = view.waiting().map(|r| (r.id(), r.prompt_tokens())).peekable();
        std::iter::from_fn(move || match (waiting.peek(), extra.last()) {
            (Some(w), Some(e)) if e.0 < w.0 => extra.pop(),
            (Some(_), _) => waiting.next(),
            (None, _) => extra.pop(),
        })
    }

    /// The largest `k <= limit` such that `k` decode iterations of `ids` (all resident and
    /// decodable) keep memory within capacity, given the other residents stay as they are.
    /// Returns 0 when even one iteration does not fit.
    pub fn decode_steps_within_memory(view: &View<'_>, ids: &[RequestId], limit: u64) -> u64 {
        decode_steps_within_room(view, ids, view.kv_free(), limit)
    }

    /// The largest `k <= limit` such that `k` decode iterations of `ids` grow the footprint by
    /// at most `room` tokens (0 when even one does not fit; `limit` when `ids` is empty).
    ///
    /// A request with `r` free tokens in its last block grows by `block * ceil((k - r)^+ /
    /// block)` over `k` steps, so requests are grouped by `r` and one evaluation costs
    /// O(distinct r) <= O(min(batch, block)). The answer lies within `block` of `room / b`,
    /// which bounds the binary search.
    pub fn decode_steps_within_room(
        view: &View<'_>,
        ids: &[RequestId],
        room: Tokens,
        limit: u64,
    ) -> u64 {
        if ids.is_empty() {
            return limit;
        }
        let block = view.memory().block_size_tokens.max(1);
        let mut counts = vec![0u64; block as usize];
        for id in ids {
            let h = view.resident(*id).expect("decode of a resident request").held().get();
            counts[((block - h % block) % block) as usize] += 1;
        }
        steps_within_by_free(&counts, block, room.get(), limit)
    }

    /// The largest `k <= limit` such that `k` decode iterations of a batch grow its footprint
    /// by at most `room` tokens, where `by_free[f]` requests have `f` free tokens in their last
    /// block of `block` tokens (0 when one iteration does not fit; `limit` for an empty batch).
    ///
    /// A request with `f < B` free tokens grows by `B ceil((k - f)^+ / B)` over `k` iterations;
    /// with `k = qB + r` that is `B (q + [f < r])`, so the batch of `n` grows by
    /// `B (n q + #{f < r})`: the largest `q` with `B n q <= room`, then the largest `r`. `O(B)`.
    pub fn steps_within_by_free(by_free: &[u64], block: u64, room: u64, limit: u64) -> u64 {
        let n: u64 = by_free.iter().sum();
        if n == 0 || limit == 0 {
            return limit;
        }
        let q = room / (block * n);
        let left = room / block - n * q;
        let (mut r, mut below) = (0u64, 0u64);
        while r + 1 < block && below + by_free[r as usize] <= left {
            below += by_free[r as usize];
            r += 1;
        }
        q.saturating_mul(block).saturating_add(r).min(limit)
    }
}
