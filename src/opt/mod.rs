//! The MC-SF paper's round model (arXiv 2502.07115): hindsight optimum, bounds, lower-bound
//! families and the v1/v2 claims. The model itself (instances, schedules, feasibility, bounds,
//! replay through the spec) is `kvsched_spec::rounds`; derivations are in `spec/MCSF_NOTES.md`.
//!
//! - [`ip`]: the paper's IP (1)–(4), solved exactly with HiGHS; [`lp`]: its LP relaxation.
//! - [`bnb`]: an exact branch-and-bound (proven optimum or a bracket), independent of HiGHS.
//! - [`brute`]: exhaustive enumeration for tiny instances.
//! - [`semi_online`]: exact algorithms when every request is present at round 0.
//! - [`mcsf_core`]: MC-SF's per-round admission (`mcsf_admit`), pure, `O(M)` per candidate.
//! - [`round_sim`]: a small simulator of non-preemptive round-model policies.
//! - [`families`]: instance generators (the paper's synthetic set, adversarial and Yao
//!   families).
//! - [`regret`]: the stochastic-arrival regret experiment (re-solving policy vs MC-SF, FCFS).

pub mod bnb;
pub mod brute;
pub mod families;
pub mod ip;
pub mod lp;
pub mod mcsf_core;
pub mod regret;
pub mod round_sim;
pub mod search;
pub mod semi_online;
