//! The engine's own state and its validation of decisions.
//!
//! This is an independent implementation of the spec's rules (`kvsched_spec::model`), written
//! for speed: per-request slots indexed by id, the running set in admission order, O(1)
//! duplicate detection, and fast-forward over identical decode-only iterations. It reports the
//! spec's own [`Violation`] values. In check mode the engine also replays every action through
//! `kvsched_spec::apply` and compares the two (pair assertions, see `super::mirror`).
//!
//! **The decode group.** Resident requests whose prompt is complete form the decode group. A
//! plan with `decode_all` decodes all of them without listing them, and the engine advances
//! them lazily: a group clock counts such iterations, each member's output is its count at
//! joining plus the clock's progress since, and the group keeps its size, its held-token sum, a
//! histogram of held tokens modulo the block size (for the footprint growth of `k` iterations,
//! `O(block)`) and a min-heap of completion clocks. Such a step costs `O(block + log n)` plus
//! its completions, not `O(batch)`. Invariants (checked by the pair assertions against the
//! spec, which sees every expanded batch): `kv_used` is the sum of the residents' footprints;
//! a member's output is `generated_base + clock - clock_base`.
//!
//! **Holding members back.** A `decode_all` plan may leave listed members out
//! ([`Core::step_holding`]): each leaves the group for the step (output materialized, out of
//! the histogram and the held-token sum) and rejoins it after with a fresh clock base and a
//! fresh completion-heap entry, so the step costs `O(block + |hold| log n)`. The old heap entry
//! is stale (its clock is no longer the member's) and is skipped; the heap is rebuilt once
//! stale entries outnumber the members.
//!
//! **Preemption.** Under `Preemption::KeepGenerated` an evicted slot adds its output to
//! `kept`; its next residency prefills [`Slot::prefill_target`] (prompt plus kept) and
//! completes at [`Slot::output_target`] (output minus kept) tokens of its own, so the decode
//! group and every closed form above work on the residency unchanged.

use super::decode_group::DecodeGroup;
use kvsched_spec::{
    BatchItem, BatchShape, CompiledStepTime, EvictionRule, FirstToken, ModelConfig, Nanos,
    Preemption, Request, RequestId, Revealed, Tokens, Violation,
};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

/// Where a request is, in the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotPhase {
    /// Not arrived yet.
    Pending,
    /// Arrived, holding no KV.
    Waiting,
    /// Holding KV.
    Resident {
        /// Admission sequence number.
        admitted_seq: u64,
    },
    /// Completed.
    Done,
}

/// Per-request state: ground truth plus progress.
#[derive(Clone, Debug)]
pub struct Slot {
    /// Ground truth (never shown to policies directly).
    pub request: Request,
    /// Phase.
    pub phase: SlotPhase,
    /// Tokens prefilled in this residency, out of [`Slot::prefill_target`].
    pub prefilled: Tokens,
    /// Output tokens kept across evictions under `Preemption::KeepGenerated` (0 under
    /// `Restart`); `generated_base` counts only the current residency's.
    pub kept: Tokens,
    /// Output tokens generated, as of group clock `clock_base` for a decode-group member
    /// (read it through [`Core::generated`]; write it only outside the group, see
    /// [`Core::ungroup_all`]).
    pub(crate) generated_base: Tokens,
    /// The group clock when `generated_base` was last set (members only).
    clock_base: u64,
    /// Whether the request is in the decode group.
    in_group: bool,
    /// First output token time (first ever, kept across evictions).
    pub first_token_ns: Option<Nanos>,
    /// Completion time.
    pub finish_ns: Option<Nanos>,
    /// Times evicted.
    pub evictions: u32,
    /// Step number that last included this request (duplicate detection).
    mark: u64,
}

impl Slot {
    /// A slot for `request`, not arrived yet.
    pub fn new(request: Request) -> Slot {
        Slot {
            request,
            phase: SlotPhase::Pending,
            prefilled: Tokens::ZERO,
            kept: Tokens::ZERO,
            generated_base: Tokens::ZERO,
            clock_base: 0,
            in_group: false,
            first_token_ns: None,
            finish_ns: None,
            evictions: 0,
            mark: u64::MAX,
        }
    }
}

