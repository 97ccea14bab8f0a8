//! M-TRACE-SLOPE: the MC-SF paper's real-trace experiment (v4/v5 §6; notes
//! `../shared/papers/mcsf.md` §7.2) on the engine. An LMSYS-like length mix
//! (`workloads/lmsys-mcsf-70b.toml`) arrives as a Poisson process at 50 req/s (high demand) and
//! 10 req/s (low demand) on Llama-2-70B at TP 2 on two A100s
//! (`spec/calibration/a100x2-llama2-70b-tp2.toml`: its rich step-time model, `M = 16,492`).
//! MC-SF (exact predictions, the paper's clairvoyant setting) runs against the three
//! benchmarks: MC-Benchmark, α-protection greedy and α-protection φ-clearing (φ = 0.2).
//!
//! **α.** The paper tuned α to the "smallest feasible" value of its setup (0.21 high, 0.24 low
//! demand). We apply that procedure to ours: α is the smallest value on the grid 0.10, 0.11,
//! ..., 0.50 (0.10, 0.20, ... at the quick scale) at which α-protection greedy runs the first
//! seed to `T` without clearing anything (an upward scan). The runs at the paper's α values
//! are reported beside them: on our setup α = 0.21 is not feasible under high demand (greedy
//! clears tens of thousands of times and completes a fifth of the arrivals or fewer), and its
//! average latency over *completed* requests then looks low only because so few complete.
//! (This procedure was added after a first run showed that; the numbers of both are reported.)
//!
//! **Metric** (chosen before any run, `spec/MCSF_NOTES.md` §"Real trace"): the *average
//! latency at time t* is the mean end-to-end latency of the requests completed by `t`; it is
//! sampled at `t = k T / 20`, `k = 1..=20`, over the arrival horizon `T` (the time the trace's
//! demand lasts), and its growth rate is the least-squares slope on those points (seconds of
//! latency per second). The engine runs until at least `T` and is stopped there (an iteration
//! cap of `T / base step time`), so backlogs are not drained. The slope ratio is MC-SF's over
//! the best benchmark's (the smallest mean slope), per seed; the claim is judged on its mean.
//! Two more readings are reported alongside: the mean latency of the requests completed within
//! each `T / 20` window, and the age-inclusive average ([`inclusive_curve`]), which also counts
//! the requests still waiting at `t` (the completed-only average does not, and a policy that
//! completes few requests can look good on it).
//!
//! **Verdict** (fixed a priori): the paper reads its slopes off a figure ("≈ 1/6 vs ≈ 1/2"),
//! so the high-demand ratio is supported when its mean lies within a factor 2 of 1/3, that is
//! in `[1/6, 2/3]`. Each sub-measurement (a slope or the low-demand ratio) uses the same
//! factor-2 band around its paper value; they are informative, the claim is judged on the
//! high-demand ratio.

use super::figures::{Figure, FigureData, Series, Style};
use super::{ClaimResult, ClaimVerdict, Ctx, Output, Scale};
use crate::prng::derive_seed;
use crate::schedulers::alpha_clear::AlphaClear;
use crate::schedulers::alpha_protect::AlphaProtect;
use crate::schedulers::mcsf::Mcsf;
use crate::sim::Scheduler;
use crate::sim::{simulate, Outcome, RequestRecord, SimErrorKind, SimOptions};
use crate::workload::{generate, Amount};
use kvsched_spec::calibration::Calibration;
use kvsched_spec::{Information, Instance, StepTime, WorkloadFile};
use kvsched_verify::stats;

/// The claim's ID.
pub const ID: &str = "M-TRACE-SLOPE";

/// Points of the latency-over-time curve.
pub const CURVE_POINTS: u32 = 20;

/// Tolerance of the verdicts: a factor around the paper's value (read off a figure).
pub const FACTOR: f64 = 2.0;

/// The schedulers, MC-SF first, then the benchmarks.
pub const SCHEDULERS: [&str; 4] = ["mcsf", "mc-benchmark", "alpha-protect", "alpha-clear"];

