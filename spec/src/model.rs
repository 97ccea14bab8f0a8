//! The transition semantics: [`State`], [`Action`] and [`apply`].
//!
//! A request is, at every moment, in exactly one [`Phase`]: pending (not yet arrived), waiting
//! (arrived, holding no KV), resident (holding KV: part or all of its prompt, plus the output
//! tokens generated so far), or done. Time advances only through [`Action::Step`] (one
//! iteration, whose duration the step-time model gives) and [`Action::Idle`].
//!
//! - **Admit** is the first prefill chunk of a waiting request: it becomes resident.
//! - **Prefill a chunk** (`BatchItem::Prefill`) adds `tokens` to what the request holds. The
//!   chunk that completes the prompt also produces output token 1 under
//!   [`FirstToken::WithPrefill`].
//! - **Decode** (`BatchItem::Decode`) produces one output token and holds one more KV token.
//! - **Pause** is implicit: a resident request left out of a batch keeps its KV and its progress
//!   (the WAIT paper's scheduler-side preemption).
//! - **Evict** ([`Action::Evict`]) frees a resident request's KV; it returns to waiting and must
//!   prefill again (recompute). Under [`Preemption::Restart`] (the papers' rule, the default) it
//!   loses all progress. Under [`Preemption::KeepGenerated`] (vLLM's recompute preemption) it
//!   keeps the output generated so far ([`RequestState::kept`]): on resumption it prefills
//!   `prompt + kept` tokens, in chunks as a prompt, and then continues; the chunk that
//!   completes them produces output token `kept + 1` under [`FirstToken::WithPrefill`], and
//!   the request completes when `kept + generated` reaches its output length. Under
//!   [`EvictionRule::Lifo`] only the most recently admitted resident request may be evicted.
//!
//! A resident request's [`Resident::prefilled`] and [`Resident::generated`] count what it holds
//! in its current residency, so it holds `prefilled + generated` KV tokens under both rules, at
//! most `prompt + output` at its last token. Its first-token time is the first token it ever
//! produced and is never reset (the user saw it).
//!
//! After every step, the footprints of all resident requests, counting those completing in that
//! step at their final size, must fit in capacity ([`Violation::MemoryExceeded`]); completed
//! requests then free their KV.
//!
//! [`apply`] checks every precondition before it changes anything, so a rejected action leaves
//! the state as it was.

use crate::instance::{EvictionRule, FirstToken, Instance, Preemption};
use crate::request::RequestId;
use crate::step_time::{BatchShape, CompiledStepTime};
use crate::units::{Nanos, Tokens};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Where a request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not yet arrived (its arrival has not been delivered).
    Pending,
    /// Arrived, holds no KV: never admitted, or evicted.
    Waiting,
    /// Holds KV.
    Resident(Resident),
    /// Completed.
    Done {
        /// Completion time.
        finish_ns: Nanos,
    },
}

/// Progress of a resident request in its current residency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resident {
    /// Tokens prefilled so far (chunked prefill holds what has been prefilled), out of the
    /// prompt plus the kept output ([`RequestState::kept`], zero under `Restart`).
    pub prefilled: Tokens,
    /// Output tokens generated in this residency (the request's output so far is `kept` plus
    /// this).
    pub generated: Tokens,
    /// Admission sequence number: larger is more recent (for LIFO).
    pub admitted_seq: u64,
}

impl Resident {
    /// KV tokens held: prefilled prompt plus generated output.
    pub fn held(&self) -> Tokens {
        self.prefilled + self.generated
    }
}

/// Per-request state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestState {
    /// Phase.
    pub phase: Phase,
    /// When the first output token was produced (kept across evictions: the user saw it).
    pub first_token_ns: Option<Nanos>,
    /// How many times it was evicted.
    pub evictions: u32,
    /// Output tokens kept across evictions under [`Preemption::KeepGenerated`] (always zero
    /// under `Restart`): the request must prefill `prompt + kept` tokens when it is admitted.
    pub kept: Tokens,
}

impl RequestState {
    /// Tokens its prefill covers: the prompt plus the kept output.
    pub fn prefill_target(&self, request: &crate::request::Request) -> Tokens {
        request.prompt_tokens + self.kept
    }

