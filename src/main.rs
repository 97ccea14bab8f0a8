//! The `kvsched` command-line tool.

mod cli;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// kvsched: LLM-inference scheduling under KV-cache limits, made executable and checkable.
#[derive(Parser, Debug)]
#[command(name = "kvsched", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Hindsight optimum of a round-model instance (MC-SF paper's IP, HiGHS): total latency,
    /// schedule, solve time, bounds.
    Opt(cli::opt::Args),
    /// Fluid benchmark of a workload: equilibrium batch, memory M*, stability region.
    Fluid(cli::fluid::Args),
    /// Check every claim of spec/CLAIMS.md and write the report (tables, figures, JSON).
    Reproduce(cli::reproduce::Args),
    /// Run a sweep grid in parallel, resumable, shardable (`--shard I/N`).
    Sweep(cli::sweep::Args),
    /// Merge shard result files of one sweep; exit 1 listing missing or duplicated jobs.
    Merge(cli::merge::Args),
    /// Benchmark the simulator: cost against requests and against output length.
    Bench(cli::bench::Args),
    /// Simulate one scheduler on a workload and print latency, TTFT, throughput, evictions.
    Simulate(cli::simulate::Args),
    /// List every scheduler and its parameters.
    Schedulers(cli::schedulers::Args),
    /// Replay a JSON-lines trace against the spec; list every violation with its line.
    CheckTrace(cli::check_trace::Args),
    /// Run an external scheduler (any language, spec/PROTOCOL.md) through the conformance
    /// battery: `kvsched conform [--replay FILE] [--report FILE.json] -- COMMAND [ARGS...]`.
    Conform(cli::conform::Args),
    /// Serve a built-in scheduler over stdin/stdout with the conformance protocol.
    Serve(cli::serve::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Opt(a) => cli::opt::run(a),
        Command::Fluid(a) => cli::fluid::run(a),
        Command::Reproduce(a) => cli::reproduce::run(a),
        Command::Sweep(a) => cli::sweep::run(a),
        Command::Merge(a) => cli::merge::run(a),
        Command::Bench(a) => cli::bench::run(a),
        Command::Simulate(a) => cli::simulate::run(a),
        Command::Schedulers(a) => cli::schedulers::run(a),
        Command::CheckTrace(a) => cli::check_trace::run(a),
        Command::Conform(a) => cli::conform::run(a),
        Command::Serve(a) => cli::serve::run(a),
    }
}
