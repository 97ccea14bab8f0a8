//! `kvsched sweep SPEC.toml [--out results.jsonl|results.csv] [--shard I/N]`: runs a grid of
//! (workload, scheduler, rate scale, seed) in parallel, appending one row per run; rerunning
//! the same command resumes an interrupted sweep. See `kvsched::experiments::sweep`.
//!
//! `--thresholds [STEPS]` then prints, for each workload and scheduler, the stability threshold
//! measured by bisection on the rate (an interval) next to the fluid lambda_max.
//!
//! Exit 0 when the shard is complete, 2 for a bad spec, shard or results file.

use kvsched::experiments::sweep::{run as run_sweep, RunOptions, Sweep};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Sweep spec (TOML): workloads, schedulers, rate_scales, seeds, requests.
    pub spec: PathBuf,
    /// Results file: `.jsonl` (JSON lines) or `.csv`; appended to, and resumed from.
    #[arg(long, default_value = "results.jsonl")]
    pub out: PathBuf,
    /// Run only the jobs `k` with `k % N == I` (e.g. `--shard $SLURM_ARRAY_TASK_ID/8`).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Stop after appending this many rows (the rest is done by the next run).
    #[arg(long)]
    pub limit: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// After the grid, print each scheduler's measured stability threshold on each workload
    /// (bisection on the rate, this many halvings; probes of the spec's `requests` with its
    /// first seed; `kvsched::experiments::loads`) next to the fluid lambda_max.
    #[arg(long, value_name = "STEPS", num_args = 0..=1, default_missing_value = "6")]
    pub thresholds: Option<u32>,
}

fn print_thresholds(sweep: &Sweep, steps: u32) {
    outln!(
        "# stability thresholds (latency growth <= {}, held <= {} of the requests; one seed)",
        kvsched::experiments::loads::GROWTH_LIMIT,
        kvsched::experiments::loads::HELD_LIMIT
    );
    outln!(
        "{:<28} {:<14} {:>26} {:>16}",
        "workload",
        "scheduler",
        "measured threshold",
        "fluid lambda_max"
    );
    for (w, t) in kvsched::experiments::loads::sweep_thresholds(sweep, steps) {
        match t {
            Ok(t) => outln!(
                "{w:<28} {:<14} {:>26} {:>10.1} req/s",
                t.scheduler,
                t.describe(),
                t.lambda_max_per_s
            ),
            Err(e) => outln!("{w:<28} no fluid lambda_max: {e}"),
        }
    }
}

/// Parses `I/N`.
pub fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("--shard {s:?}: expected I/N with 0 <= I < N");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// Runs the subcommand.
pub fn run(args: &Args) -> ExitCode {
    let shard = match args.shard.as_deref().map(parse_shard).transpose() {
        Ok(s) => s,
        Err(e) => return super::input_error(e),
    };
    let sweep = match Sweep::load(&args.spec) {
        Ok(s) => s,
        Err(e) => return super::input_error(e),
    };
    let opts = RunOptions { shard, limit: args.limit, progress: !args.quiet };
    let t = std::time::Instant::now();
    match run_sweep(&sweep, &args.out, &opts) {
        Ok(r) => {
            let left = r.shard_jobs - r.already_done - r.appended;
            eprintln!(
                "{}: {} jobs in shard, {} already done, {} appended, {} left ({:.1} s, {} threads)",
                args.out.display(),
                r.shard_jobs,
                r.already_done,
                r.appended,
                left,
                t.elapsed().as_secs_f64(),
                rayon::current_num_threads()
            );
            if let Some(steps) = args.thresholds {
                print_thresholds(&sweep, steps);
            }
            ExitCode::SUCCESS
        }
        Err(e) => super::input_error(e),
    }
}
