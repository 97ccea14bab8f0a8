//! # kvsched: simulator, schedulers, workloads and conformance harness
//!
//! The root crate of the kvsched workspace. It holds what is *built*; what is *correct* lives
//! in `kvsched-spec` (re-exported as [`spec`]), how it is *judged* in `kvsched-verify`. The
//! `kvsched` binary (`src/main.rs` and `src/cli/`) is a thin shell over this library: each
//! command maps its flags onto the library's values, calls it and prints.
//!
//! ## The face
//! About fifteen names cover what a user does; they are re-exported here.
//! - **Describe and run a simulation**: [`RunSpec`] (workload, calibration, rate scale,
//!   requests or trace, predictions, seed, scheduler), [`WorkloadSource`], [`Requests`];
//!   [`RunSpec::execute`] returns a [`RunOutput`] whose [`Outcome`] gives a [`Summary`].
//! - **Write a policy**: [`Scheduler`], which sees a read-only [`View`] and returns a
//!   [`Plan`] (evictions, the next batch, [`Repeat`]).
//! - **Run the engine directly** on an instance: [`simulate`] with [`SimOptions`].
//! - **The built-in policies**: [`schedulers::catalog`], one row per policy, and
//!   [`schedulers::by_name`].
//! - **Judge a policy**: [`check_scheduler`] with a [`ConformConfig`] gives a
//!   [`ConformReport`]; another process is judged over the wire protocol of
//!   `spec/PROTOCOL.md` ([`protocol`]).
//! - **The hindsight optimum** of a round-model instance: [`run::hindsight::OptSpec`].
//!
//! ```
//! use kvsched::{Requests, RunSpec, WorkloadSource};
//! let spec = RunSpec {
//!     requests: Requests::Count(1_000),
//!     ..RunSpec::new(WorkloadSource::File("workloads/lmsys-like.toml".into()), "sarathi")
//! };
//! let run = spec.execute()?;
//! let summary = run.outcome.summary(spec.window);
//! println!("p99 latency {:.3} s over {} requests", summary.latency_s.p99, summary.completed);
//! assert!(summary.latency_s.p99 > 0.0);
//! # Ok::<(), String>(())
//! ```
//!
//! ## Floors
//! Modules import only from lower floors (a tidy test holds it): [`prng`]; [`sim`] (the
//! engine, which owns the policy interface) and [`opt`] (the round model's solvers);
//! [`workload`]; [`schedulers`]; [`protocol`] and [`run`]; [`conform`] and [`experiments`];
//! the binary's `cli` on top. The modules below the face are public for the test suite, the
//! benches, the fuzz targets and the Python package; their items are documented, but only the
//! face is meant to stay put.

pub mod conform;
pub mod experiments;
pub mod opt;
pub mod prng;
pub mod protocol;
pub mod run;
pub mod schedulers;
pub mod sim;
pub mod workload;

pub use conform::{check_scheduler, ConformConfig, ConformReport};
pub use kvsched_spec as spec;
pub use run::{Requests, RunOutput, RunSpec, WorkloadSource};
pub use sim::{simulate, Outcome, Plan, Repeat, Scheduler, SimOptions, Summary, View};