impl Slot {
    /// Tokens its prefill covers: the prompt plus the kept output.
    #[inline]
    pub fn prefill_target(&self) -> Tokens {
        self.request.prompt_tokens + self.kept
    }

    /// Output tokens its current residency must generate to complete it.
    #[inline]
    pub fn output_target(&self) -> Tokens {
        self.request.output_tokens - self.kept
    }
}

/// The slots of a window of consecutive ids: completed requests leave from the front
/// ([`Core::retire`]), arrivals join at the back.
#[derive(Clone, Debug, Default)]
pub struct Slots {
    /// Id of `slots[0]`.
    base: u32,
    slots: std::collections::VecDeque<Slot>,
}

impl Slots {
    fn pos(&self, id: RequestId) -> Option<usize> {
        id.0.checked_sub(self.base).map(|i| i as usize).filter(|&i| i < self.slots.len())
    }
    /// The slot of `id`, if it is in the window.
    pub fn get(&self, id: RequestId) -> Option<&Slot> {
        self.pos(id).map(|i| &self.slots[i])
    }
    /// The slot of `id`, mutably.
    pub fn get_mut(&mut self, id: RequestId) -> Option<&mut Slot> {
        self.pos(id).map(|i| &mut self.slots[i])
    }
    /// Whether `id` was retired (completed and out of the window).
    pub fn retired(&self, id: RequestId) -> bool {
        id.0 < self.base
    }
    /// The id the next pushed slot must have.
    pub fn next_id(&self) -> RequestId {
        RequestId(self.base + self.slots.len() as u32)
    }
    /// Appends the slot of the next id.
    pub fn push(&mut self, slot: Slot) {
        self.slots.push_back(slot);
    }
    /// Slots in the window.
    pub fn len(&self) -> usize {
        self.slots.len()
    }
    fn front(&self) -> Option<&Slot> {
        self.slots.front()
    }
    fn pop_front(&mut self) -> Option<Slot> {
        let s = self.slots.pop_front()?;
        self.base += 1;
        Some(s)
    }
    /// Removes every slot from the window, by id.
    pub fn drain(&mut self) -> impl Iterator<Item = Slot> + '_ {
        self.base += self.slots.len() as u32;
        self.slots.drain(..)
    }
}

impl std::ops::Index<RequestId> for Slots {
    type Output = Slot;
    fn index(&self, id: RequestId) -> &Slot {
        self.get(id).expect("a request in the window")
    }
}

impl std::ops::IndexMut<RequestId> for Slots {
    fn index_mut(&mut self, id: RequestId) -> &mut Slot {
        self.get_mut(id).expect("a request in the window")
    }
}

/// The result of running one planned batch, possibly repeated.
#[derive(Clone, Debug)]
pub struct StepDone {
    /// Start time.
    pub start_ns: Nanos,
    /// Total duration.
    pub duration_ns: Nanos,
    /// Iterations run.
    pub repeat: u64,
    /// Footprint after the last iteration, before completions freed memory.
    pub kv_peak: Tokens,
    /// Completed at the end.
    pub completed: Vec<RequestId>,
}

/// The engine's state.
pub struct Core {
    /// Configuration, with the policy's information set.
    pub config: ModelConfig,
    /// Compiled step time.
    pub step_time: CompiledStepTime,
    /// Capacity in tokens (whole blocks).
    pub capacity: Tokens,
    /// Current time.
    pub now: Nanos,
    /// Per-request slots of the arrived requests not yet retired, indexed by id.
    pub slots: Slots,
    /// The next request to arrive (not delivered yet), if any.
    pub upcoming: Option<Request>,
    /// Requests in the whole run, when known (ids `0..total`).
    pub total: Option<u64>,
    /// Most slots held at once.
    pub peak_window: usize,
    /// Arrived requests holding no KV, by id (= arrival order).
    pub waiting: BTreeSet<RequestId>,
    /// Resident requests by admission sequence number (admission order).
    pub running: BTreeMap<u64, RequestId>,
    /// The decode group: resident requests whose prompt is complete.
    group: DecodeGroup,
    /// Footprint of residents.
    pub kv_used: Tokens,
    /// Completions since the last decision.
    pub new_completions: Vec<Revealed>,
    /// Arrivals since the last decision.
    pub new_arrivals: Vec<RequestId>,
    /// Iterations run.
    pub steps: u64,
    /// Evictions.
    pub evictions: u64,
    /// Admissions (first prefill chunks), including re-admissions after eviction.
    pub admissions: u64,
    /// Completed requests.
    pub completed: u64,
    admission_counter: u64,
}

