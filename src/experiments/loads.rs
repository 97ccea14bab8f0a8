//! Stability thresholds measured per scheduler, and the simulator's cost at loads relative to
//! them (`kvsched bench --loads`, `kvsched sweep`'s summary; BENCHMARKS.md).
//!
//! **Stability probe.** A scheduler is *stable* at a rate when the requests' latency does not
//! grow with their arrival index: one seeded run of `n` requests, and the mean latency of the
//! last quarter of the arrivals is at most [`GROWTH_LIMIT`] times that of the second quarter,
//! and the engine never held more than [`HELD_LIMIT`] of the `n` requests at once. (The second
//! rule was added after the first measurements: WAIT, which serves its per-type queues in
//! rotation, passed the latency rule at twice `lambda_max` while holding two thirds of the
//! requests.)
//! Past the stability boundary the waiting queue grows linearly, latency grows with the arrival
//! index, and that ratio tends to `0.875 / 0.375 = 2.33`; below it the two quarters see the same
//! stationary latency (ratio about 1). A run that stops early (an invalid plan, a stall, more
//! than [`PROBE_STEPS_PER_REQUEST`] iterations per request: a policy thrashing on restarts) or
//! a scheduler that cannot be built at that rate counts as not stable.
//!
//! **Which scheduler.** [`Build::Catalog`] is the catalog's policy with default parameters
//! ([`crate::schedulers::by_name`], as `kvsched schedulers` lists it), the same at every rate:
//! what `kvsched bench --loads` times. [`Build::Designed`] is [`for_workload`], designed for
//! the probed rate (WAIT and Nested WAIT get fluid thresholds; past their boundary, or where
//! the integer design does not fit, they cannot be built): what a sweep runs.
//!
//! **Threshold.** Bisection on the rate, as a fraction of the fluid `lambda_max` of the mix,
//! between a stable lower end and an unstable upper end: the result is an interval
//! `[lo, hi]` of rates, `lo` measured stable and `hi` measured unstable. The interval is the
//! bisection's resolution on one seed, not a confidence interval: near the boundary a different
//! seed can move the answer by more than its width.
//!
//! **Timing.** [`time_run`] streams `n` requests through a scheduler at a given rate (requests
//! generated on arrival, only the requests in flight held), on the calling thread, and reports
//! the wall time, the simulated iterations, the most requests held at once and whether every
//! request completed. Timing lives here and in `kvsched bench`, never in tests.

use crate::schedulers::{by_name, for_workload};
use crate::sim::Scheduler;
use crate::sim::{simulate, simulate_stream, SimOptions};
use crate::workload::{default_predictions, generate, Amount, Generator};
use kvsched_spec::fluid::FluidSolution;
use kvsched_spec::{Information, Instance, WorkloadFile};

/// Latency growth (last quarter over second quarter of arrivals) above which a run is unstable.
pub const GROWTH_LIMIT: f64 = 1.5;

/// Largest fraction of a probe's requests held at once (arrived, not retired) for a stable run.
pub const HELD_LIMIT: f64 = 0.25;

/// Iterations per request after which a probe stops and counts as not stable (the stable runs
/// of the loads table take 0.2 to 4 per request).
pub const PROBE_STEPS_PER_REQUEST: u64 = 50;

/// How a probe builds the scheduler (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Build {
    /// The catalog's policy with default parameters.
    Catalog,
    /// Designed for the workload at the probed rate.
    Designed,
}

impl Build {
    /// The scheduler `name` for `w`.
    pub fn make(self, name: &str, w: &WorkloadFile) -> Result<Box<dyn Scheduler>, String> {
        match self {
            Build::Catalog => by_name(name).ok_or_else(|| format!("unknown scheduler {name:?}")),
            Build::Designed => for_workload(name, w),
        }
    }
}

/// `w` with every rate scaled so that the total is `fraction` of the fluid `lambda_max`.
pub fn at_fraction(w: &WorkloadFile, fraction: f64) -> Result<WorkloadFile, String> {
    let sol = FluidSolution::from_workload(w).map_err(|e| e.to_string())?;
    let mut out = w.clone();
    let scale = fraction * sol.lambda_max_per_s / w.total_rate_per_s();
    for c in &mut out.classes {
        c.rate_per_s *= scale;
    }
    Ok(out)
}

/// The fluid `lambda_max` of `w` (requests per second).
pub fn lambda_max(w: &WorkloadFile) -> Result<f64, String> {
    Ok(FluidSolution::from_workload(w).map_err(|e| e.to_string())?.lambda_max_per_s)
}

/// One stability probe: latency growth of a run of `n` requests of `w` (at its rates),
/// infinite when the run held more than [`HELD_LIMIT`] of them at once, or `None` when the
/// scheduler cannot be built for `w` or the run stops early.
pub fn latency_growth(
    w: &WorkloadFile,
    build: Build,
    scheduler: &str,
    n: u64,
    seed: u64,
) -> Option<f64> {
    let mut s = build.make(scheduler, w).ok()?;
    let mut requests = generate(w, Amount::Requests(n), seed);
    default_predictions(s.information(), &mut requests);
    let inst = Instance { config: w.model_config(Information::Hidden), requests };
    let opts = SimOptions { max_steps: Some(PROBE_STEPS_PER_REQUEST * n), ..Default::default() };
    let out = simulate(&inst, s.as_mut(), opts).ok()?;
    if out.peak_window_requests as f64 > HELD_LIMIT * n as f64 {
        return Some(f64::INFINITY);
    }
    let latency = |q: usize| -> f64 {
        let (a, b) = (out.requests.len() * q / 4, out.requests.len() * (q + 1) / 4);
        let part = &out.requests[a..b];
        let sum: f64 = part
            .iter()
            .map(|r| {
                let finish = r.finish_ns.expect("a completed run").get();
                (finish - r.arrival_ns.get()) as f64 * 1e-9
            })
            .sum();
        sum / part.len().max(1) as f64
    };
    Some(latency(3) / latency(1).max(1e-12))
}

