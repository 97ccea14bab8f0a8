//! The discrete-event simulator.
//!
//! [`simulate`] runs a [`Scheduler`] over an [`Instance`]. The loop is:
//! deliver every arrival that is due; ask the policy for a [`Plan`]; validate and
//! apply its evictions; then run its batch (one iteration, or a fast-forwarded stretch of
//! identical decode-only iterations, see [`Stepping`]), or idle until the next arrival when the
//! batch is empty. Events are ordered by (time, sequence): arrivals at the same instant are
//! delivered in id order, before the decision at that instant.
//!
//! An invalid plan stops the run with a [`SimError`] carrying the spec's `Violation` and the
//! outcome so far; the engine never repairs a plan. With [`Check::On`] every action is replayed
//! through `kvsched_spec::apply` as well, and any disagreement is a [`SimErrorKind::Divergence`].

pub(crate) mod core;
mod decode_group;
mod follower;
pub mod metrics;
mod mirror;
pub mod policy;
mod trace;
mod view;

pub use follower::{Follower, ReportedResident};
pub use metrics::{Outcome, Records, RequestRecord, Summary, TimelinePoint, WindowStats};

use core::Core;
use kvsched_spec::{Instance, ModelConfig, Nanos, Request, Violation};
use mirror::Mirror;
pub use policy::{util, Plan, Repeat, ResidentView, Scheduler, View};
use std::io::Write;

/// Whether the engine replays every action through the spec (pair assertions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Check {
    /// Engine rules only (fast).
    #[default]
    Off,
    /// Also replay through `kvsched_spec::apply` and compare.
    On,
}

/// Whether identical decode-only iterations are fast-forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Stepping {
    /// Honour [`Repeat::UpTo`]: jump over a stretch in O(batch) time.
    #[default]
    FastForward,
    /// Ask the policy before every iteration (reference mode).
    EveryStep,
}

/// Options of a run.
#[derive(Default)]
pub struct SimOptions {
    /// Pair assertions against the spec.
    pub check: Check,
    /// Fast-forward or not.
    pub stepping: Stepping,
    /// Stop (with an error) after this many iterations.
    pub max_steps: Option<u64>,
    /// Stop (with [`SimErrorKind::EvictionLimit`]) at the first decision point after the run
    /// has evicted more than this many times; `Some(0)` stops at the first eviction. The run
    /// up to there is the unlimited run's prefix, so "does this run ever evict" is answered
    /// without running a thrashing policy to its end.
    pub max_evictions: Option<u64>,
    /// Record the memory and queue timeline at every decision point.
    pub timeline: bool,
    /// Write a JSON-lines trace here (see `spec/TRACE.md`).
    pub trace: Option<Box<dyn Write>>,
    /// Seed, recorded in the trace header.
    pub seed: Option<u64>,
}

/// Why a run stopped early.
#[derive(Clone, Debug, PartialEq)]
pub enum SimErrorKind {
    /// The policy's plan broke a rule of the spec.
    Violation {
        /// The rule.
        violation: Violation,
        /// When.
        at_ns: Nanos,
    },
    /// A plan asked to repeat a batch that contains a prefill.
    RepeatWithPrefill,
    /// A plan's hold list ([`Plan::hold`]) is invalid.
    BadHold {
        /// The held request at fault.
        id: kvsched_spec::RequestId,
        /// Why: `"hold without decode_all"`, `"not a decode-group member"` (not resident, or
        /// its prompt not complete, after the plan's evictions), `"held twice"`, or `"held and
        /// listed in the batch"`.
        why: &'static str,
    },
    /// Nothing runs, nothing will arrive, and requests remain.
    Stalled {
        /// Waiting requests.
        waiting: usize,
        /// Resident requests.
        resident: usize,
    },
    /// The engine and the spec disagree (an engine bug).
    Divergence(String),
    /// The iteration limit was reached.
    StepLimit(u64),
    /// The eviction limit ([`SimOptions::max_evictions`]) was passed.
    EvictionLimit(u64),
    /// The watchdog fired: no request completed for `steps` iterations, more than the bound
    /// (`WATCHDOG_FACTOR` times the tokens of every arrived, unfinished request, plus
    /// `WATCHDOG_SLACK`) that a run without wasted work can take (a livelock: evictions undo
    /// the work, as with a request that can never fit).
    NoProgress {
        /// Iterations since the last completion.
        steps: u64,
        /// The bound that was passed.
        bound: u64,
        /// Waiting requests.
        waiting: usize,
        /// Resident requests.
        resident: usize,
        /// Evictions in the whole run.
        evictions: u64,
    },
    /// Writing the trace failed.
    Trace(String),
    /// The policy reads predictions (`Information::Predicted`) and this request has none:
    /// the run stops rather than let the policy guess (it never falls back to a worst case).
    MissingPrediction {
        /// The request.
        id: kvsched_spec::RequestId,
    },
}