impl Core {
    /// A fresh engine state with no request yet: the caller feeds arrivals through
    /// [`Core::deliver_next_due`], sorted by arrival with dense ids from 0.
    pub fn new(config: ModelConfig, step_time: CompiledStepTime) -> Core {
        let capacity = config.memory.capacity();
        let group = DecodeGroup::new(config.memory.block_size_tokens);
        Core {
            config,
            step_time,
            capacity,
            now: Nanos::ZERO,
            slots: Slots::default(),
            upcoming: None,
            total: None,
            peak_window: 0,
            waiting: BTreeSet::new(),
            running: BTreeMap::new(),
            group,
            kv_used: Tokens::ZERO,
            new_completions: Vec::new(),
            new_arrivals: Vec::new(),
            steps: 0,
            evictions: 0,
            admissions: 0,
            completed: 0,
            admission_counter: 0,
        }
    }

    /// The next undelivered arrival time, if any.
    pub fn next_arrival_ns(&self) -> Option<Nanos> {
        self.upcoming.as_ref().map(|r| r.arrival_ns)
    }

    /// Delivers the upcoming arrival if it is due, and takes the next one from `source`;
    /// returns the delivered id.
    pub fn deliver_next_due(
        &mut self,
        source: &mut dyn Iterator<Item = Request>,
    ) -> Option<RequestId> {
        if self.upcoming.as_ref()?.arrival_ns > self.now {
            return None;
        }
        let request = self.upcoming.take().expect("checked");
        self.upcoming = source.next();
        let id = request.id;
        assert_eq!(id, self.slots.next_id(), "arrivals must have dense ids in arrival order");
        let mut slot = Slot::new(request);
        slot.phase = SlotPhase::Waiting;
        self.slots.push(slot);
        self.peak_window = self.peak_window.max(self.slots.len());
        self.waiting.insert(id);
        self.new_arrivals.push(id);
        Some(id)
    }

    /// Whether every request arrived and completed.
    pub fn all_done(&self) -> bool {
        self.upcoming.is_none() && self.waiting.is_empty() && self.running.is_empty()
    }

    /// Retires the completed requests at the front of the window (in id order), handing each
    /// to `sink`: memory then follows the requests in flight, not the whole run.
    pub fn retire(&mut self, mut sink: impl FnMut(Slot)) {
        while self.slots.front().is_some_and(|s| s.phase == SlotPhase::Done) {
            sink(self.slots.pop_front().expect("checked"));
        }
    }

    /// Idles until `until` (the next arrival).
    pub fn idle_until(&mut self, until: Nanos) {
        assert!(until > self.now, "idle must move time forward");
        self.now = until;
    }

    /// The slot of `id`; `Err` with what a request outside the window is: retired requests
    /// are done (`NotResident`), later ids have not arrived (while arrivals remain, up to
    /// [`Core::total`] when it is known), anything else is unknown.
    fn slot(&self, id: RequestId) -> Result<&Slot, Violation> {
        if let Some(s) = self.slots.get(id) {
            return Ok(s);
        }
        if self.slots.retired(id) {
            return Err(Violation::NotResident { id });
        }
        let may_come = self.upcoming.is_some() && self.total.is_none_or(|n| u64::from(id.0) < n);
        Err(if may_come { Violation::NotArrived { id } } else { Violation::UnknownRequest { id } })
    }

