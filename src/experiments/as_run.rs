//! The WAIT paper's A100 experiments **as the authors ran them** (claims
//! `W-EXP-LONGDECODE-AS-RUN` and `W-EXP-LMSYS-AS-RUN` of `spec/CLAIMS.md`), next to the
//! "as stated" experiments of `wait.rs` (`W-EXP-LONGDECODE`, `W-EXP-LMSYS`), which follow the
//! paper's text. Every setting below is read from the authors' Vidur fork
//! (`Luoxiaogan/vidur_or`; shared papers notes §3.3, §5, §8) and cited where it is used.
//!
//! **Long decode as run** (p512d1000; `scripts/long_decode_experiment.py`,
//! `scripts/plot_figure_G_long_decode.py`,
//! `docs/progress/2026_04_25_long_decode_figure_polish.md`):
//! Meta-Llama-3-8B, `num_blocks` 29,952 x 16 = 479,232 KV tokens; WAIT is the authors' WAIT-CP
//! (`general_nested_chunked`) with tl 120, chunk 128, the wait gate off, one segment over the
//! 1,000 decode stages; vLLM with Vidur's default cap 128; Sarathi with chunk 512 and cap 512.
//! Step time: **an affine law fitted to the paper's own low-load latencies** (d0 = 10.8 ms,
//! d1 = 1.51e-7 s/token; notes §8), not a profile fit: no Llama-3-8B calibration exists in
//! `spec/calibration/` yet. The fixed configuration runs on several seeds (the paper: one
//! 2,000-request run per point); the authors' protocol, the best WAIT-CP of a config grid
//! per rate (`MIN(mean_latency)` over variants in `plot_figure_G_long_decode.py`), is reported
//! beside it and labelled.
//!
//! **lmsys as run** (`docs/progress/2026_05_07_lmsys_cap256_winners.md`,
//! `scripts/real_data_provenance_rerun.py`): the authors' later Llama-2-7B rerun, under the
//! paper's own affine fit for this workload (d0 = 0.010248 s, d1 = 3.8777e-7 s/token,
//! C = 137,000; `outputs/fluid_memory/lmsys_paper_trace_mstar.csv`). Baselines: Sarathi with
//! chunk 256 (the figure's) and chunk 512 (the text's and the rerun's), both cap 256, and
//! vLLM cap 128. The winner of that rerun, one-segment WAIT-CP ("auto1seg": one scheduler type
//! with decode 500, so one segment of 500 stages) with tl 300 (and tl 200, the top of the
//! paper's stated grid), chunk 128, wait gate on, runs next to Algorithm 2 (Nested WAIT with
//! its fluid design). Deviation: the mix is the project's 10-bin lmsys-like decode
//! distribution with prompt 35 tokens (the rerun's input < 200 filter), not the authors'
//! 50-bin table, which is not in their repository's readable files.
//!
//! kvsched's WAIT-CP counts `K + r_1` stages in segment 1 (`K` prefill chunks plus the decode
//! horizon); the authors' code counts the decode horizon alone (`seg0 count = decode`), so
//! per-stage limits here are smaller by a factor `r_1 / (K + r_1)` (0.4 % for long decode,
//! 0.2 % for lmsys). The admission-rate cap this implies is `spec/WAIT_NOTES.md` §1.

use super::figures::{FigureData, Series, Style};
use super::{ClaimResult, ClaimVerdict, Ctx, Output, Scale};
use crate::prng::derive_seed;
use crate::schedulers::{
    nested_wait::NestedWait, sarathi::Sarathi, vllm_v0::VllmV0, wait_cp::WaitCp,
};
use crate::sim::Scheduler;
use crate::sim::{simulate, SimOptions};
use crate::workload::{generate, Amount};
use kvsched_spec::{
    ArrivalProcess, ClassSpec, EvictionRule, FirstToken, Information, Instance, MemoryConfig,
    StepTime, WorkloadFile,
};
use kvsched_verify::stats;
use rayon::prelude::*;
use serde::Serialize;

/// Meta-Llama-3-8B's KV capacity in the authors' long-decode runs: 29,952 blocks of 16.
pub const LLAMA3_8B_KV_TOKENS: u64 = 29_952 * 16;

/// The affine step time of the model the long-decode figure ran (`(d0 s, d1 s/token)`),
/// fitted to the paper's own low-load latencies (11.7 s at 0.5, 17.5 s at 2.5; notes §8).
pub const LLAMA3_8B_AFFINE: (f64, f64) = (0.0108, 1.51e-7);

/// The step time the long-decode experiment runs: [`LLAMA3_8B_AFFINE`]. The `calib` branch
/// fits `spec/calibration/a100-llama3-8b.toml` from Vidur's profiles; once that calibration is
/// on this branch, returning its `step_time` here (and updating [`LLAMA3_8B_SOURCE`]) is the
/// whole switch.
pub fn llama3_8b_step() -> StepTime {
    StepTime::Affine { d0_s: LLAMA3_8B_AFFINE.0, d1_s_per_token: LLAMA3_8B_AFFINE.1 }
}

/// The profile-fitted Llama-3-8B law (`spec/calibration/a100-llama3-8b.toml`, fitted from Vidur's
/// A100 profiles), embedded like `spec/CLAIMS.md` so `reproduce` runs from any directory.
pub fn llama3_8b_profile_step() -> StepTime {
    const FILE: &str = include_str!("../../spec/calibration/a100-llama3-8b.toml");
    kvsched_spec::calibration::Calibration::parse("spec/calibration/a100-llama3-8b.toml", FILE)
        .expect("the committed calibration parses (tested)")
        .step_time
}

/// How [`llama3_8b_profile_step`] was obtained.
pub const LLAMA3_8B_PROFILE_SOURCE: &str = "Llama-3-8B step time: the rich law of \
    spec/calibration/a100-llama3-8b.toml, fitted to Vidur's A100 profiles (MLP of Llama-3-8B, \
    attention of another geometry scaled by KV bytes)";

/// How [`llama3_8b_step`] was obtained, printed with every number it produces.
pub const LLAMA3_8B_SOURCE: &str = "Llama-3-8B step time: affine d0 = 10.8 ms, d1 = 1.51e-7 \
    s/token fitted to the paper's own low-load latencies (papers notes §8), not to profiles";

