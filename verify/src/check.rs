//! `check_trace`: replays a JSON-lines trace (`spec/TRACE.md`) against `kvsched_spec::model`
//! alone and reports every violation it finds, each with its line number.
//!
//! # Method
//! The checker reads the whole trace first. The `arrive` records give the ground truth of every
//! request (prompt, output, arrival time), from which it builds a spec [`Instance`] (a request
//! whose `arrive` record is missing gets a placeholder, so that ids stay dense). It then replays
//! the records in order through [`kvsched_spec::apply_mut`], starting from
//! [`State::init`], and compares what the trace claims (`t`, `dur`, `kv`, `done`, `completed`)
//! with what the spec computes. Memory is recomputed from the spec state, never taken from the
//! trace.
//!
//! After a violation the checker resynchronises instead of stopping: the clock is reset to the
//! trace's `t` (and to `t + dur` after a step whose duration is wrong), a batch the spec rejects
//! is retried without the offending item (or, for memory, against an instance of unlimited
//! capacity, so the footprint keeps being tracked), and an arrival or eviction the spec rejects
//! is skipped. A single corruption can therefore produce a few follow-on reports; the first one
//! is at the corrupted line.
//!
//! # What a pass proves, and what it does not
//! A pass means: this one trace is a feasible run of the model (every action is allowed by the
//! spec in the state reached, memory never exceeds capacity, durations are the step-time
//! model's, no request is lost, duplicated or advanced twice per step, and progress is lost on
//! every eviction). It says nothing about optimality or about other seeds. On information: the
//! only use of hidden information a trace can show is a decision that names a request before
//! its arrival was delivered. A trace does not record what the policy *read*, so under
//! [`kvsched_spec::Information::Hidden`] a policy that peeked at true output lengths and made
//! otherwise legal decisions passes; that property is enforced by the type of the policy's view
//! (`RequestView`), not by this checker. Time to first token is not in the trace and is not
//! checked.

use kvsched_spec::model::StepReport;
use kvsched_spec::trace::{TraceRecord, TRACE_FORMAT_VERSION};
use kvsched_spec::{
    apply_mut, Action, BatchItem, CompiledStepTime, Instance, ModelConfig, Nanos, Phase, Request,
    RequestId, State, Tokens, Violation,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::BufRead;

/// Why a trace could not be read at all (as opposed to a trace that reads but breaks a rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceError {
    /// 1-based line number (0 when the input could not be read before any line).
    pub line: usize,
    /// What was wrong.
    pub kind: TraceErrorKind,
}

/// The kinds of malformed input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceErrorKind {
    /// The input could not be read (I/O error or invalid UTF-8).
    Io(String),
    /// The line is not a JSON object.
    Json(String),
    /// The object has no string field `k`.
    MissingKind,
    /// `k` names no record kind.
    UnknownKind(String),
    /// A known kind whose fields do not match the format.
    BadRecord(String),
    /// The first record is not a header (or the input is empty).
    MissingHeader,
    /// A second header.
    DuplicateHeader,
    /// The header's `format_version` is not the one this checker reads.
    Version(u64),
    /// The header's configuration is invalid.
    BadConfig(String),
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: ", self.line)?;
        match &self.kind {
            TraceErrorKind::Io(e) => write!(f, "cannot read: {e}"),
            TraceErrorKind::Json(e) => write!(f, "expected a JSON object: {e}"),
            TraceErrorKind::MissingKind => write!(f, "expected a string field \"k\""),
            TraceErrorKind::UnknownKind(k) => write!(
                f,
                "unknown record kind {k:?}; expected header, arrive, evict, step, idle or end"
            ),
            TraceErrorKind::BadRecord(e) => write!(f, "malformed record: {e}"),
            TraceErrorKind::MissingHeader => write!(f, "expected a header record first"),
            TraceErrorKind::DuplicateHeader => write!(f, "expected one header only, found another"),
            TraceErrorKind::Version(v) => {
                write!(f, "format_version {v}; expected {TRACE_FORMAT_VERSION}")
            }
            TraceErrorKind::BadConfig(e) => write!(f, "invalid header config: {e}"),
        }
    }
}

