//! `kvsched fluid WORKLOAD.toml [--json]`: the fluid benchmark of a workload.

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
pub fn run(_args: &Args) -> ExitCode {
    eprintln!("kvsched fluid: not implemented yet");
    ExitCode::from(2)
}
