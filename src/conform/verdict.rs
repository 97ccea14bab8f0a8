//! Verdicts: what a conformance run concluded, as a stable code ([`VerdictCode`]) plus a
//! message.
//!
//! The codes, their categories and when each is given are `spec/PROTOCOL.md`'s "Verdicts"
//! table; `tests/it/verdict_codes.rs` holds that table and [`VerdictCode::ALL`] equal. In short:
//! - `pass`.
//! - Safety, from the engine's validation (the spec's `Violation` names): `memory_exceeded`,
//!   `duplicate_in_batch`, `unknown_request`, `not_arrived`, `not_prefillable`, `bad_chunk`,
//!   `not_decodable`, `not_resident`, `eviction_order`, `time_limit`, `repeat_with_prefill`, and
//!   `trace_invalid` (the independent trace checker disagrees).
//! - Information: `information_denied` (asked for more than offered).
//! - Liveness: `unfinished` (a request that fits in an empty cache never finished),
//!   `starvation` (a request waited, fitting in free memory, while the server idled longer than
//!   the bound), `livelock` (iteration limit).
//! - Process and protocol: `spawn_failed`, `handshake`, `crash`, `timeout`, `garbage`
//!   (unparseable line), `protocol` (well-formed but wrong message), `scheduler_error` (the
//!   scheduler reported an error), `panic` (an in-process scheduler panicked).
//! - Engine: `engine_error`, the harness's own engine failed in a way no decision of the
//!   scheduler causes (engine and spec disagree, an engine-internal rule, a trace that could not
//!   be written, an instance without the predictions offered): a harness bug, never the
//!   scheduler's fault. Until 2026-12-06 these were reported as `trace_invalid`.

use kvsched_spec::Violation;
use serde::{Deserialize, Serialize};

/// Declares [`VerdictCode`] from one list: variant, JSON text, category. The enum, its
/// [`VerdictCode::ALL`] and its text therefore cannot disagree on which codes exist.
macro_rules! verdict_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $code:literal, $category:literal;)*) => {
        /// A verdict's stable code: snake case in JSON (the replay file, the report, the
        /// harness's `error` message), the same text as [`VerdictCode::as_str`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[derive(Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum VerdictCode {
            $($(#[doc = $doc])* $variant,)*
        }

        impl VerdictCode {
            /// Every code, in the order of `spec/PROTOCOL.md`'s table.
            pub const ALL: &'static [VerdictCode] = &[$(VerdictCode::$variant),*];

            /// The code as text (its JSON form).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(VerdictCode::$variant => $code,)*
                }
            }

            /// The kind of failure: `pass`, `safety`, `information`, `liveness`, `process` or
            /// `engine`.
            pub const fn category(self) -> &'static str {
                match self {
                    $(VerdictCode::$variant => $category,)*
                }
            }
        }
    };
}

verdict_codes! {
    /// The run conforms.
    Pass = "pass", "pass";
    /// A step would leave more KV resident than capacity.
    MemoryExceeded = "memory_exceeded", "safety";
    /// A request appears twice in one batch.
    DuplicateInBatch = "duplicate_in_batch", "safety";
    /// A decision names a request that does not exist.
    UnknownRequest = "unknown_request", "safety";
    /// A decision names a request whose arrival was not delivered.
    NotArrived = "not_arrived", "safety";
    /// A prefill of a request that is neither waiting nor partly prefilled.
    NotPrefillable = "not_prefillable", "safety";
    /// A prefill chunk of zero tokens, or past the end of the prompt.
    BadChunk = "bad_chunk", "safety";
    /// A decode of a request that is not resident with its prefill complete.
    NotDecodable = "not_decodable", "safety";
    /// An eviction of a request that is not resident.
    NotResident = "not_resident", "safety";
    /// An eviction that breaks the eviction rule.
    EvictionOrder = "eviction_order", "safety";
    /// A decision that would move time past the end of simulated time.
    TimeLimit = "time_limit", "safety";
    /// `repeat > 1` on a batch with a prefill.
    RepeatWithPrefill = "repeat_with_prefill", "safety";
    /// The independent trace checker rejects the run's trace.
    TraceInvalid = "trace_invalid", "safety";
    /// `ready` asked for more information than offered.
    InformationDenied = "information_denied", "information";
    /// Idle with no arrival to come while a request that fits in an empty cache is unfinished.
    Unfinished = "unfinished", "liveness";
    /// A request passed over while it fit waited longer than the bound.
    Starvation = "starvation", "liveness";
    /// No end within the iteration limit, or the engine's watchdog fired.
    Livelock = "livelock", "liveness";
    /// The command could not be started.
    SpawnFailed = "spawn_failed", "process";
    /// `ready` was missing, wrong or of another version.
    Handshake = "handshake", "process";
    /// The process exited or closed its stdout.
    Crash = "crash", "process";
    /// No answer in time.
    Timeout = "timeout", "process";
    /// A line that is not a protocol message.
    Garbage = "garbage", "process";
    /// A well-formed message out of turn.
    Protocol = "protocol", "process";
    /// The scheduler sent `error`.
    SchedulerError = "scheduler_error", "process";
    /// An in-process scheduler panicked.
    Panic = "panic", "process";
    /// The harness's own engine failed, not through the scheduler's decisions (a harness bug).
    EngineError = "engine_error", "engine";
}

