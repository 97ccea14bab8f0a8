//! One way to describe a simulation run: a [`RunSpec`] built from plain values (workload,
//! calibration, rate scale, amount or trace, predictions, seed, scheduler), validated in one
//! place and executed by [`RunSpec::execute`].
//!
//! `kvsched simulate`, the sweep, `bench --loads` and the Python package all build their runs
//! here, so a flag means the same thing everywhere and every input meets the same checks
//! (README, "Limits"). Errors are bad input, with the CLI's message: they name the file, the
//! line or the flag.
//!
//! ```
//! use kvsched::run::{Requests, RunSpec, WorkloadSource};
//! let spec = RunSpec {
//!     requests: Requests::Count(2_000),
//!     ..RunSpec::new(WorkloadSource::File("workloads/lmsys-like.toml".into()), "vllm-v1")
//! };
//! let run = spec.execute().expect("a valid run");
//! assert!(run.error.is_none());
//! let summary = run.outcome.summary(spec.window);
//! assert_eq!(summary.completed, 2_000);
//! assert!(summary.latency_s.p99 >= summary.latency_s.p50);
//! ```

pub mod hindsight;

use crate::schedulers;
use crate::sim::{simulate, simulate_stream, Check, Outcome, Scheduler, SimError, SimOptions};
use crate::sim::{Stepping, Summary};
use crate::workload::{
    add_predictions, fill_lengths, read_file, read_vidur_csv, Amount, Generator, LengthDist,
    MAX_HELD_REQUESTS, MAX_STREAM_REQUESTS,
};
use kvsched_spec::{Information, Instance, WorkloadFile};
use std::path::{Path, PathBuf};

/// Where a run's workload comes from.
#[derive(Clone, Debug)]
pub enum WorkloadSource {
    /// A workload file (TOML), read and checked by the run.
    File(PathBuf),
    /// A workload already parsed; `name` stands for it in messages (a file name, or what the
    /// caller calls it).
    Parsed {
        /// What names the workload in messages.
        name: String,
        /// The workload, before calibration and rate scale.
        workload: WorkloadFile,
    },
}

impl WorkloadSource {
    /// The name messages use for this workload.
    pub fn name(&self) -> String {
        match self {
            WorkloadSource::File(p) => p.display().to_string(),
            WorkloadSource::Parsed { name, .. } => name.clone(),
        }
    }

    /// The parsed workload (read from its file when it is one).
    pub fn load(&self) -> Result<WorkloadFile, String> {
        match self {
            WorkloadSource::File(p) => {
                WorkloadFile::parse(&self.name(), &read_file(p)?).map_err(|e| e.to_string())
            }
            WorkloadSource::Parsed { workload, .. } => Ok(workload.clone()),
        }
    }
}

/// Which requests a run serves.
#[derive(Clone, Debug)]
pub enum Requests {
    /// This many requests generated from the workload (`--requests`).
    Count(u64),
    /// Requests generated from the workload until this time (`--horizon-s`).
    HorizonS(f64),
    /// A Vidur-format request trace (`--trace-csv`); the workload gives memory and step time.
    TraceCsv(TraceCsv),
}

/// A Vidur-format trace and how to fill the columns it lacks.
#[derive(Clone, Debug)]
pub struct TraceCsv {
    /// The CSV file.
    pub path: PathBuf,
    /// Poisson rate for a trace without `arrived_at` (requests per second; `--rate`).
    pub rate: Option<f64>,
    /// Prompt lengths for a trace without `num_prefill_tokens` (`--prefill-dist`).
    pub prefill_dist: Option<String>,
    /// Output lengths for a trace without `num_decode_tokens` (`--decode-dist`).
    pub decode_dist: Option<String>,
}

/// A simulation run, described by plain values. [`RunSpec::new`] gives the CLI's defaults.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// The workload: memory, step time and classes.
    pub workload: WorkloadSource,
    /// Scheduler name (`kvsched schedulers`).
    pub scheduler: String,
    /// The requests served.
    pub requests: Requests,
    /// Seed of every random stream.
    pub seed: u64,
    /// Every class's rate is multiplied by this factor.
    pub rate_scale: f64,
    /// Predicted output lengths with uniform multiplicative noise of this size (0 = exact).
    /// Without it, a policy that reads predictions gets exact ones.
    pub prediction_noise: Option<f64>,
    /// A calibration file whose step-time model replaces the workload's.
    pub calibration: Option<PathBuf>,
    /// Measurement window: centred fraction of requests by arrival.
    pub window: f64,
    /// Replay every action through the spec as well (slow; pair assertions).
    pub check: bool,
    /// Ask the policy before every iteration (no fast-forward).
    pub every_step: bool,
    /// Generate each request on arrival and keep only those in flight (`--stream`).
    pub stream: bool,
    /// Write a JSON-lines trace of every step to this file.
    pub trace: Option<PathBuf>,
    /// What an evicted request keeps (`None`: the workload's `preemption`, itself `restart` by
    /// default).
    pub preemption: Option<kvsched_spec::Preemption>,
}