impl std::error::Error for TraceError {}

/// A rule the trace breaks, found at one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceViolation {
    /// 1-based line number of the record.
    pub line: usize,
    /// What is wrong.
    pub kind: ViolationKind,
}

impl fmt::Display for TraceViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.kind)
    }
}

/// What a trace can get wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViolationKind {
    /// The spec rejects the recorded action (memory, duplicate in a batch, bad chunk, ...).
    Spec(Violation),
    /// A decision names a request whose arrival had not been delivered (hidden information).
    BeforeArrival {
        /// The request.
        id: RequestId,
    },
    /// A request continues (decode) after an eviction without being prefilled again.
    ProgressAfterEviction {
        /// The request.
        id: RequestId,
    },
    /// The `kv` the trace claims exceeds capacity.
    KvOverCapacity {
        /// Claimed footprint.
        claimed: Tokens,
        /// Capacity.
        capacity: Tokens,
    },
    /// The `kv` the trace claims is not the spec's footprint.
    KvMismatch {
        /// Claimed by the trace.
        claimed: Tokens,
        /// Computed from the spec state.
        expected: Tokens,
    },
    /// `dur` is not the step-time model's duration (summed over `repeat`).
    DurationMismatch {
        /// Claimed.
        claimed: Nanos,
        /// Spec.
        expected: Nanos,
    },
    /// The record starts before the spec's current time.
    TimeBackwards {
        /// Record time.
        t: Nanos,
        /// Spec time.
        now: Nanos,
    },
    /// The record starts after the spec's current time (time passed without a record).
    TimeGap {
        /// Record time.
        t: Nanos,
        /// Spec time.
        now: Nanos,
    },
    /// `done` lists other requests than the spec completes.
    DoneMismatch {
        /// Claimed, sorted.
        claimed: Vec<RequestId>,
        /// Spec, sorted.
        expected: Vec<RequestId>,
    },
    /// `repeat` is 0, or above 1 for a batch with a prefill.
    BadRepeat {
        /// The value.
        repeat: u64,
    },
    /// A request arrives a second time.
    DuplicateArrival {
        /// The request.
        id: RequestId,
    },
    /// An `arrive` record claims an arrival time after its delivery time `t`.
    ArrivalAfterDelivery {
        /// The request.
        id: RequestId,
    },
    /// A request has no `arrive` record (its id is skipped, or the header counts it).
    MissingArrival {
        /// The request.
        id: RequestId,
    },
    /// An arrived request never completed by the end of the trace.
    Lost {
        /// The request.
        id: RequestId,
    },
    /// The `end` record's `completed` disagrees with the spec.
    CompletedMismatch {
        /// Claimed.
        claimed: u64,
        /// Spec.
        expected: u64,
    },
    /// Replaying the record overflows the spec's 64-bit arithmetic (time or tokens).
    Overflow,
    /// A record after `end`.
    AfterEnd,
    /// The trace has no `end` record (truncated).
    MissingEnd,
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ViolationKind as K;
        match self {
            K::Spec(v) => write!(f, "spec violation: {v}"),
            K::BeforeArrival { id } => {
                write!(f, "decision names {id} before its arrival (hidden information)")
            }
            K::ProgressAfterEviction { id } => {
                write!(f, "{id} kept its progress across an eviction")
            }
            K::KvOverCapacity { claimed, capacity } => {
                write!(f, "kv {claimed} exceeds capacity {capacity}")
            }
            K::KvMismatch { claimed, expected } => {
                write!(f, "kv {claimed} but the spec's footprint is {expected}")
            }
            K::DurationMismatch { claimed, expected } => {
                write!(f, "dur {claimed} but the step-time model gives {expected}")
            }
            K::TimeBackwards { t, now } => write!(f, "time goes backwards: t {t} < now {now}"),
            K::TimeGap { t, now } => write!(f, "time jumps: t {t} > now {now} with no record"),
            K::DoneMismatch { claimed, expected } => {
                write!(f, "done {claimed:?} but the spec completes {expected:?}")
            }
            K::BadRepeat { repeat } => {
                write!(f, "repeat {repeat}: expected >= 1, and 1 when a prefill is in the batch")
            }
            K::DuplicateArrival { id } => write!(f, "{id} arrives twice (duplicated request)"),
            K::ArrivalAfterDelivery { id } => {
                write!(f, "{id} delivered before its arrival time")
            }
            K::MissingArrival { id } => write!(f, "{id} has no arrive record (lost request)"),
            K::Lost { id } => write!(f, "{id} arrived but never completed (lost request)"),
            K::CompletedMismatch { claimed, expected } => {
                write!(f, "end claims {claimed} completed, the spec completed {expected}")
            }
            K::Overflow => write!(f, "replay overflows 64-bit time or token arithmetic"),
            K::AfterEnd => write!(f, "record after the end record"),
            K::MissingEnd => write!(f, "no end record (truncated trace)"),
        }
    }
}

