//! The read-only view a policy gets, filtered by its information set.

use super::core::{Core, Slot, SlotPhase};
use kvsched_spec::{
    CompiledStepTime, Information, MemoryConfig, ModelConfig, Nanos, Preemption, RequestId,
    RequestView, Revealed, Tokens,
};

/// What a policy may see at a decision point. Borrowed from the engine; costs nothing to build.
pub struct View<'a> {
    pub(crate) core: &'a Core,
}

/// A resident request as a policy sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResidentView {
    request: RequestView,
    prefilled: Tokens,
    generated: Tokens,
    admitted_seq: u64,
}

impl ResidentView {
    /// Identifier.
    pub fn id(&self) -> RequestId {
        self.request.id()
    }
    /// What the policy may see of the request.
    pub fn request(&self) -> &RequestView {
        &self.request
    }
    /// Tokens prefilled so far in this residency (of the view's prompt, which includes any
    /// kept output).
    pub fn prefilled(&self) -> Tokens {
        self.prefilled
    }
    /// Output tokens generated in this residency (kept output is not counted: see
    /// [`View::kept`]).
    pub fn generated(&self) -> Tokens {
        self.generated
    }
    /// KV tokens held.
    pub fn held(&self) -> Tokens {
        self.prefilled + self.generated
    }
    /// Whether the prompt is fully prefilled (the request can decode).
    pub fn prefill_done(&self) -> bool {
        self.prefilled == self.request.prompt_tokens()
    }
    /// Prompt tokens still to prefill.
    pub fn prefill_remaining(&self) -> Tokens {
        self.request.prompt_tokens() - self.prefilled
    }
    /// Admission sequence number (larger is more recent).
    pub fn admitted_seq(&self) -> u64 {
        self.admitted_seq
    }
}

/// The footprint growth of `k` iterations that decode every decode-ready resident, for any `k`
/// ([`View::decode_all_growth_table`]).
#[derive(Clone, Debug)]
pub struct DecodeAllGrowth {
    block: u64,
    n: u64,
    /// `below[r]`: members with fewer than `r` free tokens in their last block.
    below: Vec<u64>,
}

impl DecodeAllGrowth {
    /// Growth of `k` iterations: a member with `f < B` free tokens grows by `B ceil((k - f)^+ /
    /// B)`, so with `k = qB + r` the group grows by `B (n q + #{f < r})`. `O(1)`.
    pub fn at(&self, k: u64) -> Tokens {
        let (q, r) = (k / self.block, k % self.block);
        Tokens(self.block * (self.n * q + self.below[r as usize]))
    }
}

impl<'a> View<'a> {
    fn info(&self) -> Information {
        self.core.config.information
    }

    /// A request as the server sees it: under `Preemption::KeepGenerated` a request that
    /// resumes keeping output is shown as `Request::resumed` (its prompt plus the kept output
    /// to prefill, the rest of its output to come), as vLLM's scheduler sees a preempted
    /// request; so a policy's prefill and memory arithmetic hold under both rules unchanged.
    fn request_view(&self, slot: &Slot) -> RequestView {
        if slot.kept == Tokens::ZERO {
            self.info().view(&slot.request)
        } else {
            self.info().view(&slot.request.resumed(slot.kept))
        }
    }

    /// The prompt resident request `r` shows once evicted: the same under `Restart`, plus the
    /// output it generated in this residency under `KeepGenerated` (for a policy that evicts
    /// and re-admits in one plan).
    pub fn prompt_after_eviction(&self, r: &ResidentView) -> Tokens {
        match self.core.config.preemption {
            Preemption::Restart => r.request().prompt_tokens(),
            Preemption::KeepGenerated => r.request().prompt_tokens() + r.generated(),
        }
    }

    /// The view resident request `id` shows once evicted (`None` if it is not resident): the
    /// same request under `Restart`; under `KeepGenerated` one that keeps this residency's
    /// output too (its prompt grows and its output hint shrinks by it).
    pub fn request_after_eviction(&self, id: RequestId) -> Option<RequestView> {
        let slot = self.core.slots.get(id)?;
        let SlotPhase::Resident { .. } = slot.phase else { return None };
        let kept = match self.core.config.preemption {
            Preemption::Restart => slot.kept,
            Preemption::KeepGenerated => slot.kept + self.core.generated(slot),
        };
        Some(self.info().view(&slot.request.resumed(kept)))
    }

    /// Output tokens request `id` keeps from before an eviction (0 under `Restart`, and for a
    /// request never evicted); included in its view's prompt, which it must prefill again.
    pub fn kept(&self, id: RequestId) -> Tokens {
        self.core.slots.get(id).map_or(Tokens::ZERO, |s| s.kept)
    }

