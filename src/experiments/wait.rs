//! The WAIT paper's theorems and experiments as measurements (claims `W-*` of
//! `spec/CLAIMS.md`). The tests in `tests/it/wait_claims.rs` and `kvsched reproduce` call these
//! functions; each returns [`ClaimResult`]s with the paper's value, ours and a measured
//! verdict.
//!
//! **Scaling regime** (WAIT paper §4; notes §4): rates `zeta lambda_j`, step time
//! `(d0 / zeta, d1 / zeta)`, capacity fixed, horizon `T = 1` s of calendar time, so the
//! effective horizon is `zeta T`. The throughput gap is estimated per replication by the
//! **backlog** `(decode tokens arrived in [0, T] - decode tokens completed by T) / (zeta T)`,
//! whose expectation is exactly `Throughput* - E[Throughput]` (arrivals are Poisson with mean
//! `zeta T sum_j lambda_j l'_j`) and whose variance excludes the arrivals' own noise.
//! Latency is service-normalised (`zeta` times calendar latency), over the middle 50% of
//! requests by arrival. Slopes are least-squares fits of `ln` gap on `ln zeta T` over all
//! replications, with a Student-t interval ([`kvsched_verify::stats::loglog_slope`]).

use super::figures::{FigureData, Series, Style};
use super::{ClaimResult, ClaimVerdict, Ctx, Output, Scale};
use crate::prng::derive_seed;
use crate::schedulers::nested_wait::{NestedThresholds, NestedWait};
use crate::schedulers::wait::{Thresholds, Wait};
use crate::sim::{simulate, Outcome, Scheduler, SimOptions};
use crate::workload::{generate, Amount};
use kvsched_spec::{
    ArrivalProcess, ClassSpec, EvictionRule, FirstToken, Information, Instance, MemoryConfig,
    StepTime, WorkloadFile,
};
use kvsched_verify::stats::{self, SlopeFit};

/// A base instance of the scaling experiments (scale 1).
#[derive(Clone, Debug, PartialEq)]
pub struct Base {
    /// `(prompt, output, rate)` per type.
    pub classes: Vec<(u64, u64, f64)>,
    /// `d0` (seconds).
    pub d0_s: f64,
    /// `d1` (seconds per token).
    pub d1_s: f64,
    /// Capacity `C` (tokens).
    pub capacity: u64,
    /// Eviction rule of the server.
    pub eviction: EvictionRule,
}

/// The instance of Proposition 3: types `(1,1,1)`, `(1,2,1)`, `d1 = 0.05 < 1/9`,
/// `d0 = 1 - 9 d1`, so `dT* = 1`, `n* = (1, 1)` and `M* = 9`; capacity `capacity`.
pub fn prop3_base(capacity: u64) -> Base {
    Base {
        classes: vec![(1, 1, 1.0), (1, 2, 1.0)],
        d0_s: 0.55,
        d1_s: 0.05,
        capacity,
        eviction: EvictionRule::Lifo,
    }
}

/// The policies the scaling experiments run.
#[derive(Clone, Debug, PartialEq)]
pub enum Policy {
    /// WAIT with per-type thresholds `((prompt, output), n)`.
    Wait(Vec<((u64, u64), f64)>),
    /// Nested WAIT with boundaries, thresholds and the repair switch.
    Nested(Vec<u64>, Vec<f64>, bool),
    /// A scheduler of the catalog by name (e.g. `vllm-v0`, FCFS).
    Named(String),
}

/// What one run gave.
#[derive(Clone, Debug)]
pub struct RunStats {
    /// The outcome (partial if the run stopped early).
    pub outcome: Outcome,
    /// Why the run stopped early, if it did.
    pub error: Option<String>,
    /// Backlog gap estimate (decode tokens per unit of `zeta T`).
    pub gap: f64,
    /// Service-normalised mean latency over the middle 50%.
    pub latency: f64,
    /// WAIT / Nested WAIT memory-guard trims.
    pub guard_trims: u64,
    /// Nested WAIT repair evictions.
    pub repair_evictions: u64,
}

/// The workload of `base` at scale `zeta`.
pub fn scaled_workload(base: &Base, zeta: f64) -> WorkloadFile {
    WorkloadFile {
        format_version: 1,
        memory: MemoryConfig::tokens(base.capacity),
        step_time: StepTime::Affine { d0_s: base.d0_s / zeta, d1_s_per_token: base.d1_s / zeta },
        first_token: FirstToken::SeparateDecode,
        eviction: base.eviction,
        // The papers' rule (and the default): evicted requests restart.
        preemption: kvsched_spec::Preemption::Restart,
        classes: base
            .classes
            .iter()
            .map(|&(p, o, r)| ClassSpec {
                name: None,
                prompt_tokens: p,
                output_tokens: o,
                rate_per_s: r * zeta,
            })
            .collect(),
        arrivals: ArrivalProcess::Constant,
    }
}

fn run_policy(policy: &Policy, inst: &Instance) -> (Outcome, Option<String>, u64, u64) {
    let go = |s: &mut dyn Scheduler| match simulate(inst, s, SimOptions::default()) {
        Ok(o) => (o, None),
        Err(e) => (*e.partial.clone(), Some(e.to_string())),
    };
    match policy {
        Policy::Wait(n) => {
            let mut w = Wait::with_thresholds(Thresholds::PerType(n.iter().copied().collect()));
            let (o, e) = go(&mut w);
            (o, e, w.guard_trims + w.guard_evictions, 0)
        }
        Policy::Nested(b, n, repair) => {
            let mut w = NestedWait::new(b.clone(), NestedThresholds::Fixed(n.clone()));
            w.repair = *repair;
            let (o, e) = go(&mut w);
            (o, e, w.guard_trims + w.guard_evictions, w.repair_evictions)
        }
        Policy::Named(name) => {
            let mut s = crate::schedulers::by_name(name).expect("catalog name");
            let (o, e) = go(s.as_mut());
            (o, e, 0, 0)
        }
    }
}