/// A run that stopped early, with everything computed until then.
#[derive(Clone, Debug)]
pub struct SimError {
    /// What happened.
    pub kind: SimErrorKind,
    /// The outcome so far.
    pub partial: Box<Outcome>,
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            SimErrorKind::Violation { violation, at_ns } => {
                write!(f, "invalid decision at t={at_ns}: {violation}")
            }
            SimErrorKind::RepeatWithPrefill => write!(f, "Repeat::UpTo on a batch with a prefill"),
            SimErrorKind::BadHold { id, why } => {
                write!(f, "invalid hold list: request {} {why}", id.0)
            }
            SimErrorKind::Stalled { waiting, resident } => write!(
                f,
                "stalled: empty batch, no future arrival ({waiting} waiting, {resident} resident)"
            ),
            SimErrorKind::Divergence(m) => write!(f, "engine and spec disagree: {m}"),
            SimErrorKind::StepLimit(n) => write!(f, "iteration limit {n} reached"),
            SimErrorKind::EvictionLimit(n) => write!(f, "more than {n} evictions"),
            SimErrorKind::NoProgress { steps, bound, waiting, resident, evictions } => write!(
                f,
                "no progress: no request completed in {steps} iterations (watchdog bound \
                 {bound}; {waiting} waiting, {resident} resident, {evictions} evictions so far)"
            ),
            SimErrorKind::Trace(m) => write!(f, "trace: {m}"),
            SimErrorKind::MissingPrediction { id } => write!(
                f,
                "request {id} has no predicted output length, and the policy reads predictions: \
                 give them (simulate --prediction-noise EPS; 0 = exact, the default for such a \
                 policy; a trace needs its predictions filled)"
            ),
        }
    }
}

impl std::error::Error for SimError {}

struct Run<'a> {
    core: Core,
    source: &'a mut dyn Iterator<Item = Request>,
    records: Records,
    mirror: Option<Mirror<'a>>,
    trace: Option<trace::Writer>,
    timeline: Option<Vec<TimelinePoint>>,
    kv_token_ns: u128,
    watchdog: Watchdog,
}

/// Iterations allowed per outstanding token before the watchdog fires (evictions may redo
/// work; a run without evictions completes a request within one iteration per token).
pub const WATCHDOG_FACTOR: u64 = 16;
/// Iterations always allowed between completions.
pub const WATCHDOG_SLACK: u64 = 100_000;

/// Progress watch: the tokens (prompt + output) of arrived, unfinished requests, and the
/// iteration and completion count at the last completion.
#[derive(Default)]
struct Watchdog {
    outstanding_tokens: u64,
    steps_at_completion: u64,
    completed: u64,
}

/// Runs `scheduler` over `instance`. The instance's information set is replaced by the one the
/// scheduler asks for.
pub fn simulate(
    instance: &Instance,
    scheduler: &mut dyn Scheduler,
    options: SimOptions,
) -> Result<Outcome, SimError> {
    let mut config = instance.config.clone();
    config.information = scheduler.information();
    let mirror_instance = match options.check {
        Check::On => Some(Instance { config: config.clone(), requests: instance.requests.clone() }),
        Check::Off => None,
    };
    let mut source = instance.requests.iter().cloned();
    let records = Records::All(Vec::with_capacity(instance.requests.len()));
    let total = instance.requests.len() as u64;
    run(config, total, &mut source, mirror_instance.as_ref(), scheduler, options, records)
}

/// Runs `scheduler` over `total` requests pulled from `source` (sorted by arrival, dense ids
/// from 0) as they arrive, keeping only the requests in flight and the statistics of the
/// centred `window` of requests by arrival ([`WindowStats`]): memory follows the requests in
/// flight, not the run's length. The outcome's `requests` is empty; its summary has the same
/// fields as [`simulate`]'s, with percentiles within 0.1 %. `options.check` must be off.
pub fn simulate_stream(
    config: &ModelConfig,
    total: u64,
    source: &mut dyn Iterator<Item = Request>,
    scheduler: &mut dyn Scheduler,
    options: SimOptions,
    window: f64,
) -> Result<Outcome, SimError> {
    assert_eq!(options.check, Check::Off, "a streamed run has no spec mirror");
    let mut config = config.clone();
    config.information = scheduler.information();
    let records = Records::Window(Box::new(WindowStats::new(total, window)));
    run(config, total, source, None, scheduler, options, records)
}