/// The paper's affine fit for the lmsys workload (Vidur, Llama-2-7B, A100) and `C`.
pub const LMSYS_AFFINE: (f64, f64, u64) = (0.010248, 3.8777e-7, 137_000);

/// The lmsys-like decode shares of `workloads/lmsys-like.toml` with the rerun's short prompts.
pub const LMSYS_AS_RUN_BINS: [(u64, u64, f64); 10] = [
    (35, 50, 23.0 / 66.0),
    (35, 100, 11.0 / 66.0),
    (35, 150, 8.0 / 66.0),
    (35, 200, 7.0 / 66.0),
    (35, 250, 6.0 / 66.0),
    (35, 300, 4.0 / 66.0),
    (35, 350, 3.0 / 66.0),
    (35, 400, 2.0 / 66.0),
    (35, 450, 1.0 / 66.0),
    (35, 500, 1.0 / 66.0),
];

/// An affine, Vidur-like workload: capacity `cap`, block 16, watermark 0.01, first token with
/// the prefill, eviction of any resident; `(prompt, output, share)` classes at total rate
/// `lambda`.
pub fn affine_workload(
    (d0, d1): (f64, f64),
    cap: u64,
    classes: &[(u64, u64, f64)],
    lambda: f64,
) -> WorkloadFile {
    let step = StepTime::Affine { d0_s: d0, d1_s_per_token: d1 };
    vidur_like_workload(step, cap, classes, lambda)
}

/// [`affine_workload`] with any step-time law (e.g. a calibration's).
pub fn vidur_like_workload(
    step_time: StepTime,
    cap: u64,
    classes: &[(u64, u64, f64)],
    lambda: f64,
) -> WorkloadFile {
    WorkloadFile {
        format_version: 1,
        memory: MemoryConfig {
            kv_capacity_tokens: cap,
            block_size_tokens: 16,
            watermark_fraction: 0.01,
        },
        step_time,
        first_token: FirstToken::WithPrefill,
        eviction: EvictionRule::Any,
        // The papers' rule (and the default): evicted requests restart.
        preemption: kvsched_spec::Preemption::Restart,
        classes: classes
            .iter()
            .map(|&(p, o, s)| ClassSpec {
                name: None,
                prompt_tokens: p,
                output_tokens: o,
                rate_per_s: s * lambda,
            })
            .collect(),
        arrivals: ArrivalProcess::Constant,
    }
}

/// A policy of the as-run experiments, with the authors' parameters.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Pol {
    /// vLLM v0 with a running-request cap.
    Vllm {
        /// `batch_size_cap`.
        cap: usize,
    },
    /// Sarathi.
    Sarathi {
        /// Prefill chunk.
        chunk: u64,
        /// `batch_size_cap`.
        cap: usize,
    },
    /// One-segment WAIT-CP over the decode horizon `horizon` (the authors' segment).
    WaitCp {
        /// `total_limit`.
        tl: u64,
        /// Per-request prefill chunk.
        chunk: u64,
        /// `wait_gate`.
        gate: bool,
        /// Decode stages of the one segment.
        horizon: u64,
    },
    /// Multi-segment WAIT-CP (the authors' Nested WAIT as configured in their scripts):
    /// segment boundaries over the decode stages, budgets from the workload's continuation
    /// ratios plus `margin` (their `seg_margin`).
    WaitCpSegments {
        /// `total_limit`.
        tl: u64,
        /// Per-request prefill chunk.
        chunk: u64,
        /// `wait_gate`.
        gate: bool,
        /// Segment boundaries in decode stages, from 0.
        cuts: &'static [u64],
        /// `seg_margin`.
        margin: f64,
    },
    /// Algorithm 2 with its fluid design (`NestedWait::from_workload`).
    Nested,
}

impl Pol {
    /// A short label.
    pub fn label(&self) -> String {
        match self {
            Pol::Vllm { cap } => format!("vllm cap {cap}"),
            Pol::Sarathi { chunk, cap } => format!("sarathi {chunk}/cap {cap}"),
            Pol::WaitCp { tl, chunk, gate, .. } => {
                format!("wait-cp tl {tl} cs {chunk} gate {}", if *gate { "on" } else { "off" })
            }
            Pol::WaitCpSegments { tl, chunk, cuts, .. } => {
                format!("nested wait-cp tl {tl} cs {chunk} cuts {cuts:?}")
            }
            Pol::Nested => "nested-wait (Alg. 2)".into(),
        }
    }

    /// The scheduler for workload `w`.
    pub fn make(&self, w: &WorkloadFile) -> Result<Box<dyn Scheduler>, String> {
        Ok(match *self {
            Pol::Vllm { cap } => Box::new(VllmV0 { max_num_seqs: cap, ..VllmV0::default() }),
            Pol::Sarathi { chunk, cap } => {
                Box::new(Sarathi { chunk_size: chunk, batch_size_cap: cap, ..Sarathi::default() })
            }
            Pol::WaitCp { tl, chunk, gate, horizon } => {
                let mut cp = WaitCp::nested(w, &[0, horizon], tl, 0.05, chunk)?;
                cp.wait_gate = gate;
                Box::new(cp)
            }
            Pol::WaitCpSegments { tl, chunk, gate, cuts, margin } => {
                let mut cp = WaitCp::nested(w, cuts, tl, margin, chunk)?;
                cp.wait_gate = gate;
                Box::new(cp)
            }
            Pol::Nested => Box::new(NestedWait::from_workload(w)?),
        })
    }
}

/// One run.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    /// Policy label.
    pub policy: String,
    /// Total arrival rate.
    pub lambda: f64,
    /// Seed.
    pub seed: u64,
    /// Mean latency over the middle 50% of requests by arrival (s).
    pub latency_s: f64,
    /// Completions per second over the window, divided by `lambda`.
    pub completion_ratio: f64,
    /// Evictions (restarts).
    pub evictions: u64,
    /// Admissions (prefills started, restarts included).
    pub admissions: u64,
    /// Iterations.
    pub steps: u64,
    /// Simulated seconds.
    pub seconds: f64,
    /// Why the run stopped early, if it did.
    pub error: Option<String>,
}

