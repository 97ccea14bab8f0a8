//! Command-line interface: one module per subcommand, dispatched from `src/main.rs`.
//!
//! Exit codes: 0 success; 1 the thing checked is wrong (violations, non-conformance); 2 bad input
//! or usage. Errors name the file, line or field. Standard output goes through [`outln!`] and
//! [`out!`]: when the reader has gone (`kvsched opt … | head`), the command stops quietly
//! with exit 0 instead of panicking on the broken pipe.

/// `println!` for the CLI: a closed standard output ends the process quietly (see
/// [`stdout_failed`]).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            $crate::cli::stdout_failed(e);
        }
    }};
}

/// `print!` for the CLI, like [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout().lock(), $($arg)*) {
            $crate::cli::stdout_failed(e);
        }
    }};
}

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

/// Ends the process after a failed write to standard output: exit 0 when the reader closed
/// the pipe (nothing left to tell it), 1 with a message otherwise.
pub fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: writing to standard output: {e}");
    std::process::exit(1);
}

/// Prints an error and returns exit code 2 (bad input).
pub fn input_error(err: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {err}");
    ExitCode::from(2)
}

pub use kvsched::run::{check_range, load_workload, parse_preemption};
pub use kvsched::workload::read_file;