/// One replication at scale `zeta` over the calendar horizon `horizon_s`.
pub fn run_scaled(base: &Base, zeta: f64, horizon_s: f64, policy: &Policy, seed: u64) -> RunStats {
    let w = scaled_workload(base, zeta);
    let requests = generate(&w, Amount::HorizonS(horizon_s), seed);
    let inst = Instance { config: w.model_config(Information::Hidden), requests };
    let (outcome, error, guard_trims, repair_evictions) = run_policy(policy, &inst);
    let end = kvsched_spec::Nanos::from_secs_f64(horizon_s).expect("finite horizon");
    let arrived: u64 = outcome.requests.iter().map(|r| r.output_tokens.get()).sum();
    let done: u64 = outcome
        .requests
        .iter()
        .filter(|r| r.finish_ns.is_some_and(|f| f <= end))
        .map(|r| r.output_tokens.get())
        .sum();
    let gap = (arrived - done) as f64 / (zeta * horizon_s);
    let latency = outcome.summary(0.5).latency_s.mean * zeta;
    RunStats { outcome, error, gap, latency, guard_trims, repair_evictions }
}

/// A scaling sweep of the WAIT experiments: per `zeta`, the replications' stats (not the
/// rate sweep of `experiments::sweep`).
#[derive(Clone, Debug)]
pub struct ZetaSweep {
    /// `(zeta T, replications)`.
    pub points: Vec<(f64, Vec<RunStats>)>,
}

impl ZetaSweep {
    /// Runs `reps` replications at each `zeta` (horizon 1 s), seeds derived from `seed`.
    pub fn run(base: &Base, zetas: &[f64], reps: u64, policy: &Policy, seed: u64) -> ZetaSweep {
        let points = zetas
            .iter()
            .enumerate()
            .map(|(i, &z)| {
                let runs = (0..reps)
                    .map(|r| {
                        let s = derive_seed(seed, i as u64 * 1000 + r);
                        run_scaled(base, z, 1.0, policy, s)
                    })
                    .collect();
                (z, runs)
            })
            .collect();
        ZetaSweep { points }
    }

    /// Log-log fit of `f(run)` on `zeta T` over all replications.
    pub fn slope(&self, f: impl Fn(&RunStats) -> f64) -> Result<SlopeFit, stats::StatsError> {
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for (z, runs) in &self.points {
            for r in runs {
                xs.push(*z);
                ys.push(f(r));
            }
        }
        stats::loglog_slope(&xs, &ys, 0.95)
    }

    /// Mean of `f` at each point.
    pub fn means(&self, f: impl Fn(&RunStats) -> f64) -> Vec<(f64, f64)> {
        self.points
            .iter()
            .map(|(z, runs)| (*z, runs.iter().map(&f).sum::<f64>() / runs.len() as f64))
            .collect()
    }

    /// Total over all runs of `f`.
    pub fn total(&self, f: impl Fn(&RunStats) -> u64) -> u64 {
        self.points.iter().flat_map(|p| p.1.iter()).map(f).sum()
    }

    /// Every run's error, if any.
    pub fn errors(&self) -> Vec<String> {
        self.points.iter().flat_map(|p| p.1.iter()).filter_map(|r| r.error.clone()).collect()
    }
}

fn seeds_of(seed: u64) -> Vec<u64> {
    vec![seed]
}

/// What a log-log slope claim asserts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlopeKind {
    /// Growth like `x^paper`: the 95% interval must contain `paper`.
    Exact,
    /// `O(1)` (bounded): refuted only by growth, i.e. when the whole interval lies above 0.
    Bounded,
    /// `Omega(1)` (does not vanish): refuted only by decay, when the whole interval is below 0.
    NotVanishing,
}

/// A slope claim: supported when the 95% interval contains `paper`.
pub fn slope_claim(
    id: &str,
    label: &str,
    paper: f64,
    fit: &Result<SlopeFit, stats::StatsError>,
    seed: u64,
    notes: String,
) -> ClaimResult {
    slope_claim_kind(id, label, paper, SlopeKind::Exact, fit, seed, notes)
}

/// A slope claim of the given kind (`paper` is 0 for the one-sided kinds). An `O(1)` latency
/// is not contradicted by a slightly falling one: before this distinction, the full-scale run
/// of W-THM2 measured a latency slope of -0.003 with the interval [-0.006, -0.0004] and was
/// reported "not supported" for excluding 0 (recorded in BENCHMARKS.md).
pub fn slope_claim_kind(
    id: &str,
    label: &str,
    paper: f64,
    kind: SlopeKind,
    fit: &Result<SlopeFit, stats::StatsError>,
    seed: u64,
    notes: String,
) -> ClaimResult {
    let (measured, ci, verdict) = match fit {
        Ok(f) => {
            let s = f.slope;
            let ok = match kind {
                SlopeKind::Exact => s.contains(paper),
                SlopeKind::Bounded => s.lo <= paper,
                SlopeKind::NotVanishing => s.hi >= paper,
            };
            let v = if ok {
                ClaimVerdict::Supported
            } else {
                let why = match kind {
                    SlopeKind::Exact => "excludes",
                    SlopeKind::Bounded => "lies above (growth)",
                    SlopeKind::NotVanishing => "lies below (decay)",
                };
                ClaimVerdict::NotSupported(format!(
                    "95% CI [{:.3}, {:.3}] {why} {paper}",
                    s.lo, s.hi
                ))
            };
            (Some(s.estimate), Some((s.lo, s.hi)), v)
        }
        Err(e) => (None, None, ClaimVerdict::NotReproducible(e.to_string())),
    };
    ClaimResult {
        id: id.into(),
        label: label.into(),
        paper: Some(paper),
        paper_text: format!("slope {paper}"),
        measured,
        ci,
        ci_level: Some(0.95),
        verdict,
        seeds: seeds_of(seed),
        notes,
    }
}

/// `zeta T` values and replications for a scale.
pub fn sweep_size(scale: Scale) -> (Vec<f64>, u64) {
    match scale {
        Scale::Quick => (vec![250.0, 1000.0, 4000.0], 4),
        Scale::Full => (vec![250.0, 1000.0, 4000.0, 16000.0, 64000.0], 10),
    }
}

