//! The engine's own state and its validation of decisions.
//!
//! This is an independent implementation of the spec's rules (`kvsched_spec::model`), written
//! for speed: per-request slots indexed by id, the running list in admission order, O(1)
//! duplicate detection, and fast-forward over identical decode-only iterations. It reports the
//! spec's own [`Violation`] values. In check mode the engine also replays every action through
//! `kvsched_spec::apply` and compares the two (pair assertions, see `super::mirror`).

use kvsched_spec::{
    BatchItem, BatchShape, CompiledStepTime, EvictionRule, FirstToken, ModelConfig, Nanos, Request,
    RequestId, Revealed, Tokens, Violation,
};
use std::collections::BTreeSet;

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
    /// Prompt tokens prefilled.
    pub prefilled: Tokens,
    /// Output tokens generated.
    pub generated: Tokens,
    /// First output token time (first ever, kept across evictions).
    pub first_token_ns: Option<Nanos>,
    /// Completion time.
    pub finish_ns: Option<Nanos>,
    /// Times evicted.
    pub evictions: u32,
    /// Step number that last included this request (duplicate detection).
    mark: u64,
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
    /// Shape of the first iteration.
    pub shape: BatchShape,
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
    /// Per-request slots, indexed by id.
    pub slots: Vec<Slot>,
    /// Arrived requests holding no KV, by id (= arrival order).
    pub waiting: BTreeSet<RequestId>,
    /// Resident requests in admission order.
    pub running: Vec<RequestId>,
    /// Footprint of residents.
    pub kv_used: Tokens,
    /// Index of the next undelivered arrival.
    pub next_arrival: usize,
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
    /// A fresh engine state for these requests (sorted by arrival, ids dense).
    pub fn new(config: ModelConfig, step_time: CompiledStepTime, requests: &[Request]) -> Core {
        let capacity = config.memory.capacity();
        let slots = requests
            .iter()
            .map(|r| Slot {
                request: r.clone(),
                phase: SlotPhase::Pending,
                prefilled: Tokens::ZERO,
                generated: Tokens::ZERO,
                first_token_ns: None,
                finish_ns: None,
                evictions: 0,
                mark: u64::MAX,
            })
            .collect();
        Core {
            config,
            step_time,
            capacity,
            now: Nanos::ZERO,
            slots,
            waiting: BTreeSet::new(),
            running: Vec::new(),
            kv_used: Tokens::ZERO,
            next_arrival: 0,
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
        self.slots.get(self.next_arrival).map(|s| s.request.arrival_ns)
    }

    /// Delivers the next arrival if it is due; returns its id.
    pub fn deliver_next_due(&mut self) -> Option<RequestId> {
        let slot = self.slots.get_mut(self.next_arrival)?;
        if slot.request.arrival_ns > self.now {
            return None;
        }
        slot.phase = SlotPhase::Waiting;
        let id = slot.request.id;
        self.waiting.insert(id);
        self.new_arrivals.push(id);
        self.next_arrival += 1;
        Some(id)
    }

    /// Whether every request completed.
    pub fn all_done(&self) -> bool {
        self.completed as usize == self.slots.len()
    }

    /// Idles until `until` (the next arrival).
    pub fn idle_until(&mut self, until: Nanos) {
        assert!(until > self.now, "idle must move time forward");
        self.now = until;
    }

    fn slot(&self, id: RequestId) -> Result<&Slot, Violation> {
        self.slots.get(id.index()).ok_or(Violation::UnknownRequest { id })
    }

    /// Evicts a resident request (validated).
    pub fn evict(&mut self, id: RequestId) -> Result<(), Violation> {
        let slot = self.slot(id)?;
        if !matches!(slot.phase, SlotPhase::Resident { .. }) {
            // As in the spec: any non-resident request, pending ones included.
            return Err(Violation::NotResident { id });
        }
        let latest = *self.running.last().expect("a resident request is running");
        if self.config.eviction == EvictionRule::Lifo && latest != id {
            return Err(Violation::EvictionOrder { id, expected: latest });
        }
        let held = slot.prefilled + slot.generated;
        self.kv_used -= self.config.memory.footprint(held);
        if latest == id {
            self.running.pop();
        } else {
            self.running.retain(|&r| r != id);
        }
        let slot = &mut self.slots[id.index()];
        slot.phase = SlotPhase::Waiting;
        slot.prefilled = Tokens::ZERO;
        slot.generated = Tokens::ZERO;
        slot.evictions += 1;
        self.waiting.insert(id);
        self.evictions += 1;
        Ok(())
    }

    /// Validates one item; returns (held before, held after, whether it is a decode).
    fn check_item(
        &self,
        item: &BatchItem,
        shape: &mut BatchShape,
    ) -> Result<(Tokens, Tokens), Violation> {
        let id = item.id();
        let slot = self.slot(id)?;
        if slot.mark == self.steps {
            return Err(Violation::DuplicateInBatch { id });
        }
        let prompt = slot.request.prompt_tokens;
        let held = slot.prefilled + slot.generated;
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

    /// Validates `items` and returns the shape of their first iteration and the footprint
    /// after `repeat` iterations. Marks the items (duplicate detection).
    fn validate(
        &mut self,
        items: &[BatchItem],
        repeat: u64,
    ) -> Result<(BatchShape, Tokens), Violation> {
        if items.is_empty() {
            return Err(Violation::EmptyBatch);
        }
        let mem = &self.config.memory;
        let mut shape = BatchShape::default();
        let mut used = self.kv_used;
        let mut result = Ok(());
        for item in items {
            match self.check_item(item, &mut shape) {
                Ok((before, after)) => {
                    // For repeated (decode-only) batches, the last iteration is the peak.
                    let after = after + Tokens(repeat - 1);
                    used = used - mem.footprint(before) + mem.footprint(after);
                    self.slots[item.id().index()].mark = self.steps;
                }
                Err(v) => {
                    result = Err(v);
                    break;
                }
            }
        }
        // Unmark so that a rejected batch leaves no trace.
        for item in items {
            if let Some(s) = self.slots.get_mut(item.id().index()) {
                s.mark = u64::MAX;
            }
        }
        result?;
        if used > self.capacity {
            return Err(Violation::MemoryExceeded { used, capacity: self.capacity });
        }
        Ok((shape, used))
    }

    /// How many iterations of a decode-only batch to run: at most `limit`, stopping at the
    /// first completion and at the first iteration that ends at or after the next arrival.
    fn stretch_len(&self, items: &[BatchItem], shape: &BatchShape, limit: u64) -> u64 {
        let mut k = limit;
        for item in items {
            let s = &self.slots[item.id().index()];
            k = k.min((s.request.output_tokens - s.generated).get());
        }
        if let Some(arrival) = self.next_arrival_ns() {
            let ends_by = |j: u64| {
                self.now
                    + self.step_time.decode_stretch_ns(
                        shape.decode_requests,
                        shape.attended_kv_tokens,
                        j,
                    )
            };
            if ends_by(k) >= arrival {
                let (mut lo, mut hi) = (1u64, k);
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

    /// Runs `items`, repeated up to `limit` times when every item is a decode.
    pub fn step(&mut self, items: &[BatchItem], limit: u64) -> Result<StepDone, Violation> {
        let decode_only = items.iter().all(|i| matches!(i, BatchItem::Decode { .. }));
        let (shape, kv_after_one) = self.validate(items, 1)?;
        let repeat =
            if decode_only && limit > 1 { self.stretch_len(items, &shape, limit) } else { 1 };
        // A stretch is validated again at its last (peak) iteration; one iteration already was.
        let kv_peak = if repeat > 1 { self.validate(items, repeat)?.1 } else { kv_after_one };
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
        let first_end_ns = start_ns + self.step_time.duration_ns(&shape);
        self.now += duration_ns;
        self.steps += repeat;
        self.kv_used = kv_peak;
        let mut completed = Vec::new();
        for item in items {
            self.advance(item, repeat, first_end_ns, &mut completed);
        }
        if !completed.is_empty() {
            let slots = &self.slots;
            self.running.retain(|id| slots[id.index()].phase != SlotPhase::Done);
        }
        Ok(StepDone { start_ns, duration_ns, repeat, kv_peak, completed, shape })
    }

    fn advance(
        &mut self,
        item: &BatchItem,
        repeat: u64,
        first_end_ns: Nanos,
        completed: &mut Vec<RequestId>,
    ) {
        let now = self.now;
        let first_token = self.config.first_token;
        let id = item.id();
        let slot = &mut self.slots[id.index()];
        match *item {
            BatchItem::Prefill { tokens, .. } => {
                if slot.phase == SlotPhase::Waiting {
                    slot.phase = SlotPhase::Resident { admitted_seq: self.admission_counter };
                    self.admission_counter += 1;
                    self.admissions += 1;
                    self.waiting.remove(&id);
                    self.running.push(id);
                }
                slot.prefilled += tokens;
                if slot.prefilled == slot.request.prompt_tokens
                    && first_token == FirstToken::WithPrefill
                {
                    slot.generated = Tokens(1);
                }
            }
            BatchItem::Decode { .. } => slot.generated += Tokens(repeat),
        }
        if slot.generated > Tokens::ZERO && slot.first_token_ns.is_none() {
            // A request with no token before this batch gets its first in the first iteration.
            slot.first_token_ns = Some(first_end_ns);
        }
        if slot.generated == slot.request.output_tokens {
            slot.phase = SlotPhase::Done;
            slot.finish_ns = Some(now);
            let held = slot.prefilled + slot.generated;
            self.kv_used -= self.config.memory.footprint(held);
            self.completed += 1;
            completed.push(id);
            self.new_completions.push(Revealed {
                id,
                output_tokens: slot.request.output_tokens,
                finish_ns: now,
            });
        }
    }
}
