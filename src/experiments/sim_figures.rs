//! The simulator's figures of `kvsched reproduce`: mean latency against the arrival rate
//! (through the sweep machinery of [`super::sweep`]) and KV memory over time, both on the
//! single-type p512d20 workload, for vLLM v0, Sarathi, WAIT and Nested WAIT. They illustrate
//! the WAIT paper's fluid boundary (`W-PROP1`, `W-EXP-SINGLE`) and its memory equilibrium
//! (`W-FLUID-MULTI`, `W-THM2`); they measure no claim themselves.

use super::figures::{FigureData, Series, Style};
use super::sweep::{run_in_memory, RelativeTo, Row, Sweep, SweepSpec};
use super::{Ctx, Output, Scale};
use crate::prng::derive_seed;

/// The single-type p512d20 workload of `workloads/p512d20.toml`.
pub fn p512d20() -> kvsched_spec::WorkloadFile {
    let text = include_str!("../../workloads/p512d20.toml");
    kvsched_spec::WorkloadFile::parse("workloads/p512d20.toml", text).expect("committed workload")
}

/// The figure schedulers: vLLM v0, Sarathi, and WAIT / Nested WAIT when registered.
pub fn figure_schedulers() -> Vec<String> {
    ["vllm-v0", "sarathi", "wait", "nested-wait"]
        .iter()
        .filter(|n| crate::schedulers::by_name(n).is_some())
        .map(|n| n.to_string())
        .collect()
}

/// The latency-vs-rate sweep: p512d20, rates as fractions of the fluid `lambda_max`.
pub fn latency_sweep(ctx: &Ctx) -> Sweep {
    let (scales, seeds, requests) = match ctx.scale {
        Scale::Quick => (vec![0.5, 0.7, 0.85, 0.95, 1.0, 1.05, 1.15, 1.3], 2, 2_000),
        Scale::Full => ((8..=28).map(|k| f64::from(k) * 0.05).collect(), 10, 10_000),
    };
    let spec = SweepSpec {
        workloads: vec!["p512d20".into()],
        schedulers: figure_schedulers(),
        rate_scales: scales,
        relative_to: RelativeTo::LambdaMax,
        seeds: (0..seeds).map(|k| derive_seed(ctx.seed, k)).collect(),
        requests,
        window: 0.5,
    };
    Sweep::new(spec, vec![("p512d20".into(), p512d20())]).expect("valid sweep")
}

/// Mean of `f` over rows grouped by (scheduler, rate), in grid order. Rows of jobs that did
/// not run (no WAIT design beyond the fluid boundary: `error` set, `completed` 0) are left out.
pub fn curve(rows: &[Row], scheduler: &str, f: impl Fn(&Row) -> f64) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64, u32)> = Vec::new();
    let ran = |r: &&Row| r.error.is_empty() || r.completed > 0;
    for r in rows.iter().filter(|r| r.scheduler == scheduler).filter(ran) {
        match out.iter_mut().find(|p| p.0 == r.rate_per_s) {
            Some(p) => {
                p.1 += f(r);
                p.2 += 1;
            }
            None => out.push((r.rate_per_s, f(r), 1)),
        }
    }
    out.into_iter().map(|(x, s, n)| (x, s / f64::from(n))).collect()
}

/// The latency-vs-rate figure: [`latency_sweep`] on the figure schedulers, with the fluid
/// boundary and the pole.
pub fn run_latency_vs_rate(ctx: &Ctx) -> Output {
    let sweep = latency_sweep(ctx);
    let rows = run_in_memory(&sweep);
    let sol = kvsched_spec::fluid::FluidSolution::from_workload(&p512d20()).expect("affine");
    let mut fig = FigureData::lines(
        "Mean latency vs arrival rate, p512d20 (affine step time)",
        "arrival rate lambda (req/s)",
        "mean latency, middle 50% (s)",
    )
    .log_y();
    for s in &sweep.spec.schedulers {
        fig = fig.series(Series::new(s, curve(&rows, s, |r| r.latency_mean_s), Style::Line));
    }
    let fig = fig
        .vline(sol.lambda_max_per_s, "fluid boundary lambda_max (M* = C)")
        .vline(sol.lambda_pole_per_s.unwrap_or(f64::NAN), "pole (d1 A = 1)");
    let data = serde_json::json!({ "spec": sweep.spec, "rows": rows });
    Output {
        results: vec![],
        figures: vec![fig.figure("latency_vs_rate.svg", &["W-PROP1", "W-EXP-SINGLE"])],
        data,
    }
}

/// The memory-over-time figure: each figure scheduler on p512d20 at 0.95 `lambda_max`, with
/// the capacity and the fluid `M*`.
pub fn run_memory_over_time(ctx: &Ctx) -> Output {
    let mut w = p512d20();
    let sol = kvsched_spec::fluid::FluidSolution::from_workload(&w).expect("affine");
    let scale = 0.95 * sol.max_scale;
    w.classes.iter_mut().for_each(|c| c.rate_per_s *= scale);
    let n = if ctx.scale == Scale::Quick { 2_000 } else { 10_000 };
    let requests = crate::workload::generate(&w, crate::workload::Amount::Requests(n), ctx.seed);
    let inst = kvsched_spec::Instance {
        config: w.model_config(kvsched_spec::Information::Hidden),
        requests,
    };
    let cap = w.memory.capacity().get() as f64;
    let mut fig = FigureData::lines(
        "KV memory over time, p512d20 at 0.95 lambda_max",
        "time (s)",
        "KV tokens used / capacity",
    );
    let mut data = serde_json::Map::new();
    for name in figure_schedulers() {
        let mut s = crate::schedulers::for_workload(&name, &w).expect("registered");
        let opts = crate::sim::SimOptions { timeline: true, ..Default::default() };
        let o = match crate::sim::simulate(&inst, s.as_mut(), opts) {
            Ok(o) => o,
            Err(e) => *e.partial,
        };
        let step = (o.timeline.len() / 1500).max(1);
        let pts: Vec<(f64, f64)> = o
            .timeline
            .iter()
            .step_by(step)
            .map(|p| (p.t_ns.as_secs_f64(), p.kv_used_tokens.get() as f64 / cap))
            .collect();
        data.insert(name.clone(), serde_json::json!(pts));
        fig = fig.series(Series::new(&name, pts, Style::Reference));
    }
    let m = sol.m_star_at_scale(scale).unwrap_or(f64::NAN) / cap;
    let fig = fig.hline(1.0, "capacity C").hline(m, "fluid M*/C");
    let figures = vec![fig.figure("memory_over_time.svg", &["W-FLUID-MULTI", "W-THM2"])];
    Output { results: vec![], figures, data: serde_json::Value::Object(data) }
}