fn claim(id: &str, label: &str, paper_text: &str, measured: Option<f64>, seed: u64) -> ClaimResult {
    ClaimResult {
        id: id.into(),
        label: label.into(),
        paper: None,
        paper_text: paper_text.into(),
        measured,
        ci: None,
        ci_level: None,
        verdict: ClaimVerdict::Supported,
        seeds: seeds_of(seed),
        notes: String::new(),
    }
}

fn fmt_means(v: &[(f64, f64)]) -> String {
    v.iter().map(|(z, m)| format!("zT={z}: {m:.4}")).collect::<Vec<_>>().join(", ")
}

/// W-THM1-CRITICAL and W-THM1-SLACK on Proposition 3's instance: WAIT with `n = n* = (1, 1)`
/// at `C = M* = 9` (critical: `dT(n) = n_j / lambda_j`), and with `n = (2, 2)` at
/// `C = M^pi = 18` (strict slack: `dT(n) = 1.45 < 2`). Returns the claims and both sweeps.
pub fn thm1(scale: Scale, seed: u64) -> (Vec<ClaimResult>, ZetaSweep, ZetaSweep) {
    let (zetas, reps) = sweep_size(scale);
    let crit = Policy::Wait(vec![((1, 1), 1.0), ((1, 2), 1.0)]);
    let slack = Policy::Wait(vec![((1, 1), 2.0), ((1, 2), 2.0)]);
    let sc = ZetaSweep::run(&prop3_base(9), &zetas, reps, &crit, seed);
    let ss = ZetaSweep::run(&prop3_base(18), &zetas, reps, &slack, seed);
    let note = |s: &ZetaSweep| {
        format!(
            "gap means {}; latency means {}",
            fmt_means(&s.means(|r| r.gap)),
            fmt_means(&s.means(|r| r.latency))
        )
    };
    let out = vec![
        slope_claim("W-THM1-CRITICAL", "gap", -0.5, &sc.slope(|r| r.gap), seed, note(&sc)),
        slope_claim("W-THM1-CRITICAL", "latency", 0.5, &sc.slope(|r| r.latency), seed, note(&sc)),
        slope_claim("W-THM1-SLACK", "gap", -1.0, &ss.slope(|r| r.gap), seed, note(&ss)),
        slope_claim_kind(
            "W-THM1-SLACK",
            "latency",
            0.0,
            SlopeKind::Bounded,
            &ss.slope(|r| r.latency),
            seed,
            note(&ss),
        ),
    ];
    (out, sc, ss)
}

/// The Nested WAIT instance of W-THM2: hidden outputs 1 and 2 (prompt 1, rates 1 and 1, so
/// `p_2 = 1/2`), thresholds `n = (4, 3)` (`p_2 < 3/4 < 1`), `d0 = 0.55`, `d1 = 0.05`:
/// `M^pi = 21`, `dT(n) = 1.6 < n_1 / Lambda = 2`. Returns `(boundaries, n, M_req(zeta T))`.
pub fn thm2_design(zeta: f64, delta: f64) -> (Vec<u64>, Vec<f64>, f64) {
    use kvsched_spec::fluid::nested::{check_thresholds, BufferParams, Segments};
    let seg = Segments::from_outputs(1.0, &[(1, 1.0), (2, 1.0)]).expect("two segments");
    let n = vec![4.0, 3.0];
    let buf = BufferParams { horizon_s: 1.0, zeta, segments: 2, delta };
    let chk = check_thresholds(&seg, &n, 0.55, 0.05, &buf);
    let req = chk.required_memory_tokens.expect("drift conditions hold");
    (seg.outputs.clone(), n, req)
}

/// W-THM2: Nested WAIT with `C = ceil(M_req)` (delta = 0.05) at every `zeta T`: overflow
/// frequency (runs where the repair or the guard acted) with a Clopper-Pearson interval, gap
/// and latency slopes; and without the buffer (`C = M^pi = 21`), how often the repair runs.
pub fn thm2(scale: Scale, seed: u64) -> (Vec<ClaimResult>, ZetaSweep, u64) {
    let (zetas, reps) = sweep_size(scale);
    let delta = 0.05;
    let mut points = Vec::new();
    let mut no_buffer_repairs = 0;
    for (i, &z) in zetas.iter().enumerate() {
        let (b, n, req) = thm2_design(z, delta);
        let mut base = prop3_base(req.ceil() as u64);
        base.eviction = EvictionRule::Any;
        let pol = Policy::Nested(b.clone(), n.clone(), true);
        let runs: Vec<RunStats> = (0..reps)
            .map(|r| run_scaled(&base, z, 1.0, &pol, derive_seed(seed, i as u64 * 1000 + r)))
            .collect();
        base.capacity = 21;
        let tight = run_scaled(&base, z, 1.0, &pol, derive_seed(seed, i as u64 * 1000 + 999));
        no_buffer_repairs += tight.repair_evictions;
        points.push((z, runs));
    }
    let sweep = ZetaSweep { points };
    let trials = sweep.points.iter().map(|p| p.1.len() as u64).sum::<u64>();
    let over = sweep.total(|r| u64::from(r.repair_evictions + r.guard_trims > 0));
    let cp = stats::clopper_pearson(over, trials, 0.95);
    let mut freq = claim("W-THM2", "overflow frequency", "<= delta = 0.05", None, seed);
    match cp {
        Ok(ci) => {
            freq.measured = Some(ci.estimate);
            freq.ci = Some((ci.lo, ci.hi));
            freq.ci_level = Some(0.95);
            if ci.lo > delta {
                freq.verdict =
                    ClaimVerdict::NotSupported(format!("CP lower bound {:.3} > delta", ci.lo));
            }
        }
        Err(e) => freq.verdict = ClaimVerdict::NotReproducible(e.to_string()),
    }
    freq.notes = format!("{over} of {trials} runs needed repair; C = ceil(M_req(zeta T))");
    let note = format!("gap means {}", fmt_means(&sweep.means(|r| r.gap)));
    let mut out = vec![
        freq,
        slope_claim("W-THM2", "gap", -1.0, &sweep.slope(|r| r.gap), seed, note.clone()),
        slope_claim_kind(
            "W-THM2",
            "latency",
            0.0,
            SlopeKind::Bounded,
            &sweep.slope(|r| r.latency),
            seed,
            note,
        ),
    ];
    let mut rep = claim(
        "W-THM2",
        "repair without buffer (C = M^pi = 21)",
        "needed (Prop. 5)",
        Some(no_buffer_repairs as f64),
        seed,
    );
    if no_buffer_repairs == 0 {
        rep.verdict = ClaimVerdict::NotSupported("the repair never ran without the buffer".into());
    }
    out.push(rep);
    (out, sweep, no_buffer_repairs)
}

