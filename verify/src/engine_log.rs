//! `check_engine_log`: judges a per-step log recorded by a real engine (the "engine step log"
//! of `spec/TRACE.md`), here vLLM-style records, against memory and the chosen policy.
//!
//! # Method
//! Pass 1 (the adapter) walks the steps with a small engine model of each request in vLLM's
//! own terms: `num_tokens = prompt + outputs sampled so far` and `num_computed_tokens`. A
//! scheduled item whose `num_computed_tokens + num_scheduled_tokens` reaches `num_tokens`
//! samples one token. Preemption is recompute: `num_computed_tokens` drops to 0 and the request
//! is prefilled again up to its current `num_tokens` (prompt plus outputs so far), as vLLM
//! does. Mechanics (double advance, scheduling after finish or before admission, progress kept
//! across preemption) and policy semantics (preempt-last, no admission in a preempting step,
//! v0's prefill/decode separation) are judged here.
//!
//! Each residency of a request (from admission or resumption to preemption, abort or finish)
//! becomes one spec request, an *epoch*, whose prompt is what that residency prefills. The
//! spec's [`FirstToken::SeparateDecode`] convention then matches vLLM's KV accounting exactly:
//! after the prefill the request holds its prompt, and each decode writes the KV of one more
//! token. Pass 2 replays the epochs through [`kvsched_spec::apply_mut`] (arrive all, evict on
//! preemption or abort, one step per record) on the header's paged memory, so memory is
//! recomputed from the spec and never taken from the log; the engine's own `num_used_blocks` is
//! checked against capacity too (and compared with the replay under `exact_usage`).
//!
//! # What a pass does not prove
//! The log says what was scheduled, not what the policy saw: a skipped admission that would
//! have fit, or the token budget, is not judged. Prefix caching, speculative decoding and
//! swapping are outside the format.

use crate::check::{TraceError, TraceErrorKind};
use kvsched_spec::{
    apply_mut, Action, BatchItem, CompiledStepTime, EvictionRule, FirstToken, Information,
    Instance, MemoryConfig, ModelConfig, Nanos, Preemption, Request, RequestId, State, StepTime,
    Tokens, Violation,
};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::BufRead;

/// The engine step log format version this checker reads.
pub const ENGINE_FORMAT_VERSION: u64 = 1;

/// Largest token count or step index accepted (larger is malformed).
const MAX_VALUE: u64 = 1 << 32;

/// A request id as the engine writes it: a string (vLLM's `req_id`) or an integer.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum IdRepr {
    Text(String),
    Num(u64),
}

impl IdRepr {
    fn key(&self) -> String {
        match self {
            IdRepr::Text(s) => s.clone(),
            IdRepr::Num(n) => n.to_string(),
        }
    }
}

/// The `engine_header` record.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Header {
    k: String,
    format_version: u64,
    engine: String,
    policy: String,
    kv_capacity_tokens: u64,
    #[serde(default = "one")]
    block_size_tokens: u64,
    #[serde(default)]
    exact_usage: bool,
    #[serde(default)]
    model: Option<String>,
}

fn one() -> u64 {
    1
}

/// One element of `new_reqs`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewReq {
    req_id: IdRepr,
    prompt_len: u64,
}

/// One element of `scheduled`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scheduled {
    req_id: IdRepr,
    num_scheduled_tokens: u64,
    num_computed_tokens: u64,
}

/// The `engine_step` record.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct StepRec {
    k: String,
    step: u64,
    #[serde(default)]
    t: Option<f64>,
    #[serde(default)]
    new_reqs: Vec<NewReq>,
    #[serde(default)]
    scheduled: Vec<Scheduled>,
    #[serde(default)]
    preempted_req_ids: Vec<IdRepr>,
    #[serde(default)]
    finished_req_ids: Vec<IdRepr>,
    #[serde(default)]
    aborted_req_ids: Vec<IdRepr>,
    #[serde(default)]
    num_used_blocks: Option<u64>,
    #[serde(default)]
    running: Option<Vec<IdRepr>>,
    #[serde(default)]
    waiting: Option<Vec<IdRepr>>,
}

/// The policy whose documented semantics the log is judged against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnginePolicy {
    /// vLLM v1 (FCFS): preempt-last, no admission in a step that preempted; mixing allowed.
    VllmV1,
    /// vLLM v0: prefill-only or decode-only steps, preempt-last, no admission when preempting.
    VllmV0,
    /// Memory and mechanics only.
    Any,
}

/// A rule the log breaks, at one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineViolation {
    /// 1-based line number of the record.
    pub line: usize,
    /// What is wrong.
    pub kind: EngineViolationKind,
}

