//! The hindsight optimum: the MC-SF paper's time-indexed IP (1)–(4), solved with HiGHS.
//!
//! Variables `x[i][k] ∈ {0,1}` (request `i` starts at round `k`), one per request and start
//! round in its window `[a_i, hi_i]`; one row per round `t`:
//! `Σ_i Σ_{k ∈ [t − o_i, t − 1]} (s_i + t − k) x[i][k] ≤ M − background[t]`; objective
//! `Σ (k + o_i − a_i) x[i][k]`. The objective is integral, so HiGHS is asked to stop only when
//! the absolute gap is below 1 (`mip_abs_gap = 0.999`, `mip_rel_gap = 0`): an `Optimal` status
//! is then a proof of optimality. On the paper's synthetic instances (n 40–60, M 30–50) this
//! time-indexed model has 40–70 k binaries and ~1.4 M nonzeros; its LP bound is ~30 % below
//! MC-SF (6684 vs 9774 on one instance) and HiGHS does not close the gap in minutes
//! (`spec/MCSF_NOTES.md` §0). `KVSCHED_HIGHS_LOG=1` prints HiGHS's log;
//! `KVSCHED_HIGHS_PRESOLVE=off` disables presolve. [`IpOptions::clique_k`] adds valid
//! per-round clique rows (at most `k` requests above `M/(k+1)`); they raise the root LP by
//! under 1 % and do not help HiGHS, so every caller leaves them off (`spec/MCSF_NOTES.md` §0.2).
//!
//! # Windows (horizon), both safe
//! - `hi_i ≤ H − o_i` with `H = max(max a, background length) + Σ o`: after the last arrival an
//!   optimal schedule never has a round with none of its requests running (else shift all later
//!   starts one round earlier: feasible, strictly better), so it ends by `H`
//!   ([`RoundInstance::safe_horizon`]).
//! - `hi_i ≤ a_i + (U − Σ o)` when a feasible schedule of total `U` is known (MC-SF's, passed as
//!   the warm start): in an optimal schedule `L_i = OPT − Σ_{j≠i} L_j ≤ U − Σ_{j≠i} o_j`.

#[cfg(feature = "highs")]
use kvsched_spec::rounds::volume_bound_all_at_zero;
use kvsched_spec::rounds::{check_schedule, latency_floor, RoundInstance};
use std::time::Instant;

/// Solver options.
#[derive(Clone, Debug, Default)]
pub struct IpOptions {
    /// Wall-clock limit for HiGHS, seconds (`None`: no limit).
    pub time_limit_s: Option<f64>,
    /// Branch-and-bound node limit for HiGHS (`mip_max_nodes`; `None`: no limit). Unlike the
    /// time limit it does not depend on the machine or its load: HiGHS's MIP search is
    /// deterministic, so a node-limited solve returns the same schedule everywhere.
    pub node_limit: Option<u64>,
    /// A feasible schedule: used as the MIP start and to tighten the windows.
    pub warm_start: Option<Vec<u64>>,
    /// Memory already used at round `t` by requests outside the instance (index `t`; missing
    /// entries are 0). Used by the re-solving policy.
    pub background: Vec<u64>,
    /// Add the "at most `k` requests hold more than `M/(k+1)` per round" rows for
    /// `k = 1..=clique_k` (0: none; valid, but measured not to help: `spec/MCSF_NOTES.md` §0.2).
    pub clique_k: u32,
}

/// What the IP solve returned.
#[derive(Clone, Debug)]
pub struct IpSolution {
    /// Start rounds of the best schedule found (checked feasible).
    pub starts: Vec<u64>,
    /// Its total latency.
    pub total_latency: u64,
    /// Whether HiGHS proved it optimal.
    pub proven_optimal: bool,
    /// A proven lower bound on the optimum (equals `total_latency` when proven).
    pub lower_bound: f64,
    /// Wall-clock seconds spent (model build plus solve).
    pub solve_time_s: f64,
    /// Number of binary variables.
    pub num_vars: usize,
    /// Number of memory rows.
    pub num_rows: usize,
}

/// What a HiGHS-backed call returns when kvsched was built without the `highs` feature.
pub const NO_HIGHS: &str = "this needs the HiGHS MILP solver, which this build leaves out; \
rebuild with `--features highs` (needs cmake, a C++ compiler and libclang), for example \
`cargo run --release --features highs -- opt ...`";