    /// Output tokens it has produced so far (kept plus generated in its current residency).
    pub fn output_so_far(&self) -> Tokens {
        match self.phase {
            Phase::Resident(res) => self.kept + res.generated,
            _ => self.kept,
        }
    }
}

/// The whole state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// Current time.
    pub time_ns: Nanos,
    /// Indexed by request id.
    pub requests: Vec<RequestState>,
    /// Sum of footprints of resident requests.
    pub kv_used: Tokens,
    /// Index of the next request whose arrival has not been delivered.
    pub next_arrival: usize,
    /// Resident requests by admission sequence number.
    pub resident_by_admission: BTreeMap<u64, RequestId>,
    /// Next admission sequence number.
    pub admission_counter: u64,
    /// Steps taken.
    pub steps: u64,
    /// Evictions performed.
    pub evictions: u64,
    /// Requests completed.
    pub completed: u64,
}

/// One item of a batch.
///
/// Unknown fields inside an item are errors (`deny_unknown_fields`, `spec/TRACE.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum BatchItem {
    /// Prefill `tokens` more prompt tokens of a waiting (admit) or partly prefilled request.
    Prefill {
        /// Request.
        id: RequestId,
        /// Chunk size.
        tokens: Tokens,
    },
    /// Produce one output token.
    Decode {
        /// Request.
        id: RequestId,
    },
}

impl BatchItem {
    /// The request this item advances.
    pub fn id(&self) -> RequestId {
        match *self {
            BatchItem::Prefill { id, .. } | BatchItem::Decode { id } => id,
        }
    }
}

/// An action on the state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Deliver the next arrival (requests arrive in id order, at or before the current time).
    Arrive(RequestId),
    /// Free a resident request's KV; it returns to waiting with no progress, or keeping its
    /// output under [`Preemption::KeepGenerated`].
    Evict(RequestId),
    /// Run one iteration of this batch.
    Step(Vec<BatchItem>),
    /// Let time pass with the server idle, up to at most the next pending arrival.
    Idle {
        /// New time.
        until_ns: Nanos,
    },
}

/// Why an action was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "violation")]
pub enum Violation {
    /// The id is not in the instance.
    UnknownRequest {
        /// Offending id.
        id: RequestId,
    },
    /// The action names a request whose arrival has not been delivered.
    NotArrived {
        /// Offending id.
        id: RequestId,
    },
    /// An arrival was delivered out of order or before its time.
    ArrivalOutOfOrder {
        /// Offending id.
        id: RequestId,
        /// The arrival that is due next, if any.
        expected: Option<RequestId>,
    },
    /// Time would advance past an arrival that has not been delivered.
    ArrivalSkipped {
        /// The undelivered request.
        id: RequestId,
    },
    /// A step with no items.
    EmptyBatch,
    /// A request appears twice in one batch.
    DuplicateInBatch {
        /// Offending id.
        id: RequestId,
    },
    /// Prefill of a request that is neither waiting nor partly prefilled.
    NotPrefillable {
        /// Offending id.
        id: RequestId,
    },
    /// A prefill chunk of zero tokens, or one past the end of the prompt (plus the kept output
    /// under [`Preemption::KeepGenerated`]).
    BadChunk {
        /// Offending id.
        id: RequestId,
        /// Already prefilled.
        prefilled: Tokens,
        /// Chunk.
        chunk: Tokens,
        /// Prompt length, plus the kept output under [`Preemption::KeepGenerated`].
        prompt: Tokens,
    },
    /// Decode of a request that is not resident with its prefill complete.
    NotDecodable {
        /// Offending id.
        id: RequestId,
    },
    /// Eviction of a request that is not resident.
    NotResident {
        /// Offending id.
        id: RequestId,
    },
    /// Eviction that breaks the LIFO rule.
    EvictionOrder {
        /// Offending id.
        id: RequestId,
        /// The most recently admitted resident request.
        expected: RequestId,
    },
    /// The step would leave more KV resident than capacity.
    MemoryExceeded {
        /// Footprint after the step.
        used: Tokens,
        /// Capacity.
        capacity: Tokens,
    },
    /// `Idle` that does not move time forward.
    TimeNotForward {
        /// Current time.
        now_ns: Nanos,
        /// Requested time.
        until_ns: Nanos,
    },
    /// The action would move time past [`crate::units::MAX_TIME_NS`].
    TimeLimit {
        /// Current time.
        now_ns: Nanos,
        /// The time the action would reach (saturated at `u64::MAX`).
        until_ns: Nanos,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::UnknownRequest { id } => write!(f, "unknown request {id}"),
            Violation::NotArrived { id } => write!(f, "{id} has not arrived"),
            Violation::ArrivalOutOfOrder { id, expected } => {
                write!(f, "arrival of {id} out of order or early (expected {expected:?})")
            }
            Violation::ArrivalSkipped { id } => write!(f, "time passed the arrival of {id}"),
            Violation::EmptyBatch => write!(f, "empty batch"),
            Violation::DuplicateInBatch { id } => write!(f, "{id} advanced twice in one step"),
            Violation::NotPrefillable { id } => write!(f, "{id} cannot be prefilled"),
            Violation::BadChunk { id, prefilled, chunk, prompt } => write!(
                f,
                "{id}: chunk of {chunk} after {prefilled} exceeds prompt {prompt} or is empty"
            ),
            Violation::NotDecodable { id } => write!(f, "{id} cannot be decoded"),
            Violation::NotResident { id } => write!(f, "{id} is not resident"),
            Violation::EvictionOrder { id, expected } => {
                write!(f, "evicted {id}, but LIFO requires {expected}")
            }
            Violation::MemoryExceeded { used, capacity } => {
                write!(f, "KV memory {used} exceeds capacity {capacity}")
            }
            Violation::TimeNotForward { now_ns, until_ns } => {
                write!(f, "idle until {until_ns} does not move forward from {now_ns}")
            }
            Violation::TimeLimit { now_ns, until_ns } => write!(
                f,
                "time would pass the end of simulated time (2^62 ns): from {now_ns} to {until_ns}"
            ),
        }
    }
}

