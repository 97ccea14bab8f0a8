//! Requests, and what a scheduling policy is allowed to see of them.
//!
//! A [`Request`] holds the ground truth, including its true output length. Policies never get a
//! `Request`: they get a [`RequestView`], built by [`Information::view`], whose only access to
//! the output length is [`RequestView::output_hint`]. Under [`Information::Hidden`] that hint is
//! [`OutputHint::Hidden`] and nothing in the view carries the true length, so a policy cannot
//! read what its information set hides. The true length of a hidden request is revealed only
//! when it completes (see [`Revealed`]).

use crate::units::{Nanos, Tokens};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Dense request identifier: the index of the request in its [`crate::Instance`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(pub u32);

impl RequestId {
    /// The index into per-request vectors.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// One inference request, with its ground truth.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Identifier; equals the request's index in the instance.
    pub id: RequestId,
    /// Arrival time.
    pub arrival_ns: Nanos,
    /// Prompt (prefill) length.
    pub prompt_tokens: Tokens,
    /// True number of output tokens (at least 1).
    pub output_tokens: Tokens,
    /// A prediction of `output_tokens`, shown to policies under [`Information::Predicted`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_output_tokens: Option<Tokens>,
    /// Workload class index, for per-class metrics and class-aware policies (WAIT). `0` when the
    /// workload has a single class.
    #[serde(default)]
    pub class: u32,
}

impl Request {
    /// Peak KV tokens this request holds: prompt plus all output tokens.
    pub fn peak_tokens(&self) -> Tokens {
        Tokens(self.prompt_tokens.get().saturating_add(self.output_tokens.get()))
    }

    /// The request as the server sees it when it resumes keeping `kept` output tokens
    /// ([`crate::Preemption::KeepGenerated`]; vLLM's own view of a preempted request): a
    /// prompt of `prompt + kept` tokens to prefill and `output - kept` tokens still to come (a
    /// prediction shrinks by `kept` too, to at least 1). Its peak footprint is unchanged.
    /// With `kept = 0` it is the request itself.
    pub fn resumed(&self, kept: Tokens) -> Request {
        if kept == Tokens::ZERO {
            return self.clone();
        }
        Request {
            prompt_tokens: self.prompt_tokens + kept,
            output_tokens: self.output_tokens - kept,
            predicted_output_tokens: self
                .predicted_output_tokens
                .map(|p| Tokens(p.get().saturating_sub(kept.get()).max(1))),
            ..self.clone()
        }
    }
}

/// The information set of a policy: what it may know of an output length before completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Information {
    /// The true output length is known on arrival (WAIT; MC-SF with perfect prediction).
    Known,
    /// A prediction is given on arrival (MC-SF with noisy predictions).
    Predicted,
    /// Nothing is known until the request completes (Nested WAIT, vLLM).
    #[default]
    Hidden,
}

/// What a policy sees of an output length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "tokens")]
pub enum OutputHint {
    /// The true length.
    Known(Tokens),
    /// A prediction, which may be wrong in either direction.
    Predicted(Tokens),
    /// Nothing.
    Hidden,
}

impl OutputHint {
    /// The number the hint carries, if any (known or predicted).
    pub fn tokens(self) -> Option<Tokens> {
        match self {
            OutputHint::Known(t) | OutputHint::Predicted(t) => Some(t),
            OutputHint::Hidden => None,
        }
    }
}

/// What a policy may see of a request. Its fields are private: the output length is reachable
/// only through [`RequestView::output_hint`], filtered by the [`Information`] set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestView {
    id: RequestId,
    arrival_ns: Nanos,
    prompt_tokens: Tokens,
    class: u32,
    hint: OutputHint,
}

impl RequestView {
    /// Identifier.
    pub fn id(&self) -> RequestId {
        self.id
    }
    /// Arrival time.
    pub fn arrival_ns(&self) -> Nanos {
        self.arrival_ns
    }
    /// Prompt length (always visible: the prompt is in hand on arrival).
    pub fn prompt_tokens(&self) -> Tokens {
        self.prompt_tokens
    }
    /// Workload class: the true class under [`Information::Known`], and 0 under `Hidden` and
    /// `Predicted` (see [`Information::view`]).
    pub fn class(&self) -> u32 {
        self.class
    }
    /// What the policy knows of the output length.
    pub fn output_hint(&self) -> OutputHint {
        self.hint
    }
}

/// Ground truth that becomes visible when a request completes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revealed {
    /// The request.
    pub id: RequestId,
    /// Its true output length.
    pub output_tokens: Tokens,
    /// When it completed.
    pub finish_ns: Nanos,
}

impl Information {
    /// The view of `request` under this information set.
    ///
    /// The class is visible only under `Known`. In the papers' model the type of a request is
    /// its output length, so a visible class would leak under `Hidden` what is hidden, and under
    /// `Predicted` more than the prediction tells (a class of fixed length gives the exact
    /// length where the prediction is noisy): under both it is replaced by 0. Under
    /// `Predicted` a missing prediction is shown as `Hidden`.
    pub fn view(self, request: &Request) -> RequestView {
        let (hint, class) = match self {
            Information::Known => (OutputHint::Known(request.output_tokens), request.class),
            Information::Predicted => match request.predicted_output_tokens {
                Some(p) => (OutputHint::Predicted(p), 0),
                None => (OutputHint::Hidden, 0),
            },
            Information::Hidden => (OutputHint::Hidden, 0),
        };
        RequestView {
            id: request.id,
            arrival_ns: request.arrival_ns,
            prompt_tokens: request.prompt_tokens,
            class,
            hint,
        }
    }
}