fn run<'a>(
    config: ModelConfig,
    total: u64,
    source: &'a mut dyn Iterator<Item = Request>,
    mirror_instance: Option<&'a Instance>,
    scheduler: &mut dyn Scheduler,
    options: SimOptions,
    records: Records,
) -> Result<Outcome, SimError> {
    let step_time = config.step_time.compile().expect("validated instance");
    let mut core = Core::new(config, step_time);
    core.total = Some(total);
    core.upcoming = source.next();
    let mut run = Run {
        core,
        source,
        records,
        mirror: mirror_instance.map(Mirror::new),
        trace: options.trace.map(trace::Writer::new),
        timeline: options.timeline.then(Vec::new),
        kv_token_ns: 0,
        watchdog: Watchdog::default(),
    };
    let name = scheduler.name();
    if let Some(t) = run.trace.as_mut() {
        t.header(&run.core.config, &name, options.seed, total as usize);
    }
    let limits = Limits { steps: options.max_steps, evictions: options.max_evictions };
    let result = run.run_loop(scheduler, &options.stepping, limits);
    let outcome = run.finish(name);
    match result {
        Ok(()) => Ok(outcome),
        Err(kind) => Err(SimError { kind, partial: Box::new(outcome) }),
    }
}

/// The stopping limits of [`SimOptions`].
#[derive(Clone, Copy)]
struct Limits {
    steps: Option<u64>,
    evictions: Option<u64>,
}

