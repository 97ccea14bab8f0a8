//! The claim table of `kvsched reproduce`: the claims of `spec/CLAIMS.md` (embedded at build
//! time, parsed at run time) and one row per experiment: the claims it measures, the figures it
//! draws, how its results judge those claims, and the function that runs it.
//!
//! The experiments live with their paper area: `fluid`, `wait` and `as_run` (WAIT paper),
//! `sim_figures` (the simulator's figures), `mcsf`, `mcsf_warm` and `mcsf_trace` (MC-SF paper)
//! and `hardware`. A claim with no experiment is reported as "not reproducible here (no
//! experiment implemented yet)"; the report (`report`, `render`) runs the rows and renders them.

use super::{as_run, fluid, hardware, mcsf, mcsf_trace, mcsf_warm, sim_figures, wait};
use super::{ClaimResult, Ctx, Output};
use serde::Serialize;

/// `spec/CLAIMS.md`, embedded so that the binary works from any directory.
pub const CLAIMS_MD: &str = include_str!("../../spec/CLAIMS.md");

/// One claim as `spec/CLAIMS.md` states it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClaimSpec {
    /// ID.
    pub id: String,
    /// Statement.
    pub statement: String,
    /// Source in the papers.
    pub source: String,
    /// The paper's value as written.
    pub paper_value: String,
    /// `pending` or `tested`.
    pub status: String,
}

/// Parses the `###` sections of a claims file (the format the tidy test enforces).
pub fn parse_claims(text: &str) -> Vec<ClaimSpec> {
    let mut out: Vec<ClaimSpec> = Vec::new();
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("### ") {
            out.push(ClaimSpec {
                id: id.trim().into(),
                statement: String::new(),
                source: String::new(),
                paper_value: String::new(),
                status: String::new(),
            });
            continue;
        }
        let Some(c) = out.last_mut() else { continue };
        let field = |p: &str| line.strip_prefix(p).map(|r| r.trim().to_string());
        if let Some(v) = field("- statement:") {
            c.statement = v;
        } else if let Some(v) = field("- source:") {
            c.source = v;
        } else if let Some(v) = field("- paper value:") {
            c.paper_value = v;
        } else if let Some(v) = field("- status:") {
            c.status = v;
        }
    }
    out
}

/// The claims of the embedded `spec/CLAIMS.md`.
pub fn claims() -> Vec<ClaimSpec> {
    parse_claims(CLAIMS_MD)
}

/// How an experiment's results judge each claim it measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judge {
    /// Every result is a part of the claim, and all must hold: any *not supported* makes the
    /// claim not supported; otherwise any *supported* makes it supported; otherwise it is not
    /// reproducible here.
    AllResults,
    /// The first result is the claim's combined verdict; the results after it are informative
    /// sub-measurements, reported beside it.
    Headline,
}

impl Judge {
    /// The results of one experiment for one claim that its verdict rests on.
    pub fn judged<'a>(&self, results: &'a [ClaimResult]) -> &'a [ClaimResult] {
        match self {
            Judge::AllResults => results,
            Judge::Headline => &results[..results.len().min(1)],
        }
    }
}

/// An experiment: one row of the claim table.
#[derive(Clone, Copy)]
pub struct Experiment {
    /// Name.
    pub name: &'static str,
    /// Claim IDs it measures or illustrates.
    pub claims: &'static [&'static str],
    /// The figures it draws (file names in the report directory).
    pub figures: &'static [&'static str],
    /// How its results judge its claims.
    pub judge: Judge,
    /// The measurement.
    pub run: fn(&Ctx) -> Output,
}

