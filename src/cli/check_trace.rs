//! `kvsched check-trace FILE`: replays a JSON-lines trace against the spec
//! (`kvsched_verify::check_trace`, format in `spec/TRACE.md`).
//!
//! Exit 0 when the trace is valid; 1 when it breaks rules (each violation printed on its own
//! line as `FILE:LINE: message`); 2 when the file cannot be read or is malformed (the message
//! names the file and line). A pass proves the one trace feasible, nothing about optimality;
//! see the `kvsched_verify::check` module doc for what it cannot see.
//!
//! A file whose first record is an `engine_header` is an engine step log (`spec/TRACE.md`,
//! "Engine step logs") and is judged by `kvsched_verify::engine_log`, with the same exit codes.

use kvsched_verify::check_trace;
use std::io::BufReader;
use std::process::ExitCode;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Trace file (JSON lines, as written by `kvsched simulate --trace`).
    pub file: std::path::PathBuf,
    /// Input format: `auto` detects it from the first record's `k`.
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    pub format: Format,
}

/// Input formats.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `engine` when the first record is an `engine_header`, else `kvsched`.
    Auto,
    /// A kvsched trace.
    Kvsched,
    /// An engine step log.
    Engine,
}

/// Runs the subcommand.
pub fn run(args: &Args) -> ExitCode {
    let name = args.file.display().to_string();
    let bytes = match std::fs::read(&args.file) {
        Ok(b) => b,
        Err(e) => return super::input_error(format!("{name}: cannot read: {e}")),
    };
    let engine = match args.format {
        Format::Auto => kvsched_verify::engine_log::is_engine_log(&bytes),
        Format::Kvsched => false,
        Format::Engine => true,
    };
    if engine {
        return run_engine(&name, &bytes);
    }
    let report = match check_trace(BufReader::new(&bytes[..])) {
        Ok(r) => r,
        Err(e) => return super::input_error(format!("{name}: {e}")),
    };
    if report.is_valid() {
        outln!(
            "{name}: valid ({} records, {} requests, {} iterations, {} completed)",
            report.records,
            report.requests,
            report.steps,
            report.completed
        );
        return ExitCode::SUCCESS;
    }
    for v in &report.violations {
        outln!("{name}:{}: {}", v.line, v.kind);
    }
    outln!("{name}: {} violation(s)", report.violations.len());
    ExitCode::from(1)
}

fn run_engine(name: &str, bytes: &[u8]) -> ExitCode {
    let report = match kvsched_verify::engine_log::check_engine_log(bytes) {
        Ok(r) => r,
        Err(e) => return super::input_error(format!("{name}: {e}")),
    };
    if report.is_valid() {
        outln!(
            "{name}: valid engine log ({} steps, {} requests, {} finished, {} preemptions)",
            report.steps,
            report.requests,
            report.finished,
            report.preemptions
        );
        return ExitCode::SUCCESS;
    }
    for v in &report.violations {
        outln!("{name}:{}: {}", v.line, v.kind);
    }
    outln!("{name}: {} violation(s)", report.violations.len());
    ExitCode::from(1)
}
