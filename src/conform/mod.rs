//! Conformance testing of schedulers: in-process (Rust) or in another process, in any
//! language, over the wire protocol of `spec/PROTOCOL.md` (its messages and client side are
//! [`crate::protocol`]; this module judges).
//!
//! [`run_battery`] runs a [`Candidate`] through the scenario battery ([`battery`]), judges
//! every run ([`run`]: engine validation, the independent trace checker, liveness), scores it
//! against the fluid bound and the built-in schedulers on the same seeds, and shrinks the first
//! failure to a minimal instance ([`shrink`]) saved as a [`Replay`]. [`check_scheduler`] is the
//! entry point for a third-party crate's `#[test]`:
//!
//! ```no_run
//! use kvsched::conform::{check_scheduler, ConformConfig};
//! let report = check_scheduler(|| kvsched::schedulers::by_name("vllm-v0").unwrap(),
//!     &ConformConfig::quick());
//! assert!(report.conforms, "{}", report.summary());
//! ```

pub mod battery;
pub mod external;
pub mod latch;
pub mod options;
pub mod run;
pub mod shrink;
pub mod verdict;

pub use external::{ExternalCommand, ExternalOptions};
pub use options::parse_information;
pub use verdict::{Verdict, VerdictCode};

use crate::sim::Outcome;
use crate::sim::{Plan, Scheduler, View};
use battery::Scenario;
use kvsched_spec::fluid::FluidSolution;
use kvsched_spec::{Information, Instance, ModelConfig, Preemption};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// How a run ended, told to the scheduler.
pub enum Finish<'a> {
    /// Every request completed (or the run ended normally).
    Ended {
        /// Final time (ns).
        t: u64,
        /// Completed requests.
        completed: u64,
    },
    /// The harness rejected a decision or a message.
    Rejected(&'a Verdict),
    /// Nothing to say.
    Abandoned,
}

/// A scheduler started for one run.
pub trait Runnable: Scheduler {
    /// The fault recorded during the run, if any (taken: a second call returns `None`).
    fn take_fault(&mut self) -> Option<Verdict> {
        None
    }
    /// Decisions answered so far.
    fn decisions(&self) -> u64 {
        0
    }
    /// Wall time spent talking to the scheduler (zero in-process).
    fn wire_time(&self) -> Duration {
        Duration::ZERO
    }
    /// Ends the run.
    fn finish(&mut self, _how: Finish<'_>) {}
}

/// Something that can be started once per run: an external command, or a Rust factory.
pub trait Candidate {
    /// How it is shown in reports.
    fn label(&self) -> String;
    /// Starts a fresh scheduler for a run of `scenario` under `config` (whose `information` is
    /// the set offered).
    fn start(&self, scenario: &str, config: &ModelConfig) -> Result<Box<dyn Runnable>, Verdict>;
}

struct Counted {
    inner: Box<dyn Scheduler>,
    decisions: u64,
}

impl Scheduler for Counted {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn information(&self) -> Information {
        self.inner.information()
    }
    fn decide(&mut self, view: &View<'_>) -> Plan {
        self.decisions += 1;
        self.inner.decide(view)
    }
}

impl Runnable for Counted {
    fn decisions(&self) -> u64 {
        self.decisions
    }
}

/// A Rust scheduler factory as a [`Candidate`].
pub struct InProcess<F: Fn() -> Box<dyn Scheduler>> {
    /// The factory.
    pub factory: F,
}

impl<F: Fn() -> Box<dyn Scheduler>> Candidate for InProcess<F> {
    fn label(&self) -> String {
        format!("{} (in-process)", (self.factory)().name())
    }
    fn start(&self, _: &str, _: &ModelConfig) -> Result<Box<dyn Runnable>, Verdict> {
        Ok(Box::new(Counted { inner: (self.factory)(), decisions: 0 }))
    }
}

/// What the battery runs and how it judges.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConformConfig {
    /// Requests per scenario.
    pub requests: usize,
    /// Seeds; every scenario runs once per seed.
    pub seeds: Vec<u64>,
    /// Scenario names to run (empty: all of [`battery::SCENARIOS`]).
    pub scenarios: Vec<String>,
    /// The information set offered to the scheduler.
    pub information: Information,
    /// What an evicted request keeps, in every scenario (omitted from reports when
    /// `restart`, the default).
    #[serde(default, skip_serializing_if = "Preemption::is_restart")]
    pub preemption: Preemption,
    /// Liveness bound: total time a request that was passed over may wait, fitting in free
    /// memory, while the server idles (ns).
    pub starvation_bound_ns: u64,
    /// Liveness bound: times a request may be passed over (a later arrival admitted while it
    /// waited and fit in the memory left free) before its waiting time counts as starvation.
    pub starvation_passes: u64,
    /// Built-in schedulers to score against (empty: none).
    pub baselines: Vec<String>,
    /// Shrink the first failure.
    pub shrink: bool,
    /// Shrinking budget: runs.
    pub shrink_max_runs: usize,
    /// Shrinking budget: wall time.
    #[serde(with = "secs")]
    pub shrink_max_time: Duration,
}

mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Ok(Duration::try_from_secs_f64(v).unwrap_or(Duration::from_secs(60)))
    }
}

impl Default for ConformConfig {
    fn default() -> Self {
        ConformConfig {
            requests: 200,
            seeds: vec![1],
            scenarios: vec![],
            information: Information::Hidden,
            preemption: Preemption::Restart,
            starvation_bound_ns: 1_000_000_000,
            starvation_passes: 0,
            baselines: crate::schedulers::catalog().iter().map(|e| e.name.to_string()).collect(),
            shrink: true,
            shrink_max_runs: 400,
            shrink_max_time: Duration::from_secs(60),
        }
    }
}

impl ConformConfig {
    /// A fast configuration for unit tests: 60 requests, one seed, no baselines.
    pub fn quick() -> ConformConfig {
        ConformConfig { requests: 60, baselines: vec![], ..ConformConfig::default() }
    }
}

/// Metrics of a passing run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Metrics {
    /// Mean end-to-end latency over all requests (s).
    pub mean_latency_s: f64,
    /// Mean time to first token (s).
    pub mean_ttft_s: f64,
    /// Output tokens per simulated second.
    pub throughput_tokens_per_s: f64,
    /// Evictions.
    pub evictions: u64,
    /// Iterations.
    pub steps: u64,
    /// Simulated time (s).
    pub makespan_s: f64,
}

impl Metrics {
    /// From an outcome.
    pub fn of(o: &Outcome) -> Metrics {
        let done: Vec<_> = o.requests.iter().filter(|r| r.finish_ns.is_some()).collect();
        let n = done.len().max(1) as f64;
        let lat = |r: &&crate::sim::RequestRecord, t: Option<kvsched_spec::Nanos>| {
            t.map_or(0.0, |t| (t.get().saturating_sub(r.arrival_ns.get())) as f64 / 1e9)
        };
        let tokens: u64 = done.iter().map(|r| r.output_tokens.get()).sum();
        let makespan = o.simulated_ns.as_secs_f64();
        Metrics {
            mean_latency_s: done.iter().map(|r| lat(r, r.finish_ns)).sum::<f64>() / n,
            mean_ttft_s: done.iter().map(|r| lat(r, r.first_token_ns)).sum::<f64>() / n,
            throughput_tokens_per_s: if makespan > 0.0 { tokens as f64 / makespan } else { 0.0 },
            evictions: o.evictions,
            steps: o.steps,
            makespan_s: makespan,
        }
    }
}

/// A built-in scheduler's result on the same instance.
#[derive(Clone, Debug, Serialize)]
pub struct Baseline {
    /// Scheduler name.
    pub scheduler: String,
    /// Verdict code.
    pub verdict: VerdictCode,
    /// Metrics, when it passed.
    pub metrics: Option<Metrics>,
}