/// The result of checking a well-formed trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// Every violation, in line order.
    pub violations: Vec<TraceViolation>,
    /// Records read (header included).
    pub records: usize,
    /// Requests in the replayed instance.
    pub requests: usize,
    /// Iterations replayed (a step record with `repeat = k` counts `k`).
    pub steps: u64,
    /// Requests the spec completed.
    pub completed: u64,
}

impl CheckReport {
    /// Whether the trace is valid.
    pub fn is_valid(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Reads and checks a trace. `Err` only for malformed input; rule violations are in the report.
pub fn check_trace(reader: impl BufRead) -> Result<CheckReport, TraceError> {
    let records = parse_trace(reader)?;
    check_numbered(&records)
}

/// Replays parsed records, numbered `1..` as if each were one line.
pub fn check_records(records: &[TraceRecord]) -> Result<CheckReport, TraceError> {
    let numbered: Vec<(usize, TraceRecord)> =
        records.iter().cloned().enumerate().map(|(i, r)| (i + 1, r)).collect();
    check_numbered(&numbered)
}

const KINDS: [&str; 6] = ["header", "arrive", "evict", "step", "idle", "end"];

/// Parses a trace into `(line number, record)` pairs. Blank lines are skipped.
pub fn parse_trace(reader: impl BufRead) -> Result<Vec<(usize, TraceRecord)>, TraceError> {
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line_no = i + 1;
        let text = line
            .map_err(|e| TraceError { line: line_no, kind: TraceErrorKind::Io(e.to_string()) })?;
        if text.trim().is_empty() {
            continue;
        }
        let record = match fast_record(&text) {
            Some(record) => record,
            None => parse_record(&text),
        };
        let record = record.map_err(|kind| TraceError { line: line_no, kind })?;
        out.push((line_no, record));
    }
    Ok(out)
}

/// The common case, a well-formed object that is not the header, parsed straight into its
/// record without the intermediate `Value` of [`parse_record`] (the checker's hot path inside
/// `kvsched conform`). Whatever it accepts, [`parse_record`] accepts with the same result (an
/// internally tagged enum reads a JSON array too, hence the `{`; a duplicate key fails here,
/// where the `Value` keeps the last one); `None` sends everything else there, for the precise
/// error.
fn fast_record(text: &str) -> Option<Result<TraceRecord, TraceErrorKind>> {
    if !text.trim_start().starts_with('{') {
        return None;
    }
    match serde_json::from_str::<TraceRecord>(text) {
        Ok(TraceRecord::Header { .. }) | Err(_) => None,
        Ok(record) => Some(match out_of_range(&record) {
            Some(msg) => Err(TraceErrorKind::BadRecord(msg)),
            None => Ok(record),
        }),
    }
}

/// One non-blank line, every check in order: JSON, an object, a known kind, the header's
/// version, the record's fields, their ranges.
fn parse_record(text: &str) -> Result<TraceRecord, TraceErrorKind> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| TraceErrorKind::Json(e.to_string()))?;
    let Some(obj) = value.as_object() else {
        return Err(TraceErrorKind::Json("not an object".into()));
    };
    let Some(k) = obj.get("k").and_then(|k| k.as_str()) else {
        return Err(TraceErrorKind::MissingKind);
    };
    if !KINDS.contains(&k) {
        return Err(TraceErrorKind::UnknownKind(k.to_string()));
    }
    if k == "header" {
        let version = obj.get("format_version").and_then(|v| v.as_u64());
        match version {
            Some(v) if v == u64::from(TRACE_FORMAT_VERSION) => {}
            Some(v) => return Err(TraceErrorKind::Version(v)),
            None => {
                let msg = "expected an integer field \"format_version\"".to_string();
                return Err(TraceErrorKind::BadRecord(msg));
            }
        }
    }
    let record: TraceRecord =
        serde_json::from_value(value).map_err(|e| TraceErrorKind::BadRecord(e.to_string()))?;
    if let Some(msg) = out_of_range(&record) {
        return Err(TraceErrorKind::BadRecord(msg));
    }
    Ok(record)
}

