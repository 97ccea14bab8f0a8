//! The decision loop every adapter of an outside scheduler shares: the stdio one
//! ([`super::external::External`]) and the in-process Python one (the `kvsched` Python
//! package). Both number decisions, count the iterations run since the previous one, time the
//! exchange, and *latch* the first fault: once an exchange fails (crash, timeout, garbage, an
//! exception), the fault is recorded with the time it happened and every later decision
//! returns a [`poisoned_plan`] without asking the scheduler again, which the engine rejects,
//! ending the run without any engine change. The harness reads the recorded fault through
//! [`super::Runnable::take_fault`] before it looks at the engine's error.

use super::verdict::Verdict;
use crate::protocol::wire::{DecideCtx, Views};
use crate::sim::{Plan, View};
use kvsched_spec::{BatchItem, RequestId};
use std::time::{Duration, Instant};

/// The reserved id of a poisoned plan.
pub const POISON_ID: u32 = u32::MAX;

/// A plan the engine always rejects (`unknown_request` of [`POISON_ID`]): ends a run.
pub fn poisoned_plan() -> Plan {
    Plan { batch: vec![BatchItem::Decode { id: RequestId(POISON_ID) }], ..Plan::default() }
}

/// An adapter's decision bookkeeping: the latched fault, the decision number, the steps seen,
/// and the decisions answered and time spent exchanging.
#[derive(Debug, Default)]
pub struct Latch {
    fault: Option<Verdict>,
    seq: u64,
    steps_at_last: u64,
    decisions: u64,
    wire: Duration,
}

/// An adapter that exchanges one decision with its scheduler.
pub trait Exchange {
    /// The adapter's bookkeeping.
    fn latch(&mut self) -> &mut Latch;
    /// One exchange: builds the `decide` message (numbered by [`Latch::next`]), hands it to
    /// the scheduler and reads its plan back; `Err` is the scheduler's fault.
    fn exchange(&mut self, view: &View<'_>) -> Result<Plan, Verdict>;
}

impl Latch {
    /// Numbers the next decision and counts the iterations run since the previous one: the
    /// context of the `decide` message for `view`.
    pub fn next(&mut self, view: &View<'_>, views: Views) -> DecideCtx {
        self.seq += 1;
        let ran = view.steps_total() - self.steps_at_last;
        self.steps_at_last = view.steps_total();
        DecideCtx { seq: self.seq, ran, views }
    }

    /// The number of the last decision asked (0 before the first).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Whether a fault is latched (and not yet taken).
    pub fn faulted(&self) -> bool {
        self.fault.is_some()
    }

    /// The latched fault, taken: a second call returns `None`.
    pub fn take_fault(&mut self) -> Option<Verdict> {
        self.fault.take()
    }

    /// Decisions answered.
    pub fn decisions(&self) -> u64 {
        self.decisions
    }

    /// Wall time spent in exchanges.
    pub fn wire_time(&self) -> Duration {
        self.wire
    }
}

/// One decision through `adapter`: a poisoned plan once a fault is latched; otherwise the
/// exchange, timed, and its plan, or its fault latched (at the view's time) and a poisoned
/// plan.
pub fn decide(adapter: &mut impl Exchange, view: &View<'_>) -> Plan {
    if adapter.latch().fault.is_some() {
        return poisoned_plan();
    }
    let t0 = Instant::now();
    let result = adapter.exchange(view);
    let latch = adapter.latch();
    latch.wire += t0.elapsed();
    match result {
        Ok(plan) => {
            latch.decisions += 1;
            plan
        }
        Err(v) => {
            latch.fault = Some(v.at(view.now_ns().get()));
            poisoned_plan()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conform::battery::scenario;
    use crate::conform::verdict::VerdictCode;
    use crate::sim::{simulate, Scheduler, SimOptions};
    use kvsched_spec::{Information, Instance};

    /// Admits the oldest waiting request whole, else decodes every resident; its exchange
    /// fails at decision `fail_at` (never when 0).
    struct Flaky {
        latch: Latch,
        fail_at: u64,
        asked: u64,
        ran: Vec<u64>,
    }

    impl Exchange for Flaky {
        fn latch(&mut self) -> &mut Latch {
            &mut self.latch
        }
        fn exchange(&mut self, view: &View<'_>) -> Result<Plan, Verdict> {
            let ctx = self.latch.next(view, Views::Full);
            self.asked += 1;
            self.ran.push(ctx.ran);
            if ctx.seq == self.fail_at {
                return Err(Verdict::new(VerdictCode::Crash, "boom"));
            }
            let batch = match view.waiting().next() {
                Some(r) => vec![BatchItem::Prefill { id: r.id(), tokens: r.prompt_tokens() }],
                None => view.running().map(|r| BatchItem::Decode { id: r.id() }).collect(),
            };
            Ok(Plan { batch, ..Plan::default() })
        }
    }

    impl Scheduler for Flaky {
        fn name(&self) -> String {
            "flaky".into()
        }
        fn information(&self) -> Information {
            Information::Hidden
        }
        fn decide(&mut self, view: &View<'_>) -> Plan {
            decide(self, view)
        }
    }

    fn flaky(fail_at: u64) -> (Flaky, Instance) {
        let s = Flaky { latch: Latch::default(), fail_at, asked: 0, ran: vec![] };
        (s, scenario("light", 12, 3).expect("a battery scenario").instance)
    }

    #[test]
    fn a_fault_is_latched_and_the_scheduler_never_asked_again() {
        let (mut s, inst) = flaky(4);
        let r = simulate(&inst, &mut s, SimOptions::default());
        assert!(r.is_err(), "the poisoned plan ends the run");
        assert_eq!(s.asked, 4, "no exchange after the fault");
        assert_eq!((s.latch.decisions(), s.latch.seq()), (3, 4));
        assert!(s.latch.faulted());
        // Still latched: another decision is poisoned without an exchange.
        let again = simulate(&inst, &mut s, SimOptions::default());
        assert!(again.is_err());
        assert_eq!(s.asked, 4);
        let v = s.latch.take_fault().expect("latched");
        assert_eq!(v.code, VerdictCode::Crash);
        assert!(s.latch.take_fault().is_none(), "taken once");
    }

    #[test]
    fn a_healthy_adapter_answers_every_decision_and_counts_the_steps_run() {
        let (mut s, inst) = flaky(0);
        let out = simulate(&inst, &mut s, SimOptions::default()).expect("runs");
        assert_eq!(out.completed as usize, inst.requests.len());
        assert!(!s.latch.faulted());
        assert_eq!(s.latch.decisions(), s.asked);
        // One iteration per plan: `ran` is 1 after a batch, 0 at the start and after idling.
        assert_eq!(s.ran[0], 0, "nothing ran before the first decision");
        assert!(s.ran.iter().all(|&r| r <= 1), "{:?}", s.ran);
        assert!(s.ran.iter().filter(|&&r| r == 1).count() > 12, "{:?}", s.ran);
    }
}
