//! The hindsight optimum of a round-model instance as a library call: [`OptSpec`] describes
//! the solve (method, time limit, LP bound, local search, seed) by plain values, and
//! [`OptSpec::solve`] returns the schedule with its bounds. `kvsched opt` and the Python
//! package's `opt` are thin shells over it.
//!
//! `bnb` (default up to 64 requests) is the exact branch-and-bound of [`crate::opt::bnb`];
//! `ip` is the MC-SF paper's time-indexed IP (1)–(4) solved with HiGHS (the `highs` feature).
//! Both start from the better of MC-SF's schedule and the seeded list-scheduling local search
//! of [`crate::opt::search`], so the result is reproducible. An interrupt flag stops the
//! branch-and-bound and the search with the best schedule found.

use crate::opt::bnb::{solve_bnb, BnbOptions, MAX_REQUESTS};
use crate::opt::ip::{solve_ip, IpOptions, IpSolution};
use crate::opt::lp::solve_lp;
use crate::opt::round_sim::{simulate, Mcsf};
use crate::opt::search::{improve, SearchOptions};
use crate::prng::{stream, Stream};
use crate::workload::read_file;
use kvsched_spec::rounds::{
    check_schedule, latency_floor, lemma47_bound, volume_bound_all_at_zero, RoundInstance,
};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The exact method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Branch-and-bound (pure Rust).
    Bnb,
    /// The time-indexed IP with HiGHS (`highs` feature).
    Ip,
}

impl Method {
    /// `bnb` or `ip`, with the flag's error otherwise.
    pub fn parse(s: &str) -> Result<Method, String> {
        match s {
            "bnb" => Ok(Method::Bnb),
            "ip" => Ok(Method::Ip),
            o => Err(format!("--method: expected bnb or ip, got {o:?}")),
        }
    }

    /// Its name in the output.
    pub fn name(self) -> &'static str {
        match self {
            Method::Bnb => "bnb",
            Method::Ip => "ip",
        }
    }
}

/// A hindsight-optimum solve, described by plain values ([`OptSpec::default`] is the CLI's
/// defaults).
#[derive(Clone, Debug)]
pub struct OptSpec {
    /// Also solve the LP relaxation for its bound (`highs` feature).
    pub lp: bool,
    /// Wall-clock limit for the exact solve (seconds); the best schedule found is returned.
    pub time_limit_s: Option<f64>,
    /// The exact method; `None`: `bnb` up to 64 requests, else `ip`.
    pub method: Option<Method>,
    /// Local-search moves before the exact solve (0: start from MC-SF's schedule only).
    pub search_iters: u64,
    /// Seed of the local search.
    pub seed: u64,
    /// Raised by another thread to stop the search early (Ctrl-C; Python's
    /// `KeyboardInterrupt`).
    pub interrupt: Option<Arc<AtomicBool>>,
}

impl Default for OptSpec {
    fn default() -> OptSpec {
        OptSpec {
            lp: false,
            time_limit_s: None,
            method: None,
            search_iters: 20_000,
            seed: 1,
            interrupt: None,
        }
    }
}

/// The largest `memory_tokens` `opt` takes: its solvers hold arrays indexed by memory level.
pub const MAX_OPT_MEMORY_TOKENS: u64 = 1 << 20;
/// The largest horizon (last arrival round plus every output token) `opt` takes: its solvers
/// and checks hold arrays indexed by round.
pub const MAX_OPT_ROUNDS: u64 = 1 << 22;