/// Runs `pol` on `n` requests of `classes` at rate `lambda` under the step-time law `law`.
pub fn run_point(
    law: &StepTime,
    cap: u64,
    classes: &[(u64, u64, f64)],
    pol: &Pol,
    lambda: f64,
    n: u64,
    seed: u64,
) -> Point {
    let w = vidur_like_workload(law.clone(), cap, classes, lambda);
    let requests = generate(&w, Amount::Requests(n), seed);
    let inst = Instance { config: w.model_config(Information::Hidden), requests };
    let (o, error) = match pol.make(&w) {
        Ok(mut s) => match simulate(&inst, s.as_mut(), SimOptions::default()) {
            Ok(o) => (o, None),
            Err(e) => (*e.partial.clone(), Some(e.to_string())),
        },
        Err(e) => {
            let p = Point {
                policy: pol.label(),
                lambda,
                seed,
                latency_s: f64::NAN,
                completion_ratio: 0.0,
                evictions: 0,
                admissions: 0,
                steps: 0,
                seconds: 0.0,
                error: Some(e),
            };
            return p;
        }
    };
    let s = o.summary(0.5);
    Point {
        policy: pol.label(),
        lambda,
        seed,
        latency_s: s.latency_s.mean,
        completion_ratio: s.completions_per_s / lambda,
        evictions: o.evictions,
        admissions: o.admissions,
        steps: o.steps,
        seconds: o.simulated_ns.as_secs_f64(),
        error,
    }
}

/// Every `(policy, lambda, seed)` run, in parallel, in job order.
fn run_all(
    law: &StepTime,
    cap: u64,
    classes: &[(u64, u64, f64)],
    jobs: &[(Pol, f64, u64)],
    n: u64,
) -> Vec<Point> {
    jobs.par_iter().map(|(p, l, s)| run_point(law, cap, classes, p, *l, n, *s)).collect()
}

/// Every `(policy, rate, seed)` combination, policy-major.
fn grid_jobs(pols: &[Pol], rates: &[f64], seeds: &[u64]) -> Vec<(Pol, f64, u64)> {
    let mut jobs = Vec::new();
    for p in pols {
        for &l in rates {
            for &s in seeds {
                jobs.push((p.clone(), l, s));
            }
        }
    }
    jobs
}

/// The latencies of `policy` at `lambda`, in seed order.
fn lat(points: &[Point], policy: &str, lambda: f64) -> Vec<f64> {
    points
        .iter()
        .filter(|p| p.policy == policy && p.lambda == lambda)
        .map(|p| p.latency_s)
        .collect()
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len().max(1) as f64
}

/// Whether `a < b` holds across paired seeds: the 95% t interval of the mean of `b - a`.
/// `Some(true)`: above 0; `Some(false)`: below 0; `None`: it contains 0 (or too few seeds,
/// where the sign of the single difference decides).
pub fn paired_less(a: &[f64], b: &[f64]) -> (Option<bool>, String) {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| y - x).collect();
    match stats::mean_ci(&d, 0.95) {
        Ok(ci) if ci.lo > 0.0 => (Some(true), fmt_ci(&ci)),
        Ok(ci) if ci.hi < 0.0 => (Some(false), fmt_ci(&ci)),
        Ok(ci) => (None, fmt_ci(&ci)),
        Err(_) if d.len() == 1 => (Some(d[0] > 0.0), format!("{:.2} s (one run)", d[0])),
        Err(e) => (None, e.to_string()),
    }
}

fn fmt_ci(ci: &stats::Interval) -> String {
    format!("{:.2} s [{:.2}, {:.2}]", ci.estimate, ci.lo, ci.hi)
}

/// The verdict of a chain `a < b < c ...` of paired comparisons.
fn chain_verdict(parts: &[(String, (Option<bool>, String))]) -> ClaimVerdict {
    let text: Vec<String> = parts.iter().map(|(n, (_, t))| format!("{n}: {t}")).collect();
    let text = text.join("; ");
    if parts.iter().any(|p| p.1 .0 == Some(false)) {
        ClaimVerdict::NotSupported(format!("an ordering is reversed (paired differences {text})"))
    } else if parts.iter().all(|p| p.1 .0 == Some(true)) {
        ClaimVerdict::Supported
    } else {
        ClaimVerdict::NotReproducible(format!("paired differences include 0 ({text})"))
    }
}

fn row(id: &str, label: &str, paper: &str, measured: Option<f64>, v: ClaimVerdict) -> ClaimResult {
    ClaimResult {
        id: id.into(),
        label: label.into(),
        paper: None,
        paper_text: paper.into(),
        measured,
        ci: None,
        ci_level: None,
        verdict: v,
        seeds: vec![],
        notes: String::new(),
    }
}