/// What an engine log can get wrong. Request ids are the engine's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineViolationKind {
    /// The engine's own `num_used_blocks` exceeds the capacity in blocks.
    EngineKvOverCapacity {
        /// Reported blocks.
        used_blocks: u64,
        /// Capacity in blocks.
        capacity_blocks: u64,
    },
    /// The spec replay's footprint exceeds capacity.
    ReplayKvOverCapacity {
        /// Footprint after the step.
        used: Tokens,
        /// Capacity.
        capacity: Tokens,
    },
    /// Under `exact_usage`, the reported blocks differ from the replay's.
    KvUsageMismatch {
        /// Reported.
        reported_blocks: u64,
        /// Replay.
        replay_blocks: u64,
    },
    /// A request appears twice in one step's `scheduled`.
    DoubleAdvance {
        /// The request.
        id: String,
    },
    /// A request scheduled (or preempted) after it finished or was aborted.
    ScheduledAfterFinish {
        /// The request.
        id: String,
    },
    /// A request scheduled (or preempted) before any `new_reqs` entry admitted it.
    NotAdmitted {
        /// The request.
        id: String,
    },
    /// A request listed in `new_reqs` a second time.
    DuplicateAdmission {
        /// The request.
        id: String,
    },
    /// A preempted request resumes with `num_computed_tokens > 0` (recompute loses progress).
    ProgressAfterPreemption {
        /// The request.
        id: String,
        /// The claimed `num_computed_tokens`.
        claimed: u64,
    },
    /// `num_computed_tokens` disagrees with the progress the log itself implies.
    ComputedMismatch {
        /// The request.
        id: String,
        /// Claimed.
        claimed: u64,
        /// Implied by the earlier records.
        expected: u64,
    },
    /// `num_scheduled_tokens` is 0 or runs past `num_tokens` (prompt plus outputs so far).
    BadChunk {
        /// The request.
        id: String,
        /// Scheduled tokens.
        tokens: u64,
        /// Computed before the step.
        computed: u64,
        /// The request's `num_tokens`.
        num_tokens: u64,
    },
    /// A preempted request was not running.
    PreemptNotRunning {
        /// The request.
        id: String,
    },
    /// Preempt-last: the victim is not the last request in running order.
    PreemptNotLast {
        /// The victim.
        id: String,
        /// The last running request.
        expected: String,
    },
    /// A waiting request was admitted (or resumed) in a step that preempted.
    AdmissionAfterPreemption {
        /// The request.
        id: String,
    },
    /// A request preempted in this step is also scheduled in it.
    ScheduledWhilePreempted {
        /// The request.
        id: String,
    },
    /// vLLM v0: a step mixes prefill and decode items.
    MixedBatch,
    /// A finished request did not sample a token in this step.
    BadFinish {
        /// The request.
        id: String,
    },
    /// `step` is not the previous step plus one.
    StepOutOfOrder {
        /// Claimed.
        step: u64,
        /// Expected.
        expected: u64,
    },
    /// `t` is below the previous step's.
    TimeBackwards,
    /// The spec rejects an action the adapter derived (should follow from another report).
    Spec(Violation),
    /// The spec replay completes other epochs than the log finishes.
    FinishMismatch,
}

impl fmt::Display for EngineViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use EngineViolationKind as K;
        match self {
            K::EngineKvOverCapacity { used_blocks, capacity_blocks } => {
                write!(f, "engine reports {used_blocks} blocks, capacity is {capacity_blocks}")
            }
            K::ReplayKvOverCapacity { used, capacity } => {
                write!(f, "replayed KV {used} exceeds capacity {capacity}")
            }
            K::KvUsageMismatch { reported_blocks, replay_blocks } => {
                write!(f, "engine reports {reported_blocks} blocks, replay holds {replay_blocks}")
            }
            K::DoubleAdvance { id } => write!(f, "{id} advanced twice in one step"),
            K::ScheduledAfterFinish { id } => write!(f, "{id} scheduled after it finished"),
            K::NotAdmitted { id } => write!(f, "{id} scheduled before its admission"),
            K::DuplicateAdmission { id } => write!(f, "{id} admitted twice"),
            K::ProgressAfterPreemption { id, claimed } => {
                write!(f, "{id} resumes with {claimed} computed tokens after preemption")
            }
            K::ComputedMismatch { id, claimed, expected } => {
                write!(f, "{id}: num_computed_tokens {claimed}, expected {expected}")
            }
            K::BadChunk { id, tokens, computed, num_tokens } => write!(
                f,
                "{id}: {tokens} tokens after {computed} is empty or exceeds num_tokens {num_tokens}"
            ),
            K::PreemptNotRunning { id } => write!(f, "preempted {id}, which is not running"),
            K::PreemptNotLast { id, expected } => {
                write!(f, "preempted {id}, but preempt-last requires {expected}")
            }
            K::AdmissionAfterPreemption { id } => {
                write!(f, "{id} admitted in a step that preempted")
            }
            K::ScheduledWhilePreempted { id } => write!(f, "{id} scheduled and preempted"),
            K::MixedBatch => write!(f, "vllm-v0 step mixes prefill and decode"),
            K::BadFinish { id } => write!(f, "{id} finished without sampling in this step"),
            K::StepOutOfOrder { step, expected } => {
                write!(f, "step {step}, expected {expected}")
            }
            K::TimeBackwards => write!(f, "t goes backwards"),
            K::Spec(v) => write!(f, "spec violation in replay: {v}"),
            K::FinishMismatch => write!(f, "replay completes other requests than finished"),
        }
    }
}