/// A finished run: its outcome up to the end, or up to the error that stopped it early.
#[derive(Debug)]
pub struct RunOutput {
    /// Per-request records and counters.
    pub outcome: Outcome,
    /// What stopped the run early (the outcome covers the run until then), if anything.
    pub error: Option<SimError>,
}

/// The longest `--horizon-s`: the end of simulated time.
const MAX_HORIZON_S: f64 = kvsched_spec::units::MAX_TIME_NS as f64 / 1e9;

impl RunSpec {
    /// The run of `scheduler` on `workload` with the CLI's defaults: 10,000 requests, seed 1,
    /// no rate scale, exact predictions where the policy reads them, the middle half of the
    /// requests measured.
    pub fn new(workload: WorkloadSource, scheduler: &str) -> RunSpec {
        RunSpec {
            workload,
            scheduler: scheduler.to_string(),
            requests: Requests::Count(10_000),
            seed: 1,
            rate_scale: 1.0,
            prediction_noise: None,
            calibration: None,
            window: 0.5,
            check: false,
            every_step: false,
            stream: false,
            trace: None,
            preemption: None,
        }
    }

    /// Runs it.
    pub fn execute(&self) -> Result<RunOutput, String> {
        self.execute_wrapped(|s| s)
    }

    /// Runs it with the scheduler passed through `wrap` (the Python package checks for Ctrl-C
    /// there). `Err` is bad input, with the CLI's message; a run that stops early is `Ok` with
    /// its error.
    pub fn execute_wrapped(
        &self,
        wrap: impl FnOnce(Box<dyn Scheduler>) -> Box<dyn Scheduler>,
    ) -> Result<RunOutput, String> {
        self.check_options()?;
        let workload = self.adjusted_workload()?;
        let scheduler = schedulers::for_workload(&self.scheduler, &workload)
            .map_err(|e| format!("--scheduler: {e}"))?;
        let mut scheduler = wrap(scheduler);
        let result = if self.stream {
            self.run_streamed(&workload, scheduler.as_mut())?
        } else {
            let instance = self.instance(&workload, scheduler.information())?;
            let options = self.sim_options(false)?;
            simulate(&instance, scheduler.as_mut(), options)
        };
        Ok(match result {
            Ok(outcome) => RunOutput { outcome, error: None },
            Err(e) => RunOutput { outcome: *e.partial.clone(), error: Some(e) },
        })
    }

    /// The `--json` object of `simulate`: the summary, flattened headline figures, the seed
    /// and the error.
    pub fn summary_json(&self, run: &RunOutput) -> serde_json::Value {
        let summary = run.outcome.summary(self.window);
        let mut v = serde_json::to_value(&summary).expect("summary serializes");
        let flat = serde_json::json!({
            "mean_latency_s": summary.latency_s.mean,
            "p50_latency_s": summary.latency_s.p50,
            "p99_latency_s": summary.latency_s.p99,
            "mean_ttft_s": summary.ttft_s.mean,
            "p99_ttft_s": summary.ttft_s.p99,
            "mean_tpot_s": summary.tpot_s.mean,
            "seed": self.seed,
            "error": run.error.as_ref().map(ToString::to_string),
        });
        v.as_object_mut().expect("object").extend(flat.as_object().expect("object").clone());
        v
    }

    /// The run's summary over its measurement window.
    pub fn summary(&self, run: &RunOutput) -> Summary {
        run.outcome.summary(self.window)
    }

