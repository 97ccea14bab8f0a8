//! `kvsched conform [--replay FILE] [--report FILE.json] -- COMMAND [ARGS...]`: runs an external
//! scheduler (any language, `spec/PROTOCOL.md`) through the conformance battery, scores it
//! against the fluid bound and the built-in schedulers, and shrinks the first failure to a
//! replay file. With `--replay FILE`, runs only the replay's instance.
//!
//! Exit 0 when the scheduler conforms (or a replay passes); 1 when it does not; 2 for usage or
//! bad input (unknown scenario, unreadable replay, a command that cannot be started). The JSON
//! report is rewritten after every scenario, so it holds whatever completed.

use kvsched::conform::parse_information;
use kvsched::conform::{
    parse_replay, run_battery, run_replay, scenarios, ConformConfig, ConformReport,
    ExternalCommand, ExternalOptions, VerdictCode,
};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run only this replay file (written by an earlier failing run).
    #[arg(long)]
    pub replay: Option<PathBuf>,
    /// Write the machine-readable report here (JSON).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Where to save the shrunk failure (default: `kvsched-replay.json` next to `--report`,
    /// else `kvsched-replay-PID.json` in the system's temporary directory). The path is printed.
    #[arg(long)]
    pub replay_out: Option<PathBuf>,
    /// Requests per scenario.
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    /// Seeds (comma-separated); every scenario runs once per seed.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub seeds: Vec<u64>,
    /// Run only these scenarios (repeatable): light, boundary, overload, long-decode, bursts,
    /// adversarial, tiny.
    #[arg(long = "scenario")]
    pub scenarios: Vec<String>,
    /// Information set offered: hidden, predicted or known.
    #[arg(long, default_value = "hidden")]
    pub information: String,
    /// What an evicted request keeps in every scenario: `restart` (the papers' rule) or
    /// `keep-generated` (vLLM's recompute preemption, carried in `hello.config`).
    #[arg(long, default_value = "restart")]
    pub preemption: String,
    /// Longest wait for one decision (milliseconds).
    #[arg(long, default_value_t = 5000)]
    pub decision_timeout_ms: u64,
    /// Longest wait for the scheduler's `ready` after it is started (milliseconds). Raise it
    /// for a real engine's scheduler, whose import can take tens of seconds.
    #[arg(long, default_value_t = 10_000)]
    pub handshake_timeout_ms: u64,
    /// Longest wall time of one scenario run, counted from `ready` (seconds).
    #[arg(long, default_value_t = 300)]
    pub total_timeout_s: u64,
    /// Liveness bound: total time a request that was passed over (a later arrival admitted
    /// first) may wait, fitting in free memory, while the server idles (ns).
    #[arg(long, default_value_t = 1_000_000_000)]
    pub starvation_bound_ns: u64,
    /// Liveness bound: times a request may be passed over while it fits in free memory.
    #[arg(long, default_value_t = 0)]
    pub starvation_passes: u64,
    /// Do not score against the built-in schedulers.
    #[arg(long)]
    pub no_baselines: bool,
    /// Do not shrink failures.
    #[arg(long)]
    pub no_shrink: bool,
    /// Shrinking budget: runs.
    #[arg(long, default_value_t = 400)]
    pub shrink_runs: usize,
    /// Shrinking budget: seconds.
    #[arg(long, default_value_t = 60)]
    pub shrink_time_s: u64,
    /// Append the scheduler's stderr to this file.
    #[arg(long)]
    pub stderr_log: Option<PathBuf>,
    /// The scheduler's command line, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// The battery configuration `args` describe, or an error with the CLI's message.