impl Run<'_> {
    fn run_loop(
        &mut self,
        scheduler: &mut dyn Scheduler,
        stepping: &Stepping,
        limits: Limits,
    ) -> Result<(), SimErrorKind> {
        loop {
            self.deliver_arrivals()?;
            if self.core.all_done() {
                return Ok(());
            }
            if let Some(limit) = limits.steps {
                if self.core.steps >= limit {
                    return Err(SimErrorKind::StepLimit(limit));
                }
            }
            if let Some(limit) = limits.evictions {
                if self.core.evictions > limit {
                    return Err(SimErrorKind::EvictionLimit(limit));
                }
            }
            self.sample_timeline();
            let plan = scheduler.decide(&View { core: &self.core });
            self.core.new_completions.clear();
            self.core.new_arrivals.clear();
            self.apply_plan(plan, stepping)?;
            self.watch_progress()?;
            let records = &mut self.records;
            self.core.retire(|slot| records.push(RequestRecord::of(&slot)));
        }
    }

    /// The watchdog: a run that completes nothing for longer than any run without wasted work
    /// could stops with [`SimErrorKind::NoProgress`] instead of spinning.
    fn watch_progress(&mut self) -> Result<(), SimErrorKind> {
        let w = &mut self.watchdog;
        if self.core.completed != w.completed {
            for c in &self.core.new_completions {
                let peak = self.core.slots[c.id].request.peak_tokens().get();
                w.outstanding_tokens = w.outstanding_tokens.saturating_sub(peak);
            }
            w.completed = self.core.completed;
            w.steps_at_completion = self.core.steps;
            return Ok(());
        }
        let steps = self.core.steps - w.steps_at_completion;
        let bound =
            w.outstanding_tokens.saturating_mul(WATCHDOG_FACTOR).saturating_add(WATCHDOG_SLACK);
        if steps > bound {
            return Err(SimErrorKind::NoProgress {
                steps,
                bound,
                waiting: self.core.waiting.len(),
                resident: self.core.running.len(),
                evictions: self.core.evictions,
            });
        }
        Ok(())
    }

    fn deliver_arrivals(&mut self) -> Result<(), SimErrorKind> {
        while let Some(id) = self.core.deliver_next_due(&mut *self.source) {
            if self.core.config.information == kvsched_spec::Information::Predicted
                && self.core.slots[id].request.predicted_output_tokens.is_none()
            {
                return Err(SimErrorKind::MissingPrediction { id });
            }
            let peak = self.core.slots[id].request.peak_tokens().get();
            self.watchdog.outstanding_tokens =
                self.watchdog.outstanding_tokens.saturating_add(peak);
            if let Some(m) = self.mirror.as_mut() {
                m.arrive(id)?;
            }
            if let Some(t) = self.trace.as_mut() {
                t.arrive(self.core.now, &self.core.slots[id].request);
            }
        }
        Ok(())
    }

    fn violation(&self, violation: Violation) -> SimErrorKind {
        SimErrorKind::Violation { violation, at_ns: self.core.now }
    }

    fn apply_plan(&mut self, plan: Plan, stepping: &Stepping) -> Result<(), SimErrorKind> {
        for &id in &plan.evict {
            self.core.evict(id).map_err(|v| self.violation(v))?;
            if let Some(m) = self.mirror.as_mut() {
                m.evict(id, &self.core)?;
            }
            if let Some(t) = self.trace.as_mut() {
                t.evict(self.core.now, id);
            }
        }
        if let Some(&id) = plan.hold.first().filter(|_| !plan.decode_all) {
            return Err(SimErrorKind::BadHold { id, why: "hold without decode_all" });
        }
        if let Some((id, why)) = self.core.hold_error(&plan.hold, &plan.batch) {
            return Err(SimErrorKind::BadHold { id, why });
        }
        // The explicit batch, for the spec mirror and the trace (they see every item).
        let expanded = (self.mirror.is_some() || self.trace.is_some()).then(|| {
            let mut items = if plan.decode_all { self.core.group_items() } else { vec![] };
            if !plan.hold.is_empty() {
                let mut hold = plan.hold.clone();
                hold.sort_unstable();
                items.retain(|i| hold.binary_search(&i.id()).is_err());
            }
            items.extend(plan.batch.iter().copied());
            items
        });
        let nothing_to_decode =
            !plan.decode_all || self.core.decode_ready() == plan.hold.len() as u64;
        if plan.batch.is_empty() && nothing_to_decode {
            return self.idle();
        }
        let limit = match (plan.repeat, stepping) {
            (Repeat::Once, _) | (_, Stepping::EveryStep) => 1,
            (Repeat::UpTo(k), Stepping::FastForward) => k.max(1),
        };
        let has_prefill =
            plan.batch.iter().any(|i| matches!(i, kvsched_spec::BatchItem::Prefill { .. }));
        if has_prefill && matches!(plan.repeat, Repeat::UpTo(k) if k > 1) {
            return Err(SimErrorKind::RepeatWithPrefill);
        }
        let before_kv = self.core.kv_used;
        let done = self
            .core
            .step_holding(&plan.batch, plan.decode_all, &plan.hold, limit)
            .map_err(|v| self.violation(v))?;
        self.kv_token_ns += kv_area(before_kv, done.kv_peak, done.duration_ns);
        let items = expanded.as_deref().unwrap_or(&plan.batch);
        if let Some(m) = self.mirror.as_mut() {
            m.step(items, &done, &self.core)?;
        }
        if let Some(t) = self.trace.as_mut() {
            t.step(&done, items);
        }
        Ok(())
    }

    fn idle(&mut self) -> Result<(), SimErrorKind> {
        let Some(until) = self.core.next_arrival_ns() else {
            return Err(SimErrorKind::Stalled {
                waiting: self.core.waiting.len(),
                resident: self.core.running.len(),
            });
        };
        let from = self.core.now;
        self.kv_token_ns += self.core.kv_used.get() as u128 * (until - from).get() as u128;
        self.core.idle_until(until);
        if let Some(m) = self.mirror.as_mut() {
            m.idle(until)?;
        }
        if let Some(t) = self.trace.as_mut() {
            t.idle(from, until);
        }
        Ok(())
    }

    fn sample_timeline(&mut self) {
        if let Some(tl) = self.timeline.as_mut() {
            tl.push(TimelinePoint {
                t_ns: self.core.now,
                kv_used_tokens: self.core.kv_used,
                waiting: self.core.waiting.len() as u64,
                running: self.core.running.len() as u64,
            });
        }
    }

    fn finish(mut self, scheduler: String) -> Outcome {
        if let Some(t) = self.trace.as_mut() {
            t.end(self.core.now, self.core.completed);
        }
        let trace_error = self.trace.as_mut().and_then(|t| t.finish().err());
        // Whatever is left (all of it done after a complete run): the window, then the
        // requests that never arrived (after an early stop).
        let mut records = std::mem::replace(&mut self.records, Records::All(Vec::new()));
        for slot in self.core.slots.drain() {
            records.push(RequestRecord::of(&slot));
        }
        for r in self.core.upcoming.take().into_iter().chain(&mut *self.source) {
            records.push(RequestRecord::of(&core::Slot::new(r)));
        }
        let mut outcome = Outcome::from_core(&self.core, records, scheduler, self.kv_token_ns);
        outcome.timeline = self.timeline.take().unwrap_or_default();
        outcome.trace_error = trace_error;
        outcome
    }
}

/// Token-nanoseconds of KV held over an iteration (trapezoid between start and peak).
fn kv_area(start: kvsched_spec::Tokens, end: kvsched_spec::Tokens, dur: Nanos) -> u128 {
    (start.get() as u128 + end.get() as u128) * dur.get() as u128 / 2
}