/// Largest token count a record may carry (2^32), so that replay arithmetic cannot overflow.
pub const MAX_TOKENS: u64 = 1 << 32;
/// Largest time a record may carry (2^62 ns, about 146 years).
pub const MAX_NANOS: u64 = 1 << 62;

/// Names the first field out of range ([`MAX_TOKENS`], [`MAX_NANOS`], `repeat` <= 2^32).
fn out_of_range(record: &TraceRecord) -> Option<String> {
    let tok = |name: &str, v: Tokens| {
        (v.get() > MAX_TOKENS).then(|| format!("{name} {v}: expected at most {MAX_TOKENS}"))
    };
    let ns = |name: &str, v: Nanos| {
        (v.get() > MAX_NANOS).then(|| format!("{name} {v}: expected at most {MAX_NANOS}"))
    };
    match record {
        TraceRecord::Header { .. } => None,
        TraceRecord::Arrive { t, arrival, prompt, output, .. } => ns("t", *t)
            .or_else(|| ns("arrival", *arrival))
            .or_else(|| tok("prompt", *prompt))
            .or_else(|| tok("output", *output)),
        TraceRecord::Evict { t, .. } | TraceRecord::End { t, .. } => ns("t", *t),
        TraceRecord::Idle { t, until } => ns("t", *t).or_else(|| ns("until", *until)),
        TraceRecord::Step { t, dur, repeat, items, kv, .. } => {
            let chunk = items.iter().find_map(|i| match i {
                BatchItem::Prefill { tokens, .. } => tok("tokens", *tokens),
                BatchItem::Decode { .. } => None,
            });
            ns("t", *t)
                .or_else(|| ns("dur", *dur))
                .or_else(|| tok("kv", *kv))
                .or(chunk)
                .or_else(|| (*repeat > MAX_TOKENS).then(|| format!("repeat {repeat}: too large")))
        }
    }
}

/// Replays `(line number, record)` pairs; the first must be the header.
pub fn check_numbered(records: &[(usize, TraceRecord)]) -> Result<CheckReport, TraceError> {
    let Some((first_line, TraceRecord::Header { format_version, config, requests, .. })) =
        records.first()
    else {
        let line = records.first().map_or(1, |(l, _)| *l);
        return Err(TraceError { line, kind: TraceErrorKind::MissingHeader });
    };
    let header_err = |kind| TraceError { line: *first_line, kind };
    if *format_version != TRACE_FORMAT_VERSION {
        return Err(header_err(TraceErrorKind::Version(u64::from(*format_version))));
    }
    config.memory.validate().map_err(|e| header_err(TraceErrorKind::BadConfig(e)))?;
    let step_time =
        config.step_time.compile().map_err(|e| header_err(TraceErrorKind::BadConfig(e)))?;
    if let Some((line, _)) =
        records[1..].iter().find(|(_, r)| matches!(r, TraceRecord::Header { .. }))
    {
        return Err(TraceError { line: *line, kind: TraceErrorKind::DuplicateHeader });
    }
    let mut replay = Replay::new(config, step_time, *requests, &records[1..]);
    for (line, record) in &records[1..] {
        replay.record(*line, record);
    }
    if !replay.ended {
        let line = records.last().map_or(1, |(l, _)| l + 1);
        replay.report(line, ViolationKind::MissingEnd);
    }
    Ok(CheckReport {
        violations: replay.violations,
        records: records.len(),
        requests: replay.instance.requests.len(),
        steps: replay.state.steps,
        completed: replay.state.completed,
    })
}