    /// Output tokens `slot` has generated so far.
    #[inline]
    pub fn generated(&self, slot: &Slot) -> Tokens {
        if slot.in_group {
            slot.generated_base + Tokens(self.group.clock - slot.clock_base)
        } else {
            slot.generated_base
        }
    }

    /// KV tokens `slot` holds.
    #[inline]
    pub fn held(&self, slot: &Slot) -> Tokens {
        slot.prefilled + self.generated(slot)
    }

    /// Members of the decode group (resident requests whose prompt is complete).
    pub fn decode_ready(&self) -> u64 {
        self.group.n
    }

    /// Footprint growth of `k` iterations that decode every member of the group.
    pub fn group_growth(&self, k: u64) -> Tokens {
        Tokens(self.group.growth(k))
    }

    /// Group members by free tokens in their last block: entry `f` counts the members with `f`
    /// free (`block` entries).
    pub fn group_by_free(&self) -> Vec<u64> {
        self.group.by_free()
    }

    /// The largest `k <= limit` such that `k` whole-group iterations grow the footprint by at
    /// most `room` (0 when one does not fit; `limit` for an empty group).
    pub fn group_steps_within(&self, room: Tokens, limit: u64) -> u64 {
        self.group.steps_within(room.get(), limit)
    }

    /// The decode items of every group member, in admission order (for traces and checks).
    pub fn group_items(&self) -> Vec<BatchItem> {
        self.running
            .values()
            .filter(|id| self.slots[**id].in_group)
            .map(|&id| BatchItem::Decode { id })
            .collect()
    }

    /// Dissolves the decode group (every member's output materialized), so that the slots can
    /// be edited directly; [`Core::regroup`] rebuilds it. For state mirrors (`kvsched serve`).
    pub fn ungroup_all(&mut self) {
        let members: Vec<RequestId> =
            self.running.values().copied().filter(|id| self.slots[*id].in_group).collect();
        for id in members {
            self.leave_group(id);
        }
        self.group = DecodeGroup::new(self.config.memory.block_size_tokens);
    }

    /// Puts every resident request whose prompt is complete into the decode group.
    pub fn regroup(&mut self) {
        let ready: Vec<RequestId> = self
            .running
            .values()
            .copied()
            .filter(|id| {
                let s = &self.slots[*id];
                !s.in_group && s.prefilled == s.prefill_target()
            })
            .collect();
        for id in ready {
            self.join_group(id);
        }
    }

    fn join_group(&mut self, id: RequestId) {
        let held = self.held(&self.slots[id]);
        let slot = &mut self.slots[id];
        debug_assert!(!slot.in_group);
        slot.in_group = true;
        slot.clock_base = self.group.clock;
        let out_left = (slot.output_target() - slot.generated_base).get();
        let fresh = slot.generated_base == Tokens::ZERO;
        self.group.add(held.get(), 1);
        if self.group.heap_valid {
            self.group.heap.push(Reverse((self.group.clock + out_left, id)));
        }
        if fresh {
            self.group.fresh.push(id);
        }
    }

    fn leave_group(&mut self, id: RequestId) {
        let generated = self.generated(&self.slots[id]);
        let slot = &mut self.slots[id];
        debug_assert!(slot.in_group);
        let held = slot.prefilled + generated;
        slot.generated_base = generated;
        slot.in_group = false;
        self.group.remove(held.get());
    }

