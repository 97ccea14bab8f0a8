//! `kvsched schedulers [--json]`: every scheduler, its parameters and what it reads.

use std::process::ExitCode;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the subcommand.
pub fn run(args: &Args) -> ExitCode {
    let catalog = kvsched::schedulers::catalog();
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&catalog).expect("json"));
    } else {
        for e in catalog {
            outln!("{:<16} {}\n{:<16} parameters: {}", e.name, e.models, "", e.parameters);
            outln!("{:<16} reads: {}", "", e.reads);
        }
    }
    ExitCode::SUCCESS
}