/// The committed Llama-2-70B / TP 2 calibration: its rich step time and the paper's `M`.
pub fn a100x2_llama2_70b() -> (StepTime, u64) {
    let text = include_str!("../../spec/calibration/a100x2-llama2-70b-tp2.toml");
    let c = Calibration::parse("a100x2-llama2-70b-tp2.toml", text)
        .expect("the committed calibration parses");
    (c.step_time, c.kv_capacity_tokens.expect("the calibration records M"))
}

/// `workloads/lmsys-mcsf-70b.toml` at total rate `lambda`, with the calibration's rich step
/// time in place of the file's affine law.
pub fn workload(lambda: f64) -> WorkloadFile {
    let text = include_str!("../../workloads/lmsys-mcsf-70b.toml");
    let mut w = WorkloadFile::parse("workloads/lmsys-mcsf-70b.toml", text).expect("committed");
    let (step_time, cap) = a100x2_llama2_70b();
    assert_eq!(w.memory.kv_capacity_tokens, cap, "workload and calibration disagree on M");
    w.step_time = step_time;
    let scale = lambda / w.total_rate_per_s();
    w.classes.iter_mut().for_each(|c| c.rate_per_s *= scale);
    w
}

/// One demand level of the paper.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Demand {
    /// `high` or `low`.
    pub name: &'static str,
    /// Arrival rate (req/s).
    pub lambda: f64,
    /// Arrival horizon `T` (s).
    pub horizon_s: f64,
    /// The α of both α-protection benchmarks (the paper's until [`feasible_alpha`] sets ours).
    pub alpha: f64,
    /// The paper's tuned α for this demand.
    pub paper_alpha: f64,
    /// Step of the α grid that [`feasible_alpha`] scans (hundredths).
    pub alpha_step: u32,
    /// Seeds (the first ones) of the runs at the paper's α.
    pub paper_alpha_reps: usize,
    /// The paper's slopes: MC-SF's and the best benchmark's.
    pub paper: (f64, f64),
}

/// The two demand levels. High demand runs the paper's 10,000 requests (200 s) at both scales,
/// because MC-SF's slope depends on the horizon (it falls from 0.09 at 60 s to 0.04 at 200 s:
/// the completed-only average is concave under shortest-first), so a shorter quick run would
/// judge a different number. Low demand: 200 s quick, the paper's 1,000 s full. The α grid
/// step is 0.10 quick, 0.01 full; the runs at the paper's α use the first seed only at the
/// quick scale.
pub fn demands(scale: Scale) -> [Demand; 2] {
    let (high_s, low_s, step, paper_reps) = match scale {
        Scale::Quick => (200.0, 200.0, 10, 1),
        Scale::Full => (200.0, 1000.0, 1, 5),
    };
    [
        Demand {
            name: "high",
            lambda: 50.0,
            horizon_s: high_s,
            alpha: 0.21,
            paper_alpha: 0.21,
            alpha_step: step,
            paper_alpha_reps: paper_reps,
            paper: (1.0 / 6.0, 0.5),
        },
        Demand {
            name: "low",
            lambda: 10.0,
            horizon_s: low_s,
            alpha: 0.24,
            paper_alpha: 0.24,
            alpha_step: step,
            paper_alpha_reps: paper_reps,
            paper: (1.0 / 800.0, 0.01),
        },
    ]
}

/// Replications (seeds) per demand and scheduler.
pub fn replications(scale: Scale) -> u64 {
    match scale {
        Scale::Quick => 2,
        Scale::Full => 5,
    }
}

/// A scheduler by name, with the demand's α.
pub fn scheduler(name: &str, d: &Demand) -> Box<dyn Scheduler> {
    match name {
        "mcsf" => Box::new(Mcsf::default()),
        "mc-benchmark" => Box::new(Mcsf::benchmark()),
        "alpha-protect" => Box::new(AlphaProtect { alpha: d.alpha, ..Default::default() }),
        "alpha-clear" => Box::new(AlphaClear { alpha: d.alpha, phi: 0.2, ..Default::default() }),
        _ => panic!("unknown scheduler {name}"),
    }
}