    /// Evicts a resident request (validated).
    pub fn evict(&mut self, id: RequestId) -> Result<(), Violation> {
        let slot = match self.slot(id) {
            Ok(s) => s,
            Err(v @ Violation::UnknownRequest { .. }) => return Err(v),
            Err(_) => return Err(Violation::NotResident { id }),
        };
        let SlotPhase::Resident { admitted_seq } = slot.phase else {
            // As in the spec: any non-resident request, pending ones included.
            return Err(Violation::NotResident { id });
        };
        let latest = *self.running.values().next_back().expect("a resident request is running");
        if self.config.eviction == EvictionRule::Lifo && latest != id {
            return Err(Violation::EvictionOrder { id, expected: latest });
        }
        if slot.in_group {
            self.leave_group(id);
        }
        let slot = &self.slots[id];
        let held = slot.prefilled + slot.generated_base;
        self.kv_used -= self.config.memory.footprint(held);
        self.running.remove(&admitted_seq);
        let keep = self.config.preemption == Preemption::KeepGenerated;
        let slot = &mut self.slots[id];
        if keep {
            slot.kept += slot.generated_base;
        }
        slot.phase = SlotPhase::Waiting;
        slot.prefilled = Tokens::ZERO;
        slot.generated_base = Tokens::ZERO;
        slot.evictions += 1;
        self.waiting.insert(id);
        self.evictions += 1;
        Ok(())
    }

    /// Validates one item; returns (held before, held after).
    fn check_item(
        &self,
        item: &BatchItem,
        decode_all: bool,
        shape: &mut BatchShape,
    ) -> Result<(Tokens, Tokens), Violation> {
        let id = item.id();
        if self.slots.retired(id) {
            // A completed request: as the spec says of a done one.
            return Err(match item {
                BatchItem::Prefill { .. } => Violation::NotPrefillable { id },
                BatchItem::Decode { .. } => Violation::NotDecodable { id },
            });
        }
        let slot = self.slot(id)?;
        if slot.mark == self.steps || (decode_all && slot.in_group) {
            return Err(Violation::DuplicateInBatch { id });
        }
        let prompt = slot.prefill_target();
        let held = self.held(slot);
        match (*item, slot.phase) {
            (_, SlotPhase::Pending) => Err(Violation::NotArrived { id }),
            (
                BatchItem::Prefill { tokens, .. },
                SlotPhase::Waiting | SlotPhase::Resident { .. },
            ) if slot.prefilled < prompt => {
                if tokens == Tokens::ZERO || slot.prefilled + tokens > prompt {
                    return Err(Violation::BadChunk {
                        id,
                        prefilled: slot.prefilled,
                        chunk: tokens,
                        prompt,
                    });
                }
                let context = slot.prefilled + tokens;
                shape.prefill_tokens += tokens.get();
                shape.prefill_attn_token2 += tokens.get() * context.get();
                shape.attended_kv_tokens += context.get();
                // The first-token rule, written out on purpose (here and in `advance`; not
                // `FirstToken::output_of_prefill`): independent of the spec's model.
                let first = context == prompt && self.config.first_token == FirstToken::WithPrefill;
                Ok((held, context + Tokens(u64::from(first))))
            }
            (BatchItem::Prefill { .. }, _) => Err(Violation::NotPrefillable { id }),
            (BatchItem::Decode { .. }, SlotPhase::Resident { .. }) if slot.prefilled == prompt => {
                shape.decode_requests += 1;
                shape.attended_kv_tokens += held.get() + 1;
                Ok((held, held + Tokens(1)))
            }
            (BatchItem::Decode { .. }, _) => Err(Violation::NotDecodable { id }),
        }
    }

    /// Validates `items` (plus the whole decode group when `decode_all`) and returns the shape
    /// of their first iteration and the footprint after `repeat` iterations. `repeat > 1` only
    /// for decode-only batches.
    fn validate(
        &mut self,
        items: &[BatchItem],
        decode_all: bool,
        repeat: u64,
    ) -> Result<(BatchShape, Tokens), Violation> {
        if items.is_empty() && (!decode_all || self.group.n == 0) {
            return Err(Violation::EmptyBatch);
        }
        let mem = &self.config.memory;
        let mut shape = BatchShape::default();
        let mut used = self.kv_used;
        if decode_all {
            shape.decode_requests += self.group.n;
            shape.attended_kv_tokens += self.group.held_sum + self.group.n;
            used += Tokens(self.group.growth(repeat));
        }
        let mut result = Ok(());
        for item in items {
            match self.check_item(item, decode_all, &mut shape) {
                Ok((before, after)) => {
                    // For repeated (decode-only) batches, the last iteration is the peak.
                    let after = after + Tokens(repeat - 1);
                    used = used - mem.footprint(before) + mem.footprint(after);
                    self.slots[item.id()].mark = self.steps;
                }
                Err(v) => {
                    result = Err(v);
                    break;
                }
            }
        }
        // Unmark so that a rejected batch leaves no trace.
        for item in items {
            if let Some(s) = self.slots.get_mut(item.id()) {
                s.mark = u64::MAX;
            }
        }
        result?;
        if used > self.capacity {
            return Err(Violation::MemoryExceeded { used, capacity: self.capacity });
        }
        Ok((shape, used))
    }

