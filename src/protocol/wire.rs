//! The scheduler wire protocol, version [`PROTOCOL_VERSION`] (`spec/PROTOCOL.md`): message
//! types in both directions, the conversion of a [`View`] into a `decide` message, and the
//! parsers, which return an error for any input and never panic.
//!
//! One JSON object per line. The harness writes [`ToScheduler`] messages to the scheduler's
//! stdin; the scheduler writes [`FromScheduler`] messages to its stdout.

use crate::sim::{Plan, Repeat, View};
use kvsched_spec::{
    BatchItem, Information, ModelConfig, OutputHint, RequestId, RequestView, Tokens,
};
use serde::{Deserialize, Serialize};

/// The protocol's version; a scheduler announces the version it speaks in `ready`.
pub const PROTOCOL_VERSION: u32 = 1;
/// The protocol's name, sent in `hello`.
pub const PROTOCOL_NAME: &str = "kvsched-sched";
/// The longest line either side accepts (bytes).
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// How the harness sends views: the whole view every time, or only what changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Views {
    /// Every `decide` carries the waiting and running lists.
    #[default]
    Full,
    /// Every `decide` carries arrivals, completions and `ran`; the scheduler tracks the rest.
    Delta,
}

/// Harness to scheduler.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToScheduler {
    /// First message of a session.
    Hello(Hello),
    /// A decision point.
    Decide(Decide),
    /// The run finished normally; the scheduler should exit 0.
    End(End),
    /// The harness rejected a message or a decision; the run is over.
    Error(ErrorMsg),
}

/// The handshake.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_NAME`].
    pub protocol: String,
    /// [`PROTOCOL_VERSION`].
    pub version: u32,
    /// Scenario label (informational).
    pub scenario: String,
    /// Memory, step time, first-token rule, eviction rule and the information set offered.
    pub config: ModelConfig,
    /// Capacity in tokens, rounded down to whole blocks.
    pub capacity_tokens: u64,
    /// Tokens the advisory watermark keeps free (whole blocks).
    pub watermark_tokens: u64,
}

/// A request as the scheduler may see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Req {
    /// Id (dense, in arrival order).
    pub id: u32,
    /// Arrival time (ns).
    pub arrival: u64,
    /// Prompt tokens.
    pub prompt: u64,
    /// Class (0 under hidden information).
    pub class: u32,
    /// True output length, under `known` information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known: Option<u64>,
    /// Predicted output length, under `predicted` information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted: Option<u64>,
    /// Under `keep_generated` preemption: output tokens the request kept from before an
    /// eviction, counted in `prompt` (which it must prefill again) and no longer in
    /// `known`/`predicted`. Omitted when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub kept: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Req {
    /// From a spec view.
    pub fn of(r: &RequestView) -> Req {
        let (known, predicted) = match r.output_hint() {
            OutputHint::Known(t) => (Some(t.get()), None),
            OutputHint::Predicted(t) => (None, Some(t.get())),
            OutputHint::Hidden => (None, None),
        };
        Req {
            id: r.id().0,
            arrival: r.arrival_ns().get(),
            prompt: r.prompt_tokens().get(),
            class: r.class(),
            known,
            predicted,
            kept: 0,
        }
    }

    /// From a request of `view`, with what it keeps across evictions.
    pub fn of_in(view: &View<'_>, r: &RequestView) -> Req {
        Req { kept: view.kept(r.id()).get(), ..Req::of(r) }
    }
}

/// A resident request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Res {
    /// Id.
    pub id: u32,
    /// Arrival time (ns).
    pub arrival: u64,
    /// Prompt tokens.
    pub prompt: u64,
    /// Class.
    pub class: u32,
    /// True output length, under `known` information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known: Option<u64>,
    /// Predicted output length, under `predicted` information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted: Option<u64>,
    /// Output tokens kept from before an eviction (`keep_generated`; counted in `prompt`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub kept: u64,
    /// Tokens of `prompt` prefilled in this residency.
    pub prefilled: u64,
    /// Output tokens generated in this residency.
    pub generated: u64,
    /// KV tokens held (`prefilled + generated`).
    pub held: u64,
    /// Admission sequence number (larger is more recent).
    pub seq: u64,
}

/// A completion, with its revealed output length.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// Id.
    pub id: u32,
    /// True output length.
    pub output: u64,
    /// Completion time (ns).
    pub finish: u64,
}

