//! `kvsched simulate WORKLOAD.toml --scheduler NAME --requests N --seed S [--json]`.
//!
//! Generates a seeded request stream from the workload file (or replays a Vidur-format CSV
//! trace with `--trace-csv`), runs one scheduler, and prints the summary. The measurement
//! window is the middle 50% of requests by arrival unless `--window` says otherwise.

use super::{check_range, MAX_HELD_REQUESTS};
use super::{input_error, read_file};
use crate::schedulers;
use crate::sim::Scheduler;
use crate::sim::{simulate, Check, Outcome, SimError, SimOptions, Stepping};
use crate::workload::{
    add_predictions, fill_lengths, read_vidur_csv, Amount, Generator, LengthDist,
    MAX_STREAM_REQUESTS,
};
use kvsched_spec::{Instance, WorkloadFile};
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

/// Reads and validates the workload file `args` names.
pub fn read_workload(args: &Args) -> Result<WorkloadFile, String> {
    let path = args.workload.display().to_string();
    WorkloadFile::parse(&path, &read_file(&args.workload)?).map_err(|e| e.to_string())
}

/// A run's outcome (up to the error, when one ended it early) and that error.
pub type RunResult = (Outcome, Option<SimError>);

fn load_workload(
    args: &Args,
    load: impl FnOnce() -> Result<WorkloadFile, String>,
) -> Result<WorkloadFile, String> {
    let name = args.workload.display().to_string();
    super::adjust_workload(load()?, &name, args.calibration.as_deref(), args.rate_scale)
}

/// Every numeric option in its range (README, "Limits").
fn check_options(args: &Args) -> Result<(), String> {
    if !(args.window.is_finite() && args.window > 0.0 && args.window <= 1.0) {
        return Err(format!("--window: expected a fraction in (0, 1], got {}", args.window));
    }
    let max = if args.stream { MAX_STREAM_REQUESTS } else { MAX_HELD_REQUESTS };
    if args.trace_csv.is_none() && args.horizon_s.is_none() {
        check_range("--requests", args.requests, 1..=max).map_err(|e| {
            if args.stream {
                e
            } else {
                format!("{e} (every request is held in memory; --stream takes more)")
            }
        })?;
    }
    if let Some(h) = args.horizon_s {
        if !(h.is_finite() && h > 0.0 && h <= MAX_HORIZON_S) {
            return Err(format!(
                "--horizon-s: expected seconds in (0, {MAX_HORIZON_S:e}] (2^62 ns), got {h}"
            ));
        }
    }
    if let Some(eps) = args.prediction_noise {
        if !(0.0..1.0).contains(&eps) {
            return Err(format!("--prediction-noise: expected a number in [0, 1), got {eps}"));
        }
    }
    if let Some(r) = args.rate {
        if !(r.is_finite() && r > 0.0 && r <= kvsched_spec::workload::MAX_RATE_PER_S) {
            return Err(format!("--rate: expected a positive rate up to 1e9, got {r}"));
        }
    }
    Ok(())
}

/// The longest `--horizon-s`: the end of simulated time.
const MAX_HORIZON_S: f64 = kvsched_spec::units::MAX_TIME_NS as f64 / 1e9;