/// The result of checking a well-formed engine log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineReport {
    /// Every violation, in line order.
    pub violations: Vec<EngineViolation>,
    /// Step records read.
    pub steps: u64,
    /// Distinct requests.
    pub requests: usize,
    /// Requests finished.
    pub finished: u64,
    /// Preemptions.
    pub preemptions: u64,
    /// Spec requests (residencies) replayed.
    pub epochs: usize,
}

impl EngineReport {
    /// Whether the log is valid.
    pub fn is_valid(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Whether the first non-blank line of `text` is an `engine_header` record.
pub fn is_engine_log(text: &[u8]) -> bool {
    let text = String::from_utf8_lossy(text);
    let Some(first) = text.lines().find(|l| !l.trim().is_empty()) else {
        return false;
    };
    serde_json::from_str::<serde_json::Value>(first)
        .ok()
        .and_then(|v| v.get("k").and_then(|k| k.as_str()).map(|k| k == "engine_header"))
        .unwrap_or(false)
}

/// Reads and checks an engine step log. `Err` only for malformed input.
pub fn check_engine_log(reader: impl BufRead) -> Result<EngineReport, TraceError> {
    let (header, steps) = parse_engine_log(reader)?;
    Ok(judge(&header, &steps))
}

/// A parsed header with its derived settings.
struct Parsed {
    policy: EnginePolicy,
    memory: MemoryConfig,
    exact_usage: bool,
}

fn bad(line: usize, kind: TraceErrorKind) -> TraceError {
    TraceError { line, kind }
}

fn parse_engine_log(reader: impl BufRead) -> Result<(Parsed, Vec<(usize, StepRec)>), TraceError> {
    let mut header = None;
    let mut steps = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let n = i + 1;
        let text = line.map_err(|e| bad(n, TraceErrorKind::Io(e.to_string())))?;
        if text.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(n, TraceErrorKind::Json(e.to_string())))?;
        if !value.is_object() {
            return Err(bad(n, TraceErrorKind::Json("not an object".into())));
        }
        let Some(k) = value.get("k").and_then(|k| k.as_str()).map(str::to_string) else {
            return Err(bad(n, TraceErrorKind::MissingKind));
        };
        match (k.as_str(), header.is_some()) {
            ("engine_header", false) => header = Some(parse_header(n, value)?),
            ("engine_header", true) => return Err(bad(n, TraceErrorKind::DuplicateHeader)),
            ("engine_step", true) => steps.push((n, parse_step(n, value)?)),
            ("engine_step", false) => return Err(bad(n, TraceErrorKind::MissingHeader)),
            _ => {
                let msg =
                    format!("unknown record kind {k:?}; expected engine_header or engine_step");
                return Err(bad(n, TraceErrorKind::BadRecord(msg)));
            }
        }
    }
    let header = header.ok_or(bad(0, TraceErrorKind::MissingHeader))?;
    Ok((header, steps))
}

fn parse_header(n: usize, value: serde_json::Value) -> Result<Parsed, TraceError> {
    match value.get("format_version").and_then(|v| v.as_u64()) {
        Some(ENGINE_FORMAT_VERSION) => {}
        Some(v) => return Err(bad(n, TraceErrorKind::Version(v))),
        None => {
            let msg = "expected an integer field \"format_version\"".to_string();
            return Err(bad(n, TraceErrorKind::BadRecord(msg)));
        }
    }
    let h: Header = serde_json::from_value(value)
        .map_err(|e| bad(n, TraceErrorKind::BadRecord(e.to_string())))?;
    let config = |m: &str| bad(n, TraceErrorKind::BadConfig(m.to_string()));
    if h.engine != "vllm" {
        return Err(config("engine: expected \"vllm\""));
    }
    let policy = match h.policy.as_str() {
        "vllm-v1" => EnginePolicy::VllmV1,
        "vllm-v0" => EnginePolicy::VllmV0,
        "any" => EnginePolicy::Any,
        _ => return Err(config("policy: expected \"vllm-v1\", \"vllm-v0\" or \"any\"")),
    };
    if h.kv_capacity_tokens > 1 << 62 {
        return Err(config("kv_capacity_tokens: expected at most 2^62"));
    }
    let memory = MemoryConfig {
        kv_capacity_tokens: h.kv_capacity_tokens,
        block_size_tokens: h.block_size_tokens,
        watermark_fraction: 0.0,
    };
    memory.validate().map_err(|e| config(&e))?;
    Ok(Parsed { policy, memory, exact_usage: h.exact_usage })
}