/// The resource budget of `opt`: allocation proportional to `memory_tokens` or to the rounds
/// is refused above the limits, naming the field.
pub fn budget_problems(inst: &RoundInstance) -> Vec<String> {
    let mut problems = Vec::new();
    if inst.memory_tokens > MAX_OPT_MEMORY_TOKENS {
        problems.push(format!(
            "memory_tokens: {} is above the limit of {MAX_OPT_MEMORY_TOKENS} that opt handles \
             (its solvers allocate in proportion to memory)",
            inst.memory_tokens
        ));
    }
    let max_a = inst.requests.iter().map(|r| r.arrival_round).max().unwrap_or(0);
    let outputs = inst.requests.iter().fold(0u64, |a, r| a.saturating_add(r.output_tokens));
    let horizon = max_a.saturating_add(outputs);
    if horizon > MAX_OPT_ROUNDS {
        let i = inst.requests.iter().position(|r| r.arrival_round == max_a).unwrap_or(0);
        problems.push(format!(
            "requests[{i}].arrival_round: the horizon (last arrival round {max_a} plus {outputs} \
             output tokens) is above the limit of {MAX_OPT_ROUNDS} rounds that opt handles \
             (its solvers allocate in proportion to rounds)"
        ));
    }
    problems
}

/// Reads and validates an instance; errors name the file and the line or field.
pub fn load_instance(path: &Path) -> Result<RoundInstance, String> {
    let text = read_file(path)?;
    let name = path.display().to_string();
    let is_json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let inst: RoundInstance = if is_json {
        serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))?
    } else {
        toml::from_str(&text).map_err(|e| format!("{name}: {e}"))?
    };
    checked(inst, &name)
}

/// An instance from a JSON value (the Python package's dict), validated as a file is.
pub fn instance_from_json(v: serde_json::Value, name: &str) -> Result<RoundInstance, String> {
    let inst: RoundInstance = serde_json::from_value(v).map_err(|e| format!("{name}: {e}"))?;
    checked(inst, name)
}

/// The instance if it is valid and within [`budget_problems`]' limits.
fn checked(inst: RoundInstance, name: &str) -> Result<RoundInstance, String> {
    let mut problems = inst.validate();
    problems.extend(budget_problems(&inst));
    if !problems.is_empty() {
        return Err(format!("{name}: {}", problems.join("; ")));
    }
    Ok(inst)
}

/// A solved instance: the schedule, the bounds, the method and whether an interrupt cut the
/// search short.
pub struct Solved {
    /// The schedule, its total latency and the solver's bound.
    pub sol: IpSolution,
    /// Other bounds and reference schedules.
    pub bounds: Bounds,
    /// The method that ran.
    pub method: Method,
    /// The interrupt flag stopped the search (the schedule is the best found).
    pub interrupted: bool,
}

/// Bounds and reference values beside the solver's own.
pub struct Bounds {
    /// Sum of the output lengths (every request runs at least that long).
    pub floor: u64,
    /// The volume bound, when every request arrives at round 0.
    pub volume: Option<u64>,
    /// Lemma 4.7's bound (identical prompts, all at 0).
    pub lemma47: Option<f64>,
    /// The LP relaxation's bound and solve time (s).
    pub lp: Option<(f64, f64)>,
    /// MC-SF's total latency.
    pub mcsf: Option<u64>,
    /// The local search's total latency.
    pub search: Option<u64>,
}

impl OptSpec {
    /// Rejects what the build or the solver cannot honour, with the CLI's message.
    pub fn check(&self) -> Result<(), String> {
        if self.time_limit_s.is_some_and(|t| !(t.is_finite() && t > 0.0)) {
            return Err("--time-limit-s: expected a positive number of seconds".into());
        }
        if !cfg!(feature = "highs") && (self.lp || self.method == Some(Method::Ip)) {
            let flag = if self.lp { "--lp" } else { "--method ip" };
            return Err(format!("{flag}: {}", crate::opt::ip::NO_HIGHS));
        }
        Ok(())
    }

