//! Instances: a model configuration plus a finite list of requests.

use crate::memory::MemoryConfig;
use crate::request::{Information, Request, RequestId};
use crate::step_time::StepTime;
use crate::units::Tokens;
use serde::{Deserialize, Serialize};

/// When the first output token is produced.
///
/// The two papers differ here, and kvsched supports both:
/// - `SeparateDecode` (WAIT paper §1, Eq. 1): a prefill iteration produces no token and leaves the
///   request at stage 0 holding `l`; each of the `l'` decode iterations then produces one token,
///   and at stage `s` the request holds `l + s`. A request takes `l' + 1` iterations.
/// - `WithPrefill` (MC-SF paper §2, and vLLM/SGLang): the iteration that completes the prefill also
///   produces output token 1, after which the request holds `l + 1`; `o - 1` decode iterations
///   follow. A request takes `o` iterations when its prefill is not chunked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FirstToken {
    /// Prefill, then one decode iteration per output token.
    SeparateDecode,
    /// The last prefill chunk produces the first output token.
    #[default]
    WithPrefill,
}

impl FirstToken {
    /// Output tokens a prefill chunk produces (and whose KV the request then holds beside its
    /// prompt): 1 when the chunk completes the prompt under [`FirstToken::WithPrefill`], else 0.
    ///
    /// The one statement of the rule for the code that *uses* it (the protocol's replica, the
    /// conformance monitor, `verify`'s strategies, the policies). Two places write it out on
    /// purpose, each its own independent implementation: the spec's model
    /// (`crate::model`, the reference) and the engine (`src/sim/core.rs`); check mode's pair
    /// assertions compare them, so they must not share it.
    ///
    /// ```
    /// use kvsched_spec::{FirstToken, Tokens};
    /// assert_eq!(FirstToken::WithPrefill.output_of_prefill(true), Tokens(1));
    /// assert_eq!(FirstToken::WithPrefill.output_of_prefill(false), Tokens(0));
    /// assert_eq!(FirstToken::SeparateDecode.output_of_prefill(true), Tokens(0));
    /// ```
    pub fn output_of_prefill(self, completes_prompt: bool) -> Tokens {
        Tokens(u64::from(completes_prompt && self == FirstToken::WithPrefill))
    }
}

/// Which resident requests an eviction may target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EvictionRule {
    /// Any resident request may be evicted (vLLM v1 preempt-last, SGLang retraction, ...).
    #[default]
    Any,
    /// Only the most recently admitted resident request (the papers' LIFO rule, WAIT paper §1).
    Lifo,
}

/// What an evicted request keeps (`spec/ENGINES.md`, "Preemption").
///
/// - `Restart` (the papers' rule, WAIT paper §1, MC-SF paper §2): eviction throws all progress
///   away; the request prefills its prompt again and regenerates its output from token 1.
/// - `KeepGenerated` (vLLM's recompute preemption): eviction frees the KV but keeps the output
///   tokens generated so far (`kept`). On resumption the request prefills `prompt + kept`
///   tokens (in chunks, as a prompt), and the chunk that completes them produces output token
///   `kept + 1` under [`FirstToken::WithPrefill`] (decode produces it under `SeparateDecode`).
///   Its output still completes at `output_tokens`, so its peak footprint is unchanged; its
///   first-token time is the first token ever produced and is not reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Preemption {
    /// Lose everything; start again from prefill.
    #[default]
    Restart,
    /// Keep the generated output; prefill prompt plus kept output again.
    KeepGenerated,
}

impl Preemption {
    /// Whether this is the default rule (`Restart`): serialized configs omit it.
    pub fn is_restart(&self) -> bool {
        *self == Preemption::Restart
    }
}

/// Everything about the server that is fixed for a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// KV memory.
    pub memory: MemoryConfig,
    /// Step-time model.
    pub step_time: StepTime,
    /// First-token convention.
    #[serde(default)]
    pub first_token: FirstToken,
    /// Eviction rule.
    #[serde(default)]
    pub eviction: EvictionRule,
    /// What an evicted request keeps (omitted when `restart`, the default, so that configs,
    /// traces and snapshots written before the field existed read and write unchanged).
    #[serde(default, skip_serializing_if = "Preemption::is_restart")]
    pub preemption: Preemption,
    /// What policies may know of output lengths.
    #[serde(default)]
    pub information: Information,
}

/// A model configuration and its requests, sorted by arrival, with `requests[i].id == i`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    /// Server configuration.
    pub config: ModelConfig,
    /// The requests.
    pub requests: Vec<Request>,
}

impl Instance {
    /// Checks ids, ordering and lengths; returns every problem found, each naming its field.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = self.config.memory.validate() {
            problems.push(e);
        }
        if let Err(e) = self.config.step_time.compile() {
            problems.push(e);
        }
        let mut prev = None;
        for (i, r) in self.requests.iter().enumerate() {
            if r.id != RequestId(i as u32) {
                problems.push(format!("requests[{i}].id: expected {i}, got {}", r.id.0));
            }
            if r.prompt_tokens == Tokens::ZERO {
                problems.push(format!("requests[{i}].prompt_tokens: expected at least 1"));
            }
            if r.output_tokens == Tokens::ZERO {
                problems.push(format!("requests[{i}].output_tokens: expected at least 1"));
            }
            let peak = self.config.memory.footprint(r.peak_tokens());
            if r.prompt_tokens > Tokens::ZERO && peak > self.config.memory.capacity() {
                problems.push(format!(
                    "requests[{i}].output_tokens: prompt + output = {} tokens ({peak} in whole \
                     blocks) can never fit in the capacity of {}",
                    r.peak_tokens(),
                    self.config.memory.capacity()
                ));
            }
            if r.arrival_ns.get() > crate::units::MAX_TIME_NS {
                problems.push(format!("requests[{i}].arrival_ns: expected at most 2^62 ns"));
            }
            if let Some(p) = prev {
                if r.arrival_ns < p {
                    problems.push(format!("requests[{i}].arrival_ns: expected sorted arrivals"));
                }
            }
            prev = Some(r.arrival_ns);
        }
        problems
    }

    /// The request with this id.
    pub fn request(&self, id: RequestId) -> &Request {
        &self.requests[id.index()]
    }
}
