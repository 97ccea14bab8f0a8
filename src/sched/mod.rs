//! The scheduler interface: a policy sees a [`View`] and returns a [`Plan`].
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

mod view;

pub use view::{ResidentView, View};

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
    /// How many identical iterations the engine may run.
    pub repeat: Repeat,
}

impl Plan {
    /// An empty plan: run nothing, wait for the next arrival.
    pub fn idle() -> Plan {
        Plan::default()
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
        let block = view.memory().block_size_tokens;
        let mut free_slots: Vec<u64> = ids
            .iter()
            .map(|id| {
                let h = view.resident(*id).expect("decode of a resident request").held().get();
                (block - h % block) % block
            })
            .collect();
        free_slots.sort_unstable();
        let mut groups: Vec<(u64, u64)> = Vec::new();
        for r in free_slots {
            match groups.last_mut() {
                Some((last, n)) if *last == r => *n += 1,
                _ => groups.push((r, 1)),
            }
        }
        let fits = |k: u64| -> bool {
            let grow: u64 =
                groups.iter().map(|&(r, n)| n * block * k.saturating_sub(r).div_ceil(block)).sum();
            grow <= room.get()
        };
        if limit == 0 || !fits(1) {
            return 0;
        }
        let b = ids.len() as u64;
        let slack = b * (block - 1);
        let k_max = ((room.get() + slack) / b).clamp(1, limit);
        let k_min = (room.get().saturating_sub(slack) / b).clamp(1, k_max);
        let (mut lo, mut hi) = (if fits(k_min) { k_min } else { 1 }, k_max);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo
    }
}