/// One run's measurements.
#[derive(Clone, Debug, PartialEq)]
pub struct RunStats {
    /// Average latency of the requests completed by `t`, at `t = k T / 20` (s, s).
    pub cumulative: Vec<(f64, f64)>,
    /// Mean latency of the requests completed in each window, at the window's end (s, s).
    pub windowed: Vec<(f64, f64)>,
    /// Least-squares slope of `cumulative` (the claim's metric).
    pub slope: f64,
    /// Least-squares slope of `windowed`.
    pub window_slope: f64,
    /// Least-squares slope of the age-inclusive average ([`inclusive_curve`]).
    pub inclusive_slope: f64,
    /// Fraction of the arrivals completed by `T`.
    pub completed_frac: f64,
    /// Evictions by `T` (approximately: the run stops at the first iteration past `T`).
    pub evictions: u64,
}

/// `(t, latency)` points of a curve (seconds).
pub type Points = Vec<(f64, f64)>;

/// The least-squares slope of `y` on `x` (0 with fewer than two distinct `x`).
pub fn ols_slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if points.len() < 2 || sxx == 0.0 {
        return 0.0;
    }
    sxy / sxx
}

/// The two latency-over-time curves of an outcome over `[0, horizon_s]` (points with no
/// completion yet are left out).
pub fn curves(o: &Outcome, horizon_s: f64) -> (Points, Points) {
    let mut done: Vec<(f64, f64)> = o
        .requests
        .iter()
        .filter_map(|r| {
            let f = r.finish_ns?.as_secs_f64();
            Some((f, f - r.arrival_ns.as_secs_f64()))
        })
        .filter(|p| p.0 <= horizon_s)
        .collect();
    done.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut cumulative, mut windowed) = (Vec::new(), Vec::new());
    let (mut i, mut sum, mut count) = (0, 0.0, 0u64);
    for k in 1..=CURVE_POINTS {
        let t = horizon_s * f64::from(k) / f64::from(CURVE_POINTS);
        let (mut wsum, mut wcount) = (0.0, 0u64);
        while i < done.len() && done[i].0 <= t {
            (sum, count, wsum, wcount) = (sum + done[i].1, count + 1, wsum + done[i].1, wcount + 1);
            i += 1;
        }
        if count > 0 {
            cumulative.push((t, sum / count as f64));
        }
        if wcount > 0 {
            windowed.push((t, wsum / wcount as f64));
        }
    }
    (cumulative, windowed)
}

/// The age-inclusive average at `t = k T / 20`: over every request arrived by `t`, its latency
/// if it completed by `t`, else its age `t - arrival` (a lower bound on its latency). Unlike the
/// completed-only average it counts the requests a policy leaves waiting.
pub fn inclusive_curve(o: &Outcome, horizon_s: f64) -> Points {
    let mut out = Vec::new();
    for k in 1..=CURVE_POINTS {
        let t = horizon_s * f64::from(k) / f64::from(CURVE_POINTS);
        let (mut sum, mut count) = (0.0, 0u64);
        for r in &o.requests {
            let a = r.arrival_ns.as_secs_f64();
            if a <= t {
                let end = r.finish_ns.map_or(t, |f| f.as_secs_f64().min(t));
                (sum, count) = (sum + end - a, count + 1);
            }
        }
        if count > 0 {
            out.push((t, sum / count as f64));
        }
    }
    out
}

/// The instance of demand `d` with seed `seed` (exact predictions), and the iteration cap
/// that covers `T`.
fn instance(d: &Demand, seed: u64) -> (Instance, u64) {
    let w = workload(d.lambda);
    let mut requests = generate(&w, Amount::HorizonS(d.horizon_s), seed);
    for r in &mut requests {
        r.predicted_output_tokens = Some(r.output_tokens);
    }
    let inst = Instance { config: w.model_config(Information::Predicted), requests };
    // Every iteration takes at least the base step time (all other terms are non-negative), so
    // this many iterations cover at least `T` of simulated time.
    let StepTime::Rich { base_s, .. } = w.step_time else { panic!("the calibration is rich") };
    (inst, (d.horizon_s / base_s).ceil() as u64 + 1)
}