/// The replay state.
struct Replay {
    instance: Instance,
    /// The same requests with unlimited capacity, to keep tracking memory after an overflow.
    unbounded: Instance,
    step_time: CompiledStepTime,
    state: State,
    /// Ids with no `arrive` record (placeholders in the instance).
    placeholders: BTreeSet<RequestId>,
    /// Placeholders already reported.
    reported_missing: BTreeSet<RequestId>,
    /// Requests evicted and not prefilled since.
    evicted: BTreeSet<RequestId>,
    /// Ids whose `arrive` record was replayed.
    arrived: BTreeSet<RequestId>,
    /// End time claimed by the previous step when its `dur` was reported wrong.
    claimed_end: Option<Nanos>,
    ended: bool,
    violations: Vec<TraceViolation>,
}

/// Builds the instance from the `arrive` records (the first one per id).
fn build_instance(
    config: &ModelConfig,
    header_requests: Option<u64>,
    records: &[(usize, TraceRecord)],
) -> (Instance, BTreeSet<RequestId>) {
    let mut known: BTreeMap<u32, Request> = BTreeMap::new();
    for (_, r) in records {
        if let TraceRecord::Arrive { id, arrival, prompt, output, predicted, class, .. } = r {
            known.entry(id.0).or_insert(Request {
                id: *id,
                arrival_ns: *arrival,
                prompt_tokens: *prompt,
                output_tokens: *output,
                predicted_output_tokens: *predicted,
                class: *class,
            });
        }
    }
    let n = match header_requests {
        // Ids beyond the header's count are rejected as unknown when replayed; cap the size so
        // that a corrupt count cannot make the checker allocate without bound.
        Some(n) => n.min(known.len() as u64 + 100_000) as usize,
        None => known.keys().next_back().map_or(0, |&m| m as usize + 1).min(known.len() + 100_000),
    };
    let mut requests = Vec::with_capacity(n);
    let mut placeholders = BTreeSet::new();
    for i in 0..n {
        match known.get(&(i as u32)) {
            Some(r) => requests.push(r.clone()),
            None => {
                // A placeholder becomes due together with the next known request, or never.
                let next = known.range(i as u32..).next().map(|(_, r)| r.arrival_ns);
                placeholders.insert(RequestId(i as u32));
                requests.push(Request {
                    id: RequestId(i as u32),
                    arrival_ns: next.unwrap_or(Nanos(u64::MAX)),
                    prompt_tokens: Tokens(1),
                    output_tokens: Tokens(1),
                    predicted_output_tokens: None,
                    class: 0,
                });
            }
        }
    }
    (Instance { config: config.clone(), requests }, placeholders)
}

impl Replay {
    fn new(
        config: &ModelConfig,
        step_time: CompiledStepTime,
        header_requests: Option<u64>,
        records: &[(usize, TraceRecord)],
    ) -> Replay {
        let (instance, placeholders) = build_instance(config, header_requests, records);
        let mut unbounded = instance.clone();
        unbounded.config.memory.kv_capacity_tokens = u64::MAX / 4;
        let state = State::init(&instance);
        Replay {
            instance,
            unbounded,
            step_time,
            state,
            placeholders,
            reported_missing: BTreeSet::new(),
            evicted: BTreeSet::new(),
            arrived: BTreeSet::new(),
            claimed_end: None,
            ended: false,
            violations: Vec::new(),
        }
    }

    /// Applies an action through the spec. Arithmetic overflow in the spec (e.g. a step-time
    /// model whose durations overflow 64-bit nanoseconds) becomes [`ViolationKind::Overflow`]
    /// rather than a panic of the checker; the state is left as it was.
    fn apply(&mut self, unbounded: bool, action: &Action) -> Result<StepReport, ReplayError> {
        let instance = if unbounded { &self.unbounded } else { &self.instance };
        let (step_time, state) = (&self.step_time, &mut self.state);
        let run = std::panic::AssertUnwindSafe(|| apply_mut(instance, step_time, state, action));
        match std::panic::catch_unwind(run) {
            Ok(Ok(report)) => Ok(report),
            Ok(Err(v)) => Err(ReplayError::Spec(v)),
            Err(_) => Err(ReplayError::Overflow),
        }
    }

