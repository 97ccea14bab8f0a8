//! The one integration-test binary. Its `mod` lines are the table of contents.
//!
//! Tiers: the default run is the fast tier; `KVSCHED_SLOW=1` enables paper-scale checks.
//! Every randomized test prints its seed and a one-line replay command on failure.

mod cli;
mod common;
mod conform;
mod engine;
mod engine_log;
mod engines;
mod engines_sglang;
mod fluid;
mod hardening;
mod mcsf_engine;
mod mcsf_opt;
mod replica;
mod reproduce;
mod schedulers;
mod step_time_vidur;
mod tidy;
mod trace_check;
mod verdict_codes;
mod wait_claims;
