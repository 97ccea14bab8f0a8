//! Running one scheduler on one instance and judging the run: engine validation, the
//! independent trace checker (`kvsched_verify::check_trace` over an in-memory trace), and the
//! liveness checks (unfinished requests, starvation while the server idles).
//!
//! Starvation is judged on requests that were *passed over*: a request that arrived later was
//! admitted while they waited (evicted requests are not judged, since policies differ in where
//! an evicted request re-enters the queue). Such a request fails the check when it was passed
//! over more than `starvation_passes` times while it fit, and it waited in total more than
//! `starvation_bound_ns` while it fit (capacity sitting idle). "Fit" means: above the watermark,
//! in the memory the plan left free, and for its whole life beside the residents, with true
//! lengths and every request advancing one token per iteration (the harness knows the lengths
//! even when the policy does not). A request held back because it would overflow memory later
//! is therefore not starved; one held back while it could have run to completion is. Waiting
//! time accrues only to the head of the queue (the oldest waiting request, evicted ones in
//! their place): a request behind an older one is blocked by arrival order, as under FCFS.
//! FCFS policies never pass a request over; policies that hold work back in arrival order
//! (WAIT's accumulation) are not flagged.

use super::verdict::{Verdict, VerdictCode};
use super::{Candidate, ConformConfig, Finish, Runnable};
use crate::protocol::wire::information_rank;
use crate::sim::{simulate, Check, Outcome, SimErrorKind, SimOptions, Stepping};
use crate::sim::{Plan, Scheduler, View};
use kvsched_spec::{BatchItem, Information, Instance, Nanos, RequestId, Tokens};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// What one run produced.
pub struct RunResult {
    /// The verdict.
    pub verdict: Verdict,
    /// The outcome (complete when the run passed, partial otherwise).
    pub outcome: Option<Outcome>,
    /// Decisions answered.
    pub decisions: u64,
    /// Wall time.
    pub wall: Duration,
    /// Wall time of the protocol exchanges.
    pub wire: Duration,
    /// Trace records checked (0 when the run failed before the check).
    pub trace_records: usize,
}

#[derive(Clone, Default)]
struct SharedBuf(Rc<RefCell<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Watches decisions for idling while a fitting request waits.
struct Monitor<'a> {
    inner: &'a mut dyn Runnable,
    /// The instance run, for the true lengths behind the lifetime fit.
    instance: &'a Instance,
    /// (idle start, requests that could have been admitted).
    idle: Option<(Nanos, Vec<RequestId>)>,
    idle_wait: BTreeMap<RequestId, u64>,
    /// Requests passed over: a later arrival was admitted while they waited.
    bypassed: std::collections::BTreeSet<RequestId>,
    /// Times each request was passed over while it fit in the memory left free.
    passes: BTreeMap<RequestId, u64>,
    /// Requests evicted at least once.
    evicted: std::collections::BTreeSet<RequestId>,
}

