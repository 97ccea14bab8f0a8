//! LP relaxation of the hindsight IP: `0 ≤ x ≤ 1` instead of binary. A valid lower bound on
//! the optimum (over the same safe windows as [`super::ip`]), for instances too large for the IP.

#[cfg(feature = "highs")]
use super::ip::build;
use super::ip::windows;
use kvsched_spec::rounds::{check_schedule, RoundInstance};
use std::time::Instant;

/// The LP bound and the time spent.
#[derive(Clone, Copy, Debug)]
pub struct LpBound {
    /// Optimal LP value: a lower bound on the optimal total latency.
    pub lower_bound: f64,
    /// Wall-clock seconds (build plus solve).
    pub solve_time_s: f64,
    /// Number of columns.
    pub num_vars: usize,
    /// Requests split over several starts in the LP optimum (largest `x[i][·] < 0.999`).
    pub split_requests: usize,
    /// Mean number of starts with `x > 10⁻⁶` per request in the LP optimum.
    pub mean_starts: f64,
}

/// Solves the LP relaxation. `feasible` (any feasible schedule) tightens the windows.
pub fn solve_lp(inst: &RoundInstance, feasible: Option<&[u64]>) -> Result<LpBound, String> {
    solve_lp_cuts(inst, feasible, 0)
}

/// [`solve_lp`] with the clique rows for `k = 1..=clique_k` added (see [`super::ip`]).
pub fn solve_lp_cuts(
    inst: &RoundInstance,
    feasible: Option<&[u64]>,
    clique_k: u32,
) -> Result<LpBound, String> {
    let started = Instant::now();
    let problems = inst.validate();
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let ub = match feasible {
        Some(s) => Some(check_schedule(inst, s)?),
        None => None,
    };
    let win = windows(inst, &[], ub);
    solve_highs(inst, &win, clique_k, started)
}

#[cfg(not(feature = "highs"))]
fn solve_highs(_: &RoundInstance, _: &[(u64, u64)], _: u32, _: Instant) -> Result<LpBound, String> {
    Err(super::ip::NO_HIGHS.to_string())
}

#[cfg(feature = "highs")]
fn solve_highs(
    inst: &RoundInstance,
    win: &[(u64, u64)],
    clique_k: u32,
    started: Instant,
) -> Result<LpBound, String> {
    let model = build(inst, win, &[], false, clique_k);
    let num_vars = model.cols.len();
    let solved = model.problem.optimise(highs::Sense::Minimise).try_solve();
    let solved = solved.map_err(|e| format!("HiGHS failed: {e:?}"))?;
    if solved.status() != highs::HighsModelStatus::Optimal {
        return Err(format!("LP not solved to optimality: {:?}", solved.status()));
    }
    let (mut largest, mut used) = (vec![0.0f64; inst.len()], 0usize);
    for (v, &(i, _)) in solved.get_solution().columns().iter().zip(&model.cols) {
        largest[i] = largest[i].max(*v);
        used += usize::from(*v > 1e-6);
    }
    Ok(LpBound {
        lower_bound: solved.objective_value(),
        solve_time_s: started.elapsed().as_secs_f64(),
        num_vars,
        split_requests: largest.iter().filter(|&&x| x < 0.999).count(),
        mean_starts: used as f64 / inst.len().max(1) as f64,
    })
}