/// What a successful step did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepReport {
    /// Duration of the step.
    pub duration_ns: Nanos,
    /// The batch's shape.
    pub shape: BatchShape,
    /// Requests that completed in this step.
    pub completed: Vec<RequestId>,
    /// Requests that produced their first output token in this step (first time ever).
    pub first_tokens: Vec<RequestId>,
    /// Footprint after the step, before completed requests free their KV (the peak).
    pub kv_peak: Tokens,
}

impl State {
    /// The initial state: nothing arrived, time zero.
    pub fn init(instance: &Instance) -> State {
        let n = instance.requests.len();
        State {
            time_ns: Nanos::ZERO,
            requests: vec![
                RequestState {
                    phase: Phase::Pending,
                    first_token_ns: None,
                    evictions: 0,
                    kept: Tokens::ZERO,
                };
                n
            ],
            kv_used: Tokens::ZERO,
            next_arrival: 0,
            resident_by_admission: BTreeMap::new(),
            admission_counter: 0,
            steps: 0,
            evictions: 0,
            completed: 0,
        }
    }

    /// Whether every request is done.
    pub fn all_done(&self) -> bool {
        self.completed as usize == self.requests.len()
    }

    /// The phase of a request.
    pub fn phase(&self, id: RequestId) -> Phase {
        self.requests[id.index()].phase
    }

    fn lookup(&self, id: RequestId) -> Result<&RequestState, Violation> {
        self.requests.get(id.index()).ok_or(Violation::UnknownRequest { id })
    }

    /// Recomputes derived quantities from scratch and compares them with the maintained ones.
    /// Returns a description of the first mismatch.
    pub fn check_invariants(&self, instance: &Instance) -> Result<(), String> {
        let mem = &instance.config.memory;
        let mut used = Tokens::ZERO;
        let mut resident = 0usize;
        let mut done = 0u64;
        for (i, r) in self.requests.iter().enumerate() {
            let req = &instance.requests[i];
            match r.phase {
                Phase::Pending => {
                    if i < self.next_arrival {
                        return Err(format!("r{i} pending but its arrival was delivered"));
                    }
                }
                Phase::Resident(res) => {
                    resident += 1;
                    let target = r.prefill_target(req);
                    if res.prefilled > target || r.kept + res.generated > req.output_tokens {
                        return Err(format!("r{i} progress beyond its lengths"));
                    }
                    if res.generated > Tokens::ZERO && res.prefilled != target {
                        return Err(format!("r{i} generated before its prefill completed"));
                    }
                    if r.kept + res.generated == req.output_tokens {
                        return Err(format!("r{i} resident with all tokens generated"));
                    }
                    used += mem.footprint(res.held());
                }
                Phase::Done { .. } => done += 1,
                Phase::Waiting => {}
            }
            if r.kept > Tokens::ZERO
                && (instance.config.preemption == Preemption::Restart
                    || r.kept >= req.output_tokens
                    || r.first_token_ns.is_none())
            {
                return Err(format!("r{i} keeps {} output tokens it cannot keep", r.kept));
            }
            if i >= self.next_arrival && r.phase != Phase::Pending {
                return Err(format!("r{i} not pending but its arrival was not delivered"));
            }
        }
        if used != self.kv_used {
            return Err(format!("kv_used {} but residents hold {}", self.kv_used, used));
        }
        if used > mem.capacity() {
            return Err(format!("kv_used {used} exceeds capacity {}", mem.capacity()));
        }
        if resident != self.resident_by_admission.len() {
            return Err("resident index out of sync".into());
        }
        if done != self.completed {
            return Err("completed counter out of sync".into());
        }
        Ok(())
    }
}