fn load_instance(
    args: &Args,
    load: impl FnOnce() -> Result<WorkloadFile, String>,
) -> Result<(Instance, WorkloadFile), String> {
    let workload = load_workload(args, load)?;
    let mut requests = match &args.trace_csv {
        Some(csv) => {
            let text = read_file(csv)?;
            {
                let mut r = read_vidur_csv(&csv.display().to_string(), &text, args.rate, args.seed)
                    .map_err(|e| e.to_string())?;
                fill_trace_lengths(args, &mut r)?;
                r
            }
        }
        None => {
            let amount = match args.horizon_s {
                Some(h) => Amount::HorizonS(h),
                None => Amount::Requests(args.requests),
            };
            let mut g =
                Generator::new(&workload, amount, args.seed).with_max_requests(MAX_HELD_REQUESTS);
            let requests: Vec<_> = g.by_ref().collect();
            if let Some(e) = g.error() {
                return Err(format!("{}: {e}", args.workload.display()));
            }
            requests
        }
    };
    if let Some(eps) = args.prediction_noise {
        add_predictions(&mut requests, eps, args.seed);
    }
    crate::workload::default_predictions(information_of(&args.scheduler), &mut requests);
    let config = workload.model_config(kvsched_spec::Information::Hidden);
    let instance = Instance { config, requests };
    if let Some(problem) = instance.validate().into_iter().next() {
        let source = args.trace_csv.as_ref().unwrap_or(&args.workload);
        return Err(format!("{}: {problem}", source.display()));
    }
    Ok((instance, workload))
}

/// The information set of the named scheduler (`Hidden` for an unknown name, which is
/// reported later).
fn information_of(name: &str) -> kvsched_spec::Information {
    schedulers::by_name(name).map_or(kvsched_spec::Information::Hidden, |s| s.information())
}

fn fill_trace_lengths(args: &Args, requests: &mut [kvsched_spec::Request]) -> Result<(), String> {
    let parse = |flag: &str, v: &Option<String>| {
        v.as_deref().map(LengthDist::parse).transpose().map_err(|e| format!("{flag}: {e}"))
    };
    let prefill = parse("--prefill-dist", &args.prefill_dist)?;
    let decode = parse("--decode-dist", &args.decode_dist)?;
    let zero = kvsched_spec::Tokens::ZERO;
    if prefill.is_none() && requests.iter().any(|r| r.prompt_tokens == zero) {
        return Err("the trace has no num_prefill_tokens column: give --prefill-dist".into());
    }
    if decode.is_none() && requests.iter().any(|r| r.output_tokens == zero) {
        return Err("the trace has no num_decode_tokens column: give --decode-dist".into());
    }
    fill_lengths(requests, prefill.as_ref(), decode.as_ref(), args.seed);
    Ok(())
}

/// Runs the subcommand.
pub fn run(args: &Args) -> ExitCode {
    match execute(args, || read_workload(args), |s| s) {
        Ok((outcome, error)) => report(args, &outcome, error),
        Err(e) => input_error(e),
    }
}

/// The run `args` describe, on the workload `load` returns (the file `args` names, through
/// [`read_workload`], or one built otherwise: the Python package passes a dict), with the
/// scheduler passed through `wrap` (the Python package checks for Ctrl-C there). An error is
/// bad input, with the CLI's message.
pub fn execute(
    args: &Args,
    load: impl FnOnce() -> Result<WorkloadFile, String>,
    wrap: impl FnOnce(Box<dyn Scheduler>) -> Box<dyn Scheduler>,
) -> Result<RunResult, String> {
    check_options(args)?;
    if args.stream {
        return execute_streamed(args, load, wrap);
    }
    let (instance, workload) = load_instance(args, load)?;
    let scheduler = match schedulers::for_workload(&args.scheduler, &workload) {
        Ok(s) => s,
        Err(e) => return Err(format!("--scheduler: {e}")),
    };
    let mut scheduler = wrap(scheduler);
    let trace: Option<Box<dyn std::io::Write>> = match &args.trace {
        Some(p) => match std::fs::File::create(p) {
            Ok(f) => Some(Box::new(f)),
            Err(e) => return Err(format!("{}: cannot create: {e}", p.display())),
        },
        None => None,
    };
    let options = SimOptions {
        check: if args.check { Check::On } else { Check::Off },
        stepping: if args.every_step { Stepping::EveryStep } else { Stepping::FastForward },
        trace,
        seed: Some(args.seed),
        ..SimOptions::default()
    };
    Ok(match simulate(&instance, scheduler.as_mut(), options) {
        Ok(o) => (o, None),
        Err(e) => (*e.partial.clone(), Some(e)),
    })
}

