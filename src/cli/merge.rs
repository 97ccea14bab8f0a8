//! `kvsched merge OUT FILES...`: combines shard result files of one sweep into `OUT` (sorted by
//! job), after checking that every job of the grid appears exactly once.
//!
//! Exit 0 on success; 1 with the list of missing and duplicated jobs; 2 for unreadable files.

use kvsched::experiments::sweep::merge;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Merged results file (`.jsonl` or `.csv`).
    pub out: PathBuf,
    /// Shard result files.
    #[arg(required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
}

/// Runs the subcommand.
pub fn run(args: &Args) -> ExitCode {
    match merge(&args.out, &args.files) {
        Ok(n) => {
            eprintln!("{}: {n} rows merged from {} files", args.out.display(), args.files.len());
            ExitCode::SUCCESS
        }
        Err(p) => {
            for line in &p.0 {
                eprintln!("{line}");
            }
            eprintln!("merge failed: {} problems; {} not written", p.0.len(), args.out.display());
            ExitCode::from(1)
        }
    }
}