/// The start-round variables of the time-indexed model.
#[cfg(feature = "highs")]
pub(crate) struct Model {
    pub problem: highs::RowProblem,
    /// `(request, start round)` of every column, in column order.
    pub cols: Vec<(usize, u64)>,
    pub num_rows: usize,
}

/// Start windows `[a_i, hi_i]` (see the module doc).
pub(crate) fn windows(
    inst: &RoundInstance,
    background: &[u64],
    ub: Option<u64>,
) -> Vec<(u64, u64)> {
    let max_a = inst.requests.iter().map(|r| r.arrival_round).max().unwrap_or(0);
    let h = max_a.max(background.len() as u64) + latency_floor(inst);
    let slack = ub.map(|u| u.saturating_sub(latency_floor(inst)));
    inst.requests
        .iter()
        .map(|r| {
            let mut hi = h - r.output_tokens;
            if let Some(sl) = slack {
                hi = hi.min(r.arrival_round + sl);
            }
            (r.arrival_round, hi.max(r.arrival_round))
        })
        .collect()
}

/// Builds the model; `integer` selects the IP or its LP relaxation. With `clique_k > 0` it
/// also adds, for every round `t` and `k = 1..=clique_k`, the valid row
/// `Σ {x[i][τ] : i holds more than cap_t/(k+1) at t when started at τ} ≤ k`
/// (`cap_t = M − background[t]`: `k + 1` such holders would exceed `cap_t`), skipped when at
/// most `k` distinct requests appear in it (then implied by the assignment rows).
#[cfg(feature = "highs")]
pub(crate) fn build(
    inst: &RoundInstance,
    win: &[(u64, u64)],
    bg: &[u64],
    integer: bool,
    clique_k: u32,
) -> Model {
    let mut problem = highs::RowProblem::default();
    let mut cols = Vec::new();
    let mut start_of: Vec<Vec<(highs::Col, f64)>> = vec![Vec::new(); inst.len()];
    let end = win.iter().zip(&inst.requests).map(|(w, r)| w.1 + r.output_tokens).max();
    let len = end.unwrap_or(0) as usize + 1;
    let mut rows: Vec<Vec<(highs::Col, f64)>> = vec![Vec::new(); len];
    let mut row_req: Vec<Vec<usize>> = vec![Vec::new(); len];
    for (i, (r, &(lo, hi))) in inst.requests.iter().zip(win).enumerate() {
        for k in lo..=hi {
            let cost = (k + r.output_tokens - r.arrival_round) as f64;
            let col = problem.add_column_with_integrality(cost, 0.0..=1.0, integer);
            cols.push((i, k));
            start_of[i].push((col, 1.0));
            for j in 1..=r.output_tokens {
                rows[(k + j) as usize].push((col, (r.prompt_tokens + j) as f64));
                row_req[(k + j) as usize].push(i);
            }
        }
    }
    let mut num_rows = 0;
    for (t, row) in rows.iter().enumerate() {
        if row.is_empty() {
            continue;
        }
        let cap = inst.memory_tokens.saturating_sub(bg.get(t).copied().unwrap_or(0));
        let total: f64 = row.iter().map(|&(_, c)| c).sum();
        if total > cap as f64 {
            problem.add_row(..=cap as f64, row);
            num_rows += 1;
        }
        for k in 1..=u64::from(clique_k) {
            let (mut big, mut reqs) = (Vec::new(), 0u64);
            let mut last = usize::MAX;
            for (&(c, h), &i) in row.iter().zip(&row_req[t]) {
                if h as u64 * (k + 1) > cap {
                    big.push((c, 1.0));
                    reqs += u64::from(i != last);
                    last = i;
                }
            }
            if reqs > k {
                problem.add_row(..=k as f64, big);
                num_rows += 1;
            }
        }
    }
    for row in start_of {
        problem.add_row(1.0..=1.0, row);
    }
    Model { problem, cols, num_rows }
}

/// Solves the IP. Errors only on an invalid instance or a solver failure with no incumbent.
pub fn solve_ip(inst: &RoundInstance, opts: &IpOptions) -> Result<IpSolution, String> {
    let started = Instant::now();
    let problems = inst.validate();
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let warm = match &opts.warm_start {
        Some(w) => Some((check_bg(inst, w, &opts.background)?, w.clone())),
        None => None,
    };
    let win = windows(inst, &opts.background, warm.as_ref().map(|w| w.0));
    solve_highs(inst, opts, started, warm, &win)
}

