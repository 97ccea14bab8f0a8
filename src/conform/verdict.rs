//! Verdicts: what a conformance run concluded, as a stable code plus a message.
//!
//! Codes (`spec/PROTOCOL.md`, section "Verdicts"):
//! - `pass`.
//! - Safety, from the engine's validation (the spec's `Violation` names): `memory_exceeded`,
//!   `duplicate_in_batch`, `unknown_request`, `not_arrived`, `not_prefillable`, `bad_chunk`,
//!   `not_decodable`, `not_resident`, `eviction_order`, `repeat_with_prefill`, and
//!   `trace_invalid` (the independent trace checker disagrees).
//! - Information: `information_denied` (asked for more than offered).
//! - Liveness: `unfinished` (a request that fits in an empty cache never finished),
//!   `starvation` (a request waited, fitting in free memory, while the server idled longer than
//!   the bound), `livelock` (iteration limit).
//! - Process and protocol: `spawn_failed`, `handshake`, `crash`, `timeout`, `garbage`
//!   (unparseable line), `protocol` (well-formed but wrong message), `scheduler_error` (the
//!   scheduler reported an error), `panic` (an in-process scheduler panicked).

use kvsched_spec::Violation;
use serde::{Deserialize, Serialize};

/// A verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Stable code.
    pub code: String,
    /// Detail.
    pub message: String,
    /// Simulated time, when known (ns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ns: Option<u64>,
}

impl Verdict {
    /// The passing verdict.
    pub fn pass() -> Verdict {
        Verdict::new("pass", "conforms")
    }

    /// A verdict with this code and message.
    pub fn new(code: &str, message: impl Into<String>) -> Verdict {
        Verdict { code: code.to_string(), message: message.into(), at_ns: None }
    }

    /// Sets the time.
    pub fn at(mut self, t: u64) -> Verdict {
        self.at_ns = Some(t);
        self
    }

    /// Whether it passed.
    pub fn is_pass(&self) -> bool {
        self.code == "pass"
    }

    /// The verdict for a spec violation.
    pub fn violation(v: &Violation, at_ns: u64) -> Verdict {
        Verdict::new(&violation_code(v), format!("t={at_ns} ns: {v}")).at(at_ns)
    }

    /// The kind of failure: safety, information, liveness, process or pass.
    pub fn category(&self) -> &'static str {
        match self.code.as_str() {
            "pass" => "pass",
            "information_denied" => "information",
            "unfinished" | "starvation" | "livelock" => "liveness",
            "spawn_failed" | "handshake" | "crash" | "timeout" | "garbage" | "protocol"
            | "scheduler_error" | "panic" => "process",
            _ => "safety",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// The snake-case name of a spec violation (`memory_exceeded`, ...).
pub fn violation_code(v: &Violation) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|j| j.get("violation").and_then(|s| s.as_str()).map(str::to_string))
        .unwrap_or_else(|| "violation".into())
}