/// W-PROP3: FCFS (`vllm-v0`: FCFS, prefill-first, LIFO preemption by recompute) against WAIT
/// at `C = M* = 9` on Proposition 3's instance. Supported when FCFS's gap does not decay (the
/// upper end of its slope interval is above -0.1) while WAIT's does (its interval is below 0).
pub fn prop3(scale: Scale, seed: u64) -> (Vec<ClaimResult>, ZetaSweep, ZetaSweep) {
    let (zetas, reps) = sweep_size(scale);
    let base = prop3_base(9);
    let fcfs = ZetaSweep::run(&base, &zetas, reps, &Policy::Named("vllm-v0".into()), seed);
    let wait = ZetaSweep::run(
        &base,
        &zetas,
        reps,
        &Policy::Wait(vec![((1, 1), 1.0), ((1, 2), 1.0)]),
        seed,
    );
    let (ff, fw) = (fcfs.slope(|r| r.gap), wait.slope(|r| r.gap));
    let last = |s: &ZetaSweep| s.means(|r| r.gap).last().map(|p| p.1);
    let mut c = claim(
        "W-PROP3",
        "FCFS gap at the largest zeta T",
        "Omega(1); WAIT -> 0",
        last(&fcfs),
        seed,
    );
    c.notes = format!(
        "FCFS gap {}; WAIT gap {}",
        fmt_means(&fcfs.means(|r| r.gap)),
        fmt_means(&wait.means(|r| r.gap))
    );
    c.verdict = match (&ff, &fw) {
        (Ok(f), Ok(w)) if f.slope.hi > -0.1 && w.slope.hi < 0.0 => ClaimVerdict::Supported,
        (Ok(f), Ok(w)) => ClaimVerdict::NotSupported(format!(
            "FCFS slope {:.3} [{:.3}, {:.3}], WAIT slope {:.3} [{:.3}, {:.3}]",
            f.slope.estimate, f.slope.lo, f.slope.hi, w.slope.estimate, w.slope.lo, w.slope.hi
        )),
        (Err(e), _) | (_, Err(e)) => ClaimVerdict::NotReproducible(e.to_string()),
    };
    let out = vec![
        c,
        slope_claim_kind(
            "W-PROP3",
            "FCFS gap slope",
            0.0,
            SlopeKind::NotVanishing,
            &ff,
            seed,
            String::new(),
        ),
        slope_claim("W-PROP3", "WAIT gap slope", -0.5, &fw, seed, String::new()),
    ];
    (out, fcfs, wait)
}

/// W-PROP2: every catalog scheduler (built by [`crate::schedulers::for_workload`]) on a stable
/// two-class workload (`(16, 8, 20/s)`, `(16, 24, 5/s)`, `d0 = 10 ms`, `d1 = 10 us`,
/// `C = 2000`, so `M* ~ 76`): completed-token throughput by `T` (mean over replications,
/// Student-t interval at `confidence`) against `sum lambda_j l'_j = 280` tokens/s. Also
/// returns, per scheduler, the largest excess of completed over arrived tokens in one run
/// (the accounting identity: never positive).
pub fn prop2(scale: Scale, seed: u64, confidence: f64) -> Vec<(ClaimResult, i64)> {
    let (reps, horizon) = match scale {
        Scale::Quick => (4, 10.0),
        Scale::Full => (10, 60.0),
    };
    let base = Base {
        classes: vec![(16, 8, 20.0), (16, 24, 5.0)],
        d0_s: 0.01,
        d1_s: 1e-5,
        capacity: 2000,
        eviction: EvictionRule::Any,
    };
    let mut w = scaled_workload(&base, 1.0);
    w.first_token = FirstToken::WithPrefill;
    let bound: f64 = base.classes.iter().map(|c| c.1 as f64 * c.2).sum();
    let end = kvsched_spec::Nanos::from_secs_f64(horizon).expect("finite");
    let mut out = Vec::new();
    for e in crate::schedulers::catalog() {
        let (mut thr, mut excess) = (Vec::new(), i64::MIN);
        for r in 0..reps {
            let mut requests = generate(&w, Amount::HorizonS(horizon), derive_seed(seed, r));
            let arrived: u64 = requests.iter().map(|q| q.output_tokens.get()).sum();
            let mut s = crate::schedulers::for_workload(e.name, &w).expect("catalog name");
            crate::workload::default_predictions(s.information(), &mut requests);
            let inst = Instance { config: w.model_config(Information::Hidden), requests };
            let o = match simulate(&inst, s.as_mut(), SimOptions::default()) {
                Ok(o) => o,
                Err(err) => *err.partial,
            };
            let done: u64 = o
                .requests
                .iter()
                .filter(|q| q.finish_ns.is_some_and(|f| f <= end))
                .map(|q| q.output_tokens.get())
                .sum();
            excess = excess.max(done as i64 - arrived as i64);
            thr.push(done as f64 / horizon);
        }
        let mut c = claim("W-PROP2", e.name, "<= 280 tokens/s", None, seed);
        c.paper = Some(bound);
        match stats::mean_ci(&thr, confidence) {
            Ok(ci) => {
                c.measured = Some(ci.estimate);
                c.ci = Some((ci.lo, ci.hi));
                c.ci_level = Some(confidence);
                if ci.lo > bound {
                    c.verdict = ClaimVerdict::NotSupported(format!("CI above the bound {bound}"));
                }
            }
            Err(err) => c.verdict = ClaimVerdict::NotReproducible(err.to_string()),
        }
        out.push((c, excess));
    }
    out
}