impl VerdictCode {
    /// The code of a spec violation the engine reported. The violations only the engine's
    /// own sequencing can cause (arrivals out of order or skipped, an empty batch, time not
    /// moving forward: the engine delivers arrivals, idles on an empty batch and keeps time
    /// itself) are [`VerdictCode::EngineError`].
    pub fn of_violation(v: &Violation) -> VerdictCode {
        match v {
            Violation::UnknownRequest { .. } => VerdictCode::UnknownRequest,
            Violation::NotArrived { .. } => VerdictCode::NotArrived,
            Violation::DuplicateInBatch { .. } => VerdictCode::DuplicateInBatch,
            Violation::NotPrefillable { .. } => VerdictCode::NotPrefillable,
            Violation::BadChunk { .. } => VerdictCode::BadChunk,
            Violation::NotDecodable { .. } => VerdictCode::NotDecodable,
            Violation::NotResident { .. } => VerdictCode::NotResident,
            Violation::EvictionOrder { .. } => VerdictCode::EvictionOrder,
            Violation::MemoryExceeded { .. } => VerdictCode::MemoryExceeded,
            Violation::TimeLimit { .. } => VerdictCode::TimeLimit,
            Violation::ArrivalOutOfOrder { .. }
            | Violation::ArrivalSkipped { .. }
            | Violation::EmptyBatch
            | Violation::TimeNotForward { .. } => VerdictCode::EngineError,
        }
    }
}

impl std::fmt::Display for VerdictCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Stable code.
    pub code: VerdictCode,
    /// Detail.
    pub message: String,
    /// Simulated time, when known (ns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ns: Option<u64>,
}

impl Verdict {
    /// The passing verdict.
    pub fn pass() -> Verdict {
        Verdict::new(VerdictCode::Pass, "conforms")
    }

    /// A verdict with this code and message.
    pub fn new(code: VerdictCode, message: impl Into<String>) -> Verdict {
        Verdict { code, message: message.into(), at_ns: None }
    }

    /// Sets the time.
    pub fn at(mut self, t: u64) -> Verdict {
        self.at_ns = Some(t);
        self
    }

    /// Whether it passed.
    pub fn is_pass(&self) -> bool {
        self.code == VerdictCode::Pass
    }

    /// The verdict for a spec violation.
    pub fn violation(v: &Violation, at_ns: u64) -> Verdict {
        Verdict::new(VerdictCode::of_violation(v), format!("t={at_ns} ns: {v}")).at(at_ns)
    }

    /// The kind of failure: safety, information, liveness, process, engine or pass.
    pub fn category(&self) -> &'static str {
        self.code.category()
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::VerdictCode;

    /// The JSON text of every code is its `as_str`, and parses back to it.
    #[test]
    fn json_text_is_as_str() {
        for &c in VerdictCode::ALL {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<VerdictCode>(&json).unwrap(), c);
        }
        assert!(serde_json::from_str::<VerdictCode>("\"no_such_code\"").is_err());
    }
}