/// A decision point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decide {
    /// Decision number, from 1; the plan must echo it.
    pub seq: u64,
    /// Current time (ns).
    pub t: u64,
    /// KV footprint of resident requests (tokens).
    pub kv_used: u64,
    /// KV capacity (tokens, whole blocks).
    pub kv_capacity: u64,
    /// Iterations run so far.
    pub steps: u64,
    /// Iterations of the previous plan's batch that ran (0 after an idle plan or at seq 1).
    pub ran: u64,
    /// Whether every request of this finite run has arrived.
    pub arrivals_done: bool,
    /// Requests that arrived since the previous decision.
    pub arrived: Vec<Req>,
    /// Requests completed since the previous decision.
    pub completed: Vec<Done>,
    /// Waiting requests in arrival order (full views only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Vec<Req>>,
    /// Resident requests in admission order (full views only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<Vec<Res>>,
}

/// End of a normal run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    /// Final time (ns).
    pub t: u64,
    /// Requests completed.
    pub completed: u64,
}

/// An error, in either direction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMsg {
    /// Stable code (see `spec/PROTOCOL.md`).
    pub code: String,
    /// Human-readable detail.
    #[serde(default)]
    pub message: String,
    /// The decision it concerns, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// Scheduler to harness.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromScheduler {
    /// Answer to `hello`.
    Ready(Ready),
    /// Answer to `decide`.
    Plan(PlanMsg),
    /// The scheduler gives up.
    Error(ErrorMsg),
}

/// The scheduler's handshake answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ready {
    /// Protocol version spoken.
    pub version: u32,
    /// Scheduler name.
    pub name: String,
    /// Information set wanted (at most the one offered); default: the one offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub information: Option<Information>,
    /// View mode wanted; default full.
    #[serde(default)]
    pub views: Views,
}

/// One batch item on the wire: `{"prefill": id, "tokens": n}` or `{"decode": id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// Prefill this request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill: Option<u32>,
    /// Chunk size of a prefill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// Decode this request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode: Option<u32>,
}

/// A decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanMsg {
    /// Echo of the `decide`'s `seq`.
    pub seq: u64,
    /// Resident requests to evict first, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evict: Vec<u32>,
    /// The batch (empty: idle until the next arrival).
    #[serde(default)]
    pub batch: Vec<Item>,
    /// Up to this many identical decode-only iterations (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u64>,
}

impl PlanMsg {
    /// The wire form of a plan.
    pub fn of(seq: u64, plan: &Plan) -> PlanMsg {
        let batch = plan
            .batch
            .iter()
            .map(|i| match *i {
                BatchItem::Prefill { id, tokens } => {
                    Item { prefill: Some(id.0), tokens: Some(tokens.get()), decode: None }
                }
                BatchItem::Decode { id } => {
                    Item { prefill: None, tokens: None, decode: Some(id.0) }
                }
            })
            .collect();
        let repeat = match plan.repeat {
            Repeat::Once => None,
            Repeat::UpTo(k) => Some(k),
        };
        PlanMsg { seq, evict: plan.evict.iter().map(|id| id.0).collect(), batch, repeat }
    }

    /// The engine's plan, or why the message is malformed.
    pub fn to_plan(&self) -> Result<Plan, String> {
        let mut batch = Vec::with_capacity(self.batch.len());
        for (i, item) in self.batch.iter().enumerate() {
            batch.push(match (item.prefill, item.tokens, item.decode) {
                (Some(id), Some(t), None) => {
                    BatchItem::Prefill { id: RequestId(id), tokens: Tokens(t) }
                }
                (None, None, Some(id)) => BatchItem::Decode { id: RequestId(id) },
                _ => {
                    return Err(format!(
                        "batch[{i}]: expected {{\"prefill\": id, \"tokens\": n}} or \
                         {{\"decode\": id}}"
                    ))
                }
            });
        }
        let repeat = match self.repeat {
            None | Some(1) => Repeat::Once,
            Some(0) => return Err("repeat: expected at least 1".into()),
            Some(k) => Repeat::UpTo(k),
        };
        Ok(Plan {
            evict: self.evict.iter().map(|&id| RequestId(id)).collect(),
            batch,
            repeat,
            decode_all: false,
            hold: Vec::new(),
        })
    }
}