/// The project's A100 / Llama-2-7B calibration (`spec/calibration/a100-llama2-7b.toml`,
/// fitted from Vidur's profiles): its `Rich` step time and KV capacity.
pub fn a100_llama2_7b() -> (StepTime, u64) {
    let text = include_str!("../../spec/calibration/a100-llama2-7b.toml");
    let c = kvsched_spec::calibration::Calibration::parse("a100-llama2-7b.toml", text)
        .expect("the committed calibration parses");
    (c.step_time, c.kv_capacity_tokens.unwrap_or(136_496))
}

/// A Vidur-like workload on the calibrated A100: `(prompt, output, share)` classes at total
/// rate `lambda`, watermark 0.01, first token with the prefill, LIFO-free eviction.
pub fn a100_workload(classes: &[(u64, u64, f64)], lambda: f64) -> WorkloadFile {
    let (step_time, cap) = a100_llama2_7b();
    super::as_run::vidur_like_workload(step_time, cap, classes, lambda)
}

/// One policy's curve in a rate sweep.
#[derive(Clone, Debug)]
pub struct Curve {
    /// Label.
    pub label: String,
    /// `(lambda, mean latency over the middle 50% (s), completions/s / lambda, evictions)`.
    pub points: Vec<(f64, f64, f64, u64)>,
    /// Largest `lambda` up to which every point is controlled: completion rate `>= 0.9
    /// lambda` and latency `<= 4x` the latency at the first rate (criterion fixed a priori).
    pub lambda_star: f64,
}

type Make = Box<dyn Fn(&WorkloadFile) -> Box<dyn Scheduler>>;

fn sweep_rates(
    classes: &[(u64, u64, f64)],
    grid: &[f64],
    n: u64,
    seed: u64,
    policies: Vec<(&str, Make)>,
) -> Vec<Curve> {
    let mut curves = Vec::new();
    for (label, make) in policies {
        let mut points = Vec::new();
        for &lambda in grid {
            let w = a100_workload(classes, lambda);
            let requests = generate(&w, Amount::Requests(n), seed);
            let inst = Instance { config: w.model_config(Information::Hidden), requests };
            let o = match simulate(&inst, make(&w).as_mut(), SimOptions::default()) {
                Ok(o) => o,
                Err(e) => *e.partial,
            };
            let s = o.summary(0.5);
            points.push((lambda, s.latency_s.mean, s.completions_per_s / lambda, o.evictions));
        }
        let first = points.first().map_or(0.0, |p| p.1);
        let lambda_star = points
            .iter()
            .take_while(|p| p.2 >= 0.9 && p.1 <= 4.0 * first)
            .last()
            .map_or(0.0, |p| p.0);
        curves.push(Curve { label: label.into(), points, lambda_star });
    }
    curves
}