/// The fluid benchmark of a scenario's workload.
#[derive(Clone, Debug, Serialize)]
pub struct FluidRef {
    /// Whether the fluid equilibrium exists and fits in memory.
    pub stable: bool,
    /// Decode-token throughput of the fluid (tokens/s): an upper bound on what can be served.
    pub throughput_tokens_per_s: f64,
    /// Mean equilibrium latency `(l' + 1) dT*` over the arrivals (s), when stable.
    pub latency_s: Option<f64>,
}

/// One scenario's result.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioReport {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Requests.
    pub requests: usize,
    /// The verdict.
    pub verdict: Verdict,
    /// The verdict's category.
    pub category: String,
    /// Metrics, when it passed.
    pub metrics: Option<Metrics>,
    /// Decisions answered.
    pub decisions: u64,
    /// Wall time (s).
    pub wall_s: f64,
    /// Wall time of the protocol exchanges alone (s): decisions / wire_s is the round-trip rate.
    pub wire_s: f64,
    /// Trace records checked by `kvsched_verify::check_trace`.
    pub trace_records: usize,
    /// The built-in schedulers on the same instance.
    pub baselines: Vec<Baseline>,
    /// The fluid benchmark, when the scenario has a workload.
    pub fluid: Option<FluidRef>,
}

/// A minimal failing instance, as a file (`--replay`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Replay {
    /// `"kvsched-conform-replay"`.
    pub format: String,
    /// 1.
    pub version: u32,
    /// Scenario it came from.
    pub scenario: String,
    /// Seed of that scenario.
    pub seed: u64,
    /// The verdict it reproduces.
    pub verdict: Verdict,
    /// The instance.
    pub instance: Instance,
    /// The configuration that judged it.
    pub config: ConformConfig,
}

/// The shrunk failure in a report.
#[derive(Clone, Debug, Serialize)]
pub struct ShrunkReport {
    /// The replay (instance and config).
    pub replay: Replay,
    /// Requests before shrinking.
    pub original_requests: usize,
    /// Runs spent shrinking.
    pub runs: usize,
}

/// The report of a battery.
#[derive(Clone, Debug, Serialize)]
pub struct ConformReport {
    /// Protocol version of the harness.
    pub protocol_version: u32,
    /// What was tested.
    pub subject: String,
    /// Whether every scenario passed.
    pub conforms: bool,
    /// Per scenario and seed.
    pub scenarios: Vec<ScenarioReport>,
    /// The first failure, shrunk.
    pub shrunk: Option<ShrunkReport>,
    /// The configuration.
    pub config: ConformConfig,
    /// Decisions per second over all runs of the subject (wall clock, engine and checks
    /// included).
    pub decisions_per_s: f64,
    /// Decisions per second of the protocol exchanges alone (round trips over the pipes).
    pub wire_decisions_per_s: f64,
    /// Wall time (s).
    pub wall_s: f64,
}

fn fluid_ref(s: &Scenario) -> Option<FluidRef> {
    let sol = FluidSolution::from_workload(s.workload.as_ref()?).ok()?;
    let latency = sol.iteration_time_s.filter(|_| sol.stable).map(|dt| {
        let rate: f64 = sol.classes.iter().map(|c| c.class.rate_per_s).sum();
        sol.classes
            .iter()
            .map(|c| c.class.rate_per_s * (c.class.output_tokens as f64 + 1.0) * dt)
            .sum::<f64>()
            / rate
    });
    Some(FluidRef {
        stable: sol.stable,
        throughput_tokens_per_s: sol.throughput_tokens_per_s,
        latency_s: latency,
    })
}

fn baselines(s: &Scenario, cfg: &ConformConfig) -> Vec<Baseline> {
    let quiet = ConformConfig { information: Information::Known, ..cfg.clone() };
    cfg.baselines
        .iter()
        .filter(|name| crate::schedulers::by_name(name).is_some())
        .map(|name| {
            let c =
                InProcess { factory: || crate::schedulers::by_name(name).expect("checked above") };
            let r = run::run_instance(&c, &s.name, &s.instance, s.seed, &quiet);
            Baseline {
                scheduler: name.clone(),
                metrics: r.verdict.is_pass().then(|| r.outcome.as_ref().map(Metrics::of)).flatten(),
                verdict: r.verdict.code,
            }
        })
        .collect()
}