fn parse_step(n: usize, value: serde_json::Value) -> Result<StepRec, TraceError> {
    let rec: StepRec = serde_json::from_value(value)
        .map_err(|e| bad(n, TraceErrorKind::BadRecord(e.to_string())))?;
    let too_big = rec.step > MAX_VALUE
        || rec.num_used_blocks.is_some_and(|b| b > MAX_VALUE)
        || rec.new_reqs.iter().any(|r| r.prompt_len == 0 || r.prompt_len > MAX_VALUE)
        || rec
            .scheduled
            .iter()
            .any(|s| s.num_scheduled_tokens > MAX_VALUE || s.num_computed_tokens > MAX_VALUE)
        || rec.t.is_some_and(|t| !t.is_finite());
    if too_big {
        let msg = "numbers out of range (tokens and steps at most 2^32, prompt_len >= 1)";
        return Err(bad(n, TraceErrorKind::BadRecord(msg.into())));
    }
    Ok(rec)
}

/// Where a request is, in the engine model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RState {
    Waiting,
    Running,
    Finished,
}

/// One request in the engine model.
struct Req {
    prompt: u64,
    outputs: u64,
    computed: u64,
    /// `num_tokens` to prefill in the current residency.
    target: u64,
    state: RState,
    preempted: bool,
    /// Current spec epoch (None when waiting, finished, or excluded after a violation).
    epoch: Option<usize>,
}

/// How an epoch ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum EpochEnd {
    Open,
    Finished,
    Evicted,
}

/// One residency, replayed as one spec request.
struct Epoch {
    prompt: u64,
    decodes: u64,
    end: EpochEnd,
    /// Whether a replay item was emitted for it (it is resident in the replay).
    started: bool,
}

/// What pass 1 hands to the spec replay for one step record.
#[derive(Default)]
struct Plan {
    line: usize,
    evict: Vec<usize>,
    items: Vec<BatchItem>,
    /// Evictions after the step (a finish the replay cannot complete).
    evict_after: Vec<usize>,
    finished: Vec<usize>,
    used_blocks: Option<u64>,
}

/// Pass 1 state.
struct Adapter {
    policy: EnginePolicy,
    reqs: BTreeMap<String, Req>,
    running: Vec<String>,
    epochs: Vec<Epoch>,
    plans: Vec<Plan>,
    violations: Vec<EngineViolation>,
    next_step: Option<u64>,
    last_t: Option<f64>,
    finished: u64,
    preemptions: u64,
}

fn judge(header: &Parsed, steps: &[(usize, StepRec)]) -> EngineReport {
    let mut a = Adapter {
        policy: header.policy,
        reqs: BTreeMap::new(),
        running: Vec::new(),
        epochs: Vec::new(),
        plans: Vec::new(),
        violations: Vec::new(),
        next_step: None,
        last_t: None,
        finished: 0,
        preemptions: 0,
    };
    for (line, rec) in steps {
        a.step(*line, rec);
    }
    let mut violations = std::mem::take(&mut a.violations);
    violations.extend(replay(header, &a.epochs, &a.plans));
    violations.sort_by_key(|v| v.line);
    EngineReport {
        violations,
        steps: steps.len() as u64,
        requests: a.reqs.len(),
        finished: a.finished,
        preemptions: a.preemptions,
        epochs: a.epochs.len(),
    }
}

impl Adapter {
    fn report(&mut self, line: usize, kind: EngineViolationKind) {
        self.violations.push(EngineViolation { line, kind });
    }

    fn step(&mut self, line: usize, rec: &StepRec) {
        use EngineViolationKind as K;
        let expected = self.next_step.unwrap_or(rec.step);
        if rec.step != expected {
            self.report(line, K::StepOutOfOrder { step: rec.step, expected });
        }
        self.next_step = Some(rec.step + 1);
        if let Some(t) = rec.t {
            if self.last_t.is_some_and(|last| t < last) {
                self.report(line, K::TimeBackwards);
            }
            self.last_t = Some(t);
        }
        for r in &rec.new_reqs {
            self.register(line, &r.req_id.key(), r.prompt_len);
        }
        let mut plan = Plan { line, used_blocks: rec.num_used_blocks, ..Plan::default() };
        let preempted = self.preempt(line, rec, &mut plan);
        for id in rec.aborted_req_ids.iter().map(IdRepr::key) {
            self.abort(line, &id, &mut plan);
        }
        let sampled = self.schedule(line, rec, &preempted, &mut plan);
        for id in rec.finished_req_ids.iter().map(IdRepr::key) {
            self.finish(line, &id, &sampled, &mut plan);
        }
        self.plans.push(plan);
    }

    fn register(&mut self, line: usize, id: &str, prompt: u64) {
        if self.reqs.contains_key(id) {
            self.report(line, EngineViolationKind::DuplicateAdmission { id: id.to_string() });
            return;
        }
        let req = Req {
            prompt,
            outputs: 0,
            computed: 0,
            target: prompt,
            state: RState::Waiting,
            preempted: false,
            epoch: None,
        };
        self.reqs.insert(id.to_string(), req);
    }

    /// Checks a request named by `preempted`/`aborted`/`finished` is running; reports otherwise.
    fn running_req(&mut self, line: usize, id: &str) -> bool {
        let kind = match self.reqs.get(id).map(|r| r.state) {
            Some(RState::Running) => return true,
            None => EngineViolationKind::NotAdmitted { id: id.to_string() },
            Some(RState::Finished) => EngineViolationKind::ScheduledAfterFinish { id: id.into() },
            Some(RState::Waiting) => EngineViolationKind::PreemptNotRunning { id: id.into() },
        };
        self.report(line, kind);
        false
    }