/// One run: `name` on demand `d` with seed `seed`, stopped once simulated time passes `T`.
pub fn run(name: &str, d: &Demand, seed: u64) -> Result<RunStats, String> {
    let (inst, cap) = instance(d, seed);
    let n = inst.requests.len();
    let opts = SimOptions { max_steps: Some(cap), seed: Some(seed), ..SimOptions::default() };
    let o = match simulate(&inst, scheduler(name, d).as_mut(), opts) {
        Ok(o) => o,
        Err(e) if matches!(e.kind, SimErrorKind::StepLimit(_)) => *e.partial,
        Err(e) => return Err(format!("{name}, {} demand, seed {seed:#x}: {e}", d.name)),
    };
    if o.simulated_ns.as_secs_f64() < d.horizon_s && o.completed < n as u64 {
        return Err(format!("{name}: stopped at {} before T", o.simulated_ns.as_secs_f64()));
    }
    let (cumulative, windowed) = curves(&o, d.horizon_s);
    let by_t = |r: &&RequestRecord| r.finish_ns.is_some_and(|f| f.as_secs_f64() <= d.horizon_s);
    let done = o.requests.iter().filter(by_t);
    Ok(RunStats {
        slope: ols_slope(&cumulative),
        window_slope: ols_slope(&windowed),
        inclusive_slope: ols_slope(&inclusive_curve(&o, d.horizon_s)),
        cumulative,
        windowed,
        completed_frac: done.count() as f64 / n.max(1) as f64,
        evictions: o.evictions,
    })
}

/// The smallest α in `{0.10, 0.10 + step, ..., 0.50}` (`step = d.alpha_step` hundredths) at
/// which α-protection greedy runs demand `d` with seed `seed` to `T` without clearing (0.50
/// when none is), scanned upwards: feasibility need not be monotone in α, so the scan does not
/// bisect.
pub fn feasible_alpha(d: &Demand, seed: u64) -> Result<f64, String> {
    for hundredths in (10u32..50).step_by(d.alpha_step.max(1) as usize) {
        let alpha = f64::from(hundredths) / 100.0;
        if !evicts("alpha-protect", &Demand { alpha, ..*d }, seed)? {
            return Ok(alpha);
        }
    }
    Ok(0.50)
}

/// Whether [`run`]`(name, d, seed)` evicts (`evictions > 0`), decided at its first eviction:
/// the run stops there ([`SimOptions::max_evictions`]) instead of thrashing to `T`, which at a
/// clearing α costs millions of evictions. It is the same run up to that point, so the answer
/// is [`run`]'s (an error the full run would meet only after its first eviction is not
/// reached).
pub fn evicts(name: &str, d: &Demand, seed: u64) -> Result<bool, String> {
    let (inst, cap) = instance(d, seed);
    let opts = SimOptions {
        max_steps: Some(cap),
        max_evictions: Some(0),
        seed: Some(seed),
        ..SimOptions::default()
    };
    match simulate(&inst, scheduler(name, d).as_mut(), opts) {
        Ok(o) => Ok(o.evictions > 0),
        Err(e) if matches!(e.kind, SimErrorKind::EvictionLimit(_)) => Ok(true),
        Err(e) if matches!(e.kind, SimErrorKind::StepLimit(_)) => Ok(e.partial.evictions > 0),
        Err(e) => Err(format!("{name}, {} demand, seed {seed:#x}: {e}", d.name)),
    }
}

/// Every run of one demand level: per scheduler (in [`SCHEDULERS`] order), one [`RunStats`] per
/// seed.
#[derive(Clone, Debug)]
pub struct DemandRuns {
    /// The demand.
    pub demand: Demand,
    /// Seeds (shared by all schedulers: common random numbers).
    pub seeds: Vec<u64>,
    /// `(scheduler, runs)`.
    pub runs: Vec<(String, Vec<RunStats>)>,
    /// The α-protection benchmarks at the paper's α (reported, not judged).
    pub paper_alpha_runs: Vec<(String, Vec<RunStats>)>,
}

