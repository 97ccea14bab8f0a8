//! `kvsched opt INSTANCE [--json] [--lp] [--time-limit-s N] [--method bnb|ip]
//! [--search-iters N] [--seed S]`: the hindsight optimum of a round-model instance (MC-SF paper's
//! IP (1)–(4)), its schedule, solve time and lower bounds. `--method bnb` (default up to 64
//! requests): the exact branch-and-bound of `opt::bnb`; `--method ip`: the time-indexed IP solved
//! with HiGHS. Both start from the better of MC-SF's schedule and the list-scheduling local
//! search of `opt::search` (seeded, so the output is reproducible). Instance format:
//! `spec/ROUNDS.md` (TOML, or JSON when the file ends in `.json`). Exit 0 when a schedule was
//! found (proven optimal or not; the output says which), 2 on bad input.
//!
//! Ctrl-C (SIGINT) stops the branch-and-bound at its next node (during the local search, as
//! soon as the search ends): `opt` prints the best schedule found, as a time limit would, says
//! on standard error that it was interrupted, and exits 130. HiGHS (`--method ip`,
//! `--lp`) cannot be stopped from outside: Ctrl-C during its solve ends the process after
//! [`GRACE`] with the message only. A second Ctrl-C ends the process at once (exit 130).

use crate::opt::bnb::{solve_bnb, BnbOptions, MAX_REQUESTS};
use crate::opt::ip::{solve_ip, IpOptions, IpSolution};
use crate::opt::lp::solve_lp;
use crate::opt::round_sim::{simulate, Mcsf};
use crate::opt::search::{improve, SearchOptions};
use crate::prng::{stream, Stream};
use kvsched_spec::rounds::{
    check_schedule, latency_floor, lemma47_bound, volume_bound_all_at_zero, RoundInstance,
};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Round-model instance file (TOML, or JSON if it ends in `.json`).
    pub instance: std::path::PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also solve the LP relaxation and print its bound.
    #[arg(long)]
    pub lp: bool,
    /// Wall-clock limit for the IP solve (seconds); the best schedule found is printed.
    #[arg(long)]
    pub time_limit_s: Option<f64>,
    /// Exact method: `bnb` (branch-and-bound) or `ip` (HiGHS, only with the `highs` feature);
    /// default `bnb` when the instance has at most 64 requests, else `ip`.
    #[arg(long, value_parser = ["bnb", "ip"])]
    pub method: Option<String>,
    /// Local-search moves before the exact solve (0: start from MC-SF's schedule only).
    #[arg(long, default_value_t = 20_000)]
    pub search_iters: u64,
    /// Seed of the local search.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Set by another thread to stop the search early (Ctrl-C; Python's `KeyboardInterrupt`).
    #[arg(skip)]
    pub interrupt: Option<Arc<AtomicBool>>,
}

/// The exit code of an interrupted `opt` (128 + SIGINT, as a shell reports it).
pub const EXIT_INTERRUPTED: u8 = 130;
/// How long after Ctrl-C a solve that cannot stop (HiGHS) is given before the process ends.
pub const GRACE: Duration = Duration::from_secs(2);

/// Catches Ctrl-C for the solve: the returned flag is raised on the first SIGINT (a second one
/// ends the process with [`EXIT_INTERRUPTED`]), and a watcher ends the process with a message
/// when the solve has not answered [`GRACE`] after the first (`answered` is set once the
/// answer is being printed). Without signal support the flag simply never rises.
fn catch_ctrl_c(answered: &Arc<AtomicBool>) -> Arc<AtomicBool> {
    use signal_hook::consts::SIGINT;
    let flag = Arc::new(AtomicBool::new(false));
    // Registered first, so it sees the flag as the previous SIGINT left it.
    let twice = signal_hook::flag::register_conditional_shutdown(
        SIGINT,
        i32::from(EXIT_INTERRUPTED),
        Arc::clone(&flag),
    );
    if twice.is_err() || signal_hook::flag::register(SIGINT, Arc::clone(&flag)).is_err() {
        return flag;
    }
    let (f, answered) = (Arc::clone(&flag), Arc::clone(answered));
    let watcher = move || {
        while !f.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let since = Instant::now();
        while since.elapsed() < GRACE {
            if answered.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "interrupted (Ctrl-C): the HiGHS solve cannot be stopped early, so no schedule is \
             printed (`--method bnb` stops with its best schedule)"
        );
        std::process::exit(i32::from(EXIT_INTERRUPTED));
    };
    // The watcher only sleeps until Ctrl-C; the process does not wait for it.
    let _ = std::thread::Builder::new().name("ctrl-c".into()).spawn(watcher);
    flag
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
    let text = super::read_file(path)?;
    let is_json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let inst: RoundInstance = if is_json {
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
    };
    let mut problems = inst.validate();
    problems.extend(budget_problems(&inst));
    if !problems.is_empty() {
        return Err(format!("{}: {}", path.display(), problems.join("; ")));
    }
    Ok(inst)
}

/// Rejects arguments the build or the solver cannot honour, with the CLI's message.
pub fn check_args(args: &Args) -> Result<(), String> {
    if args.time_limit_s.is_some_and(|t| !(t.is_finite() && t > 0.0)) {
        return Err("--time-limit-s: expected a positive number of seconds".into());
    }
    if !cfg!(feature = "highs") && (args.lp || args.method.as_deref() == Some("ip")) {
        let flag = if args.lp { "--lp" } else { "--method ip" };
        return Err(format!("{flag}: {}", crate::opt::ip::NO_HIGHS));
    }
    Ok(())
}