    /// Ends the current residency of a running request: it leaves the running order, and its
    /// epoch (if any) is evicted in the replay.
    fn leave(&mut self, id: &str, end: EpochEnd, plan: &mut Plan) {
        self.running.retain(|r| r != id);
        let Some(req) = self.reqs.get_mut(id) else { return };
        if let Some(e) = req.epoch.take() {
            self.epochs[e].end = end;
            if end == EpochEnd::Evicted {
                plan.evict.push(e);
            } else {
                plan.finished.push(e);
            }
        }
    }

    fn preempt(&mut self, line: usize, rec: &StepRec, plan: &mut Plan) -> BTreeSet<String> {
        let mut order: Vec<String> = match &rec.running {
            Some(r) => r.iter().map(IdRepr::key).collect(),
            None => self.running.clone(),
        };
        let mut victims = Vec::new();
        for id in rec.preempted_req_ids.iter().map(IdRepr::key) {
            if self.running_req(line, &id) && !victims.contains(&id) {
                victims.push(id);
            }
        }
        // Preempt-last (vLLM pops the running list's tail): the victims, in any order, are
        // exactly the last `victims.len()` requests of the running order.
        order.retain(|r| self.reqs.get(r).is_some_and(|q| q.state == RState::Running));
        let tail = &order[order.len().saturating_sub(victims.len())..];
        let spared: Vec<String> = tail.iter().filter(|r| !victims.contains(r)).cloned().collect();
        let mut done = BTreeSet::new();
        for id in victims {
            if self.policy != EnginePolicy::Any && !tail.contains(&id) {
                let expected = spared.first().cloned().unwrap_or_default();
                self.report(line, EngineViolationKind::PreemptNotLast { id: id.clone(), expected });
            }
            self.leave(&id, EpochEnd::Evicted, plan);
            let req = self.reqs.get_mut(&id).expect("running");
            req.state = RState::Waiting;
            req.computed = 0;
            req.preempted = true;
            self.preemptions += 1;
            done.insert(id);
        }
        done
    }

    fn abort(&mut self, line: usize, id: &str, plan: &mut Plan) {
        let state = self.reqs.get(id).map(|r| r.state);
        if state == Some(RState::Waiting) {
            self.reqs.get_mut(id).expect("known").state = RState::Finished;
        } else if self.running_req(line, id) {
            self.leave(id, EpochEnd::Evicted, plan);
            self.reqs.get_mut(id).expect("known").state = RState::Finished;
        }
    }

    fn finish(&mut self, line: usize, id: &str, sampled: &BTreeSet<String>, plan: &mut Plan) {
        if !self.running_req(line, id) {
            return;
        }
        if !sampled.contains(id) {
            self.report(line, EngineViolationKind::BadFinish { id: id.to_string() });
        }
        let req = self.reqs.get_mut(id).expect("running");
        if !sampled.contains(id) {
            // Keep the replay consistent: the spec cannot complete it in this step.
            if let Some(e) = req.epoch.take() {
                plan.evict_after.push(e);
                self.epochs[e].end = EpochEnd::Evicted;
            }
        }
        req.state = RState::Finished;
        self.finished += 1;
        self.leave(id, EpochEnd::Finished, plan);
    }
}

/// What one scheduled item turned out to be.
enum ItemKind {
    Prefill,
    Decode,
}

