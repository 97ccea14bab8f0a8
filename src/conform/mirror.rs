//! The client side of the protocol in Rust: rebuilds, from `decide` messages, the engine state
//! a built-in scheduler's [`View`] reads, so that any [`Scheduler`] can be served over
//! stdin/stdout (`kvsched serve`).
//!
//! With full views the waiting and running lists are overwritten from every message. With delta
//! views the mirror applies its own previous plan: evictions, then `ran` iterations of the batch
//! (a prefill chunk once, a decode `ran` times), then the completions the harness reports.
//! Under `keep_generated` preemption an evicted request keeps its output (`Slot::kept`), as in
//! the engine. Output
//! lengths the information set hides are stored as a placeholder the view never shows.

use super::protocol::{Decide, Hello, Req, Res, Views};
use crate::sim::core::{Core, Slot, SlotPhase};
use crate::sim::{Plan, Scheduler, View};
use kvsched_spec::{
    BatchItem, FirstToken, Information, Nanos, Preemption, Request, RequestId, Revealed, Tokens,
};

/// A mirrored engine state.
pub struct Mirror {
    core: Core,
    template: Slot,
    views: Views,
    last: Plan,
    admission: u64,
}

fn request_of(q: &Req) -> Request {
    Request {
        id: RequestId(q.id),
        arrival_ns: Nanos(q.arrival),
        prompt_tokens: Tokens(q.prompt),
        // Hidden lengths: a placeholder the view never shows.
        output_tokens: Tokens(q.known.unwrap_or(u64::MAX / 4)),
        predicted_output_tokens: q.predicted.map(Tokens),
        class: q.class,
    }
}

impl Mirror {
    /// A mirror for the session `hello` opened, granting `information`.
    pub fn new(hello: &Hello, information: Information, views: Views) -> Result<Mirror, String> {
        let mut config = hello.config.clone();
        config.information = information;
        let step_time = config.step_time.compile()?;
        config.memory.validate()?;
        let dummy = Request {
            id: RequestId(0),
            arrival_ns: Nanos::ZERO,
            prompt_tokens: Tokens(1),
            output_tokens: Tokens(1),
            predicted_output_tokens: None,
            class: 0,
        };
        let template = Slot::new(dummy);
        let core = Core::new(config, step_time);
        Ok(Mirror { core, template, views, last: Plan::default(), admission: 0 })
    }

    fn slot_mut(&mut self, id: u32) -> Result<&mut Slot, String> {
        self.core.slots.get_mut(RequestId(id)).ok_or_else(|| format!("unknown request r{id}"))
    }

    fn arrive(&mut self, q: &Req) -> Result<(), String> {
        if RequestId(q.id) != self.core.slots.next_id() {
            return Err(format!(
                "arrival of r{} out of order (expected {})",
                q.id,
                self.core.slots.next_id()
            ));
        }
        let mut slot = self.template.clone();
        slot.request = request_of(q);
        slot.phase = SlotPhase::Waiting;
        self.core.slots.push(slot);
        self.core.waiting.insert(RequestId(q.id));
        self.core.new_arrivals.push(RequestId(q.id));
        Ok(())
    }

    /// Applies the previous plan, `ran` times, for delta views.
    fn apply_last(&mut self, ran: u64) -> Result<(), String> {
        let plan = std::mem::take(&mut self.last);
        let keep = self.core.config.preemption == Preemption::KeepGenerated;
        for id in &plan.evict {
            let slot = self.slot_mut(id.0)?;
            if keep {
                slot.kept += slot.generated_base;
            }
            slot.phase = SlotPhase::Waiting;
            slot.prefilled = Tokens::ZERO;
            slot.generated_base = Tokens::ZERO;
            self.core.running.retain(|_, r| r != id);
            self.core.waiting.insert(*id);
            self.core.evictions += 1;
        }
        if ran == 0 {
            return Ok(());
        }
        let with_prefill = self.core.config.first_token == FirstToken::WithPrefill;
        for item in &plan.batch {
            let id = item.id();
            let admission = self.admission;
            let slot = self.slot_mut(id.0)?;
            let mut admitted = false;
            match *item {
                BatchItem::Prefill { tokens, .. } => {
                    if slot.phase == SlotPhase::Waiting {
                        slot.phase = SlotPhase::Resident { admitted_seq: admission };
                        admitted = true;
                    }
                    slot.prefilled += tokens;
                    if slot.prefilled == slot.prefill_target() && with_prefill {
                        slot.generated_base = Tokens(1);
                    }
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

    fn overwrite(&mut self, waiting: &[Req], running: &[Res]) -> Result<(), String> {
        for (_, id) in std::mem::take(&mut self.core.running) {
            self.slot_mut(id.0)?.phase = SlotPhase::Waiting;
        }
        self.core.waiting.clear();
        for q in waiting {
            let slot = self.slot_mut(q.id)?;
            slot.phase = SlotPhase::Waiting;
            slot.kept = Tokens(q.kept);
            slot.prefilled = Tokens::ZERO;
            slot.generated_base = Tokens::ZERO;
            self.core.waiting.insert(RequestId(q.id));
        }
        for r in running {
            let slot = self.slot_mut(r.id)?;
            slot.phase = SlotPhase::Resident { admitted_seq: r.seq };
            slot.kept = Tokens(r.kept);
            slot.prefilled = Tokens(r.prefilled);
            slot.generated_base = Tokens(r.generated);
            self.core.running.insert(r.seq, RequestId(r.id));
        }
        Ok(())
    }

    /// Updates the state from a `decide` message.
    pub fn update(&mut self, d: &Decide) -> Result<(), String> {
        self.core.ungroup_all();
        self.core.new_arrivals.clear();
        self.core.new_completions.clear();
        if self.views == Views::Delta {
            self.apply_last(d.ran)?;
        }
        for q in &d.arrived {
            self.arrive(q)?;
        }
        for c in &d.completed {
            let slot = self.slot_mut(c.id)?;
            slot.phase = SlotPhase::Done;
            slot.request.output_tokens = Tokens(c.output);
            self.core.running.retain(|_, r| r.0 != c.id);
            self.core.completed += 1;
            self.core.new_completions.push(Revealed {
                id: RequestId(c.id),
                output_tokens: Tokens(c.output),
                finish_ns: Nanos(c.finish),
            });
        }
        if let (Some(w), Some(r)) = (&d.waiting, &d.running) {
            self.overwrite(w, r)?;
        } else if self.views == Views::Full {
            return Err("full views: expected waiting and running".into());
        }
        // `arrivals_done` is read as "no upcoming request": keep a placeholder while more come.
        self.core.upcoming = (!d.arrivals_done).then(|| self.template.request.clone());
        self.core.now = Nanos(d.t);
        self.core.kv_used = Tokens(d.kv_used);
        self.core.steps = d.steps;
        self.core.regroup();
        Ok(())
    }

    /// Asks `sched` for a plan and remembers it (for delta views). The plan is returned
    /// explicit ([`Plan::expanded`]), as the protocol carries it.
    pub fn decide(&mut self, sched: &mut dyn Scheduler) -> Plan {
        let view = View { core: &self.core };
        let plan = sched.decide(&view);
        let plan = Plan { batch: plan.expanded(&view), decode_all: false, ..plan };
        self.last = plan.clone();
        plan
    }
}