/// Runs one scenario.
pub fn run_scenario(c: &dyn Candidate, s: &Scenario, cfg: &ConformConfig) -> ScenarioReport {
    let label = format!("{}/seed{}", s.name, s.seed);
    let r = run::run_instance(c, &label, &s.instance, s.seed, cfg);
    ScenarioReport {
        scenario: s.name.clone(),
        seed: s.seed,
        requests: s.instance.requests.len(),
        category: r.verdict.category().into(),
        metrics: r.verdict.is_pass().then(|| r.outcome.as_ref().map(Metrics::of)).flatten(),
        verdict: r.verdict,
        decisions: r.decisions,
        wall_s: r.wall.as_secs_f64(),
        wire_s: r.wire.as_secs_f64(),
        trace_records: r.trace_records,
        baselines: baselines(s, cfg),
        fluid: fluid_ref(s),
    }
}

/// The scenarios `cfg` selects; an error names an unknown scenario.
pub fn scenarios(cfg: &ConformConfig) -> Result<Vec<Scenario>, String> {
    let names: Vec<String> = if cfg.scenarios.is_empty() {
        battery::SCENARIOS.iter().map(|s| s.to_string()).collect()
    } else {
        cfg.scenarios.clone()
    };
    let mut out = Vec::new();
    for name in &names {
        for &seed in &cfg.seeds {
            let mut s = battery::scenario(name, cfg.requests, seed).ok_or_else(|| {
                format!("unknown scenario {name:?}; expected one of {:?}", battery::SCENARIOS)
            })?;
            s.instance.config.preemption = cfg.preemption;
            if let Some(w) = &mut s.workload {
                w.preemption = cfg.preemption;
            }
            out.push(s);
        }
    }
    Ok(out)
}

/// Runs the battery, calling `progress` after every scenario.
pub fn run_battery(
    c: &dyn Candidate,
    scenarios: &[Scenario],
    cfg: &ConformConfig,
    progress: &mut dyn FnMut(&ScenarioReport),
) -> ConformReport {
    let started = Instant::now();
    let mut reports = Vec::new();
    let mut shrunk = None;
    for s in scenarios {
        let r = run_scenario(c, s, cfg);
        progress(&r);
        if !r.verdict.is_pass() && shrunk.is_none() && cfg.shrink {
            let found = shrink::shrink(c, &s.name, &s.instance, s.seed, &r.verdict, cfg);
            shrunk = Some(ShrunkReport {
                replay: replay_of(s, &found.instance, &found.verdict, cfg),
                original_requests: s.instance.requests.len(),
                runs: found.runs,
            });
        }
        reports.push(r);
    }
    finish_report(c.label(), reports, shrunk, cfg, started)
}

/// A report of the scenarios run so far (written while a battery is running).
pub fn partial_report(
    subject: String,
    scenarios: &[ScenarioReport],
    cfg: &ConformConfig,
    started: Instant,
) -> ConformReport {
    finish_report(subject, scenarios.to_vec(), None, cfg, started)
}

fn finish_report(
    subject: String,
    scenarios: Vec<ScenarioReport>,
    shrunk: Option<ShrunkReport>,
    cfg: &ConformConfig,
    started: Instant,
) -> ConformReport {
    let decisions: u64 = scenarios.iter().map(|s| s.decisions).sum();
    let busy: f64 = scenarios.iter().map(|s| s.wall_s).sum();
    let wire: f64 = scenarios.iter().map(|s| s.wire_s).sum();
    ConformReport {
        protocol_version: crate::protocol::PROTOCOL_VERSION,
        subject,
        conforms: scenarios.iter().all(|s| s.verdict.is_pass()),
        scenarios,
        shrunk,
        config: cfg.clone(),
        decisions_per_s: if busy > 0.0 { decisions as f64 / busy } else { 0.0 },
        wire_decisions_per_s: if wire > 0.0 { decisions as f64 / wire } else { 0.0 },
        wall_s: started.elapsed().as_secs_f64(),
    }
}