/// Seed-mean latency per `lambda` of `policy` (points without a finite value dropped).
fn curve(points: &[Point], policy: &str, grid: &[f64]) -> Vec<(f64, f64)> {
    grid.iter()
        .map(|&l| (l, mean(&lat(points, policy, l))))
        .filter(|p| p.1.is_finite())
        .map(|(l, y)| (l, y.max(1e-3)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Long decode.

/// The long-decode policies as run: vLLM cap 128, Sarathi 512/512, WAIT-CP tl 120 cs 128 gate
/// off over 1,000 decode stages.
pub fn longdecode_policies() -> [Pol; 3] {
    [
        Pol::WaitCp { tl: 120, chunk: 128, gate: false, horizon: 1000 },
        Pol::Sarathi { chunk: 512, cap: 512 },
        Pol::Vllm { cap: 128 },
    ]
}

/// Sizes: `(rates, requests, seeds, grid tl values, grid chunks, grid rates)`.
type LdSize = (Vec<f64>, u64, u64, Vec<u64>, Vec<u64>, Vec<f64>);

fn longdecode_size(scale: Scale) -> LdSize {
    match scale {
        Scale::Quick => {
            (vec![2.5, 4.0, 4.5], 1_000, 3, vec![90, 120, 150], vec![128], vec![4.0, 4.5])
        }
        Scale::Full => {
            let rates: Vec<f64> = (1..=10).map(|k| f64::from(k) * 0.5).collect();
            (rates.clone(), 2_000, 10, vec![60, 90, 120, 150, 180], vec![128, 256], rates)
        }
    }
}

/// The long-decode runs: the seeds, the fixed config on every seed, the WAIT-CP grid on the
/// first seed.
fn longdecode_runs(scale: Scale, seed: u64) -> (Vec<u64>, Vec<Point>, Vec<Point>) {
    let (rates, n, k, tls, chunks, grid_rates) = longdecode_size(scale);
    let seeds: Vec<u64> = (0..k).map(|i| derive_seed(seed, i)).collect();
    let classes = [(512, 1000, 1.0)];
    let (law, cap) = (llama3_8b_step(), LLAMA3_8B_KV_TOKENS);
    let fixed = run_all(&law, cap, &classes, &grid_jobs(&longdecode_policies(), &rates, &seeds), n);
    let mut jobs = Vec::new();
    for &tl in &tls {
        for &cs in &chunks {
            for &l in &grid_rates {
                let p = Pol::WaitCp { tl, chunk: cs, gate: false, horizon: 1000 };
                jobs.push((p, l, seeds[0]));
            }
        }
    }
    let grid = run_all(&law, cap, &classes, &jobs, n);
    (seeds, fixed, grid)
}

/// W-EXP-LONGDECODE-AS-RUN: the claims and every run (fixed config on all seeds, then the
/// grid on the first seed).
pub fn longdecode(scale: Scale, seed: u64) -> (Vec<ClaimResult>, Vec<Point>, Vec<Point>) {
    let (seeds, fixed, grid) = longdecode_runs(scale, seed);
    let mut out = longdecode_headline(scale, &seeds, &fixed);
    out.extend(longdecode_side(scale, &seeds, &fixed, &grid));
    (out, fixed, grid)
}

/// The two fixed-config ordering rows (4.5 first: the headline).
fn longdecode_headline(scale: Scale, seeds: &[u64], fixed: &[Point]) -> Vec<ClaimResult> {
    let id = "W-EXP-LONGDECODE-AS-RUN";
    let (_, n, k, ..) = longdecode_size(scale);
    let cap = LLAMA3_8B_KV_TOKENS;
    let pols = longdecode_policies();
    let [cp, sa, vl] = pols.map(|p| p.label());
    let (cp, sa, vl) = (cp.as_str(), sa.as_str(), vl.as_str());
    let setup = format!(
        "{n} requests per run, {k} seeds (fixed config), C = {cap} tokens, middle-50% mean; \
         {LLAMA3_8B_SOURCE}{}",
        if scale == Scale::Quick { "; quick tier: 1,000 requests and 3 seeds" } else { "" }
    );
    let mut out = Vec::new();
    // 1. Headline: the fixed config's ordering at 4.5 on paired seeds.
    let at = |p: &str, l: f64| lat(fixed, p, l);
    let m45 = |p: &str| mean(&at(p, 4.5));
    let parts = vec![
        ("Sarathi - WAIT-CP".to_string(), paired_less(&at(cp, 4.5), &at(sa, 4.5))),
        ("vLLM - Sarathi".to_string(), paired_less(&at(sa, 4.5), &at(vl, 4.5))),
    ];
    let mut r = row(
        id,
        "fixed config, lambda 4.5: WAIT-CP < Sarathi < vLLM",
        "WAIT 32.3 < Sarathi 41.7 < vLLM 53.8 s",
        Some(m45(cp)),
        chain_verdict(&parts),
    );
    r.paper_text = format!(
        "WAIT 32.3 < Sarathi 41.7 < vLLM 53.8 s; ours (seed means) WAIT-CP {:.1}, Sarathi \
         {:.1}, vLLM {:.1} s",
        m45(cp),
        m45(sa),
        m45(vl)
    );
    r.seeds = seeds.to_vec();
    r.notes = setup.clone();
    out.push(r);
    // 2. lambda 4.0.
    let m40 = |p: &str| mean(&at(p, 4.0));
    let parts = vec![("Sarathi - WAIT-CP".to_string(), paired_less(&at(cp, 4.0), &at(sa, 4.0)))];
    let mut r = row(
        id,
        "fixed config, lambda 4.0: WAIT-CP < Sarathi",
        "WAIT 26.4 < Sarathi 30.2 s",
        Some(m40(cp)),
        chain_verdict(&parts),
    );
    r.paper_text = format!(
        "WAIT 26.4 < Sarathi 30.2 s; ours WAIT-CP {:.1}, Sarathi {:.1} s",
        m40(cp),
        m40(sa)
    );
    r.seeds = seeds.to_vec();
    out.push(r);
    out
}

/// The side rows: baseline magnitudes, restarts, the authors' best-of-grid protocol.
fn longdecode_side(
    scale: Scale,
    seeds: &[u64],
    fixed: &[Point],
    grid: &[Point],
) -> Vec<ClaimResult> {
    let id = "W-EXP-LONGDECODE-AS-RUN";
    let (_, n, ..) = longdecode_size(scale);
    let [cp, sa, vl] = longdecode_policies().map(|p| p.label());
    let (cp, sa, vl) = (cp.as_str(), sa.as_str(), vl.as_str());
    let at = |p: &str, l: f64| lat(fixed, p, l);
    let mut out = Vec::new();
    // 3. Baseline magnitudes against the paper's (25 %, fixed before the run).
    let checks = [(sa, 4.0, 30.2), (sa, 4.5, 41.7), (vl, 4.5, 53.8)];
    let rel: Vec<(String, f64)> = checks
        .iter()
        .map(|&(p, l, paper)| {
            (format!("{p} at {l}: {:.1} s vs {paper}", mean(&at(p, l))), {
                mean(&at(p, l)) / paper - 1.0
            })
        })
        .collect();
    let worst = rel.iter().map(|r| r.1.abs()).fold(0.0, f64::max);
    let text: Vec<String> = rel.iter().map(|r| r.0.clone()).collect();
    out.push(row(
        id,
        "baseline magnitudes (within 25 % of the paper's)",
        &format!(
            "Sarathi 30.2 s at 4.0, 41.7 s at 4.5; vLLM 53.8 s at 4.5; ours {}",
            text.join(", ")
        ),
        Some(worst),
        if worst <= 0.25 {
            ClaimVerdict::Supported
        } else {
            ClaimVerdict::NotSupported(format!(
                "largest relative difference {:.0} %",
                100.0 * worst
            ))
        },
    ));
    // 4. Restarts at 4.0.
    let restarts = |p: &str| {
        let pts: Vec<&Point> = fixed.iter().filter(|x| x.policy == p && x.lambda == 4.0).collect();
        100.0 * pts.iter().map(|x| x.evictions).sum::<u64>() as f64 / (n * pts.len() as u64) as f64
    };
    let (rs, rc) = (restarts(sa), restarts(cp));
    out.push(row(
        id,
        "Sarathi restart % at lambda 4.0 (Table 1)",
        &format!("2.88 % (no traceable source); ours {rs:.2} %"),
        Some(rs),
        ClaimVerdict::NotReproducible(
            "the paper's 2.88 % has no source in the authors' code, data or notes (papers notes \
             §8; their notes place it in a 'tightened-memory diagnostic' not in the repository)"
                .into(),
        ),
    ));
    out.push(row(
        id,
        "WAIT-CP restart % at lambda 4.0",
        &format!("0 %; ours {rc:.2} %"),
        Some(rc),
        if rc == 0.0 {
            ClaimVerdict::Supported
        } else {
            ClaimVerdict::NotSupported("WAIT-CP restarts".into())
        },
    ));
    out.extend(longdecode_protocol(scale, seeds, fixed, grid));
    out
}

/// The authors' protocol at 4.5: the best WAIT-CP of the grid against one run of each
/// baseline (labelled; selection favours WAIT-CP).
fn longdecode_protocol(
    scale: Scale,
    seeds: &[u64],
    fixed: &[Point],
    grid: &[Point],
) -> Option<ClaimResult> {
    let id = "W-EXP-LONGDECODE-AS-RUN";
    let (_, _, _, tls, chunks, _) = longdecode_size(scale);
    let [_, sa, vl] = longdecode_policies().map(|p| p.label());
    let (sa, vl) = (sa.as_str(), vl.as_str());
    let at = |p: &str, l: f64| lat(fixed, p, l);
    // 5. The authors' protocol: min over the grid per rate, one run each.
    let best = |l: f64| {
        grid.iter()
            .filter(|p| p.lambda == l && p.latency_s.is_finite())
            .min_by(|a, b| a.latency_s.total_cmp(&b.latency_s))
            .cloned()
    };
    if let Some(b) = best(4.5) {
        let one = |p: &str| at(p, 4.5).first().copied().unwrap_or(f64::NAN);
        let ok = b.latency_s < one(sa) && one(sa) < one(vl);
        let mut r = row(
            id,
            "authors' protocol, lambda 4.5: best WAIT-CP of the grid vs one run each",
            "WAIT 32.3 < Sarathi 41.7 < vLLM 53.8 s",
            Some(b.latency_s),
            if ok {
                ClaimVerdict::Supported
            } else {
                ClaimVerdict::NotSupported("not ordered even with the best of the grid".into())
            },
        );
        r.paper_text = format!(
            "WAIT 32.3 < Sarathi 41.7 < vLLM 53.8 s; ours best of {} WAIT-CP configs ({}) {:.1}, \
             Sarathi {:.1}, vLLM {:.1} s (one run each, first seed)",
            tls.len() * chunks.len(),
            b.policy,
            b.latency_s,
            one(sa),
            one(vl)
        );
        r.notes = "labelled: the authors' protocol takes the minimum over WAIT-CP variants per \
                   rate (plot_figure_G_long_decode.py), which favours WAIT-CP by selection"
            .into();
        r.seeds = vec![seeds[0]];
        return Some(r);
    }
    None
}

/// The paper's long-decode figure values (Figure G) as `(policy, lambda, seconds)`.
pub const LONGDECODE_PAPER: [(&str, f64, f64); 5] = [
    ("WAIT", 4.0, 26.4),
    ("WAIT", 4.5, 32.3),
    ("Sarathi", 4.0, 30.2),
    ("Sarathi", 4.5, 41.7),
    ("vLLM", 4.5, 53.8),
];

/// The experiment for `kvsched reproduce`: claims, a figure and the runs.
pub fn run_longdecode(ctx: &Ctx) -> Output {
    let (results, fixed, grid) = longdecode(ctx.scale, ctx.seed);
    let (rates, ..) = longdecode_size(ctx.scale);
    let mut fig = FigureData::lines(
        "W-EXP-LONGDECODE as run: p512d1000, Llama-3-8B (C = 479,232), affine fit",
        "arrival rate lambda (req/s)",
        "mean latency, middle 50% (s)",
    )
    .log_y();
    for p in longdecode_policies() {
        let l = p.label();
        fig = fig.series(Series::new(
            &format!("{l} (seed mean)"),
            curve(&fixed, &l, &rates),
            Style::Line,
        ));
    }
    let mut grid_rates: Vec<f64> = grid.iter().map(|p| p.lambda).collect();
    grid_rates.dedup();
    let best: Vec<(f64, f64)> = grid_rates
        .iter()
        .filter_map(|&l| {
            grid.iter()
                .filter(|p| p.lambda == l && p.latency_s.is_finite())
                .map(|p| p.latency_s)
                .min_by(f64::total_cmp)
                .map(|y| (l, y.max(1e-3)))
        })
        .collect();
    fig = fig.series(Series::new("WAIT-CP best of grid (authors' protocol)", best, Style::Points));
    for name in ["WAIT", "Sarathi", "vLLM"] {
        let pts: Vec<(f64, f64)> =
            LONGDECODE_PAPER.iter().filter(|p| p.0 == name).map(|p| (p.1, p.2)).collect();
        fig = fig.series(Series::new(&format!("paper: {name}"), pts, Style::Reference));
    }
    let id = "W-EXP-LONGDECODE-AS-RUN";
    Output {
        results,
        figures: vec![fig.figure("exp_longdecode_as_run.svg", &[id])],
        data: serde_json::json!({ "step_time": LLAMA3_8B_SOURCE, "fixed": fixed, "grid": grid }),
    }
}

// ---------------------------------------------------------------------------------------------
// lmsys.

/// The lmsys policies as run.
pub fn lmsys_policies() -> [Pol; 6] {
    [
        Pol::WaitCp { tl: 300, chunk: 128, gate: true, horizon: 500 },
        Pol::WaitCp { tl: 200, chunk: 128, gate: true, horizon: 500 },
        Pol::Nested,
        Pol::Sarathi { chunk: 512, cap: 256 },
        Pol::Sarathi { chunk: 256, cap: 256 },
        Pol::Vllm { cap: 128 },
    ]
}

/// The rerun's table (2026_05_07): `(lambda, Sarathi 512/cap 256, WAIT-CP winner)` seconds.
pub const LMSYS_RERUN: [(f64, f64, f64); 5] = [
    (50.0, 4.748, 4.707),
    (60.0, 9.486, 5.523),
    (70.0, 14.79, 10.07),
    (80.0, 18.97, 14.13),
    (100.0, 24.67, 20.08),
];

fn lmsys_size(scale: Scale) -> (Vec<f64>, u64, u64) {
    match scale {
        Scale::Quick => (vec![10.0, 30.0, 50.0, 60.0, 70.0, 80.0], 1_000, 2),
        Scale::Full => ((1..=15).map(|k| f64::from(k) * 10.0).collect(), 5_000, 5),
    }
}

/// The admission-rate cap of one-segment WAIT-CP with budget `tl` over `stages` stages:
/// at most `tl / stages` admissions per iteration on average, so at most
/// `tl / (stages d0)` requests per second (`spec/WAIT_NOTES.md` §1).
pub fn one_segment_cap(tl: u64, stages: u64, d0: f64) -> (f64, f64) {
    let per_step = tl as f64 / stages as f64;
    (per_step, per_step / d0)
}

/// W-EXP-LMSYS-AS-RUN: the claims and every run.
pub fn lmsys(scale: Scale, seed: u64) -> (Vec<ClaimResult>, Vec<Point>) {
    let id = "W-EXP-LMSYS-AS-RUN";
    let (grid, n, k) = lmsys_size(scale);
    let seeds: Vec<u64> = (0..k).map(|i| derive_seed(seed, i)).collect();
    let pols = lmsys_policies();
    let (d0, d1, cap) = LMSYS_AFFINE;
    let jobs = grid_jobs(&pols, &grid, &seeds);
    let law = StepTime::Affine { d0_s: d0, d1_s_per_token: d1 };
    let pts = run_all(&law, cap, &LMSYS_AS_RUN_BINS, &jobs, n);
    let labels: Vec<String> = pols.iter().map(Pol::label).collect();
    let (cp300, cp200, nw, s512, s256) =
        (&labels[0], &labels[1], &labels[2], &labels[3], &labels[4]);
    let top: Vec<f64> = grid.iter().copied().filter(|&l| (60.0..=80.0).contains(&l)).collect();
    let setup = format!(
        "{n} requests per rate, {k} seeds, lmsys-like decode shares with prompt 35, affine \
         d0 = {d0} s, d1 = {d1} s/token, C = {cap}, middle-50% mean{}",
        if scale == Scale::Quick { "; quick tier: 1,000 requests and 2 seeds" } else { "" }
    );
    let cells = |a: &str, b: &str| -> Vec<String> {
        top.iter()
            .map(|&l| {
                format!("{l}: {:.2} vs {:.2} s", mean(&lat(&pts, a, l)), mean(&lat(&pts, b, l)))
            })
            .collect()
    };
    let compare = |a: &str, b: &str, label: &str, paper: &str| -> ClaimResult {
        let parts: Vec<(String, (Option<bool>, String))> = top
            .iter()
            .map(|&l| (format!("lambda {l}"), paired_less(&lat(&pts, a, l), &lat(&pts, b, l))))
            .collect();
        let ratio = top.last().map(|&l| mean(&lat(&pts, a, l)) / mean(&lat(&pts, b, l)));
        let mut r = row(id, label, paper, ratio, chain_verdict(&parts));
        r.paper_text = format!("{paper}; ours {}", cells(a, b).join(", "));
        r.seeds = seeds.clone();
        r
    };
    let mut out = vec![compare(
        cp300,
        s512,
        "WAIT-CP tl 300 / Sarathi 512 latency at lambda 60-80",
        "WAIT-CP below Sarathi 512/cap 256 by 42 %, 32 %, 26 % at 60, 70, 80 (rerun)",
    )];
    out[0].notes = setup;
    out.push(compare(
        cp300,
        s256,
        "WAIT-CP tl 300 / Sarathi 256 latency at lambda 60-80 (the figure's baseline)",
        "Nested WAIT below Sarathi (figure D, typed-in arrays)",
    ));
    out.push(compare(
        cp200,
        s512,
        "WAIT-CP tl 200 (top of the stated grid) / Sarathi 512 at lambda 60-80",
        "WAIT-CP below Sarathi",
    ));
    out.push(compare(
        nw,
        s512,
        "Algorithm 2 (fluid design) / Sarathi 512 at lambda 60-80",
        "Nested WAIT below Sarathi",
    ));
    out.push(lmsys_sarathi_row(&pts, &grid, n, &seeds, s512));
    out.push(lmsys_cap_row(&pts, &grid, cp300));
    (out, pts)
}

/// Sarathi 512/cap 256 against the rerun's own numbers, within 25 % (a side row). Disclosed:
/// this tolerance was set after the first quick run (which showed 64–80 % differences); the
/// first draft marked the row supported whenever a value existed, which tested nothing.
fn lmsys_sarathi_row(
    pts: &[Point],
    grid: &[f64],
    n: u64,
    seeds: &[u64],
    s512: &str,
) -> ClaimResult {
    let id = "W-EXP-LMSYS-AS-RUN";
    let top: Vec<f64> = grid.iter().copied().filter(|&l| (60.0..=80.0).contains(&l)).collect();
    // Sarathi 512 against the rerun's own numbers (informative).
    let sar: Vec<String> = LMSYS_RERUN
        .iter()
        .filter(|r| grid.contains(&r.0))
        .map(|r| format!("{}: {:.2} vs {:.2} s", r.0, mean(&lat(pts, s512, r.0)), r.1))
        .collect();
    // Within 25 % at every rerun rate in 60-80 (the long-decode magnitude row's tolerance).
    let dev = LMSYS_RERUN
        .iter()
        .filter(|r| top.contains(&r.0))
        .map(|r| (mean(&lat(pts, s512, r.0)) / r.1 - 1.0).abs())
        .fold(f64::NAN, f64::max);
    let mut r = row(
        id,
        "Sarathi 512/cap 256 against the rerun's values (within 25 %)",
        &format!("9.49 / 14.79 / 18.97 s at 60 / 70 / 80; ours vs theirs {}", sar.join(", ")),
        Some(dev),
        if dev <= 0.25 {
            ClaimVerdict::Supported
        } else if dev.is_finite() {
            let why = if n < 5_000 {
                format!("overload latencies grow with run length: {n} requests here, 5,000 there")
            } else {
                "the rerun ran Vidur's step time, this the affine law".into()
            };
            ClaimVerdict::NotSupported(format!(
                "largest relative difference {:.0} % ({why})",
                100.0 * dev
            ))
        } else {
            ClaimVerdict::NotReproducible("no Sarathi point in 60-80".into())
        },
    );
    r.seeds = seeds.to_vec();
    r
}

/// The admission-rate cap of WAIT-CP tl 300 (`spec/WAIT_NOTES.md` §1) at the top rate.
fn lmsys_cap_row(pts: &[Point], grid: &[f64], cp300: &str) -> ClaimResult {
    let id = "W-EXP-LMSYS-AS-RUN";
    let d0 = LMSYS_AFFINE.0;
    // The admission-rate cap (spec/WAIT_NOTES.md §1): admissions per iteration of tl 300.
    let (per_step, per_s) = one_segment_cap(300, 501, d0);
    let hi = grid.last().copied().unwrap_or(80.0);
    let at_hi: Vec<&Point> = pts.iter().filter(|p| p.policy == cp300 && p.lambda == hi).collect();
    let adm = at_hi.iter().map(|p| p.admissions).sum::<u64>() as f64
        / at_hi.iter().map(|p| p.steps).sum::<u64>().max(1) as f64;
    // Exact: 300 admissions at most per 501 turns of the rotation (one turn per iteration).
    let within = at_hi.iter().all(|p| p.admissions <= p.steps.div_ceil(501) * 300);
    let thr =
        at_hi.iter().map(|p| p.completion_ratio * hi).sum::<f64>() / at_hi.len().max(1) as f64;
    let mut r = row(
        id,
        "WAIT-CP tl 300 admissions per iteration at the top rate (cap tl / stages)",
        &format!(
            "<= 300 / 501 = {per_step:.3} per iteration, so <= {per_s:.1} req/s at d0; ours \
             {adm:.3} per iteration, {thr:.1} completions/s at lambda {hi}"
        ),
        Some(adm),
        if within {
            ClaimVerdict::Supported
        } else {
            ClaimVerdict::NotSupported("admits faster than its rotation allows".into())
        },
    );
    r.notes = "the cap is Algorithm 2's own drift condition with n_1 = tl / (stages of segment 1) \
               and is in the authors' code (rotation per _get_next_batch call); spec/WAIT_NOTES.md \
               §1"
    .into();
    r
}

/// The experiment for `kvsched reproduce`.
pub fn run_lmsys(ctx: &Ctx) -> Output {
    let (results, pts) = lmsys(ctx.scale, ctx.seed);
    let (grid, ..) = lmsys_size(ctx.scale);
    let mut fig = FigureData::lines(
        "W-EXP-LMSYS as run: lmsys-like mix (prompt 35), Llama-2-7B affine fit, C = 137,000",
        "arrival rate lambda (req/s)",
        "mean latency, middle 50% (s)",
    )
    .log_y();
    for p in lmsys_policies() {
        let l = p.label();
        fig = fig.series(Series::new(&l, curve(&pts, &l, &grid), Style::Line));
    }
    let sar = LMSYS_RERUN.iter().map(|r| (r.0, r.1)).collect();
    let wcp = LMSYS_RERUN.iter().map(|r| (r.0, r.2)).collect();
    fig = fig
        .series(Series::new("rerun (Vidur): Sarathi 512/cap 256", sar, Style::Reference))
        .series(Series::new("rerun (Vidur): WAIT-CP winner", wcp, Style::Reference))
        .vline(one_segment_cap(300, 501, LMSYS_AFFINE.0).1, "tl 300 admission cap tl/(S d0)");
    let id = "W-EXP-LMSYS-AS-RUN";
    Output {
        results,
        figures: vec![fig.figure("exp_lmsys_as_run.svg", &[id])],
        data: serde_json::json!({ "points": pts }),
    }
}

// ---------------------------------------------------------------------------------------------
// Single type as run.

/// The single-type policies as run (`docs/progress/2026_04_26_single_type_reproduction_
/// provenance.md`): WAIT-CP tl 21, chunk 256, wait gate off, one segment of 20 decode stages;
/// Sarathi 512 with cap 512; vLLM with Vidur's default cap 128.
pub fn single_policies() -> [Pol; 3] {
    [
        Pol::Vllm { cap: 128 },
        Pol::Sarathi { chunk: 512, cap: 512 },
        Pol::WaitCp { tl: 21, chunk: 256, gate: false, horizon: 20 },
    ]
}

fn single_size(scale: Scale) -> (Vec<f64>, u64) {
    match scale {
        Scale::Quick => (vec![12.0, 18.0, 21.0, 24.0, 27.0, 30.0], 1_000),
        Scale::Full => ((12..=34).map(f64::from).collect(), 10_000),
    }
}

/// The largest `lambda` up to which every point is controlled (completions `>= 0.9 lambda`,
/// latency `<= 4x` the first rate's): the criterion of `wait::exp_single`, fixed a priori.
fn lambda_star(points: &[Point]) -> f64 {
    let first = points.first().map_or(0.0, |p| p.latency_s);
    points
        .iter()
        .take_while(|p| p.completion_ratio >= 0.9 && p.latency_s <= 4.0 * first)
        .last()
        .map_or(0.0, |p| p.lambda)
}

/// A threshold-ordering experiment as run: its claim, workload classes, policies (low to
/// high expected threshold) and the paper's text.
struct Ordering {
    id: &'static str,
    classes: &'static [(u64, u64, f64)],
    policies: Vec<Pol>,
    paper: &'static str,
}

/// Runs `o` on the grid under [`llama3_8b_profile_step`] (C = 479,232, the same `num_blocks`
/// as the long decode runs: both use memory margin 0.1; the affine long-decode fit charged a
/// 512-token prefill 0.08 ms, so nothing saturated under it; switched after that run,
/// disclosed in spec/CLAIMS.md), one run per rate (the authors: one 10,000-request run, seed
/// 42). Supported when the thresholds are ordered `p0 <= p1 < p2`.
fn ordering(o: &Ordering, scale: Scale, seed: u64) -> (Vec<ClaimResult>, Vec<Point>) {
    let (grid, n) = single_size(scale);
    let jobs = grid_jobs(&o.policies, &grid, &[seed]);
    let law = llama3_8b_profile_step();
    let pts = run_all(&law, LLAMA3_8B_KV_TOKENS, o.classes, &jobs, n);
    let stars: Vec<(String, f64)> = o
        .policies
        .iter()
        .map(|p| {
            let l = p.label();
            let mine: Vec<Point> = pts.iter().filter(|x| x.policy == l).cloned().collect();
            (l, lambda_star(&mine))
        })
        .collect();
    let (v, s, w) = (stars[0].1, stars[1].1, stars[2].1);
    let text: Vec<String> = stars.iter().map(|(l, x)| format!("{l} {x}")).collect();
    let top = grid.last().copied().unwrap_or(f64::NAN);
    // Added after the first run (all three controlled up to the grid's top; disclosed in
    // spec/CLAIMS.md): with no threshold crossed there is no ordering to judge.
    let verdict = if s == top && w == top {
        ClaimVerdict::NotReproducible(format!(
            "no threshold crossed on the grid (up to {top}) under the profile-fitted \
             Llama-3-8B law"
        ))
    } else if v <= s && s < w {
        ClaimVerdict::Supported
    } else {
        let t = text.join(", ");
        ClaimVerdict::NotSupported(format!("thresholds not ordered {}: {t}", o.paper))
    };
    let mut r = row(o.id, "lambda* ordering, as run", o.paper, Some(w), verdict);
    r.paper_text = format!("{}; ours {}", o.paper, text.join(", "));
    r.seeds = vec![seed];
    r.notes = format!(
        "{n} requests per rate, one run each, C = {LLAMA3_8B_KV_TOKENS}; \
         {LLAMA3_8B_PROFILE_SOURCE}{}",
        if scale == Scale::Quick { "; quick tier: 1,000 requests" } else { "" }
    );
    (vec![r], pts)
}

/// W-EXP-SINGLE-AS-RUN: p512d20 on Llama-3-8B, the policies of [`single_policies`] (the
/// paper: 19 < 22 < 23). See [`ordering`].
pub fn single(scale: Scale, seed: u64) -> (Vec<ClaimResult>, Vec<Point>) {
    let o = Ordering {
        id: "W-EXP-SINGLE-AS-RUN",
        classes: &[(512, 20, 1.0)],
        policies: single_policies().to_vec(),
        paper: "vLLM 19 < Sarathi 22 < WAIT 23",
    };
    ordering(&o, scale, seed)
}

/// The two-type policies as run: vLLM cap 128 and Sarathi 512/512 as for the single type; the
/// authors' Nested WAIT config cs 128, tl 30 (papers notes §3.3, §5.2): segments of decode
/// stages 1–20 and 21–50, `n_2/n_1` = the continuation ratio 0.3 (so `seg_margin` 0), which
/// gives budgets of about 21 and 9; wait gate off as in their single-type config (their notes
/// do not name it for this figure).
pub fn two_type_policies() -> [Pol; 3] {
    [
        Pol::Vllm { cap: 128 },
        Pol::Sarathi { chunk: 512, cap: 512 },
        Pol::WaitCpSegments { tl: 30, chunk: 128, gate: false, cuts: &[0, 20, 50], margin: 0.0 },
    ]
}

/// W-EXP-TWOTYPE-AS-RUN: 0.7 p512d20 + 0.3 p512d50 on Llama-3-8B with
/// [`two_type_policies`] (the paper: 18 < 21 < 22). See [`ordering`].
pub fn two_type(scale: Scale, seed: u64) -> (Vec<ClaimResult>, Vec<Point>) {
    let o = Ordering {
        id: "W-EXP-TWOTYPE-AS-RUN",
        classes: &[(512, 20, 0.7), (512, 50, 0.3)],
        policies: two_type_policies().to_vec(),
        paper: "vLLM 18 < Sarathi 21 < Nested WAIT 22",
    };
    ordering(&o, scale, seed)
}

/// The report output of an ordering experiment: its rows and one latency-vs-rate figure.
fn ordering_output(
    id: &str,
    title: &str,
    file: &str,
    pols: &[Pol],
    (results, pts): (Vec<ClaimResult>, Vec<Point>),
    scale: Scale,
) -> Output {
    let (grid, _) = single_size(scale);
    let mut fig =
        FigureData::lines(title, "arrival rate lambda (req/s)", "mean latency, middle 50% (s)")
            .log_y();
    for p in pols {
        let l = p.label();
        fig = fig.series(Series::new(&l, curve(&pts, &l, &grid), Style::Line));
    }
    Output {
        results,
        figures: vec![fig.figure(file, &[id])],
        data: serde_json::json!({ "points": pts }),
    }
}

/// The experiment for `kvsched reproduce` (W-EXP-TWOTYPE-AS-RUN).
pub fn run_two_type(ctx: &Ctx) -> Output {
    ordering_output(
        "W-EXP-TWOTYPE-AS-RUN",
        "W-EXP-TWOTYPE as run: 0.7 p512d20 + 0.3 p512d50, Llama-3-8B, profile-fitted law",
        "exp_two_type_as_run.svg",
        &two_type_policies(),
        two_type(ctx.scale, ctx.seed),
        ctx.scale,
    )
}

/// The experiment for `kvsched reproduce` (W-EXP-SINGLE-AS-RUN).
pub fn run_single(ctx: &Ctx) -> Output {
    ordering_output(
        "W-EXP-SINGLE-AS-RUN",
        "W-EXP-SINGLE as run: p512d20, Llama-3-8B (C = 479,232), profile-fitted law",
        "exp_single_as_run.svg",
        &single_policies(),
        single(ctx.scale, ctx.seed),
        ctx.scale,
    )
}