/// Runs the subcommand.
pub fn run(args: &Args) -> ExitCode {
    let inst = match check_args(args).and_then(|()| load_instance(&args.instance)) {
        Ok(i) => i,
        Err(e) => return super::input_error(e),
    };
    let answered = Arc::new(AtomicBool::new(false));
    let interrupt = Some(catch_ctrl_c(&answered));
    let args = &Args { interrupt, ..args.clone() };
    let solved = match solve(args, &inst, &args.instance.display().to_string()) {
        Ok(s) => s,
        Err(e) => return super::input_error(e),
    };
    answered.store(true, Ordering::Relaxed);
    if args.json {
        outln!("{}", to_json(&inst, &solved));
    } else {
        print_text(&args.instance, &inst, &solved.sol, &solved.bounds, solved.method);
    }
    if solved.interrupted {
        eprintln!(
            "interrupted (Ctrl-C): the search stopped early; the schedule printed is the best \
             found (total latency {}), not proven optimal",
            solved.sol.total_latency
        );
        return ExitCode::from(EXIT_INTERRUPTED);
    }
    ExitCode::SUCCESS
}

/// A solved instance: the schedule, the bounds and the method.
pub struct Solved {
    sol: IpSolution,
    bounds: Bounds,
    method: &'static str,
    interrupted: bool,
}

/// Solves `inst` (named `name` in errors) as `args` say (after [`check_args`]).
pub fn solve(args: &Args, inst: &RoundInstance, name: &str) -> Result<Solved, String> {
    let mcsf = simulate(inst, &mut Mcsf).ok();
    let mcsf_total = mcsf.as_ref().and_then(|s| check_schedule(inst, s).ok());
    // The search's schedule is re-checked by the spec; on any doubt MC-SF's is kept.
    let search = match (&mcsf, args.search_iters) {
        (Some(s), iters) if iters > 0 => {
            let opts = SearchOptions {
                iterations: iters,
                interrupt: args.interrupt.clone(),
                ..SearchOptions::default()
            };
            let f = improve(inst, s, &opts, &mut stream(args.seed, Stream::Policy));
            (check_schedule(inst, &f.starts) == Ok(f.total_latency)).then_some(f)
        }
        _ => None,
    };
    let search_total = search.as_ref().map(|f| f.total_latency);
    let warm = search.map(|f| f.starts).or(mcsf);
    let bnb = match args.method.as_deref() {
        Some(m) => m == "bnb",
        None => inst.len() <= MAX_REQUESTS,
    };
    let sol = if bnb {
        let opts = BnbOptions {
            time_limit_s: args.time_limit_s,
            node_limit: None,
            warm_start: warm,
            interrupt: args.interrupt.clone(),
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
            time_limit_s: args.time_limit_s,
            warm_start: warm,
            background: vec![],
            clique_k: 0,
            node_limit: None,
        };
        solve_ip(inst, &opts)
    };
    let method = if bnb { "bnb" } else { "ip" };
    let sol = sol.map_err(|e| format!("{name}: {e}"))?;
    let interrupted =
        !sol.proven_optimal && args.interrupt.as_ref().is_some_and(|f| f.load(Ordering::Relaxed));
    let lp = if args.lp && !interrupted { Some(solve_lp(inst, Some(&sol.starts))) } else { None };
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

struct Bounds {
    floor: u64,
    volume: Option<u64>,
    lemma47: Option<f64>,
    lp: Option<(f64, f64)>,
    mcsf: Option<u64>,
    search: Option<u64>,
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
        "method": method,
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

fn print_text(path: &Path, inst: &RoundInstance, sol: &IpSolution, b: &Bounds, method: &str) {
    outln!("instance: {} (n = {}, M = {})", path.display(), inst.len(), inst.memory_tokens);
    let status = if sol.proven_optimal { "proven optimal" } else { "NOT proven optimal" };
    let what = if sol.proven_optimal { "optimal" } else { "best" };
    outln!("{what} total latency: {} ({status})", sol.total_latency);
    outln!("method: {method}");
    outln!("lower bound ({method}): {:.3}", sol.lower_bound);
    if method == "ip" {
        outln!(
            "solve time: {:.3} s ({} binaries, {} memory rows)",
            sol.solve_time_s,
            sol.num_vars,
            sol.num_rows
        );
    } else {
        outln!("solve time: {:.3} s", sol.solve_time_s);
    }
    if let Some(m) = b.mcsf {
        outln!("MC-SF total latency: {m} (ratio {:.4})", m as f64 / sol.total_latency as f64);
        if !sol.proven_optimal {
            // Any feasible schedule bounds OPT from above, the solver's bound from below.
            outln!(
                "bracket: OPT in [{:.0}, {}], so MC-SF / OPT in [{:.4}, {:.4}]",
                sol.lower_bound.ceil(),
                sol.total_latency,
                m as f64 / sol.total_latency as f64,
                m as f64 / sol.lower_bound.ceil().max(1.0)
            );
        }
    }
    if let Some(v) = b.search {
        outln!("local search (list scheduling, warm start): {v}");
    }
    outln!("bound sum(o): {}", b.floor);
    if let Some(v) = b.volume {
        outln!("bound volume (all at 0): {v}");
    }
    if let Some(v) = b.lemma47 {
        outln!("bound Lemma 4.7 (identical prompts, all at 0): {v:.3}");
    }
    if let Some((v, t)) = b.lp {
        outln!("bound LP relaxation: {v:.3} ({t:.3} s)");
    }
    outln!(
        "schedule:\n  {:>4} {:>8} {:>6} {:>10} {:>8}",
        "id",
        "arrival",
        "start",
        "completion",
        "latency"
    );
    for (i, (r, &k)) in inst.requests.iter().zip(&sol.starts).enumerate() {
        let c = k + r.output_tokens;
        outln!("  {i:>4} {:>8} {k:>6} {c:>10} {:>8}", r.arrival_round, c - r.arrival_round);
    }
}