impl Adapter {
    /// Applies `scheduled`; returns the requests that sampled a token.
    fn schedule(
        &mut self,
        line: usize,
        rec: &StepRec,
        preempted: &BTreeSet<String>,
        plan: &mut Plan,
    ) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut sampled = BTreeSet::new();
        let (mut prefill, mut decode) = (false, false);
        for s in &rec.scheduled {
            let id = s.req_id.key();
            if !seen.insert(id.clone()) {
                self.report(line, EngineViolationKind::DoubleAdvance { id });
                continue;
            }
            match self.item(line, &id, s, preempted, plan) {
                Some((ItemKind::Prefill, sample)) => {
                    prefill = true;
                    if sample {
                        sampled.insert(id);
                    }
                }
                Some((ItemKind::Decode, _)) => {
                    decode = true;
                    sampled.insert(id);
                }
                None => {}
            }
        }
        if self.policy == EnginePolicy::VllmV0 && prefill && decode {
            self.report(line, EngineViolationKind::MixedBatch);
        }
        sampled
    }

    /// Checks and applies one scheduled item; returns its kind and whether it sampled.
    fn item(
        &mut self,
        line: usize,
        id: &str,
        s: &Scheduled,
        preempted: &BTreeSet<String>,
        plan: &mut Plan,
    ) -> Option<(ItemKind, bool)> {
        use EngineViolationKind as K;
        let state = self.reqs.get(id).map(|r| r.state);
        match state {
            None => self.report(line, K::NotAdmitted { id: id.into() }),
            Some(RState::Finished) => self.report(line, K::ScheduledAfterFinish { id: id.into() }),
            _ if preempted.contains(id) => {
                self.report(line, K::ScheduledWhilePreempted { id: id.into() })
            }
            Some(RState::Waiting) => self.admit(line, id, !preempted.is_empty()),
            Some(RState::Running) => {}
        }
        if !matches!(self.reqs.get(id).map(|r| r.state), Some(RState::Running))
            || preempted.contains(id)
        {
            return None;
        }
        let (tokens, claimed) = (s.num_scheduled_tokens, s.num_computed_tokens);
        let req = self.reqs.get(id).expect("running");
        let (computed, num_tokens, was_preempted) =
            (req.computed, req.prompt + req.outputs, req.preempted);
        if claimed != computed {
            let kind = if was_preempted && computed == 0 {
                K::ProgressAfterPreemption { id: id.into(), claimed }
            } else {
                K::ComputedMismatch { id: id.into(), claimed, expected: computed }
            };
            self.report(line, kind);
            self.exclude(id, plan);
        }
        if tokens == 0 || claimed + tokens > num_tokens {
            self.report(line, K::BadChunk { id: id.into(), tokens, computed: claimed, num_tokens });
            self.exclude(id, plan);
            return None;
        }
        Some(self.advance(id, claimed, tokens, plan))
    }

    /// Moves a waiting request into the running order, opening a new epoch.
    fn admit(&mut self, line: usize, id: &str, step_preempted: bool) {
        if step_preempted && self.policy != EnginePolicy::Any {
            self.report(line, EngineViolationKind::AdmissionAfterPreemption { id: id.into() });
        }
        let epoch = self.epochs.len();
        let req = self.reqs.get_mut(id).expect("known");
        req.target = req.prompt + req.outputs;
        req.state = RState::Running;
        req.epoch = Some(epoch);
        let e = Epoch { prompt: req.target, decodes: 0, end: EpochEnd::Open, started: false };
        self.epochs.push(e);
        self.running.push(id.to_string());
    }

    /// Excludes a request's current epoch from the replay after a reported violation.
    fn exclude(&mut self, id: &str, plan: &mut Plan) {
        if let Some(req) = self.reqs.get_mut(id) {
            if let Some(e) = req.epoch.take() {
                self.epochs[e].end = EpochEnd::Evicted;
                if self.epochs[e].started {
                    plan.evict.push(e);
                }
            }
        }
    }

    /// Advances the engine model (adopting the claimed progress) and adds the spec item.
    fn advance(
        &mut self,
        id: &str,
        computed: u64,
        tokens: u64,
        plan: &mut Plan,
    ) -> (ItemKind, bool) {
        let req = self.reqs.get_mut(id).expect("running");
        let kind = if computed >= req.target { ItemKind::Decode } else { ItemKind::Prefill };
        req.computed = computed + tokens;
        let sample = req.computed == req.prompt + req.outputs;
        if sample {
            req.outputs += 1;
        }
        if let Some(e) = req.epoch {
            let spec_id = RequestId(e as u32);
            self.epochs[e].started = true;
            match kind {
                ItemKind::Decode => {
                    self.epochs[e].decodes += 1;
                    plan.items.push(BatchItem::Decode { id: spec_id });
                }
                ItemKind::Prefill => {
                    plan.items.push(BatchItem::Prefill { id: spec_id, tokens: Tokens(tokens) });
                }
            }
        }
        (kind, sample)
    }
}

/// Pass 2: replays the epochs through the spec.
fn replay(header: &Parsed, epochs: &[Epoch], plans: &[Plan]) -> Vec<EngineViolation> {
    let config = ModelConfig {
        memory: header.memory.clone(),
        step_time: StepTime::UnitRounds,
        first_token: FirstToken::SeparateDecode,
        eviction: EvictionRule::Any,
        // Each residency is its own spec request (an epoch), so nothing is kept across one.
        preemption: Preemption::Restart,
        information: Information::Hidden,
    };
    let requests = epochs
        .iter()
        .enumerate()
        .map(|(i, e)| Request {
            id: RequestId(i as u32),
            arrival_ns: Nanos::ZERO,
            prompt_tokens: Tokens(e.prompt),
            // A finished residency completes at its last decode (or at its prefill when it
            // had none); any other never completes in the replay.
            output_tokens: Tokens(e.decodes + u64::from(e.end != EpochEnd::Finished)),
            predicted_output_tokens: None,
            class: 0,
        })
        .collect();
    let instance = Instance { config, requests };
    let mut r = SpecReplay::new(instance, header.exact_usage);
    for i in 0..epochs.len() {
        let _ = r.apply(false, &Action::Arrive(RequestId(i as u32)));
    }
    for plan in plans {
        r.plan(plan);
    }
    r.violations
}

/// Pass 2 state.
struct SpecReplay {
    instance: Instance,
    unbounded: Instance,
    step_time: CompiledStepTime,
    state: State,
    exact_usage: bool,
    violations: Vec<EngineViolation>,
}

