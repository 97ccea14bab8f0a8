//! `kvsched reproduce [--quick | --full] [--claim ID...] [--out DIR] [--seed S]`: runs the
//! experiments behind every claim of `spec/CLAIMS.md` (or the chosen ones) and writes the
//! report (`index.md`, `results.json`, SVG figures) to `DIR` (default `report/`).
//!
//! Without a flag the run is `--quick` (minutes on a laptop); `--full` runs the paper-scale
//! sweeps. Every claim appears with a verdict; exit 0 whatever the verdicts (they are results),
//! 2 for an unknown claim ID or an unwritable directory.

use kvsched::experiments::{render, report, Ctx, Scale};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Test-suite size (the default): minutes on two cores.
    #[arg(long, conflicts_with = "full")]
    pub quick: bool,
    /// Paper-scale sweeps.
    #[arg(long)]
    pub full: bool,
    /// Only these claim IDs (repeatable, or several after one flag).
    #[arg(long = "claim", value_name = "ID", num_args = 1..)]
    pub claims: Vec<String>,
    /// Report directory.
    #[arg(long, default_value = "report")]
    pub out: PathBuf,
    /// Base seed of every experiment.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Runs the subcommand.
pub fn run(args: &Args) -> ExitCode {
    let claims = match report::select(&args.claims) {
        Ok(c) => c,
        Err(e) => return super::input_error(e),
    };
    let scale = if args.full { Scale::Full } else { Scale::Quick };
    let ctx = Ctx { scale, seed: args.seed };
    eprintln!(
        "kvsched reproduce: {} claims, {scale:?} scale, seed {}, {} threads",
        claims.len(),
        args.seed,
        rayon::current_num_threads()
    );
    let t = std::time::Instant::now();
    // Finished experiments go to a checkpoint in the report directory as they complete, so an
    // interrupted run (SIGINT, SIGTERM, a crash) resumes where it stopped; the checkpoint is
    // removed once the report is written.
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        return super::input_error(format!("{}: {e}", args.out.display()));
    }
    let checkpoint = args.out.join(report::CHECKPOINT);
    let log = |line: &str| eprintln!("  done {line}");
    let r = match report::reproduce_resumable(&ctx, &claims, &log, Some(&checkpoint)) {
        Ok(r) => r,
        Err(e) => return super::input_error(e),
    };
    if let Err(e) = render::write(&r, &args.out) {
        return super::input_error(e);
    }
    let _ = std::fs::remove_file(&checkpoint);
    out!("{}", render::summary_table(&r.claims));
    let count = |code| r.count(code);
    eprintln!(
        "{} claims: {} supported, {} not supported, {} not reproducible here; report in {} \
         ({:.1} s)",
        r.claims.len(),
        count("supported"),
        count("not_supported"),
        count("not_reproducible"),
        args.out.join("index.md").display(),
        t.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
