//! `kvsched check-trace FILE`: replays a JSON-lines trace against the spec
//! (`kvsched_verify::check_trace`, format in `spec/TRACE.md`).
//!
//! Exit 0 when the trace is valid; 1 when it breaks rules (each violation printed on its own
//! line as `FILE:LINE: message`); 2 when the file cannot be read or is malformed (the message
//! names the file and line). A pass proves the one trace feasible, nothing about optimality;
//! see the `kvsched_verify::check` module doc for what it cannot see.

use kvsched_verify::check_trace;
use std::io::BufReader;
use std::process::ExitCode;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Trace file (JSON lines, as written by `kvsched simulate --trace`).
    pub file: std::path::PathBuf,
}

/// Runs the subcommand.
pub fn run(args: &Args) -> ExitCode {
    let name = args.file.display().to_string();
    let file = match std::fs::File::open(&args.file) {
        Ok(f) => f,
        Err(e) => return super::input_error(format!("{name}: cannot read: {e}")),
    };
    let report = match check_trace(BufReader::new(file)) {
        Ok(r) => r,
        Err(e) => return super::input_error(format!("{name}: {e}")),
    };
    if report.is_valid() {
        println!(
            "{name}: valid ({} records, {} requests, {} iterations, {} completed)",
            report.records, report.requests, report.steps, report.completed
        );
        return ExitCode::SUCCESS;
    }
    for v in &report.violations {
        println!("{name}:{}: {}", v.line, v.kind);
    }
    println!("{name}: {} violation(s)", report.violations.len());
    ExitCode::from(1)
}