    fn report(&mut self, line: usize, kind: ViolationKind) {
        self.violations.push(TraceViolation { line, kind });
    }

    /// Compares the record's start time with the spec's clock, then adopts the record's. A
    /// record that starts where the previous step's (already reported) wrong `dur` ended is
    /// not reported again.
    fn sync_time(&mut self, line: usize, t: Nanos) {
        let now = self.state.time_ns;
        let explained = self.claimed_end.take() == Some(t);
        if t < now && !explained {
            self.report(line, ViolationKind::TimeBackwards { t, now });
        } else if t > now && !explained {
            self.report(line, ViolationKind::TimeGap { t, now });
        }
        self.state.time_ns = t;
    }

    fn record(&mut self, line: usize, record: &TraceRecord) {
        if self.ended {
            self.report(line, ViolationKind::AfterEnd);
            return;
        }
        match record {
            TraceRecord::Header { .. } => unreachable!("a second header is a TraceError"),
            TraceRecord::Arrive { t, id, arrival, .. } => self.arrive(line, *t, *id, *arrival),
            TraceRecord::Evict { t, id } => self.evict(line, *t, *id),
            TraceRecord::Step { t, dur, repeat, items, kv, done } => {
                self.sync_time(line, *t);
                let claim = StepClaim { t: *t, dur: *dur, repeat: *repeat, kv: *kv, done };
                self.step(line, items, &claim);
            }
            TraceRecord::Idle { t, until } => {
                self.sync_time(line, *t);
                let action = Action::Idle { until_ns: *until };
                if let Err(e) = self.apply(false, &action) {
                    self.report(line, e.kind());
                    self.state.time_ns = (*until).max(*t);
                }
            }
            TraceRecord::End { t, completed } => self.end(line, *t, *completed),
        }
    }

    fn arrive(&mut self, line: usize, t: Nanos, id: RequestId, arrival: Nanos) {
        self.sync_time(line, t);
        if !self.arrived.insert(id) {
            return self.report(line, ViolationKind::DuplicateArrival { id });
        }
        if arrival > t {
            self.report(line, ViolationKind::ArrivalAfterDelivery { id });
        }
        if id.index() >= self.instance.requests.len() {
            return self.report(line, ViolationKind::Spec(Violation::UnknownRequest { id }));
        }
        // Deliver the placeholders that precede this request: their records are missing.
        while self.state.next_arrival < id.index() {
            let missing = RequestId(self.state.next_arrival as u32);
            if !self.placeholders.contains(&missing) {
                break;
            }
            if self.reported_missing.insert(missing) {
                self.report(line, ViolationKind::MissingArrival { id: missing });
            }
            // Due no later than this request; deliver it at its own arrival time if later.
            let saved = self.state.time_ns;
            let due = self.instance.requests[missing.index()].arrival_ns;
            self.state.time_ns = saved.max(due);
            let action = Action::Arrive(missing);
            let ok = self.apply(false, &action);
            self.state.time_ns = saved;
            if ok.is_err() {
                break;
            }
        }
        let action = Action::Arrive(id);
        if let Err(e) = self.apply(false, &action) {
            self.report(line, e.kind());
        }
    }

    fn evict(&mut self, line: usize, t: Nanos, id: RequestId) {
        self.sync_time(line, t);
        if let Some(r) = self.state.requests.get(id.index()) {
            if r.phase == Phase::Pending || self.placeholders.contains(&id) {
                return self.report(line, ViolationKind::BeforeArrival { id });
            }
        }
        let action = Action::Evict(id);
        match self.apply(false, &action) {
            Ok(_) => {
                self.evicted.insert(id);
            }
            Err(e) => self.report(line, e.kind()),
        }
    }

