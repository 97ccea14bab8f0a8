//! # kvsched-spec: the formal model of LLM-inference scheduling under KV-cache limits
//!
//! This crate is the reference every other part of kvsched is checked against. It is pure:
//! no randomness, no threads, no I/O. Its pieces:
//!
//! - [`units`]: `Tokens`, `KvBlocks`, `Bytes`, `Nanos` newtypes.
//! - [`request`]: requests and the information sets that filter what a policy may see.
//! - [`memory`]: capacity, paging, watermark.
//! - [`step_time`]: unit rounds, the WAIT paper's affine law, and a richer model.
//! - [`instance`]: model configuration plus requests.
//! - [`model`]: the transition semantics, `apply(state, action) -> Result<State, Violation>`.
//! - [`workload`]: the workload file format.
//! - [`trace`]: the trace format that `kvsched-verify` replays.
//!
//! A worked example: one request of a 4-token prompt and 2 output tokens, alone on a server with
//! unit rounds. It is admitted and prefilled in round 1 (which produces its first token), decoded
//! in round 2, and done at time 2 s.
//!
//! ```
//! use kvsched_spec::*;
//! let instance = Instance {
//!     config: ModelConfig {
//!         memory: MemoryConfig::tokens(8),
//!         step_time: StepTime::UnitRounds,
//!         first_token: FirstToken::WithPrefill,
//!         eviction: EvictionRule::Lifo,
//!         preemption: Preemption::Restart,
//!         information: Information::Hidden,
//!     },
//!     requests: vec![Request {
//!         id: RequestId(0),
//!         arrival_ns: Nanos(0),
//!         prompt_tokens: Tokens(4),
//!         output_tokens: Tokens(2),
//!         predicted_output_tokens: None,
//!         class: 0,
//!     }],
//! };
//! let s = State::init(&instance);
//! let s = apply(&instance, &s, &Action::Arrive(RequestId(0))).unwrap();
//! let s = apply(&instance, &s, &Action::Step(vec![
//!     BatchItem::Prefill { id: RequestId(0), tokens: Tokens(4) },
//! ])).unwrap();
//! assert_eq!(s.kv_used, Tokens(5));
//! let decode = Action::Step(vec![BatchItem::Decode { id: RequestId(0) }]);
//! let s = apply(&instance, &s, &decode).unwrap();
//! assert!(s.all_done());
//! assert_eq!(s.time_ns, Nanos(2_000_000_000));
//! ```

pub mod calibration;
pub mod fluid;
pub mod instance;
pub mod memory;
pub mod model;
pub mod request;
pub mod rounds;
pub mod step_time;
pub mod trace;
pub mod units;
pub mod workload;

pub use instance::{EvictionRule, FirstToken, Instance, ModelConfig, Preemption};
pub use memory::MemoryConfig;
pub use model::{
    apply, apply_mut, Action, BatchItem, Phase, Resident, State, StepReport, Violation,
};
pub use request::{Information, OutputHint, Request, RequestId, RequestView, Revealed};
pub use step_time::{BatchShape, CompiledStepTime, StepTime};
pub use units::{Bytes, KvBlocks, Nanos, Tokens};
pub use workload::{ArrivalProcess, ClassSpec, WorkloadError, WorkloadFile};