/// Applies `action` to a copy of `state`.
pub fn apply(instance: &Instance, state: &State, action: &Action) -> Result<State, Violation> {
    let mut next = state.clone();
    let step_time = instance.config.step_time.compile().expect("instance was validated");
    apply_mut(instance, &step_time, &mut next, action)?;
    Ok(next)
}

/// Applies `action` in place. On error the state is unchanged.
pub fn apply_mut(
    instance: &Instance,
    step_time: &CompiledStepTime,
    state: &mut State,
    action: &Action,
) -> Result<StepReport, Violation> {
    match action {
        Action::Arrive(id) => arrive(instance, state, *id).map(|()| StepReport::default()),
        Action::Evict(id) => evict(instance, state, *id).map(|()| StepReport::default()),
        Action::Idle { until_ns } => {
            idle(instance, state, *until_ns).map(|()| StepReport::default())
        }
        Action::Step(items) => step(instance, step_time, state, items),
    }
}

fn arrive(instance: &Instance, state: &mut State, id: RequestId) -> Result<(), Violation> {
    state.lookup(id)?;
    let expected = instance.requests.get(state.next_arrival).map(|r| r.id);
    let due = instance.request(id).arrival_ns <= state.time_ns;
    if expected != Some(id) || !due {
        return Err(Violation::ArrivalOutOfOrder { id, expected });
    }
    state.requests[id.index()].phase = Phase::Waiting;
    state.next_arrival += 1;
    Ok(())
}

fn evict(instance: &Instance, state: &mut State, id: RequestId) -> Result<(), Violation> {
    let Phase::Resident(res) = state.lookup(id)?.phase else {
        return Err(Violation::NotResident { id });
    };
    if instance.config.eviction == EvictionRule::Lifo {
        let (_, &latest) = state.resident_by_admission.last_key_value().expect("resident");
        if latest != id {
            return Err(Violation::EvictionOrder { id, expected: latest });
        }
    }
    state.kv_used -= instance.config.memory.footprint(res.held());
    state.resident_by_admission.remove(&res.admitted_seq);
    let r = &mut state.requests[id.index()];
    if instance.config.preemption == Preemption::KeepGenerated {
        r.kept += res.generated;
    }
    r.phase = Phase::Waiting;
    r.evictions += 1;
    state.evictions += 1;
    Ok(())
}

fn idle(instance: &Instance, state: &mut State, until_ns: Nanos) -> Result<(), Violation> {
    if until_ns <= state.time_ns {
        return Err(Violation::TimeNotForward { now_ns: state.time_ns, until_ns });
    }
    if until_ns.get() > crate::units::MAX_TIME_NS {
        return Err(Violation::TimeLimit { now_ns: state.time_ns, until_ns });
    }
    if let Some(next) = instance.requests.get(state.next_arrival) {
        if next.arrival_ns < until_ns {
            return Err(Violation::ArrivalSkipped { id: next.id });
        }
    }
    state.time_ns = until_ns;
    Ok(())
}

/// A validated item with the request's progress after the step.
struct Planned {
    id: RequestId,
    before: Option<Resident>,
    after: Resident,
}

