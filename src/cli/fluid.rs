//! `kvsched fluid WORKLOAD.toml [--json]`: the fluid benchmark of a workload.
//!
//! Prints the WAIT paper's fluid equilibrium ([`kvsched_spec::fluid`]): a readable table, or one
//! JSON object with `--json` (unbounded quantities are `null`, never NaN or infinity). Exit 0
//! for stable and unstable workloads alike (stability is a result); exit 2 for a bad file.

use kvsched_spec::fluid::{FluidSolution, Regime};
use std::process::ExitCode;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Workload file (TOML).
    pub workload: std::path::PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the subcommand.
pub fn run(args: &Args) -> ExitCode {
    let name = args.workload.display().to_string();
    // The same validation as `simulate` (one path: `cli::load_workload`).
    let workload = match super::load_workload(&args.workload, None, 1.0) {
        Ok(w) => w,
        Err(e) => return super::input_error(e),
    };
    let sol = match kvsched::run::fluid(&name, &workload) {
        Ok(s) => s,
        Err(e) => return super::input_error(e),
    };
    if args.json {
        match serde_json::to_string_pretty(&sol) {
            Ok(s) => outln!("{s}"),
            Err(e) => return super::input_error(e),
        }
    } else {
        out!("{}", table(&sol));
    }
    ExitCode::SUCCESS
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "unbounded".to_string(), |v| format!("{v:.digits$}"))
}

/// The readable report.
pub fn table(s: &FluidSolution) -> String {
    let regime = match s.regime {
        Regime::Stable => "STABLE (d1*A < 1 and M* <= C)",
        Regime::MemoryBound => "UNSTABLE: M* > C (equilibrium does not fit in memory)",
        Regime::Unbounded => "UNSTABLE: d1*A >= 1 (beyond Proposition 1's cut)",
    };
    let mut out = format!("fluid benchmark (WAIT paper §4)\n  regime               {regime}\n");
    let rows = [
        ("d0 (s)", format!("{}", s.d0_s)),
        ("d1 (s/token)", format!("{:e}", s.d1_s_per_token)),
        ("capacity C (tokens)", format!("{}", s.capacity_tokens)),
        ("total rate (req/s)", format!("{:.4}", s.total_rate_per_s)),
        ("mass per arrival a", format!("{:.2}", s.mean_mass_tokens)),
        ("load A (tok*it/s)", format!("{:.1}", s.load_tokens_per_s)),
        ("cut d1*A", format!("{:.6}", s.instability_cut)),
        ("iteration time dT* (s)", opt(s.iteration_time_s, 6)),
        ("memory M* (tokens)", opt(s.memory_tokens, 1)),
        ("M*/C", opt(s.memory_over_capacity, 4)),
        ("throughput (tok/s)", format!("{:.2}", s.throughput_tokens_per_s)),
        ("lambda_max (req/s)", format!("{:.4}", s.lambda_max_per_s)),
        ("pole 1/(d1 a) (req/s)", opt(s.lambda_pole_per_s, 4)),
        ("max scale", format!("{:.4}", s.max_scale)),
    ];
    for (k, v) in rows {
        out += &format!("  {k:<22} {v}\n");
    }
    out += &format!(
        "\n  {:<12} {:>8} {:>8} {:>10} {:>14} {:>10} {:>12} {:>14}\n",
        "class", "l", "l'", "rate", "S_j", "cut_j", "n_j*", "M_j*"
    );
    for (i, c) in s.classes.iter().enumerate() {
        let name = c.class.name.clone().unwrap_or_else(|| format!("#{i}"));
        out += &format!(
            "  {:<12} {:>8} {:>8} {:>10.4} {:>14.1} {:>10.6} {:>12} {:>14}\n",
            name,
            c.class.prompt_tokens,
            c.class.output_tokens,
            c.class.rate_per_s,
            c.mass_tokens,
            c.cut,
            opt(c.n_per_stage, 4),
            opt(c.memory_tokens, 1),
        );
    }
    out
}
