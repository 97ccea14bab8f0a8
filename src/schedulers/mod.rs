//! Scheduling policies, one per file, each citing what it models.
//!
//! [`by_name`] builds a policy from its CLI name with default parameters; [`catalog`] lists
//! every policy with its parameters (`kvsched schedulers`).

pub mod vllm_v0;

use crate::sched::Scheduler;

/// A catalog entry.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Entry {
    /// CLI name.
    pub name: &'static str,
    /// What it models.
    pub models: &'static str,
    /// Parameters and their defaults.
    pub parameters: &'static str,
}

/// Every scheduler.
pub fn catalog() -> Vec<Entry> {
    vec![Entry {
        name: "vllm-v0",
        models: "vLLM v0 default: FCFS, prefill-first, watermark, preempt most recent (recompute)",
        parameters: "max_num_seqs=256, max_num_batched_tokens=4096, watermark=memory.watermark_fraction",
    }]
}

/// The scheduler with this CLI name and default parameters.
pub fn by_name(name: &str) -> Option<Box<dyn Scheduler>> {
    match name {
        "vllm-v0" => Some(Box::new(vllm_v0::VllmV0::default())),
        _ => None,
    }
}