fn plan_item(
    instance: &Instance,
    state: &State,
    item: &BatchItem,
    shape: &mut BatchShape,
) -> Result<Planned, Violation> {
    let id = item.id();
    let rs = state.lookup(id)?;
    let req = instance.request(id);
    let target = rs.prefill_target(req);
    match *item {
        BatchItem::Prefill { tokens, .. } => {
            let before = match rs.phase {
                Phase::Waiting => None,
                Phase::Resident(res) if res.prefilled < target => Some(res),
                Phase::Pending => return Err(Violation::NotArrived { id }),
                _ => return Err(Violation::NotPrefillable { id }),
            };
            let prefilled = before.map_or(Tokens::ZERO, |r| r.prefilled);
            if tokens == Tokens::ZERO || prefilled + tokens > target {
                return Err(Violation::BadChunk { id, prefilled, chunk: tokens, prompt: target });
            }
            let context = prefilled + tokens;
            shape.prefill_tokens += tokens.get();
            shape.prefill_attn_token2 += tokens.get() * context.get();
            shape.attended_kv_tokens += context.get();
            let completes = context == target;
            // The first-token rule, written out here on purpose (not through
            // `FirstToken::output_of_prefill`): the spec and the engine are independent
            // implementations that check mode compares.
            let first = completes && instance.config.first_token == FirstToken::WithPrefill;
            let after = Resident {
                prefilled: context,
                generated: Tokens(u64::from(first)),
                admitted_seq: before.map_or(u64::MAX, |r| r.admitted_seq),
            };
            Ok(Planned { id, before, after })
        }
        BatchItem::Decode { .. } => match rs.phase {
            Phase::Resident(res) if res.prefilled == target => {
                let after = Resident { generated: res.generated + Tokens(1), ..res };
                shape.decode_requests += 1;
                shape.attended_kv_tokens += after.held().get();
                Ok(Planned { id, before: Some(res), after })
            }
            Phase::Pending => Err(Violation::NotArrived { id }),
            _ => Err(Violation::NotDecodable { id }),
        },
    }
}