impl Monitor<'_> {
    /// Marks the waiting requests that `plan` passes over: it admits a request that arrived
    /// after them. Requests ever evicted are neither judged nor count as passing.
    fn note_bypasses(&mut self, view: &View<'_>, plan: &Plan) {
        let admitted: Vec<RequestId> = plan
            .batch
            .iter()
            .filter_map(|i| match i {
                BatchItem::Prefill { id, .. } if view.resident(*id).is_none() => Some(*id),
                _ => None,
            })
            .collect();
        // Ids follow arrival order, and so does the waiting list.
        let latest = admitted.iter().copied().filter(|id| !self.evicted.contains(id)).max();
        let Some(latest) = latest else { return };
        let passed: Vec<RequestId> = view
            .waiting()
            .map(|r| r.id())
            .take_while(|&id| id < latest)
            .filter(|id| !admitted.contains(id) && !self.evicted.contains(id))
            .collect();
        if passed.is_empty() {
            return;
        }
        self.bypassed.extend(passed.iter().copied());
        let fitting = self.left_waiting(view, plan);
        for id in passed.into_iter().filter(|id| fitting.contains(id)) {
            *self.passes.entry(id).or_default() += 1;
        }
    }

    /// The KV tokens held after `plan` (its evictions, then one iteration of its batch) by
    /// every request that is resident then, in no particular order.
    fn held_after(view: &View<'_>, plan: &Plan) -> Vec<(RequestId, Tokens)> {
        let first_token = view.config().first_token;
        let mut held: BTreeMap<RequestId, Tokens> = view
            .running()
            .filter(|r| !plan.evict.contains(&r.id()))
            .map(|r| (r.id(), r.held()))
            .collect();
        for item in &plan.batch {
            let Some(prompt) = view.request(item.id()).map(|q| q.prompt_tokens()) else {
                continue;
            };
            let h = held.entry(item.id()).or_insert(Tokens::ZERO);
            *h = match *item {
                BatchItem::Decode { .. } => *h + Tokens(1),
                BatchItem::Prefill { tokens, .. } => {
                    let done = *h + tokens >= prompt;
                    *h + tokens + first_token.output_of_prefill(done)
                }
            };
        }
        held.into_iter().collect()
    }

    /// Whether a request admitted now with `start` tokens and growing to `peak` would fit,
    /// above the watermark, for its whole life beside `residents` (held, peak): every request
    /// advances one token per iteration and frees its memory when it reaches its peak. This is
    /// "capacity sat idle" for the request: a policy that holds it back because it would
    /// overflow later (MC-SF's future-memory check) is not starving it.
    fn fits_for_life(
        view: &View<'_>,
        residents: &[(Tokens, Tokens)],
        start: Tokens,
        peak: Tokens,
    ) -> bool {
        let limit = view.memory().capacity().get().saturating_sub(view.memory().watermark().get());
        let life = peak.get().saturating_sub(start.get());
        // Memory is nondecreasing between completions, so checking the iteration at which
        // each request (residents and the candidate) reaches its peak is enough.
        let mut points: Vec<u64> = residents
            .iter()
            .map(|&(h, p)| p.get().saturating_sub(h.get()))
            .filter(|&k| k <= life)
            .collect();
        points.push(life);
        points.iter().all(|&k| {
            let grow = |h: Tokens, p: Tokens, k: u64| Tokens((h.get() + k).min(p.get()));
            let others: u64 = residents
                .iter()
                .filter(|&&(h, p)| p.get().saturating_sub(h.get()) >= k)
                .map(|&(h, p)| view.footprint(grow(h, p, k)).get())
                .sum();
            others + view.footprint(grow(start, peak, k)).get() <= limit
        })
    }

    /// Passed-over requests that stay waiting although they fit in the memory `plan` leaves.
    fn left_waiting(&self, view: &View<'_>, plan: &Plan) -> Vec<RequestId> {
        if self.bypassed.is_empty() {
            return vec![];
        }
        let after = Monitor::held_after(view, plan);
        let peak = |id: RequestId| self.instance.requests[id.index()].peak_tokens();
        let residents: Vec<(Tokens, Tokens)> = after.iter().map(|&(id, h)| (h, peak(id))).collect();
        let used: u64 = residents.iter().map(|&(h, _)| view.footprint(h).get()).sum();
        let free = Tokens(view.memory().capacity().get().saturating_sub(used));
        // Held once the whole prompt is prefilled: `p + extra`.
        let extra = view.config().first_token.output_of_prefill(true);
        let watermark = view.memory().watermark();
        let in_batch = |id: RequestId| plan.batch.iter().any(|i| i.id() == id);
        let evicted = |id: RequestId| plan.evict.contains(&id);
        self.bypassed
            .iter()
            .filter(|&&id| !self.evicted.contains(&id))
            .filter(|&&id| view.resident(id).is_none() || evicted(id))
            .filter_map(|&id| view.request(id).map(|q| (id, q.prompt_tokens())))
            .filter(|&(id, p)| !in_batch(id) && view.footprint(p + extra) + watermark <= free)
            .filter(|&(id, p)| Monitor::fits_for_life(view, &residents, p + extra, peak(id)))
            .map(|(id, _)| id)
            .collect()
    }
}

