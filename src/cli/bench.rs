//! `kvsched bench [--max-requests N]`: the simulator's scaling table.
//!
//! Two sweeps, each run once per point, single-threaded, wall time from the OS clock, streamed
//! runs (`crate::sim::simulate_stream`: requests generated on arrival, so the wall time
//! includes generating them and memory follows the requests in flight):
//! - requests: 10^4 .. `--max-requests` of the lmsys-like mix (`workloads/lmsys-like.toml`,
//!   embedded) at half of its fluid `lambda_max`, under vLLM v0 and Sarathi;
//! - output length: one class with a 60-token prompt and outputs 20 .. 2000 tokens, 20,000
//!   requests at half of the class's fluid `lambda_max`, under vLLM v0.
//!
//! Under fast-forward the cost should grow linearly in requests and stay flat in output length.
//! Timing belongs here, in a benchmark, not in tests.

use crate::schedulers::by_name;
use crate::sim::{simulate_stream, SimOptions};
use crate::workload::{Amount, Generator};
use kvsched_spec::fluid::FluidSolution;
use kvsched_spec::{Information, WorkloadFile};
use std::process::ExitCode;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Largest request count of the request sweep (a power of ten).
    #[arg(long, default_value_t = 10_000_000)]
    pub max_requests: u64,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

const LMSYS: &str = include_str!("../../workloads/lmsys-like.toml");

fn at_half_lambda_max(mut w: WorkloadFile) -> Result<WorkloadFile, String> {
    let sol = FluidSolution::from_workload(&w).map_err(|e| e.to_string())?;
    let scale = 0.5 * sol.lambda_max_per_s / w.total_rate_per_s();
    for c in &mut w.classes {
        c.rate_per_s *= scale;
    }
    Ok(w)
}

/// Wall seconds, iterations simulated and the peak number of requests held.
fn time_run(
    w: &WorkloadFile,
    scheduler: &str,
    n: u64,
    seed: u64,
) -> Result<(f64, u64, u64), String> {
    let config = w.model_config(Information::Hidden);
    let mut s = by_name(scheduler).ok_or("unknown scheduler")?;
    let start = std::time::Instant::now();
    let mut source = Generator::new(w, Amount::Requests(n), seed);
    let out = simulate_stream(&config, n, &mut source, s.as_mut(), SimOptions::default(), 0.5)
        .map_err(|e| e.to_string())?;
    Ok((start.elapsed().as_secs_f64(), out.steps, out.peak_window_requests))
}

fn run_inner(args: &Args) -> Result<(), String> {
    let parsed = WorkloadFile::parse("lmsys-like.toml", LMSYS).map_err(|e| e.to_string())?;
    let lmsys = at_half_lambda_max(parsed)?;
    outln!("# requests sweep: lmsys-like mix at 0.5 lambda_max, seed {}", args.seed);
    let cols = ("scheduler", "requests", "wall_s", "ns/request", "iterations", "peak_held");
    outln!(
        "{:<10} {:<10} {:>10} {:>12} {:>12} {:>10}",
        cols.0,
        cols.1,
        cols.2,
        cols.3,
        cols.4,
        cols.5
    );
    let mut n = 10_000u64;
    while n <= args.max_requests {
        for s in ["vllm-v0", "sarathi"] {
            let (wall, steps, held) = time_run(&lmsys, s, n, args.seed)?;
            let per = wall * 1e9 / n as f64;
            outln!("{s:<10} {n:<10} {wall:>10.3} {per:>12.0} {steps:>12} {held:>10}");
        }
        n *= 10;
    }
    outln!("\n# output-length sweep: prompt 60, 20,000 requests at 0.5 lambda_max, vllm-v0");
    outln!("{:<10} {:>10} {:>12} {:>12}", "output", "wall_s", "ns/request", "iterations");
    for out in [20u64, 50, 200, 500, 1000, 2000] {
        let mut w = lmsys.clone();
        w.classes.truncate(1);
        w.classes[0].output_tokens = out;
        w.classes[0].rate_per_s = 1.0;
        let w = at_half_lambda_max(w)?;
        let (wall, steps, _) = time_run(&w, "vllm-v0", 20_000, args.seed)?;
        outln!("{out:<10} {wall:>10.3} {:>12.0} {steps:>12}", wall * 1e9 / 20_000.0);
    }
    Ok(())
}

/// Runs the subcommand.
pub fn run(args: &Args) -> ExitCode {
    let max = crate::workload::MAX_STREAM_REQUESTS;
    if let Err(e) = super::check_range("--max-requests", args.max_requests, 10_000..=max) {
        return super::input_error(e);
    }
    match run_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::input_error(e),
    }
}