/// A replay file's contents.
pub fn replay_of(s: &Scenario, instance: &Instance, v: &Verdict, cfg: &ConformConfig) -> Replay {
    Replay {
        format: "kvsched-conform-replay".into(),
        version: 1,
        scenario: s.name.clone(),
        seed: s.seed,
        verdict: v.clone(),
        instance: instance.clone(),
        config: cfg.clone(),
    }
}

/// Parses and validates a replay file.
pub fn parse_replay(text: &str) -> Result<Replay, String> {
    let r: Replay = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if r.format != "kvsched-conform-replay" || r.version != 1 {
        return Err(format!(
            "format {:?} version {}; expected kvsched-conform-replay 1",
            r.format, r.version
        ));
    }
    let problems = r.instance.validate();
    if !problems.is_empty() {
        return Err(format!("instance: {}", problems.join("; ")));
    }
    Ok(r)
}

/// Runs a replay; the report has one scenario.
pub fn run_replay(c: &dyn Candidate, replay: &Replay) -> ConformReport {
    let started = Instant::now();
    let cfg = ConformConfig { shrink: false, ..replay.config.clone() };
    let s = Scenario {
        name: format!("replay:{}", replay.scenario),
        seed: replay.seed,
        instance: replay.instance.clone(),
        workload: None,
    };
    let r = run_scenario(c, &s, &ConformConfig { baselines: vec![], ..cfg.clone() });
    finish_report(c.label(), vec![r], None, &cfg, started)
}

/// Runs the battery on an in-process scheduler: the entry point for a third-party `#[test]`.
pub fn check_scheduler(
    factory: impl Fn() -> Box<dyn Scheduler>,
    cfg: &ConformConfig,
) -> ConformReport {
    let c = InProcess { factory };
    match scenarios(cfg) {
        Ok(s) => run_battery(&c, &s, cfg, &mut |_| {}),
        Err(e) => {
            let mut r = finish_report(c.label(), vec![], None, cfg, Instant::now());
            r.conforms = false;
            r.subject = format!("{}: {e}", r.subject);
            r
        }
    }
}

impl ConformReport {
    /// A readable summary.
    pub fn summary(&self) -> String {
        let mut out =
            format!("conformance of {} (protocol v{})\n", self.subject, self.protocol_version);
        for s in &self.scenarios {
            out += &format!(
                "  {:<12} seed {:<3} {:>4} req  {:<20} {}\n",
                s.scenario,
                s.seed,
                s.requests,
                s.verdict.code,
                score_line(s)
            );
            if !s.verdict.is_pass() {
                out += &format!("      {}\n", s.verdict.message.replace('\n', "\n      "));
            }
        }
        if let Some(sh) = &self.shrunk {
            out += &format!(
                "shrunk {} from {} to {} request(s) in {} runs: {}\n",
                sh.replay.scenario,
                sh.original_requests,
                sh.replay.instance.requests.len(),
                sh.runs,
                sh.replay.verdict
            );
        }
        out += &format!(
            "{} ({:.0} decisions/s; protocol round trips {:.0}/s; {:.1} s)\n",
            if self.conforms { "CONFORMS" } else { "DOES NOT CONFORM" },
            self.decisions_per_s,
            self.wire_decisions_per_s,
            self.wall_s
        );
        out
    }
}

fn score_line(s: &ScenarioReport) -> String {
    let Some(m) = &s.metrics else { return String::new() };
    let mut line = format!(
        "latency {:.3}s thr {:.0} tok/s ev {}",
        m.mean_latency_s, m.throughput_tokens_per_s, m.evictions
    );
    let best = s
        .baselines
        .iter()
        .filter_map(|b| b.metrics.as_ref().map(|bm| (bm.mean_latency_s, &b.scheduler)))
        .min_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((l, name)) = best {
        line += &format!(" | best built-in {name} {l:.3}s");
    }
    if let Some(f) = s.fluid.as_ref().and_then(|f| f.latency_s) {
        line += &format!(" | fluid {f:.3}s");
    }
    line
}
