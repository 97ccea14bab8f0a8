//! The client side of the protocol in Rust: rebuilds, from `decide` messages, the engine state
//! a built-in scheduler's [`View`](crate::sim::View) reads, so that any [`Scheduler`] can be
//! served over stdin/stdout (`kvsched serve`). The state is the engine's own, driven by events
//! ([`crate::sim::Follower`]); the replica only translates messages into them.
//!
//! With full views the waiting and running lists are overwritten from every message. With delta
//! views the replica applies its own previous plan: evictions, then `ran` iterations of the batch
//! (a prefill chunk once, a decode `ran` times), then the completions the harness reports. Output
//! lengths the information set hides are stored as a placeholder the view never shows.

use super::wire::{Decide, Hello, Req, Res, Views};
use crate::sim::{Follower, Plan, ReportedResident, Scheduler};
use kvsched_spec::{Information, Nanos, Request, RequestId, Revealed, Tokens};

/// A replica of the engine state, rebuilt from `decide` messages.
pub struct Replica {
    state: Follower,
    views: Views,
    last: Plan,
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

fn resident_of(r: &Res) -> ReportedResident {
    ReportedResident {
        id: RequestId(r.id),
        prefilled: Tokens(r.prefilled),
        generated: Tokens(r.generated),
        kept: Tokens(r.kept),
        admitted_seq: r.seq,
    }
}

impl Replica {
    /// A replica for the session `hello` opened, granting `information`.
    pub fn new(hello: &Hello, information: Information, views: Views) -> Result<Replica, String> {
        let mut config = hello.config.clone();
        config.information = information;
        let state = Follower::new(config)?;
        Ok(Replica { state, views, last: Plan::default() })
    }

    /// Applies the previous plan, `ran` times, for delta views.
    fn apply_last(&mut self, ran: u64) -> Result<(), String> {
        let plan = std::mem::take(&mut self.last);
        self.state.apply_plan(&plan, ran)
    }

    fn overwrite(&mut self, waiting: &[Req], running: &[Res]) -> Result<(), String> {
        let waiting: Vec<(RequestId, Tokens)> =
            waiting.iter().map(|q| (RequestId(q.id), Tokens(q.kept))).collect();
        let running: Vec<ReportedResident> = running.iter().map(resident_of).collect();
        self.state.set_queues(&waiting, &running)
    }

    /// Updates the state from a `decide` message.
    pub fn update(&mut self, d: &Decide) -> Result<(), String> {
        self.state.begin();
        if self.views == Views::Delta {
            self.apply_last(d.ran)?;
        }
        for q in &d.arrived {
            self.state.arrive(request_of(q))?;
        }
        for c in &d.completed {
            self.state.complete(Revealed {
                id: RequestId(c.id),
                output_tokens: Tokens(c.output),
                finish_ns: Nanos(c.finish),
            })?;
        }
        if let (Some(w), Some(r)) = (&d.waiting, &d.running) {
            self.overwrite(w, r)?;
        } else if self.views == Views::Full {
            return Err("full views: expected waiting and running".into());
        }
        self.state.end(Nanos(d.t), Tokens(d.kv_used), d.steps, d.arrivals_done);
        Ok(())
    }

    /// Asks `sched` for a plan and remembers it (for delta views). The plan is returned
    /// explicit ([`Plan::expanded`]), as the protocol carries it.
    pub fn decide(&mut self, sched: &mut dyn Scheduler) -> Plan {
        let view = self.state.view();
        let plan = sched.decide(&view);
        let plan =
            Plan { batch: plan.expanded(&view), decode_all: false, hold: Vec::new(), ..plan };
        self.last = plan.clone();
        plan
    }
}
