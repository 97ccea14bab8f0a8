//! Experiments behind the claims of `spec/CLAIMS.md`, as library functions.
//!
//! The integration tests and `kvsched reproduce` call the same functions, so a number in the
//! report is the number a test checked. Every function returns [`ClaimResult`]s: the paper's
//! value, ours (with a confidence interval when there is one) and the verdict, which is
//! measured, never tuned.

pub mod as_run;
pub mod figures;
pub mod fluid;
pub mod hardware;
pub mod loads;
pub mod mcsf;
pub mod mcsf_trace;
pub mod mcsf_warm;
pub mod registry;
pub mod render;
pub mod report;
pub mod sim_figures;
pub mod sweep;
pub mod wait;

use figures::Figure;
use kvsched_verify::stats;
use serde::{Deserialize, Serialize};

/// How large a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// Test-suite size: seconds to a minute.
    Quick,
    /// Paper size.
    Full,
}

/// What the measurement says about the claim.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "verdict", content = "reason")]
pub enum ClaimVerdict {
    /// Our measurement supports the paper's statement.
    Supported,
    /// Our measurement does not support it.
    NotSupported(String),
    /// It cannot be reproduced here (missing data, scale, hardware).
    NotReproducible(String),
}

impl ClaimVerdict {
    /// The verdict's code in `results.json`: `supported`, `not_supported` or
    /// `not_reproducible` (serde's tag).
    pub fn code(&self) -> &'static str {
        match self {
            ClaimVerdict::Supported => "supported",
            ClaimVerdict::NotSupported(_) => "not_supported",
            ClaimVerdict::NotReproducible(_) => "not_reproducible",
        }
    }

    /// Why (empty when supported).
    pub fn reason(&self) -> &str {
        match self {
            ClaimVerdict::Supported => "",
            ClaimVerdict::NotSupported(r) | ClaimVerdict::NotReproducible(r) => r,
        }
    }
}

impl std::fmt::Display for ClaimVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClaimVerdict::Supported => write!(f, "supported"),
            ClaimVerdict::NotSupported(r) => write!(f, "not supported ({r})"),
            ClaimVerdict::NotReproducible(r) => write!(f, "not reproducible here ({r})"),
        }
    }
}

/// One measured claim (or one sub-measurement of a claim, with a `label`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaimResult {
    /// Claim ID in `spec/CLAIMS.md`.
    pub id: String,
    /// Sub-measurement label (e.g. "lambda=50"), empty for the claim itself.
    pub label: String,
    /// The paper's value as a number, where it is one.
    pub paper: Option<f64>,
    /// The paper's value as written.
    pub paper_text: String,
    /// Our value.
    pub measured: Option<f64>,
    /// Confidence interval of our value (level in `ci_level`).
    pub ci: Option<(f64, f64)>,
    /// Confidence level of `ci`, e.g. 0.95.
    pub ci_level: Option<f64>,
    /// Verdict.
    pub verdict: ClaimVerdict,
    /// Seeds used.
    pub seeds: Vec<u64>,
    /// Free-form notes: configuration, why numbers differ.
    pub notes: String,
}

impl ClaimResult {
    /// The one-line form the tests print:
    /// `claim ID [label]: paper=..., ours=... [lo, hi], verdict=...`.
    pub fn line(&self) -> String {
        let ours = match (self.measured, self.ci) {
            (Some(m), Some((lo, hi))) => format!("{m:.6} [{lo:.6}, {hi:.6}]"),
            (Some(m), None) => format!("{m:.6}"),
            (None, _) => "-".into(),
        };
        let label =
            if self.label.is_empty() { String::new() } else { format!(" [{}]", self.label) };
        format!(
            "claim {}{label}: paper={}, ours={ours}, verdict={}",
            self.id, self.paper_text, self.verdict
        )
    }
}

/// How large and with which seed experiments run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ctx {
    /// Quick or paper scale.
    pub scale: Scale,
    /// Base seed.
    pub seed: u64,
}

/// What an experiment produced.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Output {
    /// Claim measurements.
    pub results: Vec<ClaimResult>,
    /// Figures.
    pub figures: Vec<Figure>,
    /// Raw numbers behind the figures (sweep rows, curves), for `results.json`.
    pub data: serde_json::Value,
}

impl From<Vec<ClaimResult>> for Output {
    /// An experiment's output that is claim results only, no figure and no data.
    fn from(results: Vec<ClaimResult>) -> Output {
        Output { results, ..Output::default() }
    }
}

/// A claim result with a verdict.
#[allow(clippy::too_many_arguments)]
pub(crate) fn result(
    id: &str,
    label: &str,
    paper: Option<f64>,
    paper_text: &str,
    measured: Option<f64>,
    ci: Option<stats::Interval>,
    verdict: ClaimVerdict,
    notes: String,
) -> ClaimResult {
    ClaimResult {
        id: id.into(),
        label: label.into(),
        paper,
        paper_text: paper_text.into(),
        measured,
        ci: ci.map(|c| (c.lo, c.hi)),
        ci_level: ci.map(|c| c.confidence),
        verdict,
        seeds: vec![],
        notes,
    }
}