/// `--stream`: the same run, its requests generated on arrival and summarized on retirement.
fn execute_streamed(
    args: &Args,
    load: impl FnOnce() -> Result<WorkloadFile, String>,
    wrap: impl FnOnce(Box<dyn Scheduler>) -> Box<dyn Scheduler>,
) -> Result<RunResult, String> {
    let unsupported = [
        (args.trace_csv.is_some(), "--trace-csv"),
        (args.horizon_s.is_some(), "--horizon-s"),
        (args.check, "--check"),
    ];
    if let Some((_, flag)) = unsupported.iter().find(|(set, _)| *set) {
        return Err(format!("--stream: cannot be combined with {flag}"));
    }
    let workload = load_workload(args, load)?;
    let scheduler = match schedulers::for_workload(&args.scheduler, &workload) {
        Ok(s) => s,
        Err(e) => return Err(format!("--scheduler: {e}")),
    };
    let mut scheduler = wrap(scheduler);
    let trace: Option<Box<dyn std::io::Write>> = match &args.trace {
        Some(p) => match std::fs::File::create(p) {
            Ok(f) => Some(Box::new(std::io::BufWriter::new(f))),
            Err(e) => return Err(format!("{}: cannot create: {e}", p.display())),
        },
        None => None,
    };
    let options = SimOptions {
        stepping: if args.every_step { Stepping::EveryStep } else { Stepping::FastForward },
        trace,
        seed: Some(args.seed),
        ..SimOptions::default()
    };
    let mut generator = Generator::new(&workload, Amount::Requests(args.requests), args.seed);
    let mut noise =
        args.prediction_noise.map(|eps| (eps, crate::workload::prediction_stream(args.seed)));
    let information = scheduler.information();
    let mut source = generator.by_ref().map(|mut r| {
        if let Some((eps, rng)) = noise.as_mut() {
            crate::workload::add_prediction(&mut r, *eps, rng);
        }
        crate::workload::default_predictions(information, std::slice::from_mut(&mut r));
        r
    });
    let config = workload.model_config(kvsched_spec::Information::Hidden);
    let result = crate::sim::simulate_stream(
        &config,
        args.requests,
        &mut source,
        scheduler.as_mut(),
        options,
        args.window,
    );
    drop(source);
    if let Some(e) = generator.error() {
        return Err(format!("{}: {e}", args.workload.display()));
    }
    Ok(match result {
        Ok(o) => (o, None),
        Err(e) => (*e.partial.clone(), Some(e)),
    })
}

fn report(
    args: &Args,
    outcome: &crate::sim::Outcome,
    error: Option<crate::sim::SimError>,
) -> ExitCode {
    if args.json {
        let v = summary_json(args, outcome, error.as_ref());
        outln!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        print_table(&outcome.summary(args.window), args.seed);
    }
    match error {
        Some(e) => {
            eprintln!("error: {e} (results above cover the run until then)");
            ExitCode::from(1)
        }
        None => ExitCode::SUCCESS,
    }
}

/// The `--json` object: the summary, flattened headline figures, the seed and the error.
pub fn summary_json(args: &Args, outcome: &Outcome, error: Option<&SimError>) -> serde_json::Value {
    let summary = outcome.summary(args.window);
    let mut v = serde_json::to_value(&summary).expect("summary serializes");
    let flat = serde_json::json!({
        "mean_latency_s": summary.latency_s.mean,
        "p50_latency_s": summary.latency_s.p50,
        "p99_latency_s": summary.latency_s.p99,
        "mean_ttft_s": summary.ttft_s.mean,
        "p99_ttft_s": summary.ttft_s.p99,
        "mean_tpot_s": summary.tpot_s.mean,
        "seed": args.seed,
        "error": error.map(|e| e.to_string()),
    });
    v.as_object_mut().expect("object").extend(flat.as_object().expect("object").clone());
    v
}

fn print_table(s: &crate::sim::Summary, seed: u64) {
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