    /// Every numeric option in its range (README, "Limits").
    fn check_options(&self) -> Result<(), String> {
        if !(self.window.is_finite() && self.window > 0.0 && self.window <= 1.0) {
            return Err(format!("--window: expected a fraction in (0, 1], got {}", self.window));
        }
        match &self.requests {
            Requests::Count(n) => {
                let max = if self.stream { MAX_STREAM_REQUESTS } else { MAX_HELD_REQUESTS };
                check_range("--requests", *n, 1..=max).map_err(|e| {
                    if self.stream {
                        e
                    } else {
                        format!("{e} (every request is held in memory; --stream takes more)")
                    }
                })?;
            }
            Requests::HorizonS(h) => {
                if !(h.is_finite() && *h > 0.0 && *h <= MAX_HORIZON_S) {
                    return Err(format!(
                        "--horizon-s: expected seconds in (0, {MAX_HORIZON_S:e}] (2^62 ns), got {h}"
                    ));
                }
            }
            Requests::TraceCsv(_) => {}
        }
        if let Some(eps) = self.prediction_noise {
            if !(0.0..1.0).contains(&eps) {
                return Err(format!("--prediction-noise: expected a number in [0, 1), got {eps}"));
            }
        }
        if let Requests::TraceCsv(TraceCsv { rate: Some(r), .. }) = &self.requests {
            if !(r.is_finite() && *r > 0.0 && *r <= kvsched_spec::workload::MAX_RATE_PER_S) {
                return Err(format!("--rate: expected a positive rate up to 1e9, got {r}"));
            }
        }
        if self.stream {
            let unsupported = [
                (matches!(self.requests, Requests::TraceCsv(_)), "--trace-csv"),
                (matches!(self.requests, Requests::HorizonS(_)), "--horizon-s"),
                (self.check, "--check"),
            ];
            if let Some((_, flag)) = unsupported.iter().find(|(set, _)| *set) {
                return Err(format!("--stream: cannot be combined with {flag}"));
            }
        }
        Ok(())
    }

    /// The workload with the calibration and the rate scale applied, checked.
    fn adjusted_workload(&self) -> Result<WorkloadFile, String> {
        let name = self.workload.name();
        let mut workload = self.workload.load()?;
        if let Some(p) = self.preemption {
            workload.preemption = p;
        }
        adjust_workload(workload, &name, self.calibration.as_deref(), self.rate_scale)
    }

    fn sim_options(&self, streamed: bool) -> Result<SimOptions, String> {
        let trace: Option<Box<dyn std::io::Write>> = match &self.trace {
            Some(p) => match std::fs::File::create(p) {
                Ok(f) if streamed => Some(Box::new(std::io::BufWriter::new(f))),
                Ok(f) => Some(Box::new(f)),
                Err(e) => return Err(format!("{}: cannot create: {e}", p.display())),
            },
            None => None,
        };
        Ok(SimOptions {
            check: if self.check { Check::On } else { Check::Off },
            stepping: if self.every_step { Stepping::EveryStep } else { Stepping::FastForward },
            trace,
            seed: Some(self.seed),
            ..SimOptions::default()
        })
    }

    /// The requests of a held (not streamed) run, with predictions where the policy reads
    /// them, as a validated instance.
    fn instance(
        &self,
        workload: &WorkloadFile,
        information: Information,
    ) -> Result<Instance, String> {
        let mut requests = match &self.requests {
            Requests::TraceCsv(t) => {
                let text = read_file(&t.path)?;
                let name = t.path.display().to_string();
                let mut r =
                    read_vidur_csv(&name, &text, t.rate, self.seed).map_err(|e| e.to_string())?;
                fill_trace_lengths(t, &mut r, self.seed)?;
                r
            }
            Requests::Count(_) | Requests::HorizonS(_) => {
                let amount = match self.requests {
                    Requests::HorizonS(h) => Amount::HorizonS(h),
                    Requests::Count(n) => Amount::Requests(n),
                    Requests::TraceCsv(_) => unreachable!("matched above"),
                };
                let mut g = Generator::new(workload, amount, self.seed)
                    .with_max_requests(MAX_HELD_REQUESTS);
                let requests: Vec<_> = g.by_ref().collect();
                if let Some(e) = g.error() {
                    return Err(format!("{}: {e}", self.workload.name()));
                }
                requests
            }
        };
        if let Some(eps) = self.prediction_noise {
            add_predictions(&mut requests, eps, self.seed);
        }
        crate::workload::default_predictions(information, &mut requests);
        let config = workload.model_config(Information::Hidden);
        let instance = Instance { config, requests };
        if let Some(problem) = instance.validate().into_iter().next() {
            let source = match &self.requests {
                Requests::TraceCsv(t) => t.path.display().to_string(),
                _ => self.workload.name(),
            };
            return Err(format!("{source}: {problem}"));
        }
        Ok(instance)
    }