impl DemandRuns {
    /// Runs every scheduler on `d` with `reps` seeds derived from `seed`, the α-protection
    /// benchmarks at [`feasible_alpha`] (and, reported apart, at the paper's α).
    pub fn run(d: &Demand, reps: u64, seed: u64) -> Result<DemandRuns, String> {
        let seeds: Vec<u64> = (0..reps).map(|k| derive_seed(seed, k)).collect();
        let demand = Demand { alpha: feasible_alpha(d, seeds[0])?, ..*d };
        let runs = run_all(&SCHEDULERS, &demand, &seeds)?;
        let paper = Demand { alpha: d.paper_alpha, ..*d };
        let paper_seeds = &seeds[..d.paper_alpha_reps.clamp(1, seeds.len())];
        let paper_alpha_runs = run_all(&SCHEDULERS[2..], &paper, paper_seeds)?;
        Ok(DemandRuns { demand, seeds, runs, paper_alpha_runs })
    }

    /// One scheduler's per-seed values of `f`.
    pub fn values(&self, name: &str, f: impl Fn(&RunStats) -> f64) -> Vec<f64> {
        values(&self.runs, name, f)
    }

    /// The benchmark with the smallest mean slope.
    pub fn best_benchmark(&self) -> &str {
        self.best_by(|r| r.slope)
    }

    /// The benchmark with the smallest mean of `f`.
    pub fn best_by(&self, f: impl Fn(&RunStats) -> f64 + Copy) -> &str {
        let mean = |n: &str| mean(&self.values(n, f));
        SCHEDULERS[1..]
            .iter()
            .copied()
            .min_by(|a, b| mean(a).total_cmp(&mean(b)))
            .expect("three benchmarks")
    }

    /// Per-seed ratios of MC-SF's slope to the best benchmark's.
    pub fn ratios(&self) -> Vec<f64> {
        self.ratios_by(|r| r.slope)
    }

    /// Per-seed ratios of MC-SF's `f` to that of the benchmark with the smallest mean `f`.
    pub fn ratios_by(&self, f: impl Fn(&RunStats) -> f64 + Copy) -> Vec<f64> {
        let best = self.values(self.best_by(f), f);
        self.values("mcsf", f).iter().zip(&best).map(|(m, b)| m / b).collect()
    }

    /// A one-line summary of every scheduler, then of the runs at the paper's α.
    pub fn summary(&self) -> String {
        let cells = |runs: &[(String, Vec<RunStats>)]| -> String {
            let c: Vec<String> = runs
                .iter()
                .map(|(n, _)| {
                    format!(
                        "{n} slope {} (windowed {}, age-inclusive {}), {:.0} % of arrivals \
                         done by T, {:.0} evictions",
                        fmt_ci(&values(runs, n, |r| r.slope)),
                        fmt_ci(&values(runs, n, |r| r.window_slope)),
                        fmt_ci(&values(runs, n, |r| r.inclusive_slope)),
                        100.0 * mean(&values(runs, n, |r| r.completed_frac)),
                        mean(&values(runs, n, |r| r.evictions as f64))
                    )
                })
                .collect();
            c.join("; ")
        };
        let d = &self.demand;
        format!(
            "{} demand (lambda {}/s, T {} s, {} seeds, smallest feasible alpha {}): {}; at the \
             paper's alpha {}: {}",
            d.name,
            d.lambda,
            d.horizon_s,
            self.seeds.len(),
            d.alpha,
            cells(&self.runs),
            d.paper_alpha,
            cells(&self.paper_alpha_runs)
        )
    }
}

fn run_all(
    names: &[&str],
    d: &Demand,
    seeds: &[u64],
) -> Result<Vec<(String, Vec<RunStats>)>, String> {
    use rayon::prelude::*;
    let jobs: Vec<(&str, u64)> =
        names.iter().flat_map(|&s| seeds.iter().map(move |&x| (s, x))).collect();
    let stats: Vec<RunStats> =
        jobs.par_iter().map(|&(s, x)| run(s, d, x)).collect::<Result<_, _>>()?;
    Ok(names
        .iter()
        .zip(stats.chunks(seeds.len()))
        .map(|(s, r)| (s.to_string(), r.to_vec()))
        .collect())
}