/// Whether `scheduler` is stable on `w` at `fraction` of its fluid `lambda_max`.
pub fn stable_at(
    w: &WorkloadFile,
    build: Build,
    scheduler: &str,
    fraction: f64,
    n: u64,
    seed: u64,
) -> bool {
    at_fraction(w, fraction)
        .ok()
        .and_then(|wf| latency_growth(&wf, build, scheduler, n, seed))
        .is_some_and(|g| g <= GROWTH_LIMIT)
}

/// A measured stability threshold, as fractions of the fluid `lambda_max`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Threshold {
    /// Scheduler.
    pub scheduler: String,
    /// Largest fraction measured stable (`None`: not even the lower end of the search).
    pub lo: Option<f64>,
    /// Smallest fraction measured unstable above `lo` (`None`: not even the upper end).
    pub hi: Option<f64>,
    /// The fluid `lambda_max` of the mix (requests per second).
    pub lambda_max_per_s: f64,
}

impl Threshold {
    /// The interval in requests per second, as printed (`[lo, hi] req/s`).
    pub fn describe(&self) -> String {
        let at = |f: Option<f64>| {
            f.map_or("-".to_string(), |f| format!("{:.1}", f * self.lambda_max_per_s))
        };
        format!("[{}, {}] req/s", at(self.lo), at(self.hi))
    }
    /// The fraction the loads are relative to: `lo` (the largest rate measured stable).
    pub fn base(&self) -> Option<f64> {
        self.lo
    }
}

/// The search range of [`threshold`], as fractions of the fluid `lambda_max`.
pub const SEARCH: (f64, f64) = (0.05, 2.0);

/// Bisection for the stability threshold of `scheduler` on `w`, `steps` halvings of
/// [`SEARCH`], each probe a run of `n` requests with `seed`.
pub fn threshold(
    w: &WorkloadFile,
    build: Build,
    scheduler: &str,
    n: u64,
    seed: u64,
    steps: u32,
) -> Result<Threshold, String> {
    let lambda_max_per_s = lambda_max(w)?;
    let (mut lo, mut hi) = SEARCH;
    let out = |lo, hi| Threshold { scheduler: scheduler.into(), lo, hi, lambda_max_per_s };
    if !stable_at(w, build, scheduler, lo, n, seed) {
        return Ok(out(None, Some(lo)));
    }
    if stable_at(w, build, scheduler, hi, n, seed) {
        return Ok(out(Some(hi), None));
    }
    for _ in 0..steps {
        let mid = 0.5 * (lo + hi);
        if stable_at(w, build, scheduler, mid, n, seed) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(out(Some(lo), Some(hi)))
}

/// One timed, streamed run.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Timing {
    /// Wall seconds (generation of the requests included).
    pub wall_s: f64,
    /// Iterations simulated.
    pub iterations: u64,
    /// Most requests held at once (arrived, not yet retired).
    pub peak_held: u64,
    /// Requests completed (every one, unless the run stopped early).
    pub completed: u64,
    /// Why the run stopped early, if it did.
    pub error: Option<String>,
}

/// Streams `n` requests of `w` (at its rates) through `scheduler` on this thread and times it.
pub fn time_run(
    w: &WorkloadFile,
    scheduler: &mut dyn Scheduler,
    n: u64,
    seed: u64,
) -> Result<Timing, String> {
    let config = w.model_config(Information::Hidden);
    let information = scheduler.information();
    let start = std::time::Instant::now();
    let mut source = Generator::new(w, Amount::Requests(n), seed).map(|mut r| {
        default_predictions(information, std::slice::from_mut(&mut r));
        r
    });
    let result = simulate_stream(&config, n, &mut source, scheduler, SimOptions::default(), 0.5);
    let wall_s = start.elapsed().as_secs_f64();
    let (out, error) = match result {
        Ok(o) => (o, None),
        Err(e) => (*e.partial.clone(), Some(e.to_string())),
    };
    Ok(Timing {
        wall_s,
        iterations: out.steps,
        peak_held: out.peak_window_requests,
        completed: out.completed,
        error,
    })
}

/// The scheduler `name` designed for `w` at `fraction` of its `lambda_max` (WAIT's fluid
/// design needs a rate it can serve; the timed runs at other loads reuse it).
pub fn designed_at(
    w: &WorkloadFile,
    name: &str,
    fraction: f64,
) -> Result<Box<dyn Scheduler>, String> {
    for_workload(name, &at_fraction(w, fraction)?)
}

/// The stability threshold of every (workload, scheduler) of a sweep, in parallel, each probe
/// a run of the sweep's `requests` with its first seed: the summary `kvsched sweep
/// --thresholds` prints after the grid. `(workload name, threshold)` in grid order; a workload
/// with no fluid solution is an `Err` in its place.
pub fn sweep_thresholds(
    sweep: &crate::experiments::sweep::Sweep,
    steps: u32,
) -> Vec<(String, Result<Threshold, String>)> {
    use rayon::prelude::*;
    let seed = sweep.spec.seeds.first().copied().unwrap_or(1);
    let pairs: Vec<(usize, &String)> = (0..sweep.workloads.len())
        .flat_map(|w| sweep.spec.schedulers.iter().map(move |s| (w, s)))
        .collect();
    pairs
        .par_iter()
        .map(|&(w, s)| {
            let (name, file) = &sweep.workloads[w];
            (name.clone(), threshold(file, Build::Designed, s, sweep.spec.requests, seed, steps))
        })
        .collect()
}