fn step(
    instance: &Instance,
    step_time: &CompiledStepTime,
    state: &mut State,
    items: &[BatchItem],
) -> Result<StepReport, Violation> {
    if items.is_empty() {
        return Err(Violation::EmptyBatch);
    }
    if let Some(next) = instance.requests.get(state.next_arrival) {
        if next.arrival_ns <= state.time_ns {
            return Err(Violation::ArrivalSkipped { id: next.id });
        }
    }
    let mem = &instance.config.memory;
    let mut shape = BatchShape::default();
    let mut planned = Vec::with_capacity(items.len());
    let mut seen = std::collections::BTreeSet::new();
    let mut used = state.kv_used;
    for item in items {
        if !seen.insert(item.id()) {
            return Err(Violation::DuplicateInBatch { id: item.id() });
        }
        let p = plan_item(instance, state, item, &mut shape)?;
        let before = p.before.map_or(Tokens::ZERO, |r| mem.footprint(r.held()));
        used = used - before + mem.footprint(p.after.held());
        planned.push(p);
    }
    if used > mem.capacity() {
        return Err(Violation::MemoryExceeded { used, capacity: mem.capacity() });
    }
    let duration_ns = step_time.duration_ns(&shape);
    let end = state.time_ns.get().saturating_add(duration_ns.get());
    if end > crate::units::MAX_TIME_NS {
        return Err(Violation::TimeLimit { now_ns: state.time_ns, until_ns: Nanos(end) });
    }
    // Every check passed: commit.
    state.time_ns = Nanos(end);
    state.kv_used = used;
    state.steps += 1;
    let mut report = StepReport { duration_ns, shape, kv_peak: used, ..StepReport::default() };
    for mut p in planned {
        let req = instance.request(p.id);
        if p.before.is_none() {
            p.after.admitted_seq = state.admission_counter;
            state.admission_counter += 1;
            state.resident_by_admission.insert(p.after.admitted_seq, p.id);
        }
        let rs = &mut state.requests[p.id.index()];
        if p.after.generated > Tokens::ZERO && rs.first_token_ns.is_none() {
            rs.first_token_ns = Some(state.time_ns);
            report.first_tokens.push(p.id);
        }
        if rs.kept + p.after.generated == req.output_tokens {
            rs.phase = Phase::Done { finish_ns: state.time_ns };
            state.kv_used -= mem.footprint(p.after.held());
            state.resident_by_admission.remove(&p.after.admitted_seq);
            state.completed += 1;
            report.completed.push(p.id);
        } else {
            rs.phase = Phase::Resident(p.after);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Information, MemoryConfig, Request, StepTime};

    fn instance(preemption: Preemption, first_token: FirstToken) -> Instance {
        Instance {
            config: crate::ModelConfig {
                memory: MemoryConfig::tokens(16),
                step_time: StepTime::UnitRounds,
                first_token,
                eviction: EvictionRule::Any,
                preemption,
                information: Information::Hidden,
            },
            requests: vec![Request {
                id: RequestId(0),
                arrival_ns: Nanos(0),
                prompt_tokens: Tokens(4),
                output_tokens: Tokens(3),
                predicted_output_tokens: None,
                class: 0,
            }],
        }
    }

    fn run(inst: &Instance, actions: &[Action]) -> Result<State, Violation> {
        let mut s = State::init(inst);
        for a in actions {
            s = apply(inst, &s, a)?;
            s.check_invariants(inst).expect("invariants");
        }
        Ok(s)
    }

    const R: RequestId = RequestId(0);
    fn prefill(n: u64) -> Action {
        Action::Step(vec![BatchItem::Prefill { id: R, tokens: Tokens(n) }])
    }
    fn decode() -> Action {
        Action::Step(vec![BatchItem::Decode { id: R }])
    }

    /// Known answer: evicted after 2 of 3 tokens, the request keeps them, prefills 4 + 2 in two
    /// chunks, and the chunk that completes them produces its last token; the first-token time
    /// is the first one's (1 s), not reset.
    #[test]
    fn keep_generated_resumes_with_prompt_plus_kept() {
        let inst = instance(Preemption::KeepGenerated, FirstToken::WithPrefill);
        let head = [Action::Arrive(R), prefill(4), decode(), Action::Evict(R)];
        let s = run(&inst, &head).unwrap();
        assert_eq!(
            (s.requests[0].kept, s.kv_used, s.requests[0].output_so_far()),
            (Tokens(2), Tokens(0), Tokens(2))
        );
        let s = run(&inst, &[&head[..], &[prefill(4)]].concat()).unwrap();
        assert_eq!(s.kv_used, Tokens(4));
        assert_eq!(
            run(&inst, &[&head[..], &[prefill(4), decode()]].concat()),
            Err(Violation::NotDecodable { id: R })
        );
        assert_eq!(
            run(&inst, &[&head[..], &[prefill(7)]].concat()),
            Err(Violation::BadChunk {
                id: R,
                prefilled: Tokens(0),
                chunk: Tokens(7),
                prompt: Tokens(6)
            })
        );
        let s = run(&inst, &[&head[..], &[prefill(4), prefill(2)]].concat()).unwrap();
        assert!(s.all_done());
        assert_eq!(s.requests[0].first_token_ns, Some(Nanos(1_000_000_000)));
        assert_eq!(s.time_ns, Nanos(4_000_000_000));
    }

    /// Under `Restart` the same resumption chunk is too long, and a restarted request
    /// regenerates all 3 tokens; under `SeparateDecode` a resumption produces no token.
    #[test]
    fn restart_loses_output_and_separate_decode_resumes_with_a_decode() {
        let inst = instance(Preemption::Restart, FirstToken::WithPrefill);
        let head = [Action::Arrive(R), prefill(4), decode(), Action::Evict(R)];
        assert!(matches!(
            run(&inst, &[&head[..], &[prefill(6)]].concat()),
            Err(Violation::BadChunk { .. })
        ));
        let s = run(&inst, &[&head[..], &[prefill(4), decode()]].concat()).unwrap();
        assert_eq!((s.requests[0].kept, s.requests[0].output_so_far()), (Tokens(0), Tokens(2)));
        let inst = instance(Preemption::KeepGenerated, FirstToken::SeparateDecode);
        let head = [Action::Arrive(R), prefill(4), decode(), Action::Evict(R), prefill(5)];
        let s = run(&inst, &head).unwrap();
        assert_eq!((s.kv_used, s.requests[0].output_so_far()), (Tokens(5), Tokens(1)));
        let s = run(&inst, &[&head[..], &[decode(), decode()]].concat()).unwrap();
        assert!(s.all_done());
    }
}
