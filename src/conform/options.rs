//! A battery's configuration and the stdio adapter's limits, built from plain values and
//! checked in one place: `kvsched conform` maps its flags onto them, the Python package its
//! keyword arguments (README, "Limits").

use super::{ConformConfig, ExternalOptions};
use crate::run::check_range;
use kvsched_spec::Information;
use std::time::Duration;

/// The most requests per scenario.
pub const MAX_CONFORM_REQUESTS: usize = 1_000_000;
/// The most seeds.
pub const MAX_CONFORM_SEEDS: usize = 10_000;
/// The longest decision or handshake timeout (ms).
pub const MAX_DECISION_TIMEOUT_MS: u64 = 3_600_000;
/// The longest run or shrinking time (s).
pub const MAX_TIMEOUT_S: u64 = 86_400;

/// Parses an `--information` value: `hidden`, `predicted` or `known`.
pub fn parse_information(value: &str) -> Result<Information, String> {
    match value {
        "hidden" => Ok(Information::Hidden),
        "predicted" => Ok(Information::Predicted),
        "known" => Ok(Information::Known),
        o => Err(format!("--information: expected hidden, predicted or known, got {o:?}")),
    }
}

impl ConformConfig {
    /// The configuration if every field is in its range, else the error naming the flag.
    pub fn checked(self) -> Result<ConformConfig, String> {
        if self.requests == 0 || self.seeds.is_empty() {
            return Err("--requests and --seeds: expected at least one".into());
        }
        check_range("--requests", self.requests, 1..=MAX_CONFORM_REQUESTS)?;
        check_range("--seeds (count)", self.seeds.len(), 1..=MAX_CONFORM_SEEDS)?;
        check_range("--shrink-runs", self.shrink_max_runs, 0..=100_000)?;
        check_range("--shrink-time-s", self.shrink_max_time.as_secs(), 0..=MAX_TIMEOUT_S)?;
        Ok(self)
    }
}

impl ExternalOptions {
    /// The adapter's limits (a decision, the handshake, a whole run) and its stderr log,
    /// checked against their ranges.
    pub fn with_limits(
        decision_timeout_ms: u64,
        handshake_timeout_ms: u64,
        total_timeout_s: u64,
        stderr_log: Option<std::path::PathBuf>,
    ) -> Result<ExternalOptions, String> {
        let max = MAX_DECISION_TIMEOUT_MS;
        check_range("--decision-timeout-ms", decision_timeout_ms, 1..=max)?;
        check_range("--handshake-timeout-ms", handshake_timeout_ms, 1..=max)?;
        check_range("--total-timeout-s", total_timeout_s, 1..=MAX_TIMEOUT_S)?;
        Ok(ExternalOptions {
            decision_timeout: Duration::from_millis(decision_timeout_ms),
            handshake_timeout: Duration::from_millis(handshake_timeout_ms),
            total_timeout: Duration::from_secs(total_timeout_s),
            stderr_log,
        })
    }
}
