//! # kvsched: simulator, schedulers, workloads and conformance harness
//!
//! The root crate of the kvsched workspace. It holds what is *built*: the discrete-event
//! simulator ([`sim`]), the scheduling policies ([`schedulers`]), workload generation
//! ([`workload`]), the wire protocol's both ends ([`protocol`]), the conformance harness
//! ([`conform`]) and the command-line interface ([`cli`]).
//! What is *correct* lives in `kvsched-spec`; how it is *judged* lives in `kvsched-verify`.

pub mod cli;
pub mod conform;
pub mod experiments;
pub mod opt;
pub mod prng;
pub mod protocol;
pub mod run;
pub mod schedulers;
pub mod sim;
pub mod workload;

pub use kvsched_spec as spec;