    /// Solves `inst` (named `name` in errors), after [`OptSpec::check`].
    pub fn solve(&self, inst: &RoundInstance, name: &str) -> Result<Solved, String> {
        self.check()?;
        let mcsf = simulate(inst, &mut Mcsf).ok();
        let mcsf_total = mcsf.as_ref().and_then(|s| check_schedule(inst, s).ok());
        // The search's schedule is re-checked by the spec; on any doubt MC-SF's is kept.
        let search = match (&mcsf, self.search_iters) {
            (Some(s), iters) if iters > 0 => {
                let opts = SearchOptions {
                    iterations: iters,
                    interrupt: self.interrupt.clone(),
                    ..SearchOptions::default()
                };
                let f = improve(inst, s, &opts, &mut stream(self.seed, Stream::Policy));
                (check_schedule(inst, &f.starts) == Ok(f.total_latency)).then_some(f)
            }
            _ => None,
        };
        let search_total = search.as_ref().map(|f| f.total_latency);
        let warm = search.map(|f| f.starts).or(mcsf);
        let method = self.method.unwrap_or(if inst.len() <= MAX_REQUESTS {
            Method::Bnb
        } else {
            Method::Ip
        });
        let bnb = method == Method::Bnb;
        let sol = if bnb {
            let opts = BnbOptions {
                time_limit_s: self.time_limit_s,
                node_limit: None,
                warm_start: warm,
                interrupt: self.interrupt.clone(),
            };
            solve_bnb(inst, &opts).map(|b| IpSolution {
                starts: b.starts,
                total_latency: b.total_latency,
                proven_optimal: b.proven_optimal,
                lower_bound: b.lower_bound as f64,
                solve_time_s: b.solve_time_s,
                num_vars: 0,
                num_rows: 0,
            })
        } else {
            let opts = IpOptions {
                time_limit_s: self.time_limit_s,
                warm_start: warm,
                background: vec![],
                clique_k: 0,
                node_limit: None,
            };
            solve_ip(inst, &opts)
        };
        let sol = sol.map_err(|e| format!("{name}: {e}"))?;
        let interrupted = !sol.proven_optimal
            && self.interrupt.as_ref().is_some_and(|f| f.load(Ordering::Relaxed));
        let lp =
            if self.lp && !interrupted { Some(solve_lp(inst, Some(&sol.starts))) } else { None };
        let lp = lp.transpose()?;
        let bounds = Bounds {
            floor: latency_floor(inst),
            volume: volume_bound_all_at_zero(inst),
            lemma47: lemma47_bound(inst).ok(),
            lp: lp.map(|l| (l.lower_bound, l.solve_time_s)),
            mcsf: mcsf_total,
            search: search_total,
        };
        Ok(Solved { sol, bounds, method, interrupted })
    }
}

/// The `--json` object.
pub fn to_json(inst: &RoundInstance, solved: &Solved) -> serde_json::Value {
    let (sol, b, method) = (&solved.sol, &solved.bounds, solved.method);
    let schedule: Vec<serde_json::Value> = inst
        .requests
        .iter()
        .zip(&sol.starts)
        .enumerate()
        .map(|(i, (r, &k))| {
            serde_json::json!({
                "id": i, "arrival_round": r.arrival_round, "start_round": k,
                "completion_round": k + r.output_tokens,
                "latency": k + r.output_tokens - r.arrival_round,
            })
        })
        .collect();
    serde_json::json!({
        "method": method.name(),
        "total_latency": sol.total_latency,
        "proven_optimal": sol.proven_optimal,
        "interrupted": solved.interrupted,
        "lower_bound": sol.lower_bound,
        "solve_time_s": sol.solve_time_s,
        "num_vars": sol.num_vars,
        "num_rows": sol.num_rows,
        "n": inst.len(),
        "memory_tokens": inst.memory_tokens,
        "bounds": {
            "sum_output": b.floor, "volume_all_at_zero": b.volume, "lemma_4_7": b.lemma47,
            "lp": b.lp.map(|l| l.0), "lp_time_s": b.lp.map(|l| l.1),
        },
        "mcsf_total_latency": b.mcsf,
        "search_total_latency": b.search,
        "schedule": schedule,
    })
}