impl SpecReplay {
    fn new(instance: Instance, exact_usage: bool) -> SpecReplay {
        let mut unbounded = instance.clone();
        unbounded.config.memory.kv_capacity_tokens = u64::MAX / 4;
        let step_time = StepTime::UnitRounds.compile().expect("unit rounds compile");
        let state = State::init(&instance);
        SpecReplay { instance, unbounded, step_time, state, exact_usage, violations: Vec::new() }
    }

    /// Applies an action; a panic in the spec's arithmetic becomes a rejection, not a crash.
    fn apply(
        &mut self,
        unbounded: bool,
        action: &Action,
    ) -> Result<kvsched_spec::StepReport, Violation> {
        let instance = if unbounded { &self.unbounded } else { &self.instance };
        let (step_time, state) = (&self.step_time, &mut self.state);
        let run = std::panic::AssertUnwindSafe(|| apply_mut(instance, step_time, state, action));
        std::panic::catch_unwind(run).unwrap_or(Err(Violation::EmptyBatch))
    }

    fn report(&mut self, line: usize, kind: EngineViolationKind) {
        self.violations.push(EngineViolation { line, kind });
    }

    fn plan(&mut self, plan: &Plan) {
        let line = plan.line;
        for &e in &plan.evict {
            if let Err(v) = self.apply(false, &Action::Evict(RequestId(e as u32))) {
                self.report(line, EngineViolationKind::Spec(v));
            }
        }
        let block = self.instance.config.memory.block_size_tokens;
        let capacity = self.instance.config.memory.capacity();
        if let Some(used) = plan.used_blocks {
            if used.saturating_mul(block) > capacity.get() {
                let kind = EngineViolationKind::EngineKvOverCapacity {
                    used_blocks: used,
                    capacity_blocks: capacity.get() / block,
                };
                self.report(line, kind);
            }
        }
        if !plan.items.is_empty() {
            self.step_and_compare(plan);
        }
        for &e in &plan.evict_after {
            if let Err(v) = self.apply(false, &Action::Evict(RequestId(e as u32))) {
                self.report(line, EngineViolationKind::Spec(v));
            }
        }
    }

    fn step_and_compare(&mut self, plan: &Plan) {
        let line = plan.line;
        let block = self.instance.config.memory.block_size_tokens;
        let Some(report) = self.step(line, plan.items.clone()) else { return };
        if let (true, Some(used)) = (self.exact_usage, plan.used_blocks) {
            let replay_blocks = report.kv_peak.get() / block;
            if used != replay_blocks {
                let kind =
                    EngineViolationKind::KvUsageMismatch { reported_blocks: used, replay_blocks };
                self.report(line, kind);
            }
        }
        let mut done: Vec<usize> = report.completed.iter().map(|id| id.index()).collect();
        let mut expected = plan.finished.clone();
        done.sort_unstable();
        expected.sort_unstable();
        if done != expected {
            self.report(line, EngineViolationKind::FinishMismatch);
        }
    }