    /// Current time.
    pub fn now_ns(&self) -> Nanos {
        self.core.now
    }
    /// Server configuration (memory, step time, first-token rule, information set).
    pub fn config(&self) -> &ModelConfig {
        &self.core.config
    }
    /// Memory configuration.
    pub fn memory(&self) -> &MemoryConfig {
        &self.core.config.memory
    }
    /// The step-time model with integer coefficients.
    pub fn step_time(&self) -> &CompiledStepTime {
        &self.core.step_time
    }
    /// Capacity, rounded down to whole blocks.
    pub fn capacity(&self) -> Tokens {
        self.core.capacity
    }
    /// Footprint of all resident requests.
    pub fn kv_used(&self) -> Tokens {
        self.core.kv_used
    }
    /// Capacity minus footprint.
    pub fn kv_free(&self) -> Tokens {
        self.core.capacity - self.core.kv_used
    }
    /// Footprint of a request holding `held` tokens (block rounding).
    pub fn footprint(&self, held: Tokens) -> Tokens {
        self.core.config.memory.footprint(held)
    }
    /// Arrived requests that hold no KV, in arrival order (evicted requests keep their place).
    pub fn waiting(&self) -> impl DoubleEndedIterator<Item = RequestView> + '_ {
        self.core.waiting.iter().map(|id| self.request_view(&self.core.slots[*id]))
    }
    /// Number of waiting requests.
    pub fn waiting_len(&self) -> usize {
        self.core.waiting.len()
    }
    /// Resident requests, in admission order (oldest first).
    pub fn running(
        &self,
    ) -> impl DoubleEndedIterator<Item = ResidentView> + ExactSizeIterator + '_ {
        self.core.running.values().map(|id| self.resident(*id).expect("running is resident"))
    }
    /// Number of resident requests.
    pub fn running_len(&self) -> usize {
        self.core.running.len()
    }
    /// Number of resident requests whose prompt is complete (those a [`crate::sim::Plan`]
    /// with `decode_all` decodes). `O(1)`.
    pub fn decode_ready_len(&self) -> usize {
        self.core.decode_ready() as usize
    }
    /// Footprint growth of `k` iterations that decode every decode-ready resident.
    /// `O(block size)`.
    pub fn decode_all_growth(&self, k: u64) -> Tokens {
        self.core.group_growth(k)
    }
    /// [`View::decode_all_growth`] for every `k` at once: `growth(k)` is
    /// [`DecodeAllGrowth::at`], `O(1)` each after `O(block size)` here.
    pub fn decode_all_growth_table(&self) -> DecodeAllGrowth {
        let block = self.core.config.memory.block_size_tokens.max(1);
        let by_free = self.core.group_by_free();
        let mut below = Vec::with_capacity(by_free.len() + 1);
        below.push(0u64);
        for c in &by_free {
            below.push(below.last().expect("non-empty") + c);
        }
        DecodeAllGrowth { block, n: self.core.decode_ready(), below }
    }
    /// The largest `k <= limit` such that `k` iterations decoding every decode-ready resident
    /// grow the footprint by at most `room` (0 when one does not fit; `limit` when none is
    /// decode-ready). `O(block size)`, in closed form.
    pub fn decode_all_steps_within(&self, room: Tokens, limit: u64) -> u64 {
        self.core.group_steps_within(room, limit)
    }

    /// The resident request `id`, if it is resident.
    pub fn resident(&self, id: RequestId) -> Option<ResidentView> {
        let slot = self.core.slots.get(id)?;
        match slot.phase {
            SlotPhase::Resident { admitted_seq } => Some(ResidentView {
                request: self.request_view(slot),
                prefilled: slot.prefilled,
                generated: self.core.generated(slot),
                admitted_seq,
            }),
            _ => None,
        }
    }
    /// The request `id` if it has arrived and is not done.
    pub fn request(&self, id: RequestId) -> Option<RequestView> {
        let slot = self.core.slots.get(id)?;
        match slot.phase {
            SlotPhase::Waiting | SlotPhase::Resident { .. } => Some(self.request_view(slot)),
            _ => None,
        }
    }
    /// Requests completed since the previous decision, with their true lengths revealed.
    pub fn completed_since_last(&self) -> &[Revealed] {
        &self.core.new_completions
    }
    /// Requests that arrived since the previous decision, in arrival order.
    pub fn arrived_since_last(&self) -> &[RequestId] {
        &self.core.new_arrivals
    }
    /// Requests evicted by the engine's own accounting since the previous decision is always
    /// empty: only policies evict. Total evictions so far:
    pub fn evictions_total(&self) -> u64 {
        self.core.evictions
    }
    /// Whether every request of this finite run has arrived. Policies that hold work back
    /// (WAIT's accumulation) use it only to drain at the end of a run, as the WAIT authors'
    /// Vidur code does (`force_clear`); it says nothing about when a next arrival comes.
    pub fn arrivals_done(&self) -> bool {
        self.core.upcoming.is_none()
    }
    /// Iterations run so far.
    pub fn steps_total(&self) -> u64 {
        self.core.steps
    }
    /// Requests completed so far.
    pub fn completed_total(&self) -> u64 {
        self.core.completed
    }
}