fn values(runs: &[(String, Vec<RunStats>)], name: &str, f: impl Fn(&RunStats) -> f64) -> Vec<f64> {
    runs.iter().find(|r| r.0 == name).expect("scheduler").1.iter().map(f).collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn interval(v: &[f64]) -> Option<stats::Interval> {
    stats::mean_ci(v, 0.95).ok()
}

fn fmt_ci(v: &[f64]) -> String {
    match interval(v) {
        Some(i) => format!("{:.4} [{:.4}, {:.4}]", i.estimate, i.lo, i.hi),
        None => format!("{:.4}", mean(v)),
    }
}

/// Supported when `measured` lies within [`FACTOR`] of `paper` (both positive).
pub fn within_factor(measured: f64, paper: f64) -> ClaimVerdict {
    let (lo, hi) = (paper / FACTOR, paper * FACTOR);
    if measured >= lo && measured <= hi {
        ClaimVerdict::Supported
    } else {
        ClaimVerdict::NotSupported(format!(
            "{measured:.4} outside [{lo:.4}, {hi:.4}] (a factor {FACTOR} around {paper:.4})"
        ))
    }
}

fn result(label: &str, paper: f64, paper_text: &str, v: &[f64], seeds: &[u64]) -> ClaimResult {
    let ci = interval(v);
    let m = mean(v);
    let verdict = if m.is_finite() {
        within_factor(m, paper)
    } else {
        ClaimVerdict::NotReproducible(format!("no finite value ({v:?})"))
    };
    ClaimResult {
        id: ID.into(),
        label: label.into(),
        paper: Some(paper),
        paper_text: paper_text.into(),
        measured: Some(m),
        ci: ci.map(|c| (c.lo, c.hi)),
        ci_level: ci.map(|c| c.confidence),
        verdict,
        seeds: seeds.to_vec(),
        notes: String::new(),
    }
}

/// The claim results of both demand levels: the high-demand ratio first (the verdict), then the
/// same ratio on the age-inclusive reading, the slopes, and the low-demand ratio and slopes.
pub fn claim_results(high: &DemandRuns, low: &DemandRuns) -> Vec<ClaimResult> {
    let mut out = Vec::new();
    for (k, runs) in [high, low].into_iter().enumerate() {
        let d = &runs.demand;
        let best = runs.best_benchmark();
        let best_slope = mean(&runs.values(best, |r| r.slope));
        let paper_ratio = d.paper.0 / d.paper.1;
        let ratio_text = format!(
            "{} demand: slope ratio ~ {} ({} vs {})",
            d.name,
            fmt_frac(paper_ratio),
            fmt_frac(d.paper.0),
            fmt_frac(d.paper.1)
        );
        let label = if k == 0 { String::new() } else { format!("{} demand: MC-SF / best", d.name) };
        let mut r = result(&label, paper_ratio, &ratio_text, &runs.ratios(), &runs.seeds);
        if best_slope <= 0.0 {
            r.verdict = ClaimVerdict::NotReproducible(format!(
                "the best benchmark's ({best}) average latency does not grow (slope \
                 {best_slope:.4})"
            ));
        }
        r.notes = format!("best benchmark {best}; {}", runs.summary());
        out.push(r);
        if k == 0 {
            // Informative: the same ratio on the age-inclusive reading (not the claim's metric).
            let f = |r: &RunStats| r.inclusive_slope;
            let label = format!(
                "{} demand: MC-SF / best ({}), age-inclusive reading (informative)",
                d.name,
                runs.best_by(f)
            );
            out.push(result(&label, paper_ratio, &ratio_text, &runs.ratios_by(f), &runs.seeds));
        }
        let mcsf = runs.values("mcsf", |r| r.slope);
        let text = format!("slope ~ {}", fmt_frac(d.paper.0));
        out.push(result(
            &format!("{} demand: MC-SF slope", d.name),
            d.paper.0,
            &text,
            &mcsf,
            &runs.seeds,
        ));
        let b = runs.values(best, |r| r.slope);
        let text = format!("slope ~ {}", fmt_frac(d.paper.1));
        let label = format!("{} demand: best benchmark ({best}) slope", d.name);
        out.push(result(&label, d.paper.1, &text, &b, &runs.seeds));
    }
    out
}

fn fmt_frac(x: f64) -> String {
    format!("1/{:.0}", 1.0 / x)
}

/// The latency-over-time figure of one demand (first seed, every scheduler).
pub fn figure(runs: &DemandRuns) -> Figure {
    let d = &runs.demand;
    let mut fig = FigureData::lines(
        &format!(
            "{ID}: average latency of completed requests over time, {} demand ({}/s), \
             Llama-2-70B TP 2, M = 16,492",
            d.name, d.lambda
        ),
        "time t (s)",
        "mean latency of requests completed by t (s)",
    );
    for (name, r) in &runs.runs {
        let label = format!("{name} (slope {:.4})", r[0].slope);
        fig = fig.series(Series::new(&label, r[0].cumulative.clone(), Style::Line));
    }
    fig.figure(&format!("mcsf_trace_{}.svg", d.name), &[ID])
}

/// M-TRACE-SLOPE at `scale` with base seed `seed`: the claim results, the two figures and the
/// raw numbers.
pub fn trace_slope(scale: Scale, seed: u64) -> (Vec<ClaimResult>, Vec<Figure>, serde_json::Value) {
    let [h, l] = demands(scale);
    let reps = replications(scale);
    let runs = [DemandRuns::run(&h, reps, seed), DemandRuns::run(&l, reps, seed)];
    let [Ok(high), Ok(low)] = runs else {
        let why: Vec<String> = runs.into_iter().filter_map(|r| r.err()).collect();
        let mut r = result("", 1.0 / 3.0, "slope ratio ~ 1/3", &[], &[seed]);
        r.measured = None;
        r.verdict = ClaimVerdict::NotReproducible(why.join("; "));
        return (vec![r], vec![], serde_json::Value::Null);
    };
    let data = serde_json::json!([&high, &low].map(|runs| serde_json::json!({
        "demand": runs.demand.name,
        "lambda": runs.demand.lambda,
        "horizon_s": runs.demand.horizon_s,
        "alpha": runs.demand.alpha,
        "paper_alpha": runs.demand.paper_alpha,
        "seeds": runs.seeds,
        "schedulers": runs.runs.iter().map(|(n, r)| serde_json::json!({
            "name": n,
            "slopes": r.iter().map(|x| x.slope).collect::<Vec<_>>(),
            "window_slopes": r.iter().map(|x| x.window_slope).collect::<Vec<_>>(),
            "inclusive_slopes": r.iter().map(|x| x.inclusive_slope).collect::<Vec<_>>(),
            "completed_frac": r.iter().map(|x| x.completed_frac).collect::<Vec<_>>(),
            "cumulative_first_seed": r[0].cumulative,
        })).collect::<Vec<_>>(),
    })));
    (claim_results(&high, &low), vec![figure(&high), figure(&low)], data)
}

/// M-TRACE-SLOPE as an experiment of `kvsched reproduce`.
pub fn run_trace_slope(ctx: &Ctx) -> Output {
    let (results, figures, data) = trace_slope(ctx.scale, ctx.seed);
    Output { results, figures, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ols_slope_of_a_line_and_degenerate_inputs() {
        let pts: Vec<(f64, f64)> =
            (0..5).map(|i| (f64::from(i), 2.0 + 0.25 * f64::from(i))).collect();
        assert!((ols_slope(&pts) - 0.25).abs() < 1e-12);
        assert_eq!(ols_slope(&pts[..1]), 0.0);
        assert_eq!(ols_slope(&[(1.0, 1.0), (1.0, 2.0)]), 0.0);
    }

    #[test]
    fn factor_band_and_the_mix() {
        assert_eq!(within_factor(0.2, 1.0 / 3.0), ClaimVerdict::Supported);
        assert!(matches!(within_factor(0.1, 1.0 / 3.0), ClaimVerdict::NotSupported(_)));
        let w = workload(50.0);
        assert!((w.total_rate_per_s() - 50.0).abs() < 1e-9);
        let mean = |f: fn(&kvsched_spec::ClassSpec) -> u64| {
            w.classes.iter().map(|c| f(c) as f64 * c.rate_per_s).sum::<f64>() / 50.0
        };
        // The paper's means, 40.62 and 85.32, to the rounding of the bins.
        assert!((mean(|c| c.prompt_tokens) - 40.62).abs() < 0.05);
        assert!((mean(|c| c.output_tokens) - 85.32).abs() < 0.05);
    }
}
