//! `kvsched simulate WORKLOAD.toml --scheduler NAME --requests N --seed S [--json]`.
//!
//! Generates a seeded request stream from the workload file (or replays a Vidur-format CSV
//! trace with `--trace-csv`), runs one scheduler, and prints the summary. The measurement
//! window is the middle 50% of requests by arrival unless `--window` says otherwise.

use super::input_error;
use kvsched::run::{Requests, RunOutput, RunSpec, TraceCsv, WorkloadSource};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Workload file (TOML): memory, step time and classes.
    pub workload: PathBuf,
    /// Scheduler name (see `kvsched schedulers`).
    #[arg(long, default_value = "vllm-v0")]
    pub scheduler: String,
    /// Number of requests to generate.
    #[arg(long, default_value_t = 10_000)]
    pub requests: u64,
    /// Generate arrivals up to this time instead of a request count (seconds).
    #[arg(long)]
    pub horizon_s: Option<f64>,
    /// Seed of every random stream.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Multiply every class's rate by this factor.
    #[arg(long, default_value_t = 1.0)]
    pub rate_scale: f64,
    /// Give predicted output lengths with uniform multiplicative noise of this size (0 = exact).
    /// A policy that reads predictions (MC-SF, MC-Benchmark) gets exact ones without it.
    #[arg(long)]
    pub prediction_noise: Option<f64>,
    /// Replay a Vidur-format request trace (CSV) instead of generating requests.
    #[arg(long)]
    pub trace_csv: Option<PathBuf>,
    /// Poisson rate for a trace without `arrived_at` (requests per second).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Prompt lengths for a trace without `num_prefill_tokens`:
    /// `lognormal:MU,SIGMA,MAX` or `empirical:TOKENS:WEIGHT,...`.
    #[arg(long)]
    pub prefill_dist: Option<String>,
    /// Output lengths for a trace without `num_decode_tokens` (same forms as --prefill-dist).
    #[arg(long)]
    pub decode_dist: Option<String>,
    /// Replace the workload's step-time model with a calibration file's.
    #[arg(long)]
    pub calibration: Option<PathBuf>,
    /// Write a JSON-lines trace of every step to this file.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Measurement window: centred fraction of requests by arrival.
    #[arg(long, default_value_t = 0.5)]
    pub window: f64,
    /// What an evicted request keeps: `restart` (the papers' rule) or `keep-generated` (vLLM's
    /// recompute preemption). Default: the workload file's `preemption` (itself `restart` by
    /// default).
    #[arg(long)]
    pub preemption: Option<String>,
    /// Replay every action through the spec as well (slow; pair assertions).
    #[arg(long)]
    pub check: bool,
    /// Ask the policy before every iteration (no fast-forward).
    #[arg(long)]
    pub every_step: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Stream the requests: generate each on arrival and keep only the requests in flight and
    /// the window's statistics (percentiles within 0.1 %), so that memory does not grow with
    /// `--requests`. Needs a workload-generated run (`--requests`; not `--trace-csv`,
    /// `--horizon-s` or `--check`).
    #[arg(long)]
    pub stream: bool,
}

impl Args {
    /// The run these flags describe.
    pub fn spec(&self) -> RunSpec {
        let requests = match (&self.trace_csv, self.horizon_s) {
            (Some(path), _) => Requests::TraceCsv(TraceCsv {
                path: path.clone(),
                rate: self.rate,
                prefill_dist: self.prefill_dist.clone(),
                decode_dist: self.decode_dist.clone(),
            }),
            (None, Some(h)) => Requests::HorizonS(h),
            (None, None) => Requests::Count(self.requests),
        };
        RunSpec {
            scheduler: self.scheduler.clone(),
            requests,
            seed: self.seed,
            rate_scale: self.rate_scale,
            prediction_noise: self.prediction_noise,
            calibration: self.calibration.clone(),
            window: self.window,
            check: self.check,
            every_step: self.every_step,
            stream: self.stream,
            trace: self.trace.clone(),
            // Checked by `run` (an invalid value never reaches here from the CLI).
            preemption: self.preemption.as_deref().and_then(|p| super::parse_preemption(p).ok()),
            ..RunSpec::new(WorkloadSource::File(self.workload.clone()), &self.scheduler)
        }
    }
}

/// Runs the subcommand.
pub fn run(args: &Args) -> ExitCode {
    if let Some(r) = args.rate.filter(|_| args.trace_csv.is_none()) {
        // Meaningless without a trace, but still checked (README, "Limits").
        if !(r.is_finite() && r > 0.0 && r <= kvsched_spec::workload::MAX_RATE_PER_S) {
            return input_error(format!("--rate: expected a positive rate up to 1e9, got {r}"));
        }
    }
    if let Some(Err(e)) = args.preemption.as_deref().map(super::parse_preemption) {
        return input_error(e);
    }
    let spec = args.spec();
    match spec.execute() {
        Ok(run) => report(args, &spec, run),
        Err(e) => input_error(e),
    }
}

fn report(args: &Args, spec: &RunSpec, run: RunOutput) -> ExitCode {
    if args.json {
        let v = spec.summary_json(&run);
        outln!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        print_table(&spec.summary(&run), args.seed);
    }
    match run.error {
        Some(e) => {
            eprintln!("error: {e} (results above cover the run until then)");
            ExitCode::from(1)
        }
        None => ExitCode::SUCCESS,
    }
}

fn print_table(s: &kvsched::sim::Summary, seed: u64) {
    outln!("scheduler            {}   (seed {seed})", s.scheduler);
    outln!(
        "requests             {} ({} completed, {:.1}%)",
        s.requests,
        s.completed,
        100.0 * s.completion_rate
    );
    outln!("window               middle {:.0}% of requests by arrival", 100.0 * s.window);
    outln!("                     mean      p50       p90       p99");
    for (name, d) in
        [("latency (s)", &s.latency_s), ("TTFT (s)", &s.ttft_s), ("TPOT (s)", &s.tpot_s)]
    {
        outln!("{name:<20} {:<9.4} {:<9.4} {:<9.4} {:<9.4}", d.mean, d.p50, d.p90, d.p99);
    }
    outln!(
        "throughput           {:.1} tokens/s, {:.3} requests/s",
        s.throughput_tokens_per_s,
        s.completions_per_s
    );
    outln!("evictions            {} (restart rate {:.2}%)", s.evictions, 100.0 * s.restart_rate);
    outln!("KV utilisation       {:.1}% (time average)", 100.0 * s.kv_utilization_mean);
    outln!("simulated time       {:.1} s in {} iterations", s.simulated_time_s, s.steps);
}