    fn end(&mut self, line: usize, t: Nanos, completed: u64) {
        self.sync_time(line, t);
        self.ended = true;
        if completed != self.state.completed {
            let expected = self.state.completed;
            self.report(line, ViolationKind::CompletedMismatch { claimed: completed, expected });
        }
        for i in 0..self.state.requests.len() {
            let id = RequestId(i as u32);
            if self.placeholders.contains(&id) {
                if self.reported_missing.insert(id) {
                    self.report(line, ViolationKind::MissingArrival { id });
                }
            } else if !matches!(self.state.requests[i].phase, Phase::Done { .. }) {
                self.report(line, ViolationKind::Lost { id });
            }
        }
    }
}

/// Why the spec did not apply an action.
enum ReplayError {
    Spec(Violation),
    Overflow,
}

impl ReplayError {
    fn kind(self) -> ViolationKind {
        match self {
            ReplayError::Spec(v) => ViolationKind::Spec(v),
            ReplayError::Overflow => ViolationKind::Overflow,
        }
    }
}

/// What a step record claims.
struct StepClaim<'a> {
    t: Nanos,
    dur: Nanos,
    repeat: u64,
    kv: Tokens,
    done: &'a [RequestId],
}

impl Replay {
    fn step(&mut self, line: usize, items: &[BatchItem], claim: &StepClaim<'_>) {
        let has_prefill = items.iter().any(|i| matches!(i, BatchItem::Prefill { .. }));
        if claim.repeat == 0 || (claim.repeat > 1 && has_prefill) {
            self.report(line, ViolationKind::BadRepeat { repeat: claim.repeat });
        }
        let iterations = if has_prefill { 1 } else { claim.repeat.max(1) };
        let mut items = items.to_vec();
        // A request with no arrive record at all: the decision used information it never had.
        let unseen: Vec<RequestId> =
            items.iter().map(BatchItem::id).filter(|id| self.placeholders.contains(id)).collect();
        for id in unseen {
            self.report(line, ViolationKind::BeforeArrival { id });
            items.retain(|i| i.id() != id);
        }
        let mut duration = Nanos::ZERO;
        let mut done = Vec::new();
        let mut last: Option<StepReport> = None;
        for _ in 0..iterations {
            let before = self.violations.len();
            match self.step_once(line, &mut items) {
                Some(report) => {
                    duration += report.duration_ns;
                    done.extend_from_slice(&report.completed);
                    last = Some(report);
                }
                None => last = None,
            }
            if self.violations.len() > before || last.is_none() {
                break;
            }
        }
        self.compare_step(line, claim, last.as_ref(), duration, done);
    }

    fn compare_step(
        &mut self,
        line: usize,
        claim: &StepClaim<'_>,
        last: Option<&StepReport>,
        duration: Nanos,
        mut done: Vec<RequestId>,
    ) {
        let capacity = self.instance.config.memory.capacity();
        if claim.kv > capacity {
            self.report(line, ViolationKind::KvOverCapacity { claimed: claim.kv, capacity });
        }
        let Some(last) = last else {
            // Nothing replayed: the claims cannot be compared. Adopt the trace's clock.
            self.state.time_ns = claim.t.checked_add(claim.dur).unwrap_or(Nanos(u64::MAX));
            return;
        };
        if claim.kv != last.kv_peak {
            let expected = last.kv_peak;
            self.report(line, ViolationKind::KvMismatch { claimed: claim.kv, expected });
        }
        if claim.dur != duration {
            self.report(
                line,
                ViolationKind::DurationMismatch { claimed: claim.dur, expected: duration },
            );
            self.claimed_end = claim.t.checked_add(claim.dur);
        }
        let mut claimed = claim.done.to_vec();
        claimed.sort();
        done.sort();
        if claimed != done {
            self.report(line, ViolationKind::DoneMismatch { claimed, expected: done });
        }
    }