/// Every experiment, in report order.
///
/// The rows judged on a [`Judge::Headline`]: `W-PROP3` (FCFS's gap must not decay while WAIT's
/// does; the per-policy slope lines compare with reference slopes only); `M-TRACE-SLOPE` (its
/// high-demand slope ratio; its slopes and the low-demand ratio are reported beside it); the
/// "as run" claims `W-EXP-LONGDECODE-AS-RUN` and `W-EXP-LMSYS-AS-RUN` (the fixed
/// configuration's paired comparison; the authors' best-of-grid protocol, the baselines'
/// magnitudes and the restart rows are reported beside it); `M-SYNTH-WARM-START` (its headline
/// node limit; the other limits and the one-size-per-instance reading are sensitivity rows).
#[rustfmt::skip] // a table: one row per experiment, its run function last
pub fn experiments() -> Vec<Experiment> {
    use Judge::{AllResults as All, Headline};
    let e = |name, claims, figures, judge, run| Experiment { name, claims, figures, judge, run };
    vec![
        // WAIT paper: the fluid model (`fluid`).
        e("fluid-identities", &["W-FLUID-SINGLE", "W-FLUID-MULTI", "W-PROP1"], &[],
            All, fluid::run_identities),
        e("fluid-lmsys", &["W-LMSYS-CROSSING", "W-TABLE2"], &["m_star_curve.svg"],
            All, fluid::run_lmsys),
        e("fluid-long-decode", &["W-LONGDECODE-MSTAR"], &[],
            All, fluid::run_long_decode),
        // The simulator's figures (`sim_figures`).
        e("latency-vs-rate", &["W-PROP1", "W-EXP-SINGLE"], &["latency_vs_rate.svg"],
            All, sim_figures::run_latency_vs_rate),
        e("memory-over-time", &["W-FLUID-MULTI", "W-THM2"], &["memory_over_time.svg"],
            All, sim_figures::run_memory_over_time),
        // WAIT paper: theorems and the A100 experiments as stated (`wait`).
        e("wait-thm1", &["W-THM1-CRITICAL", "W-THM1-SLACK"], &["gap_vs_zeta_t.svg"],
            All, wait::run_thm1),
        e("wait-thm2", &["W-THM2"], &[], All, wait::run_thm2),
        e("wait-prop3", &["W-PROP3"], &[], Headline, wait::run_prop3),
        e("wait-prop4", &["W-PROP4"], &[], All, wait::run_prop4),
        e("wait-prop5", &["W-PROP5"], &[], All, wait::run_prop5),
        e("wait-prop2", &["W-PROP2"], &[], All, wait::run_prop2),
        e("wait-exp-single", &["W-EXP-SINGLE"], &["exp_single_a100.svg"],
            All, wait::run_exp_single),
        e("wait-exp-twotype", &["W-EXP-TWOTYPE"], &["exp_twotype_a100.svg"],
            All, wait::run_exp_twotype),
        e("wait-exp-longdecode", &["W-EXP-LONGDECODE"], &["exp_longdecode_a100.svg"],
            All, wait::run_exp_longdecode),
        e("wait-exp-lmsys", &["W-EXP-LMSYS"], &["exp_lmsys_a100.svg"],
            All, wait::run_exp_lmsys),
        // WAIT paper: the A100 experiments as the authors ran them (`as_run`).
        e("wait-exp-single-as-run", &["W-EXP-SINGLE-AS-RUN"], &["exp_single_as_run.svg"],
            All, as_run::run_single),
        e("wait-exp-two-type-as-run", &["W-EXP-TWOTYPE-AS-RUN"], &["exp_two_type_as_run.svg"],
            All, as_run::run_two_type),
        e("wait-exp-longdecode-as-run", &["W-EXP-LONGDECODE-AS-RUN"],
            &["exp_longdecode_as_run.svg"], Headline, as_run::run_longdecode),
        e("wait-exp-lmsys-as-run", &["W-EXP-LMSYS-AS-RUN"], &["exp_lmsys_as_run.svg"],
            Headline, as_run::run_lmsys),
        // MC-SF paper: the round model (`mcsf`, `mcsf_warm`).
        e("mcsf-synthetic", &["M-SYNTH-ALL-AT-ZERO", "M-SYNTH-ONLINE"], &["mcsf_opt_ratio.svg"],
            All, mcsf::run_synthetic),
        e("mcsf-warm-start", &["M-SYNTH-WARM-START"], &["mcsf_warm_start.svg"],
            Headline, mcsf_warm::run),
        e("mcsf-lb-sqrt-n", &["M-LB-SQRT-N"], &[], All, mcsf::run_lb_sqrt_n),
        e("mcsf-thm-o1", &["M-THM-O1"], &[], All, mcsf::run_thm_o1),
        e("mcsf-hetero", &["M-HETERO-SQRT-M"], &[], All, mcsf::run_hetero),
        // Hardware (`hardware`).
        e("hardware", &["H-KV-BYTES", "H-AFFINE-A100"], &[], All, hardware::run),
        // MC-SF paper v1 (`mcsf`) and its real trace on the engine (`mcsf_trace`).
        e("mcsf-semi-online", &["M-V1-SEMI-ONLINE"], &[], All, mcsf::run_semi_online),
        e("mcsf-regret", &["M-V1-REGRET"], &[], All, mcsf::run_regret),
        e("mcsf-randomized", &["M-V1-RANDOMIZED"], &[], All, mcsf::run_randomized),
        e("mcsf-trace-slope", &["M-TRACE-SLOPE"], &["mcsf_trace_high.svg", "mcsf_trace_low.svg"],
            Headline, mcsf_trace::run_trace_slope),
    ]
}

/// The experiments that measure or illustrate claim `id`.
pub fn for_claim(id: &str) -> Vec<Experiment> {
    experiments().into_iter().filter(|e| e.claims.contains(&id)).collect()
}

/// Why a claim without an experiment is not reproduced (the same reason for every claim now;
/// a claim-specific reason goes here).
pub fn missing_reason(_id: &str) -> String {
    "no experiment implemented yet".into()
}