    /// Runs one spec step; memory over capacity is reported and the step retried unbounded,
    /// so the footprint keeps being tracked; any other rejection drops the offending item.
    fn step(&mut self, line: usize, mut items: Vec<BatchItem>) -> Option<kvsched_spec::StepReport> {
        let mut unbounded = false;
        while !items.is_empty() {
            match self.apply(unbounded, &Action::Step(items.clone())) {
                Ok(report) => return Some(report),
                Err(Violation::MemoryExceeded { used, capacity }) if !unbounded => {
                    let kind = EngineViolationKind::ReplayKvOverCapacity { used, capacity };
                    self.report(line, kind);
                    unbounded = true;
                }
                Err(v) => {
                    let id = match v {
                        Violation::NotPrefillable { id }
                        | Violation::NotDecodable { id }
                        | Violation::BadChunk { id, .. }
                        | Violation::DuplicateInBatch { id }
                        | Violation::UnknownRequest { id } => id,
                        _ => {
                            self.report(line, EngineViolationKind::Spec(v));
                            return None;
                        }
                    };
                    self.report(line, EngineViolationKind::Spec(v));
                    items.retain(|i| i.id() != id);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = concat!(
        r#"{"k":"engine_header","format_version":1,"engine":"vllm","policy":"POLICY","#,
        r#""kv_capacity_tokens":CAP,"block_size_tokens":1}"#
    );

    fn header(policy: &str, cap: u64) -> String {
        HEADER.replace("POLICY", policy).replace("CAP", &cap.to_string())
    }

    /// A step record: `sched` is `(id, tokens, computed)`.
    fn step(
        n: u64,
        new: &[(&str, u64)],
        sched: &[(&str, u64, u64)],
        pre: &[&str],
        fin: &[&str],
    ) -> String {
        let new: Vec<_> =
            new.iter().map(|(id, p)| serde_json::json!({"req_id": id, "prompt_len": p})).collect();
        let sched: Vec<_> = sched
            .iter()
            .map(|(id, t, c)| {
                let (tokens, computed) = (t, c);
                serde_json::json!({"req_id": id, "num_scheduled_tokens": tokens,
                    "num_computed_tokens": computed})
            })
            .collect();
        serde_json::json!({"k": "engine_step", "step": n, "new_reqs": new, "scheduled": sched,
            "preempted_req_ids": pre, "finished_req_ids": fin})
        .to_string()
    }

    fn run(lines: &[String]) -> EngineReport {
        check_engine_log(lines.join("\n").as_bytes()).expect("well-formed")
    }

    fn kinds(r: &EngineReport) -> Vec<(usize, EngineViolationKind)> {
        r.violations.iter().map(|v| (v.line, v.kind.clone())).collect()
    }

    #[test]
    fn token_granular_run_with_preemption_is_valid() {
        let log = vec![
            header("vllm-v1", 10),
            step(0, &[("x", 4), ("y", 4)], &[("x", 4, 0), ("y", 4, 0)], &[], &[]),
            step(1, &[], &[("x", 1, 4), ("y", 1, 4)], &[], &[]),
            step(2, &[], &[("x", 1, 5)], &["y"], &[]),
            step(3, &[], &[("x", 1, 6)], &[], &["x"]),
            step(4, &[], &[("y", 6, 0)], &[], &["y"]),
        ];
        let r = run(&log);
        assert!(r.is_valid(), "{:?}", r.violations);
        assert_eq!((r.steps, r.requests, r.finished, r.preemptions, r.epochs), (5, 2, 2, 1, 3));
    }

    #[test]
    fn replay_over_capacity_is_caught() {
        let log = vec![
            header("vllm-v1", 10),
            step(0, &[("x", 6), ("y", 6)], &[("x", 6, 0), ("y", 6, 0)], &[], &[]),
        ];
        let r = run(&log);
        let capacity = Tokens(10);
        let kind = EngineViolationKind::ReplayKvOverCapacity { used: Tokens(12), capacity };
        assert_eq!(kinds(&r), vec![(2, kind)]);
    }

    #[test]
    fn v0_mixing_is_caught_but_allowed_in_v1() {
        let mixed = |policy| {
            vec![
                header(policy, 100),
                step(0, &[("x", 4)], &[("x", 4, 0)], &[], &[]),
                step(1, &[("y", 4)], &[("x", 1, 4), ("y", 4, 0)], &[], &[]),
            ]
        };
        assert!(run(&mixed("vllm-v1")).is_valid());
        assert_eq!(kinds(&run(&mixed("vllm-v0"))), vec![(3, EngineViolationKind::MixedBatch)]);
    }

    #[test]
    fn scheduling_after_finish_or_before_admission_is_caught() {
        let log = vec![
            header("any", 100),
            step(0, &[("x", 4)], &[("x", 4, 0), ("z", 1, 0)], &[], &["x"]),
            step(1, &[], &[("x", 1, 4)], &[], &[]),
        ];
        let k = kinds(&run(&log));
        assert_eq!(k[0], (2, EngineViolationKind::NotAdmitted { id: "z".into() }));
        assert_eq!(k[1], (3, EngineViolationKind::ScheduledAfterFinish { id: "x".into() }));
    }

    #[test]
    fn finish_without_sampling_and_bad_chunks_are_caught() {
        let log = vec![
            header("any", 100),
            step(0, &[("x", 4)], &[("x", 2, 0)], &[], &["x"]),
            step(1, &[("y", 4)], &[("y", 5, 0)], &[], &[]),
        ];
        let k = kinds(&run(&log));
        assert_eq!(k[0], (2, EngineViolationKind::BadFinish { id: "x".into() }));
        let chunk =
            EngineViolationKind::BadChunk { id: "y".into(), tokens: 5, computed: 0, num_tokens: 4 };
        assert_eq!(k[1], (3, chunk));
        assert_eq!(k.len(), 2, "{k:?}");
    }

    #[test]
    fn malformed_input_names_the_line() {
        let err = |text: &str| check_engine_log(text.as_bytes()).unwrap_err();
        let h = header("vllm-v1", 10);
        assert_eq!(err(&format!("{h}\n{{oops")).line, 2);
        assert_eq!(err(&format!("{h}\n{h}")).kind, TraceErrorKind::DuplicateHeader);
        assert_eq!(err(&step(0, &[], &[], &[], &[])).kind, TraceErrorKind::MissingHeader);
        assert!(matches!(err(&header("fifo", 10)).kind, TraceErrorKind::BadConfig(_)));
        assert!(matches!(err(&header("vllm-v1", 0)).kind, TraceErrorKind::BadConfig(_)));
        let v2 = h.replace("\"format_version\":1", "\"format_version\":2");
        assert_eq!(err(&v2).kind, TraceErrorKind::Version(2));
        let extra = format!("{h}\n{}", step(0, &[], &[], &[], &[]).replace("\"step\"", "\"stpe\""));
        assert_eq!(err(&extra).line, 2);
    }

    #[test]
    fn detects_the_format() {
        assert!(is_engine_log(format!("\n{}", header("any", 1)).as_bytes()));
        assert!(!is_engine_log(br#"{"k":"header"}"#));
        assert!(!is_engine_log(b"\xff garbage"));
    }
}
