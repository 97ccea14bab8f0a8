//! An engine state driven by events that another engine reports, instead of by running plans:
//! what the client side of the wire protocol (`protocol::Replica`) rebuilds from
//! `decide` messages, so that any [`Scheduler`](super::Scheduler) can read a [`View`] of it.
//!
//! A decision point's events come between [`Follower::begin`] and [`Follower::end`]: arrivals,
//! a previous plan that ran some iterations ([`Follower::apply_plan`]), completions, or whole
//! waiting and running lists ([`Follower::set_queues`]). Nothing is validated against the rules
//! (the reporting engine did that) and no time is computed (it is reported); what is checked is
//! only what the state needs to stay consistent: ids that exist, arrivals in id order.
//! Between `begin` and `end` the decode group is dissolved, so that progress can be set
//! directly; `end` rebuilds it.

use super::core::{Core, Slot, SlotPhase};
use super::{Plan, View};
use kvsched_spec::{BatchItem, ModelConfig, Nanos, Request, RequestId, Revealed, Tokens};

/// A resident request, as a full view reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportedResident {
    /// Id.
    pub id: RequestId,
    /// Prompt tokens prefilled.
    pub prefilled: Tokens,
    /// Output tokens generated.
    pub generated: Tokens,
    /// Output tokens kept from before an eviction (`keep_generated` preemption).
    pub kept: Tokens,
    /// Admission sequence number.
    pub admitted_seq: u64,
}

/// The engine state, followed from reported events.
pub struct Follower {
    core: Core,
    /// The next admission sequence number of [`Follower::apply_plan`]'s own admissions.
    admission: u64,
}

/// A request that stands for "more arrivals to come" (`arrivals_done` false); never shown.
fn placeholder() -> Request {
    Request {
        id: RequestId(0),
        arrival_ns: Nanos::ZERO,
        prompt_tokens: Tokens(1),
        output_tokens: Tokens(1),
        predicted_output_tokens: None,
        class: 0,
    }
}

impl Follower {
    /// A state with no request yet, under `config` (whose information set is the one the
    /// policy's view is filtered by). An error says what is wrong with the configuration.
    pub fn new(config: ModelConfig) -> Result<Follower, String> {
        let step_time = config.step_time.compile()?;
        config.memory.validate()?;
        Ok(Follower { core: Core::new(config, step_time), admission: 0 })
    }

    fn slot_mut(&mut self, id: RequestId) -> Result<&mut Slot, String> {
        self.core.slots.get_mut(id).ok_or_else(|| format!("unknown request {id}"))
    }

    /// Starts a decision point: the previous point's arrivals and completions are forgotten.
    pub fn begin(&mut self) {
        self.core.ungroup_all();
        self.core.new_arrivals.clear();
        self.core.new_completions.clear();
    }

    /// `request` arrived (it must have the next id); it waits. Output lengths the policy may
    /// not see may be anything: the view never shows them.
    pub fn arrive(&mut self, request: Request) -> Result<(), String> {
        let next = self.core.slots.next_id();
        if request.id != next {
            return Err(format!("arrival of {} out of order (expected {next})", request.id));
        }
        let id = request.id;
        let mut slot = Slot::new(request);
        slot.phase = SlotPhase::Waiting;
        self.core.slots.push(slot);
        self.core.waiting.insert(id);
        self.core.new_arrivals.push(id);
        Ok(())
    }

    /// `plan` ran: its evictions (each evicted request back to waiting with no progress),
    /// then, when `ran > 0`, `ran` iterations of its explicit batch: a prefill chunk once (a
    /// waiting request is admitted, in batch order), a decode `ran` times.
    pub fn apply_plan(&mut self, plan: &Plan, ran: u64) -> Result<(), String> {
        for &id in &plan.evict {
            self.evict(id)?;
        }
        if ran == 0 {
            return Ok(());
        }
        let first_token = self.core.config.first_token;
        for item in &plan.batch {
            let id = item.id();
            let admission = self.admission;
            let slot = self.slot_mut(id)?;
            let mut admitted = false;
            match *item {
                BatchItem::Prefill { tokens, .. } => {
                    if slot.phase == SlotPhase::Waiting {
                        slot.phase = SlotPhase::Resident { admitted_seq: admission };
                        admitted = true;
                    }
                    slot.prefilled += tokens;
                    // A prefilling request has no output yet in this residency (evictions
                    // reset it; under `keep_generated` its kept output is part of its target).
                    let completes = slot.prefilled == slot.prefill_target();
                    slot.generated_base = first_token.output_of_prefill(completes);
                }
                BatchItem::Decode { .. } => slot.generated_base += Tokens(ran),
            }
            if admitted {
                self.core.running.insert(admission, id);
                self.admission += 1;
                self.core.waiting.remove(&id);
            }
        }
        Ok(())
    }

    fn evict(&mut self, id: RequestId) -> Result<(), String> {
        let keep = self.core.config.preemption == kvsched_spec::Preemption::KeepGenerated;
        let slot = self.slot_mut(id)?;
        if keep {
            slot.kept += slot.generated_base;
        }
        slot.phase = SlotPhase::Waiting;
        slot.prefilled = Tokens::ZERO;
        slot.generated_base = Tokens::ZERO;
        self.core.running.retain(|_, r| *r != id);
        self.core.waiting.insert(id);
        self.core.evictions += 1;
        Ok(())
    }

    /// A request completed, with its true output length revealed.
    pub fn complete(&mut self, done: Revealed) -> Result<(), String> {
        let slot = self.slot_mut(done.id)?;
        slot.phase = SlotPhase::Done;
        slot.request.output_tokens = done.output_tokens;
        self.core.running.retain(|_, r| *r != done.id);
        self.core.completed += 1;
        self.core.new_completions.push(done);
        Ok(())
    }

    /// The waiting and running lists as reported in full: every request listed waits, or is
    /// resident with the progress given; a request resident before and not listed waits.
    pub fn set_queues(
        &mut self,
        waiting: &[(RequestId, Tokens)],
        running: &[ReportedResident],
    ) -> Result<(), String> {
        for (_, id) in std::mem::take(&mut self.core.running) {
            self.slot_mut(id)?.phase = SlotPhase::Waiting;
        }
        self.core.waiting.clear();
        for &(id, kept) in waiting {
            let slot = self.slot_mut(id)?;
            slot.phase = SlotPhase::Waiting;
            slot.kept = kept;
            slot.prefilled = Tokens::ZERO;
            slot.generated_base = Tokens::ZERO;
            self.core.waiting.insert(id);
        }
        for r in running {
            let slot = self.slot_mut(r.id)?;
            slot.phase = SlotPhase::Resident { admitted_seq: r.admitted_seq };
            slot.kept = r.kept;
            slot.prefilled = r.prefilled;
            slot.generated_base = r.generated;
            self.core.running.insert(r.admitted_seq, r.id);
        }
        Ok(())
    }

    /// Ends a decision point's events with the reported clock, footprint (authoritative),
    /// iteration count and whether every request of the run has arrived.
    pub fn end(&mut self, now: Nanos, kv_used: Tokens, steps: u64, arrivals_done: bool) {
        self.core.upcoming = (!arrivals_done).then(placeholder);
        self.core.now = now;
        self.core.kv_used = kv_used;
        self.core.steps = steps;
        self.core.regroup();
    }

    /// What a policy sees now.
    pub fn view(&self) -> View<'_> {
        View { core: &self.core }
    }
}