#[cfg(not(feature = "highs"))]
fn solve_highs(
    _: &RoundInstance,
    _: &IpOptions,
    _: Instant,
    _: Option<(u64, Vec<u64>)>,
    _: &[(u64, u64)],
) -> Result<IpSolution, String> {
    Err(NO_HIGHS.to_string())
}

#[cfg(feature = "highs")]
fn solve_highs(
    inst: &RoundInstance,
    opts: &IpOptions,
    started: Instant,
    warm: Option<(u64, Vec<u64>)>,
    win: &[(u64, u64)],
) -> Result<IpSolution, String> {
    let model = build(inst, win, &opts.background, true, opts.clique_k);
    let (num_vars, num_rows) = (model.cols.len(), model.num_rows);
    let mut m = model.problem.optimise(highs::Sense::Minimise);
    m.set_option("mip_rel_gap", 0.0);
    m.set_option("mip_abs_gap", 0.999);
    if let Ok(v) = std::env::var("KVSCHED_HIGHS_PRESOLVE") {
        m.set_option("presolve", v.as_str());
    }
    if std::env::var("KVSCHED_HIGHS_LOG").is_ok_and(|v| v == "1") {
        m.set_option("output_flag", true);
        m.set_option("log_to_console", true);
    }
    if let Some(tl) = opts.time_limit_s {
        m.set_option("time_limit", tl);
    }
    if let Some(nodes) = opts.node_limit {
        m.set_option("mip_max_nodes", i32::try_from(nodes).unwrap_or(i32::MAX));
    }
    if let Some((_, w)) = &warm {
        let x: Vec<f64> = model.cols.iter().map(|&(i, k)| f64::from(u8::from(w[i] == k))).collect();
        let _ = m.try_set_solution(Some(&x), None, None, None);
    }
    let solved = m.try_solve().map_err(|e| format!("HiGHS failed: {e:?}"))?;
    // The `highs` binding panics on model statuses it does not know, and a node-limited solve
    // ends with one (16, "solution limit"); there, optimality is read from the gap instead.
    let status = opts.node_limit.is_none().then(|| solved.status());
    let sol = solved.get_solution();
    let mut starts = vec![u64::MAX; inst.len()];
    for (v, &(i, k)) in sol.columns().iter().zip(&model.cols) {
        if *v > 0.5 {
            starts[i] = k;
        }
    }
    let found = check_bg(inst, &starts, &opts.background).ok().map(|t| (t, starts));
    let best = match (found, warm) {
        (Some(f), Some(w)) => Some(if w.0 < f.0 { w } else { f }),
        (f, w) => f.or(w),
    };
    let (total, starts) = best.ok_or_else(|| format!("no feasible schedule found ({status:?})"))?;
    let gap = solved.mip_gap();
    let proven = match status {
        Some(st) => st == highs::HighsModelStatus::Optimal,
        // Integral objective: a bound above `total − 1` proves `total`.
        None => gap.is_finite() && solved.objective_value() * (1.0 - gap) > total as f64 - 1.0,
    };
    let lb = if proven {
        total as f64
    } else if gap.is_finite() {
        (solved.objective_value() * (1.0 - gap)).max(latency_floor(inst) as f64)
    } else {
        latency_floor(inst) as f64
    };
    let lb = lb.max(volume_bound_all_at_zero(inst).map_or(0.0, |v| v as f64));
    let solve_time_s = started.elapsed().as_secs_f64();
    Ok(IpSolution {
        starts,
        total_latency: total,
        proven_optimal: proven,
        lower_bound: lb,
        solve_time_s,
        num_vars,
        num_rows,
    })
}

/// [`check_schedule`] with background memory added to the capacity test.
pub fn check_bg(inst: &RoundInstance, starts: &[u64], bg: &[u64]) -> Result<u64, String> {
    let total = check_schedule(inst, starts)?;
    let prof = kvsched_spec::rounds::memory_profile(inst, starts);
    for (t, b) in bg.iter().enumerate() {
        let m = prof.get(t).copied().unwrap_or(0);
        if m > 0 && m + b > inst.memory_tokens {
            return Err(format!("round {t}: {m} + background {b} exceeds memory"));
        }
    }
    Ok(total)
}
