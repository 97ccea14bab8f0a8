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

use kvsched::opt::ip::IpSolution;
use kvsched::run::hindsight::{load_instance, to_json, Bounds, Method, OptSpec};
use kvsched_spec::rounds::RoundInstance;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments.
#[derive(clap::Args, Debug)]
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

impl Args {
    /// The solve these flags describe.
    pub fn spec(&self) -> Result<OptSpec, String> {
        let method = self.method.as_deref().map(Method::parse).transpose()?;
        Ok(OptSpec {
            lp: self.lp,
            time_limit_s: self.time_limit_s,
            method,
            search_iters: self.search_iters,
            seed: self.seed,
            interrupt: None,
        })
    }
}

/// Runs the subcommand.
pub fn run(args: &Args) -> ExitCode {
    let spec = match args.spec() {
        Ok(s) => s,
        Err(e) => return super::input_error(e),
    };
    let inst = match spec.check().and_then(|()| load_instance(&args.instance)) {
        Ok(i) => i,
        Err(e) => return super::input_error(e),
    };
    let answered = Arc::new(AtomicBool::new(false));
    let spec = OptSpec { interrupt: Some(catch_ctrl_c(&answered)), ..spec };
    let solved = match spec.solve(&inst, &args.instance.display().to_string()) {
        Ok(s) => s,
        Err(e) => return super::input_error(e),
    };
    answered.store(true, Ordering::Relaxed);
    if args.json {
        outln!("{}", to_json(&inst, &solved));
    } else {
        print_text(&args.instance, &inst, &solved.sol, &solved.bounds, solved.method.name());
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