    /// `--stream`: the same run, its requests generated on arrival and summarized on
    /// retirement.
    fn run_streamed(
        &self,
        workload: &WorkloadFile,
        scheduler: &mut dyn Scheduler,
    ) -> Result<Result<Outcome, SimError>, String> {
        let Requests::Count(n) = self.requests else {
            unreachable!("check_options refuses --stream without a request count")
        };
        let options = self.sim_options(true)?;
        let mut generator = Generator::new(workload, Amount::Requests(n), self.seed);
        let mut noise =
            self.prediction_noise.map(|eps| (eps, crate::workload::prediction_stream(self.seed)));
        let information = scheduler.information();
        let mut source = generator.by_ref().map(|mut r| {
            if let Some((eps, rng)) = noise.as_mut() {
                crate::workload::add_prediction(&mut r, *eps, rng);
            }
            crate::workload::default_predictions(information, std::slice::from_mut(&mut r));
            r
        });
        let config = workload.model_config(Information::Hidden);
        let result = simulate_stream(&config, n, &mut source, scheduler, options, self.window);
        drop(source);
        if let Some(e) = generator.error() {
            return Err(format!("{}: {e}", self.workload.name()));
        }
        Ok(result)
    }
}

fn fill_trace_lengths(
    t: &TraceCsv,
    requests: &mut [kvsched_spec::Request],
    seed: u64,
) -> Result<(), String> {
    let parse = |flag: &str, v: &Option<String>| {
        v.as_deref().map(LengthDist::parse).transpose().map_err(|e| format!("{flag}: {e}"))
    };
    let prefill = parse("--prefill-dist", &t.prefill_dist)?;
    let decode = parse("--decode-dist", &t.decode_dist)?;
    let zero = kvsched_spec::Tokens::ZERO;
    if prefill.is_none() && requests.iter().any(|r| r.prompt_tokens == zero) {
        return Err("the trace has no num_prefill_tokens column: give --prefill-dist".into());
    }
    if decode.is_none() && requests.iter().any(|r| r.output_tokens == zero) {
        return Err("the trace has no num_decode_tokens column: give --decode-dist".into());
    }
    fill_lengths(requests, prefill.as_ref(), decode.as_ref(), seed);
    Ok(())
}

/// Reads and validates a workload file, then applies `calibration` and `rate_scale` and
/// validates the result again: the one validation path of `fluid`, `simulate` and `bench`.
pub fn load_workload(
    path: &Path,
    calibration: Option<&Path>,
    rate_scale: f64,
) -> Result<WorkloadFile, String> {
    let source = WorkloadSource::File(path.to_path_buf());
    adjust_workload(source.load()?, &source.name(), calibration, rate_scale)
}

/// A parsed workload (`name` is its file, or what stands for it) with the calibration's step
/// time and the rate scale applied, then checked: the one validation `simulate`, `fluid` and
/// the Python package share.
pub fn adjust_workload(
    mut workload: WorkloadFile,
    name: &str,
    calibration: Option<&Path>,
    rate_scale: f64,
) -> Result<WorkloadFile, String> {
    use kvsched_spec::calibration::Calibration;
    if let Some(cal) = calibration {
        let cpath = cal.display().to_string();
        let c = Calibration::parse(&cpath, &read_file(cal)?).map_err(|e| e.to_string())?;
        workload.step_time = c.step_time;
    }
    if !(rate_scale.is_finite() && rate_scale > 0.0) {
        return Err(format!("--rate-scale: expected a positive number, got {rate_scale}"));
    }
    for c in &mut workload.classes {
        c.rate_per_s *= rate_scale;
    }
    workload.check(name).map_err(|e| {
        if rate_scale == 1.0 {
            e.to_string()
        } else {
            format!("{e} (after --rate-scale {rate_scale})")
        }
    })?;
    Ok(workload)
}

/// The fluid equilibrium of `workload` (named `name` in the error), after the same validation
/// as a simulation ([`adjust_workload`]).
pub fn fluid(
    name: &str,
    workload: &WorkloadFile,
) -> Result<kvsched_spec::fluid::FluidSolution, String> {
    let workload = adjust_workload(workload.clone(), name, None, 1.0)?;
    kvsched_spec::fluid::FluidSolution::from_workload(&workload).map_err(|e| format!("{name}: {e}"))
}

/// Checks that a numeric option lies in `range`, with an error naming the flag.
pub fn check_range<T: PartialOrd + std::fmt::Display>(
    flag: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, String> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{flag}: expected a value in [{}, {}], got {value}",
            range.start(),
            range.end()
        ))
    }
}

/// Parses a `--preemption` value: `restart` (the papers' rule) or `keep-generated` (vLLM's
/// recompute preemption; `keep_generated` is accepted too).
pub fn parse_preemption(value: &str) -> Result<kvsched_spec::Preemption, String> {
    match value {
        "restart" => Ok(kvsched_spec::Preemption::Restart),
        "keep-generated" | "keep_generated" => Ok(kvsched_spec::Preemption::KeepGenerated),
        o => Err(format!("--preemption: expected restart or keep-generated, got {o:?}")),
    }
}