impl Scheduler for Monitor<'_> {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn information(&self) -> Information {
        self.inner.information()
    }
    fn decide(&mut self, view: &View<'_>) -> Plan {
        if let Some((t0, ids)) = self.idle.take() {
            let d = (view.now_ns() - t0).get();
            for id in ids {
                *self.idle_wait.entry(id).or_default() += d;
            }
        }
        let plan = self.inner.decide(view);
        // The checks read the batch the plan stands for.
        let plan_out = plan.clone();
        let plan = Plan { batch: plan.expanded(view), decode_all: false, hold: Vec::new(), ..plan };
        self.note_bypasses(view, &plan);
        // An evicted request re-enters the queue where the policy puts it (vLLM: front,
        // SGLang: back); it is no longer judged on arrival order.
        self.evicted.extend(plan.evict.iter().copied());
        // Only the head of the queue (the oldest waiting request the plan leaves, evicted ones
        // in their place) accrues idle time: one stuck behind an older request is blocked by
        // arrival order, as under FCFS, and the head is the one judged.
        let in_batch = |id: RequestId| plan.batch.iter().any(|i| i.id() == id);
        let head = view.waiting().map(|r| r.id()).find(|&id| !in_batch(id));
        let ids: Vec<RequestId> =
            self.left_waiting(view, &plan).into_iter().filter(|&id| Some(id) == head).collect();
        if !ids.is_empty() {
            self.idle = Some((view.now_ns(), ids));
        }
        plan_out
    }
}

/// Whether a request fits in an empty cache (above the watermark).
pub fn fits_empty(instance: &Instance, id: usize) -> bool {
    let mem = &instance.config.memory;
    let r = &instance.requests[id];
    mem.footprint(r.peak_tokens()) + mem.watermark() <= mem.capacity()
}

/// The iteration limit of a run: generous enough for any reasonable policy.
pub fn step_limit(instance: &Instance) -> u64 {
    let work: u64 = instance.requests.iter().map(|r| r.peak_tokens().get()).sum();
    work.saturating_mul(20).saturating_add(10_000)
}

/// Runs `candidate` on `instance` and judges the run.
pub fn run_instance(
    candidate: &dyn Candidate,
    label: &str,
    instance: &Instance,
    seed: u64,
    cfg: &ConformConfig,
) -> RunResult {
    let started = Instant::now();
    let mut result = RunResult {
        verdict: Verdict::pass(),
        outcome: None,
        decisions: 0,
        wall: Duration::ZERO,
        wire: Duration::ZERO,
        trace_records: 0,
    };
    let mut config = instance.config.clone();
    config.information = cfg.information;
    let start = catch_unwind(AssertUnwindSafe(|| candidate.start(label, &config)));
    let mut sched = match start {
        Ok(Ok(s)) => s,
        Ok(Err(v)) => return RunResult { verdict: v, wall: started.elapsed(), ..result },
        Err(p) => {
            return RunResult { verdict: panic_verdict(p), wall: started.elapsed(), ..result }
        }
    };
    let asked = sched.information();
    if information_rank(asked) > information_rank(cfg.information) {
        let v = Verdict::new(
            VerdictCode::InformationDenied,
            format!("asked for {asked:?} information; offered {:?}", cfg.information),
        );
        sched.finish(Finish::Rejected(&v));
        return RunResult { verdict: v, wall: started.elapsed(), ..result };
    }
    let (verdict, outcome, trace) = simulate_judged(&mut *sched, instance, seed, cfg);
    result.decisions = sched.decisions();
    result.wire = sched.wire_time();
    match verdict.is_pass() {
        true => {
            let t = outcome.as_ref().map_or(0, |o| o.simulated_ns.get());
            let completed = outcome.as_ref().map_or(0, |o| o.completed);
            sched.finish(Finish::Ended { t, completed });
        }
        false => sched.finish(Finish::Rejected(&verdict)),
    }
    result.verdict = verdict;
    result.outcome = outcome;
    if result.verdict.is_pass() {
        let (v, records) = check_trace_bytes(&trace);
        result.trace_records = records;
        if let Some(v) = v {
            result.verdict = v;
        }
    }
    result.wall = started.elapsed();
    result
}

fn panic_verdict(p: Box<dyn std::any::Any + Send>) -> Verdict {
    let msg = p
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into());
    Verdict::new(VerdictCode::Panic, msg)
}

