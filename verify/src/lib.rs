//! # kvsched-verify: oracles for kvsched
//!
//! Everything here judges in the vocabulary of `kvsched-spec` and never imports the simulator:
//!
//! - [`check`]: `check_trace`, the offline replay of a JSON-lines trace against the spec.
//! - [`engine_log`]: `check_engine_log`, the same judgement for a real engine's per-step log.
//! - [`strategies`]: proptest strategies for small instances and mostly-valid action sequences,
//!   plus the seed and replay-line helpers every randomized test uses.
//! - [`stats`]: confidence intervals, log-log slopes and verdicts against paper values.
//! - [`laws`]: algebraic laws of the unit newtypes, checked with quickcheck.

pub mod check;
pub mod engine_log;
pub mod laws;
pub mod stats;
pub mod strategies;

pub use check::{
    check_numbered, check_records, check_trace, parse_trace, CheckReport, TraceError,
    TraceErrorKind, TraceViolation, ViolationKind,
};