fn ordering_claim(id: &str, paper: &str, curves: &[Curve], seed: u64) -> ClaimResult {
    let stars: Vec<f64> = curves.iter().map(|c| c.lambda_star).collect();
    let mut c = claim(id, "lambda* ordering", paper, stars.last().copied(), seed);
    let text: Vec<String> =
        curves.iter().map(|c| format!("{}={}", c.label, c.lambda_star)).collect();
    c.paper_text = format!("{paper}; ours {}", text.join(" "));
    if !(stars[0] <= stars[1] && stars[1] <= stars[2]) {
        c.verdict =
            ClaimVerdict::NotSupported("thresholds not ordered vLLM <= Sarathi <= WAIT".into());
    }
    c.notes = curves
        .iter()
        .map(|c| {
            let pts: Vec<String> = c
                .points
                .iter()
                .map(|p| format!("{}:{:.3}s/{:.2}/{}ev", p.0, p.1, p.2, p.3))
                .collect();
            format!("{}: {}", c.label, pts.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n    ");
    c
}

fn sarathi(cap: usize) -> Make {
    Box::new(move |_| {
        let s = crate::schedulers::sarathi::Sarathi {
            chunk_size: 512,
            batch_size_cap: cap,
            ..Default::default()
        };
        Box::new(s) as Box<dyn Scheduler>
    })
}

/// W-EXP-SINGLE: p512d20 on the calibrated A100; vLLM v0, Sarathi (cs 512, cap 256, the
/// Llama-2 rerun's), WAIT-CP (tl 21, cs 256: the authors' single-type config) and WAIT
/// (Algorithm 1, tl 21). Returns the claim and the curves.
pub fn exp_single(scale: Scale, seed: u64) -> (ClaimResult, Vec<Curve>) {
    let (grid, n): (Vec<f64>, u64) = match scale {
        Scale::Quick => (vec![12.0, 18.0, 21.0, 24.0, 27.0, 30.0], 600),
        Scale::Full => ((12..=34).map(f64::from).collect(), 10_000),
    };
    let cp: Make = Box::new(|_| Box::new(crate::schedulers::wait_cp::WaitCp::from_tl(21, 256)));
    let wt: Make = Box::new(|_| Box::new(Wait::from_tl(21.0)));
    let vl: Make = Box::new(|_| crate::schedulers::by_name("vllm-v0").expect("vllm"));
    let curves = sweep_rates(
        &[(512, 20, 1.0)],
        &grid,
        n,
        seed,
        vec![("vllm-v0", vl), ("sarathi", sarathi(256)), ("wait-cp", cp), ("wait", wt)],
    );
    let c = ordering_claim("W-EXP-SINGLE", "vLLM 19 < Sarathi 22 < WAIT 23", &curves, seed);
    (c, curves)
}

/// W-EXP-TWOTYPE: (0.7 p512d20, 0.3 p512d50) on the calibrated A100; vLLM v0, Sarathi (cap
/// 256), WAIT-CP nested (boundaries 0, 20, 50; tl 30; cs 128: the authors' config) and Nested
/// WAIT (Algorithm 2, one segment per output, `tl_nested` caps of tl 30 as thresholds).
pub fn exp_twotype(scale: Scale, seed: u64) -> (ClaimResult, Vec<Curve>) {
    let (grid, n): (Vec<f64>, u64) = match scale {
        Scale::Quick => (vec![12.0, 16.0, 19.0, 22.0, 25.0], 600),
        Scale::Full => ((12..=30).map(f64::from).collect(), 10_000),
    };
    let classes = [(512, 20, 0.7), (512, 50, 0.3)];
    let cp: Make = Box::new(|w| {
        let cp = crate::schedulers::wait_cp::WaitCp::nested(w, &[0, 20, 50], 30, 0.0, 128);
        Box::new(cp.expect("tl_nested design")) as Box<dyn Scheduler>
    });
    let nw: Make = Box::new(|w| {
        let cl: Vec<(u64, f64)> =
            w.classes.iter().map(|c| (c.output_tokens, c.rate_per_s)).collect();
        let segs = kvsched_spec::fluid::design::tl_nested(&cl, &[0, 20, 50], 30.0, 0.05)
            .expect("tl_nested design");
        let n = segs.iter().map(|s| s.n).collect();
        Box::new(NestedWait::new(vec![20, 50], NestedThresholds::Fixed(n))) as Box<dyn Scheduler>
    });
    let vl: Make = Box::new(|_| crate::schedulers::by_name("vllm-v0").expect("vllm"));
    let curves = sweep_rates(
        &classes,
        &grid,
        n,
        seed,
        vec![("vllm-v0", vl), ("sarathi", sarathi(256)), ("wait-cp", cp), ("nested-wait", nw)],
    );
    let c = ordering_claim("W-EXP-TWOTYPE", "vLLM 18 < Sarathi 21 < Nested WAIT 22", &curves, seed);
    (c, curves)
}

/// W-EXP-LONGDECODE: p512d1000 on the calibrated A100 at `lambda` = 4.0 and 4.5; vLLM v0,
/// Sarathi (cs 512, cap 256), WAIT-CP (one segment, tl 88: 88 x 1,520 tokens in whole
/// blocks fits in 0.99 C, so it never evicts; cs 512) and WAIT (Algorithm 1, `n = 1` per
/// stage; M* > C here, so its memory guard trims and, with memory full of residents, evicts).
/// `n` requests per rate (quick: 300; full: 2,000). Returns the claims (latency ordering at
/// 4.5 over the middle 50% of requests, restart rate = evictions / requests at 4.0) and the
/// curves.
pub fn exp_longdecode(scale: Scale, seed: u64) -> (Vec<ClaimResult>, Vec<Curve>) {
    let n = match scale {
        Scale::Quick => 300,
        Scale::Full => 2_000,
    };
    let cp: Make = Box::new(|_| Box::new(crate::schedulers::wait_cp::WaitCp::from_tl(88, 512)));
    let wt: Make = Box::new(|_| Box::new(Wait::from_tl(1001.0)));
    let vl: Make = Box::new(|_| crate::schedulers::by_name("vllm-v0").expect("vllm"));
    let curves = sweep_rates(
        &[(512, 1000, 1.0)],
        &[4.0, 4.5],
        n,
        seed,
        vec![("vllm-v0", vl), ("sarathi", sarathi(256)), ("wait-cp", cp), ("wait", wt)],
    );
    let at = |label: &str, i: usize| {
        let c = curves.iter().find(|c| c.label == label).expect("curve");
        c.points[i]
    };
    let lat: Vec<f64> =
        ["wait", "wait-cp", "sarathi", "vllm-v0"].iter().map(|l| at(l, 1).1).collect();
    let mut c1 = claim(
        "W-EXP-LONGDECODE",
        "latency at lambda=4.5",
        "WAIT 32.3 < Sarathi 41.7 < vLLM 53.8 s",
        Some(lat[0]),
        seed,
    );
    c1.paper_text = format!(
        "WAIT 32.3 < Sarathi 41.7 < vLLM 53.8 s; ours WAIT {:.1}, WAIT-CP {:.1}, \
         Sarathi {:.1}, vLLM {:.1} s ({n} requests, middle 50%)",
        lat[0], lat[1], lat[2], lat[3]
    );
    if !(lat[0].min(lat[1]) < lat[2] && lat[2] < lat[3]) {
        c1.verdict = ClaimVerdict::NotSupported("not ordered WAIT < Sarathi < vLLM".into());
    }
    let rate = |l: &str| at(l, 0).3 as f64 / n as f64 * 100.0;
    let (rs, rw, rc) = (rate("sarathi"), rate("wait"), rate("wait-cp"));
    let mut c2 = claim(
        "W-EXP-LONGDECODE",
        "restart % at lambda=4.0",
        "Sarathi 2.88 %, WAIT 0 %",
        Some(rw),
        seed,
    );
    c2.paper_text = format!(
        "Sarathi 2.88 %, WAIT 0 %; ours Sarathi {rs:.2} %, WAIT {rw:.2} %, WAIT-CP {rc:.2} %, \
         vLLM {:.2} % (evictions / requests, baseline memory)",
        rate("vllm-v0")
    );
    if !(rw == 0.0 && rs > 0.0) {
        c2.verdict = ClaimVerdict::NotSupported("WAIT restarts, or Sarathi does not".into());
    }
    c1.notes = ordering_claim("W-EXP-LONGDECODE", "", &curves, seed).notes;
    (vec![c1, c2], curves)
}

/// The lmsys-like mix of `workloads/lmsys-like.toml` as `(prompt, output, share)` classes.
const LMSYS_BINS: [(u64, u64, f64); 10] = [
    (60, 50, 23.0 / 66.0),
    (60, 100, 11.0 / 66.0),
    (60, 150, 8.0 / 66.0),
    (60, 200, 7.0 / 66.0),
    (60, 250, 6.0 / 66.0),
    (60, 300, 4.0 / 66.0),
    (60, 350, 3.0 / 66.0),
    (60, 400, 2.0 / 66.0),
    (60, 450, 1.0 / 66.0),
    (60, 500, 1.0 / 66.0),
];

/// W-EXP-LMSYS: Nested WAIT (hidden lengths, thresholds learned from completions: the
/// `by_name` default, because the fluid design needs the affine law and this runs on the
/// calibrated A100 model) against Sarathi (chunk 512, cap 256) and vLLM v0 on the lmsys-like
/// mix, over a rate grid that crosses Sarathi's threshold. Supported when Nested WAIT's mean
/// latency is below both baselines' at the two highest rates (near and past overload).
pub fn exp_lmsys(scale: Scale, seed: u64) -> (Vec<ClaimResult>, Vec<Curve>) {
    let (n, grid): (u64, &[f64]) = match scale {
        // The quick grid reaches 80 (issue #19: it stopped at 50, the paper's weakest point).
        Scale::Quick => (600, &[10.0, 30.0, 50.0, 60.0, 70.0, 80.0]),
        Scale::Full => (5_000, &[10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0]),
    };
    let nw: Make = Box::new(|_| crate::schedulers::by_name("nested-wait").expect("nested-wait"));
    let vl: Make = Box::new(|_| crate::schedulers::by_name("vllm-v0").expect("vllm"));
    let curves = sweep_rates(
        &LMSYS_BINS,
        grid,
        n,
        seed,
        vec![("vllm-v0", vl), ("sarathi", sarathi(256)), ("nested-wait", nw)],
    );
    let lat = |label: &str, i: usize| {
        curves.iter().find(|c| c.label == label).expect("curve").points[i].1
    };
    let top = grid.len() - 1;
    let wins = (top - 1..=top).all(|i| {
        lat("nested-wait", i) < lat("sarathi", i) && lat("nested-wait", i) < lat("vllm-v0", i)
    });
    let ratio = lat("nested-wait", top) / lat("sarathi", top);
    let mut c = claim(
        "W-EXP-LMSYS",
        "Nested WAIT / Sarathi latency at the top rate",
        "Nested WAIT below Sarathi and vLLM, largest gap near overload",
        Some(ratio),
        seed,
    );
    let cells: Vec<String> = (0..grid.len())
        .map(|i| {
            format!(
                "lambda={}: NW {:.2} / Sarathi {:.2} / vLLM {:.2} s",
                grid[i],
                lat("nested-wait", i),
                lat("sarathi", i),
                lat("vllm-v0", i)
            )
        })
        .collect();
    c.paper_text = format!(
        "Nested WAIT below Sarathi and vLLM near overload (figure only); ours {}",
        cells.join("; ")
    );
    if !wins {
        c.verdict = ClaimVerdict::NotSupported(
            "Nested WAIT is not below both baselines at the two highest rates".into(),
        );
    }
    c.notes = format!(
        "{n} requests per rate, calibrated A100 Llama-2-7B, middle 50% window; Nested WAIT \
         runs its default thresholds (tl 64, learned from completions), not the paper's best of \
         a tl x segments grid chosen per rate"
    );
    (vec![c], curves)
}

/// W-PROP5 (evidence, not a proof over all policies): at `C = M* = 9` on Proposition 3's
/// instance, the non-predictive policies we have keep a throughput gap that does not decay with
/// `zeta T`: FCFS (`vllm-v0`) and Nested WAIT without a buffer (thresholds `(1, 1)`, the only
/// ones whose base memory fits, with the LIFO repair). Supported when, for both, the upper end
/// of the gap's log-log slope interval is above -0.1 (the rule of W-PROP3). WAIT, which knows
/// the lengths, is the contrast (its gap decays; W-PROP3).
pub fn prop5(scale: Scale, seed: u64) -> Vec<ClaimResult> {
    let (zetas, reps) = sweep_size(scale);
    let base = prop3_base(9);
    let fcfs = ZetaSweep::run(&base, &zetas, reps, &Policy::Named("vllm-v0".into()), seed);
    let nested = Policy::Nested(vec![1, 2], vec![1.0, 1.0], true);
    let nw = ZetaSweep::run(&base, &zetas, reps, &nested, seed);
    let (ff, fn_) = (fcfs.slope(|r| r.gap), nw.slope(|r| r.gap));
    let last = nw.means(|r| r.gap).last().map(|p| p.1);
    let mut c = claim(
        "W-PROP5",
        "Nested WAIT (no buffer) gap at the largest zeta T",
        "Omega(1) without a buffer",
        last,
        seed,
    );
    c.notes = format!(
        "FCFS gap {}; Nested WAIT (C = M* = 9, n = (1, 1)) gap {}",
        fmt_means(&fcfs.means(|r| r.gap)),
        fmt_means(&nw.means(|r| r.gap))
    );
    c.verdict = match (&ff, &fn_) {
        (Ok(f), Ok(n)) if f.slope.hi > -0.1 && n.slope.hi > -0.1 => ClaimVerdict::Supported,
        (Ok(f), Ok(n)) => ClaimVerdict::NotSupported(format!(
            "a gap decays: FCFS slope {:.3} [{:.3}, {:.3}], Nested WAIT {:.3} [{:.3}, {:.3}]",
            f.slope.estimate, f.slope.lo, f.slope.hi, n.slope.estimate, n.slope.lo, n.slope.hi
        )),
        (Err(e), _) | (_, Err(e)) => ClaimVerdict::NotReproducible(e.to_string()),
    };
    vec![c]
}

/// W-PROP4 (evidence on one instance): a single type `(l, l', lambda) = (1, 1, 1)` with
/// `d1 = 0.1`, `d0 = 1 - 3 d1 = 0.7`, so `dT* = 1`, `n* = 1` and `M* = 3 = C`. With one type
/// every policy is non-predictive (all lengths are equal), and WAIT with `n = 1` has a vanishing
/// gap (Theorem 1); Proposition 4 says its latency must then grow like `(zeta T)^(1/2)`.
/// Supported when the latency's log-log slope interval contains 1/2 and excludes 0.
pub fn prop4(scale: Scale, seed: u64) -> Vec<ClaimResult> {
    let (zetas, reps) = sweep_size(scale);
    let base = Base {
        classes: vec![(1, 1, 1.0)],
        d0_s: 0.7,
        d1_s: 0.1,
        capacity: 3,
        eviction: EvictionRule::Lifo,
    };
    let s = ZetaSweep::run(&base, &zetas, reps, &Policy::Wait(vec![((1, 1), 1.0)]), seed);
    let note = format!(
        "gap means {}; latency means {}",
        fmt_means(&s.means(|r| r.gap)),
        fmt_means(&s.means(|r| r.latency))
    );
    let fit = s.slope(|r| r.latency);
    let mut c = slope_claim("W-PROP4", "latency", 0.5, &fit, seed, note);
    if let Ok(f) = &fit {
        c.verdict = if f.slope.lo <= 0.5 && f.slope.hi >= 0.5 && f.slope.lo > 0.0 {
            ClaimVerdict::Supported
        } else {
            ClaimVerdict::NotSupported(format!(
                "latency slope {:.3} [{:.3}, {:.3}]",
                f.slope.estimate, f.slope.lo, f.slope.hi
            ))
        };
    }
    vec![c]
}

// ---------------------------------------------------------------------------------------------
// As experiments of `kvsched reproduce` (rows of `registry`).

/// Theorem 1: both regimes, with the gap-vs-`zeta T` figure.
pub fn run_thm1(ctx: &Ctx) -> Output {
    let (results, crit, slack) = thm1(ctx.scale, ctx.seed);
    let c = crit.means(|r| r.gap.max(1e-9));
    let s = slack.means(|r| r.gap.max(1e-9));
    let reference = |pts: &[(f64, f64)], slope: f64| -> Vec<(f64, f64)> {
        let Some(&(x0, y0)) = pts.first() else { return vec![] };
        pts.iter().map(|&(x, _)| (x, y0 * (x / x0).powf(slope))).collect()
    };
    let fig = FigureData::lines(
        "Throughput gap vs zeta T (WAIT, Proposition 3 instance)",
        "zeta T",
        "throughput gap (decode tokens per unit zeta T)",
    )
    .log_x()
    .log_y()
    .series(Series::new("WAIT critical (C = M*)", c.clone(), Style::Line))
    .series(Series::new("WAIT strict slack", s.clone(), Style::Line))
    .series(Series::new("Theorem 1: slope -1/2", reference(&c, -0.5), Style::Reference))
    .series(Series::new("Theorem 1: slope -1", reference(&s, -1.0), Style::Reference));
    let data = serde_json::json!({ "critical_gap_means": c, "slack_gap_means": s });
    let figures = vec![fig.figure("gap_vs_zeta_t.svg", &["W-THM1-CRITICAL", "W-THM1-SLACK"])];
    Output { results, figures, data }
}

/// Proposition 2, with the largest excess of completed over arrived tokens per row.
pub fn run_prop2(ctx: &Ctx) -> Output {
    let rows = prop2(ctx.scale, ctx.seed, 0.95);
    let excess: Vec<(String, i64)> = rows.iter().map(|r| (r.0.label.clone(), r.1)).collect();
    let data = serde_json::json!({ "max_completed_minus_arrived_tokens": excess });
    Output { results: rows.into_iter().map(|r| r.0).collect(), figures: vec![], data }
}

/// A WAIT-paper rate experiment on the calibrated A100: its claim and a latency figure.
fn exp_output(id: &str, file: &str, (claim, curves): (ClaimResult, Vec<Curve>)) -> Output {
    let mut fig = FigureData::lines(
        &format!("{id}: mean latency vs rate, calibrated A100 / Llama-2-7B"),
        "arrival rate lambda (req/s)",
        "mean latency, middle 50% (s)",
    )
    .log_y();
    for c in &curves {
        let pts = c.points.iter().map(|p| (p.0, p.1.max(1e-3))).collect();
        fig = fig.series(Series::new(
            &format!("{} (lambda* {})", c.label, c.lambda_star),
            pts,
            Style::Line,
        ));
    }
    let data: Vec<serde_json::Value> = curves
        .iter()
        .map(|c| {
            serde_json::json!({ "label": c.label, "lambda_star": c.lambda_star,
            "points (lambda, latency_s, completion_ratio, evictions)": c.points })
        })
        .collect();
    let figures = vec![fig.figure(file, &[id])];
    Output { results: vec![claim], figures, data: serde_json::Value::Array(data) }
}

/// Theorem 2.
pub fn run_thm2(ctx: &Ctx) -> Output {
    thm2(ctx.scale, ctx.seed).0.into()
}

/// Proposition 3.
pub fn run_prop3(ctx: &Ctx) -> Output {
    prop3(ctx.scale, ctx.seed).0.into()
}

/// Proposition 4.
pub fn run_prop4(ctx: &Ctx) -> Output {
    prop4(ctx.scale, ctx.seed).into()
}

/// Proposition 5.
pub fn run_prop5(ctx: &Ctx) -> Output {
    prop5(ctx.scale, ctx.seed).into()
}

/// The single-type A100 experiment, with its latency figure.
pub fn run_exp_single(ctx: &Ctx) -> Output {
    exp_output("W-EXP-SINGLE", "exp_single_a100.svg", exp_single(ctx.scale, ctx.seed))
}

/// The two-type A100 experiment, with its latency figure.
pub fn run_exp_twotype(ctx: &Ctx) -> Output {
    exp_output("W-EXP-TWOTYPE", "exp_twotype_a100.svg", exp_twotype(ctx.scale, ctx.seed))
}

/// The long-decode A100 experiment (every result), with its latency figure.
pub fn run_exp_longdecode(ctx: &Ctx) -> Output {
    let (results, curves) = exp_longdecode(ctx.scale, ctx.seed);
    let mut out =
        exp_output("W-EXP-LONGDECODE", "exp_longdecode_a100.svg", (results[0].clone(), curves));
    out.results = results;
    out
}

/// The lmsys A100 experiment (its first result), with its latency figure.
pub fn run_exp_lmsys(ctx: &Ctx) -> Output {
    let (results, curves) = exp_lmsys(ctx.scale, ctx.seed);
    exp_output("W-EXP-LMSYS", "exp_lmsys_a100.svg", (results[0].clone(), curves))
}