fn simulate_judged(
    sched: &mut dyn Runnable,
    instance: &Instance,
    seed: u64,
    cfg: &ConformConfig,
) -> (Verdict, Option<Outcome>, Vec<u8>) {
    let buf = SharedBuf::default();
    let options = SimOptions {
        check: Check::Off,
        stepping: Stepping::FastForward,
        max_steps: Some(step_limit(instance)),
        max_evictions: None,
        timeline: false,
        trace: Some(Box::new(buf.clone())),
        seed: Some(seed),
    };
    let mut monitor = Monitor {
        inner: sched,
        instance,
        idle: None,
        idle_wait: BTreeMap::new(),
        bypassed: Default::default(),
        passes: BTreeMap::new(),
        evicted: Default::default(),
    };
    let run = catch_unwind(AssertUnwindSafe(|| simulate(instance, &mut monitor, options)));
    let idle_wait = std::mem::take(&mut monitor.idle_wait);
    let passes = std::mem::take(&mut monitor.passes);
    let fault = monitor.inner.take_fault();
    // The engine and its options are gone: the buffer is the only holder left.
    let trace = std::mem::take(&mut *buf.0.borrow_mut());
    let (verdict, outcome) = match run {
        Err(p) => (panic_verdict(p), None),
        Ok(_) if fault.is_some() => (fault.expect("checked"), None),
        Ok(Ok(o)) => (starvation(&idle_wait, &passes, cfg), Some(o)),
        Ok(Err(e)) => {
            let v = match &e.kind {
                SimErrorKind::Violation { violation, at_ns } => {
                    Verdict::violation(violation, at_ns.get())
                }
                SimErrorKind::RepeatWithPrefill => Verdict::new(
                    VerdictCode::RepeatWithPrefill,
                    "repeat > 1 on a batch with a prefill",
                ),
                // Never reached: conformance runs apply expanded plans, which hold nothing,
                // and set no eviction limit.
                SimErrorKind::BadHold { .. } | SimErrorKind::EvictionLimit(_) => {
                    Verdict::new(VerdictCode::EngineError, format!("{e} ({:?})", e.kind))
                }
                SimErrorKind::Stalled { .. } => unfinished(instance, &e.partial),
                SimErrorKind::StepLimit(n) => {
                    Verdict::new(VerdictCode::Livelock, format!("no end after {n} iterations"))
                }
                SimErrorKind::NoProgress { .. } => {
                    Verdict::new(VerdictCode::Livelock, e.to_string())
                }
                // Not the scheduler's fault: the engine disagreeing with the spec, a trace
                // that could not be written, an instance without the predictions offered.
                SimErrorKind::Divergence(_)
                | SimErrorKind::Trace(_)
                | SimErrorKind::MissingPrediction { .. } => {
                    Verdict::new(VerdictCode::EngineError, format!("{e} ({:?})", e.kind))
                }
            };
            (v.at(e.partial.simulated_ns.get()), Some(*e.partial))
        }
    };
    (verdict, outcome, trace)
}

fn starvation(
    idle_wait: &BTreeMap<RequestId, u64>,
    passes: &BTreeMap<RequestId, u64>,
    cfg: &ConformConfig,
) -> Verdict {
    let bound = cfg.starvation_bound_ns;
    let starved = idle_wait.iter().filter(|(id, &w)| {
        w > bound && passes.get(id).copied().unwrap_or(0) > cfg.starvation_passes
    });
    match starved.max_by_key(|(_, &w)| w) {
        None => Verdict::pass(),
        Some((id, w)) => Verdict::new(
            VerdictCode::Starvation,
            format!(
                "{id} was passed over {} times while it fit in the memory left free (bound {}), \
                 and waited {w} ns in total while it fit (bound {bound} ns)",
                passes.get(id).copied().unwrap_or(0),
                cfg.starvation_passes
            ),
        ),
    }
}

fn unfinished(instance: &Instance, partial: &Outcome) -> Verdict {
    let ids: Vec<String> = partial
        .requests
        .iter()
        .filter(|r| r.finish_ns.is_none() && fits_empty(instance, r.id.index()))
        .map(|r| r.id.to_string())
        .collect();
    if ids.is_empty() {
        return Verdict::pass();
    }
    let shown = ids.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
    Verdict::new(
        VerdictCode::Unfinished,
        format!(
            "the scheduler idled with no arrival to come; {} request(s) that fit in an empty \
             cache never finished: {shown}",
            ids.len()
        ),
    )
}

/// Checks a trace in memory; returns a verdict when the checker rejects it.
fn check_trace_bytes(trace: &[u8]) -> (Option<Verdict>, usize) {
    match kvsched_verify::check_trace(std::io::BufReader::new(trace)) {
        Err(e) => {
            (Some(Verdict::new(VerdictCode::TraceInvalid, format!("unreadable trace: {e}"))), 0)
        }
        Ok(r) if r.is_valid() => (None, r.records),
        Ok(r) => {
            let first: Vec<String> = r.violations.iter().take(3).map(|v| v.to_string()).collect();
            (Some(Verdict::new(VerdictCode::TraceInvalid, first.join("; "))), r.records)
        }
    }
}