    /// Runs one iteration; on a rejection, reports it, repairs the batch and retries.
    fn step_once(&mut self, line: usize, items: &mut Vec<BatchItem>) -> Option<StepReport> {
        let mut unbounded = false;
        for _ in 0..=items.len() + 1 {
            let action = Action::Step(items.clone());
            let violation = match self.apply(unbounded, &action) {
                Ok(report) => {
                    for item in items.iter() {
                        if matches!(item, BatchItem::Prefill { .. }) {
                            self.evicted.remove(&item.id());
                        }
                    }
                    return Some(report);
                }
                Err(ReplayError::Spec(v)) => v,
                Err(ReplayError::Overflow) => {
                    self.report(line, ViolationKind::Overflow);
                    return None;
                }
            };
            let kind = self.classify(&violation);
            self.report(line, kind);
            match violation {
                Violation::MemoryExceeded { .. } if !unbounded => unbounded = true,
                Violation::DuplicateInBatch { id } => {
                    let first = items.iter().position(|i| i.id() == id)?;
                    let dup = items[first + 1..].iter().position(|i| i.id() == id)?;
                    items.remove(first + 1 + dup);
                }
                Violation::UnknownRequest { id }
                | Violation::NotArrived { id }
                | Violation::NotPrefillable { id }
                | Violation::NotDecodable { id }
                | Violation::BadChunk { id, .. } => items.retain(|i| i.id() != id),
                _ => return None,
            }
            if items.is_empty() {
                return None;
            }
        }
        None
    }

    /// Names a rejection more precisely when the trace shows why it happened.
    fn classify(&self, v: &Violation) -> ViolationKind {
        match *v {
            Violation::NotArrived { id } => ViolationKind::BeforeArrival { id },
            Violation::NotDecodable { id } if self.evicted.contains(&id) => {
                ViolationKind::ProgressAfterEviction { id }
            }
            _ => ViolationKind::Spec(v.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path agrees with the full parse on every line it takes, and takes the
    /// ordinary records (so the agreement is not vacuous); odd lines all go to the full parse.
    #[test]
    fn fast_path_agrees_with_the_full_parse() {
        let ordinary = [
            r#"{"k":"arrive","t":5,"id":0,"arrival":5,"prompt":3,"output":2}"#,
            concat!(
                r#"{"k":"arrive","t":5,"id":1,"arrival":4,"prompt":3,"output":2,"predicted":7,"#,
                r#""class":2}"#
            ),
            concat!(
                r#"{"k":"step","t":5,"dur":10,"repeat":1,"#,
                r#""items":[{"prefill":{"id":0,"tokens":3}},{"decode":{"id":1}}],"kv":6,"done":[]}"#
            ),
            r#"{"k":"evict","t":15,"id":1}"#,
            r#"{"k":"idle","t":15,"until":40}"#,
            r#"{"k":"end","t":40,"completed":2}"#,
            r#" {"t":40,"completed":2,"k":"end"}"#,
        ];
        let odd = [
            r#"["end",40,2]"#,
            r#"{"k":"end","k":"idle","t":15,"until":40}"#,
            r#"{"k":"end","t":40,"completed":2,"extra":1}"#,
            r#"{"k":"end","t":40.0,"completed":2}"#,
            r#"{"k":"end","t":-1,"completed":2}"#,
            r#"{"k":"end","t":4611686018427387905,"completed":2}"#,
            r#"{"k":"evict","t":1,"id":4294967296}"#,
            r#"{"k":"nope","t":1}"#,
            r#"{"t":1}"#,
            r#"{"k":"header","format_version":1,"scheduler":"x"}"#,
            r#"{"k":"header","format_version":2}"#,
            r#"{"k":"end","t":40,"completed":2} x"#,
            r#"{"k":"end""#,
            "[]",
            "7",
        ];
        let fast = fast_record;
        let full = parse_record;
        for l in ordinary {
            assert_eq!(fast(l), Some(full(l)), "{l}");
            assert!(full(l).is_ok(), "{l}");
        }
        for l in odd {
            if let Some(r) = fast(l) {
                assert_eq!(r, full(l), "{l}");
            }
        }
        // Out of range is a record the fast path parses and rejects, as the full parse does.
        let far = r#"{"k":"end","t":4611686018427387905,"completed":2}"#;
        assert!(fast(far).is_some_and(|r| r.is_err()));
        assert!(odd.iter().filter(|l| fast(l).is_none()).count() >= 12);
    }
}
