//! Command-line interface: one module per subcommand, dispatched from `src/main.rs`.
//!
//! Exit codes: 0 success; 1 the thing checked is wrong (violations, non-conformance); 2 bad input
//! or usage. Errors name the file, line or field.

pub mod bench;
pub mod check_trace;
pub mod conform;
pub mod fluid;
pub mod merge;
pub mod opt;
pub mod reproduce;
pub mod schedulers;
pub mod serve;
pub mod simulate;
pub mod sweep;

use std::process::ExitCode;

/// Prints an error and returns exit code 2 (bad input).
pub fn input_error(err: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {err}");
    ExitCode::from(2)
}

/// Reads a file to a string, with an error naming the file.
pub fn read_file(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))
}