    /// Iterations until the first group member completes (`u64::MAX` for an empty group).
    fn group_steps_to_completion(&mut self) -> u64 {
        if !self.group.heap_valid {
            let clock = self.group.clock;
            let entries: Vec<Reverse<(u64, RequestId)>> = self
                .running
                .values()
                .filter(|id| self.slots[**id].in_group)
                .map(|&id| {
                    let s = &self.slots[id];
                    let left = (s.output_target() - self.generated(s)).get();
                    Reverse((clock + left, id))
                })
                .collect();
            self.group.heap = BinaryHeap::from(entries);
            self.group.heap_valid = true;
        }
        while let Some(&Reverse((at, id))) = self.group.heap.peek() {
            if self.completion_clock(id) == Some(at) {
                return at - self.group.clock;
            }
            self.group.heap.pop();
        }
        u64::MAX
    }

    /// The group clock at which member `id` completes (`None` if it is not a member).
    fn completion_clock(&self, id: RequestId) -> Option<u64> {
        // Stale heap entries may name retired requests.
        let s = self.slots.get(id)?;
        s.in_group.then(|| s.clock_base + (s.output_target() - s.generated_base).get())
    }

    /// How many iterations of a decode-only batch to run: at most `limit`, stopping at the
    /// first completion and at the first iteration that ends at or after the next arrival.
    fn stretch_len(
        &mut self,
        items: &[BatchItem],
        decode_all: bool,
        shape: &BatchShape,
        limit: u64,
    ) -> u64 {
        let mut k = limit;
        for item in items {
            let s = &self.slots[item.id()];
            k = k.min((s.output_target() - self.generated(s)).get());
        }
        if decode_all {
            k = k.min(self.group_steps_to_completion());
        }
        if let Some(arrival) = self.next_arrival_ns() {
            let ends_by = |j: u64| {
                let d = self.step_time.decode_stretch_ns(
                    shape.decode_requests,
                    shape.attended_kv_tokens,
                    j,
                );
                Nanos(self.now.get().saturating_add(d.get()))
            };
            if ends_by(k) >= arrival {
                // Bracket the first iteration that ends at or after the arrival: iterations
                // never get shorter, so with the first one's duration `d1` the answer is about
                // at most gap / d1, and with the last bracketed one's `dh` more than gap / dh
                // (one nanosecond of slack each for the rounding of the stretch sums). The
                // bracket is then checked, so the search stays exact whatever the rounding.
                let gap = (arrival - self.now).get();
                let d1 = (ends_by(1) - self.now).get().max(1);
                let mut hi = k.min((gap + 1).div_ceil(d1)).max(1);
                let dh = if hi > 1 { (ends_by(hi) - ends_by(hi - 1)).get() } else { d1 };
                let mut lo = ((gap.saturating_sub(1)) / (dh + 1) + 1).clamp(1, hi);
                if ends_by(hi) < arrival || (lo > 1 && ends_by(lo - 1) >= arrival) {
                    (lo, hi) = (1, k);
                }
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if ends_by(mid) >= arrival {
                        hi = mid;
                    } else {
                        lo = mid + 1;
                    }
                }
                k = lo;
            }
        }
        k.max(1)
    }

    /// Why `hold` is not a valid hold list for a batch listing `items` (after the plan's
    /// evictions): a held request that is not a decode-group member, one held twice, or one
    /// also listed in `items`. `O(|hold| log |hold| + |items|)`.
    pub fn hold_error(
        &self,
        hold: &[RequestId],
        items: &[BatchItem],
    ) -> Option<(RequestId, &'static str)> {
        if hold.is_empty() {
            return None;
        }
        if let Some(&id) = hold.iter().find(|id| !self.slots.get(**id).is_some_and(|s| s.in_group))
        {
            return Some((id, "not a decode-group member"));
        }
        let mut sorted = hold.to_vec();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Some((w[0], "held twice"));
        }
        items
            .iter()
            .find(|i| sorted.binary_search(&i.id()).is_ok())
            .map(|i| (i.id(), "held and listed in the batch"))
    }

    /// [`Core::step`] with the decode-group members `hold` left out of a `decode_all` batch
    /// (validated by [`Core::hold_error`]): they leave the group for the step (their output
    /// materialized, out of the histogram) and rejoin it after, with a fresh clock base and a
    /// fresh completion-heap entry (the old one goes stale). `O(|hold| log n)` on top of the
    /// step; the group is the same in every iteration of a repeated step, so a stretch is
    /// the same batch repeated.
    pub fn step_holding(
        &mut self,
        items: &[BatchItem],
        decode_all: bool,
        hold: &[RequestId],
        limit: u64,
    ) -> Result<StepDone, Violation> {
        if hold.is_empty() {
            return self.step(items, decode_all, limit);
        }
        debug_assert!(decode_all && self.hold_error(hold, items).is_none());
        for &id in hold {
            self.leave_group(id);
        }
        let done = self.step(items, decode_all, limit);
        for &id in hold {
            self.join_group(id);
        }
        // Stale entries are skipped when they surface; rebuild when they outnumber the live.
        if self.group.heap.len() as u64 > 2 * self.group.n + 64 {
            self.group.heap_valid = false;
            self.group.heap.clear();
        }
        done
    }

    /// Runs `items` (plus every decode-group member when `decode_all`), repeated up to `limit`
    /// times when the batch is decode-only.
    pub fn step(
        &mut self,
        items: &[BatchItem],
        decode_all: bool,
        limit: u64,
    ) -> Result<StepDone, Violation> {
        let decode_only = items.iter().all(|i| matches!(i, BatchItem::Decode { .. }));
        let (shape, kv_after_one) = self.validate(items, decode_all, 1)?;
        let repeat = if decode_only && limit > 1 {
            self.stretch_len(items, decode_all, &shape, limit)
        } else {
            1
        };
        // A stretch is validated again at its last (peak) iteration; one iteration already was.
        let kv_peak =
            if repeat > 1 { self.validate(items, decode_all, repeat)?.1 } else { kv_after_one };
        let duration_ns = if repeat > 1 {
            self.step_time.decode_stretch_ns(
                shape.decode_requests,
                shape.attended_kv_tokens,
                repeat,
            )
        } else {
            self.step_time.duration_ns(&shape)
        };
        let start_ns = self.now;
        let end = start_ns.get().saturating_add(duration_ns.get());
        if end > kvsched_spec::units::MAX_TIME_NS {
            return Err(Violation::TimeLimit { now_ns: start_ns, until_ns: Nanos(end) });
        }
        let first_end_ns = start_ns + self.step_time.duration_ns(&shape);
        self.now = Nanos(end);
        self.steps += repeat;
        self.kv_used = kv_peak;
        let mut completed = Vec::new();
        if decode_all {
            self.advance_group(repeat, first_end_ns, &mut completed);
        } else if self.group.fresh.len() > 2 * self.group.n as usize + 16 {
            // Policies that list their decodes: forget members that already have a token.
            let slots = &self.slots;
            self.group.fresh.retain(|id| {
                slots.get(*id).is_some_and(|s| s.in_group && s.first_token_ns.is_none())
            });
        }
        for item in items {
            self.advance(item, repeat, first_end_ns, &mut completed);
        }
        Ok(StepDone { start_ns, duration_ns, repeat, kv_peak, completed })
    }

    /// Advances every group member by `repeat` tokens and completes those that finish.
    fn advance_group(&mut self, repeat: u64, first_end_ns: Nanos, completed: &mut Vec<RequestId>) {
        let done_at = self.group.clock + repeat;
        // Make sure the heap is valid before the clock moves (it is after `stretch_len`).
        self.group_steps_to_completion();
        self.group.tick(repeat);
        for id in std::mem::take(&mut self.group.fresh) {
            // Ids of retired requests are stale.
            if let Some(s) = self.slots.get_mut(id) {
                if s.in_group && s.first_token_ns.is_none() {
                    s.first_token_ns = Some(first_end_ns);
                }
            }
        }
        let mut finished: Vec<(u64, RequestId)> = Vec::new();
        while let Some(&Reverse((at, id))) = self.group.heap.peek() {
            if at > done_at {
                break;
            }
            self.group.heap.pop();
            if self.completion_clock(id) == Some(at) {
                debug_assert_eq!(at, done_at, "a stretch runs past a completion");
                let SlotPhase::Resident { admitted_seq } = self.slots[id].phase else {
                    unreachable!("group members are resident")
                };
                finished.push((admitted_seq, id));
            }
        }
        // Completions in admission order, as an explicit batch lists them. A stale entry of an
        // earlier residency can name the same clock as the current one (under `KeepGenerated` a
        // request that rejoins `kept` iterations later completes at the clock it would have).
        finished.sort_unstable();
        finished.dedup();
        for (seq, id) in finished {
            self.leave_group(id);
            self.complete(id, seq, completed);
        }
    }

    fn complete(&mut self, id: RequestId, admitted_seq: u64, completed: &mut Vec<RequestId>) {
        let now = self.now;
        let slot = &mut self.slots[id];
        slot.phase = SlotPhase::Done;
        slot.finish_ns = Some(now);
        let held = slot.prefilled + slot.generated_base;
        self.kv_used -= self.config.memory.footprint(held);
        self.running.remove(&admitted_seq);
        self.completed += 1;
        completed.push(id);
        self.new_completions.push(Revealed {
            id,
            output_tokens: slot.request.output_tokens,
            finish_ns: now,
        });
    }

    fn advance(
        &mut self,
        item: &BatchItem,
        repeat: u64,
        first_end_ns: Nanos,
        completed: &mut Vec<RequestId>,
    ) {
        let first_token = self.config.first_token;
        let id = item.id();
        let in_group = self.slots[id].in_group;
        match *item {
            BatchItem::Prefill { tokens, .. } => {
                let slot = &mut self.slots[id];
                if slot.phase == SlotPhase::Waiting {
                    let seq = self.admission_counter;
                    slot.phase = SlotPhase::Resident { admitted_seq: seq };
                    self.admission_counter += 1;
                    self.admissions += 1;
                    self.waiting.remove(&id);
                    self.running.insert(seq, id);
                }
                slot.prefilled += tokens;
                if slot.prefilled == slot.prefill_target() && first_token == FirstToken::WithPrefill
                {
                    slot.generated_base = Tokens(1);
                }
            }
            BatchItem::Decode { .. } => {
                // An explicit decode of a member moves it relative to the group clock.
                if in_group {
                    let held = self.held(&self.slots[id]).get();
                    self.group.shift(held, repeat);
                }
                self.slots[id].generated_base += Tokens(repeat);
            }
        }
        let slot = &mut self.slots[id];
        let generated = if in_group {
            slot.generated_base + Tokens(self.group.clock - slot.clock_base)
        } else {
            slot.generated_base
        };
        if generated > Tokens::ZERO && slot.first_token_ns.is_none() {
            // A request with no token before this batch gets its first in the first iteration.
            slot.first_token_ns = Some(first_end_ns);
        }
        let prompt_done = slot.prefilled == slot.prefill_target();
        let SlotPhase::Resident { admitted_seq } = slot.phase else {
            unreachable!("an advanced request is resident")
        };
        if generated == slot.output_target() {
            if in_group {
                self.leave_group(id);
            }
            self.complete(id, admitted_seq, completed);
        } else if prompt_done && !in_group {
            self.join_group(id);
        }
    }
}
