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

pub use crate::workload::{read_file, MAX_HELD_REQUESTS};

/// Reads and validates a workload file, then applies `--calibration` and `--rate-scale` and
/// validates the result again: the one validation path of `fluid`, `simulate` and `bench`.
pub fn load_workload(
    path: &std::path::Path,
    calibration: Option<&std::path::Path>,
    rate_scale: f64,
) -> Result<kvsched_spec::WorkloadFile, String> {
    let name = path.display().to_string();
    let workload =
        kvsched_spec::WorkloadFile::parse(&name, &read_file(path)?).map_err(|e| e.to_string())?;
    adjust_workload(workload, &name, calibration, rate_scale)
}

/// A parsed workload (`name` is its file, or what stands for it) with the calibration's step
/// time and the rate scale applied, then checked: the one validation `simulate`, `fluid` and
/// the Python package share.
pub fn adjust_workload(
    mut workload: kvsched_spec::WorkloadFile,
    name: &str,
    calibration: Option<&std::path::Path>,
    rate_scale: f64,
) -> Result<kvsched_spec::WorkloadFile, String> {
    use kvsched_spec::calibration::Calibration;
    if let Some(cal) = calibration {
        let cpath = cal.display().to_string();
        let c = Calibration::parse(&cpath, &read_file(cal)?).map_err(|e| e.to_string())?;
        workload.step_time = c.step_time;
    }
    if !(rate_scale.is_finite() && rate_scale > 0.0) {
        return Err(format!("--rate-scale: expected a positive number, got {rate_scale}"));
    }
    for c in &mut workload.classes {
        c.rate_per_s *= rate_scale;
    }
    workload.check(name).map_err(|e| {
        if rate_scale == 1.0 {
            e.to_string()
        } else {
            format!("{e} (after --rate-scale {rate_scale})")
        }
    })?;
    Ok(workload)
}

/// Checks that a numeric option lies in `range`, with an error naming the flag.
pub fn check_range<T: PartialOrd + std::fmt::Display>(
    flag: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, String> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{flag}: expected a value in [{}, {}], got {value}",
            range.start(),
            range.end()
        ))
    }
}