pub fn config(args: &Args) -> Result<ConformConfig, String> {
    let mut cfg = ConformConfig {
        requests: args.requests,
        seeds: args.seeds.clone(),
        scenarios: args.scenarios.clone(),
        information: parse_information(&args.information)?,
        preemption: super::parse_preemption(&args.preemption)?,
        starvation_bound_ns: args.starvation_bound_ns,
        starvation_passes: args.starvation_passes,
        shrink: !args.no_shrink,
        shrink_max_runs: args.shrink_runs,
        shrink_max_time: Duration::from_secs(args.shrink_time_s),
        ..ConformConfig::default()
    };
    if args.no_baselines {
        cfg.baselines.clear();
    }
    cfg.checked()
}

/// Where a failing run's replay goes: `--replay-out`, else next to `--report`, else the
/// system's temporary directory (never the current directory by surprise).
pub fn replay_path(args: &Args) -> PathBuf {
    if let Some(p) = &args.replay_out {
        return p.clone();
    }
    match args.report.as_deref().and_then(Path::parent) {
        Some(dir) => dir.join("kvsched-replay.json"),
        None => std::env::temp_dir().join(format!("kvsched-replay-{}.json", std::process::id())),
    }
}

fn write_report(path: Option<&Path>, report: &ConformReport) {
    if let Some(p) = path {
        let text = serde_json::to_string_pretty(report).expect("reports serialize");
        if let Err(e) = std::fs::write(p, text + "\n") {
            eprintln!("error: {}: cannot write report: {e}", p.display());
        }
    }
}

/// The stdio adapter's limits and stderr log as `args` set them.
fn external_options(args: &Args) -> Result<ExternalOptions, String> {
    ExternalOptions::with_limits(
        args.decision_timeout_ms,
        args.handshake_timeout_ms,
        args.total_timeout_s,
        args.stderr_log.clone(),
    )
}

/// Runs the subcommand.
pub fn run(args: &Args) -> ExitCode {
    let options = match external_options(args) {
        Ok(o) => o,
        Err(e) => return super::input_error(e),
    };
    let command = ExternalCommand {
        program: args.command[0].clone(),
        args: args.command[1..].to_vec(),
        options,
    };
    let report = match &args.replay {
        Some(path) => {
            let text = match super::read_file(path) {
                Ok(t) => t,
                Err(e) => return super::input_error(e),
            };
            match parse_replay(&text) {
                Ok(r) => run_replay(&command, &r),
                Err(e) => return super::input_error(format!("{}: {e}", path.display())),
            }
        }
        None => match battery(args, &command) {
            Ok(r) => r,
            Err(e) => return super::input_error(e),
        },
    };
    write_report(args.report.as_deref(), &report);
    out!("{}", report.summary());
    if report.scenarios.iter().all(|s| s.verdict.code == VerdictCode::SpawnFailed) {
        return super::input_error("the scheduler command could not be started");
    }
    ExitCode::from(if report.conforms { 0 } else { 1 })
}

fn battery(args: &Args, command: &ExternalCommand) -> Result<ConformReport, String> {
    let cfg = config(args)?;
    let list = scenarios(&cfg)?;
    let mut done = Vec::new();
    let started = std::time::Instant::now();
    let report = run_battery(command, &list, &cfg, &mut |s| {
        outln!("  {:<12} seed {:<3} {}", s.scenario, s.seed, s.verdict.code);
        done.push(s.clone());
        let partial =
            kvsched::conform::partial_report(command_label(command), &done, &cfg, started);
        write_report(args.report.as_deref(), &partial);
    });
    if let Some(sh) = &report.shrunk {
        let text = serde_json::to_string_pretty(&sh.replay).expect("replays serialize");
        let path = replay_path(args);
        match std::fs::write(&path, text + "\n") {
            Ok(()) => outln!(
                "replay saved to {} (rerun: kvsched conform --replay {} -- {})",
                path.display(),
                path.display(),
                command_label(command)
            ),
            Err(e) => eprintln!("error: {}: cannot write replay: {e}", path.display()),
        }
    }
    Ok(report)
}

fn command_label(c: &ExternalCommand) -> String {
    kvsched::conform::Candidate::label(c)
}
