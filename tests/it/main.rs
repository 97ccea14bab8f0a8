//! The one integration-test binary. Its `mod` lines are the table of contents.
//!
//! Tiers: the default run is the fast tier; `KVSCHED_SLOW=1` enables paper-scale checks.
//! Every randomized test prints its seed and a one-line replay command on failure.

mod common;
mod conform;
mod fluid;
mod mcsf_opt;
mod schedulers;
mod engine;
mod tidy;
mod trace_check;
mod wait_claims;
mod mcsf_engine;
mod reproduce;
mod cli;
mod engine_log;
