//! The trace format: one JSON object per line, documented in `spec/TRACE.md`.
//!
//! A trace is a header line followed by records in the order the engine performed them.
//! `kvsched_verify::check_trace` replays a trace against [`crate::model`] alone.

use crate::instance::ModelConfig;
use crate::model::BatchItem;
use crate::request::RequestId;
use crate::units::{Nanos, Tokens};
use serde::{Deserialize, Serialize};

/// The trace format version this crate reads and writes.
pub const TRACE_FORMAT_VERSION: u32 = 1;

/// One line of a trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case", deny_unknown_fields)]
pub enum TraceRecord {
    /// First line: format version, configuration, scheduler name, seed.
    Header {
        /// Must equal [`TRACE_FORMAT_VERSION`].
        format_version: u32,
        /// Server configuration (including the information set the policy had).
        config: ModelConfig,
        /// Scheduler name.
        scheduler: String,
        /// Seed of the run, when it had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seed: Option<u64>,
        /// Number of requests in the run, when known up front.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requests: Option<u64>,
    },
    /// A request arrived (delivered to the policy) at `t`, with its ground truth.
    Arrive {
        /// Delivery time.
        t: Nanos,
        /// Request id (dense, in arrival order).
        id: RequestId,
        /// Arrival time (at or before `t`).
        arrival: Nanos,
        /// Prompt length.
        prompt: Tokens,
        /// True output length.
        output: Tokens,
        /// Prediction shown to the policy, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        predicted: Option<Tokens>,
        /// Class.
        #[serde(default)]
        class: u32,
    },
    /// A resident request was evicted at `t`.
    Evict {
        /// Time.
        t: Nanos,
        /// Request.
        id: RequestId,
    },
    /// `repeat` identical iterations of `items` starting at `t` and lasting `dur` in total.
    /// With `repeat > 1` every item is a decode. `kv` is the footprint after the last
    /// iteration, before completed requests free their KV; `done` lists the completions.
    Step {
        /// Start time.
        t: Nanos,
        /// Total duration.
        dur: Nanos,
        /// Number of iterations.
        repeat: u64,
        /// Batch.
        items: Vec<BatchItem>,
        /// Footprint at the end (peak).
        kv: Tokens,
        /// Requests completed at the end.
        done: Vec<RequestId>,
    },
    /// The server idled from `t` until `until`.
    Idle {
        /// Start.
        t: Nanos,
        /// End.
        until: Nanos,
    },
    /// Last line: the run ended at `t`.
    End {
        /// End time.
        t: Nanos,
        /// Requests completed.
        completed: u64,
    },
}