/// Every field of every scheduler message, flat: parsing it avoids serde's buffering of
/// internally tagged enums (the hot path of the protocol).
#[derive(Deserialize)]
struct FlatFrom {
    #[serde(rename = "type")]
    kind: String,
    seq: Option<u64>,
    #[serde(default)]
    evict: Vec<u32>,
    #[serde(default)]
    batch: Vec<Item>,
    repeat: Option<u64>,
    version: Option<u32>,
    name: Option<String>,
    information: Option<Information>,
    views: Option<Views>,
    code: Option<String>,
    message: Option<String>,
}

/// Parses one line from a scheduler. Never panics.
pub fn parse_from_scheduler(line: &str) -> Result<FromScheduler, String> {
    let f: FlatFrom = serde_json::from_str(line.trim_end()).map_err(|e| e.to_string())?;
    let missing = |field: &str| format!("{}: missing field `{field}`", f.kind);
    match f.kind.as_str() {
        "plan" => Ok(FromScheduler::Plan(PlanMsg {
            seq: f.seq.ok_or_else(|| missing("seq"))?,
            evict: f.evict,
            batch: f.batch,
            repeat: f.repeat,
        })),
        "ready" => Ok(FromScheduler::Ready(Ready {
            version: f.version.ok_or_else(|| missing("version"))?,
            name: f.name.ok_or_else(|| missing("name"))?,
            information: f.information,
            views: f.views.unwrap_or_default(),
        })),
        "error" => Ok(FromScheduler::Error(ErrorMsg {
            code: f.code.ok_or_else(|| missing("code"))?,
            message: f.message.unwrap_or_default(),
            seq: f.seq,
        })),
        other => Err(format!("unknown message type {other:?}; expected plan, ready or error")),
    }
}

/// Parses one line from the harness. Never panics.
pub fn parse_to_scheduler(line: &str) -> Result<ToScheduler, String> {
    let line = line.trim_end();
    // Fast path for the harness's own field order (no buffering of the tagged enum).
    if line.starts_with("{\"type\":\"decide\",") {
        return serde_json::from_str(line).map(ToScheduler::Decide).map_err(|e| e.to_string());
    }
    serde_json::from_str(line).map_err(|e| e.to_string())
}

/// How much of the view a `decide` message carries, and what the previous one did.
pub struct DecideCtx {
    /// Decision number.
    pub seq: u64,
    /// Iterations the previous batch ran.
    pub ran: u64,
    /// Full or delta.
    pub views: Views,
}

/// Builds the `decide` message for `view`.
pub fn decide_of(view: &View<'_>, ctx: &DecideCtx) -> Decide {
    let arrived =
        view.arrived_since_last().iter().filter_map(|&id| view.request(id)).collect::<Vec<_>>();
    let completed = view
        .completed_since_last()
        .iter()
        .map(|c| Done { id: c.id.0, output: c.output_tokens.get(), finish: c.finish_ns.get() })
        .collect();
    let (waiting, running) = match ctx.views {
        Views::Delta => (None, None),
        Views::Full => {
            let waiting = view.waiting().map(|r| Req::of_in(view, &r)).collect();
            let running = view
                .running()
                .map(|r| {
                    let q = Req::of_in(view, r.request());
                    Res {
                        id: q.id,
                        arrival: q.arrival,
                        prompt: q.prompt,
                        class: q.class,
                        known: q.known,
                        predicted: q.predicted,
                        kept: q.kept,
                        prefilled: r.prefilled().get(),
                        generated: r.generated().get(),
                        held: r.held().get(),
                        seq: r.admitted_seq(),
                    }
                })
                .collect();
            (Some(waiting), Some(running))
        }
    };
    Decide {
        seq: ctx.seq,
        t: view.now_ns().get(),
        kv_used: view.kv_used().get(),
        kv_capacity: view.capacity().get(),
        steps: view.steps_total(),
        ran: ctx.ran,
        arrivals_done: view.arrivals_done(),
        arrived: arrived.iter().map(Req::of).collect(),
        completed,
        waiting,
        running,
    }
}

/// Order of information sets by what they reveal: hidden < predicted < known.
pub fn information_rank(i: Information) -> u8 {
    match i {
        Information::Hidden => 0,
        Information::Predicted => 1,
        Information::Known => 2,
    }
}
