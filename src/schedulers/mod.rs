//! Scheduling policies, one per file, each citing what it models.
//!
//! One registry: [`catalog`] is a table with one row per policy (name, what it models, its
//! parameters, what it reads, and how to build it). [`by_name`] builds a policy with its
//! default parameters and [`for_workload`] builds it designed for a workload; both read the
//! table, so a name exists in all three or in none.
//!
//! Every policy here is a pure decision function over the [`crate::sim::View`] plus its own
//! event-driven bookkeeping (never a count of `decide` calls), so that fast-forwarded and
//! step-by-step runs give identical results. None of them reads an output length (they ask for
//! [`kvsched_spec::Information::Hidden`]) except `wait`, which asks for `Known` (WAIT paper
//! Algorithm 1), and `mcsf` and `mc-benchmark`, which ask for `Predicted` (a run gives them
//! exact predictions unless it names a noise, [`crate::workload::default_predictions`]);
//! [`Entry::reads`] says which. [`for_workload`] builds `wait` and `nested-wait` with
//! fluid-designed thresholds, and fails when no design exists.

pub mod alpha_clear;
pub mod alpha_protect;
pub mod mcsf;
pub mod nested_wait;
pub mod orca;
pub mod sarathi;
pub mod sglang;
pub mod vllm_v0;
pub mod vllm_v1;
pub mod wait;
pub mod wait_cp;

use crate::sim::Scheduler;

/// A catalog entry.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Entry {
    /// CLI name.
    pub name: &'static str,
    /// What it models.
    pub models: &'static str,
    /// Parameters and their defaults.
    pub parameters: &'static str,
    /// What the policy reads of a request's output length (its information set).
    pub reads: &'static str,
    /// Builds the policy: with default parameters (`None`), or designed for a workload.
    #[serde(skip)]
    pub build: Build,
}

/// How a catalog row builds its policy: given a workload, a policy that designs its
/// parameters from it does so, and fails (naming what is missing) when no design exists.
pub type Build = fn(Option<&kvsched_spec::WorkloadFile>) -> Result<Box<dyn Scheduler>, String>;

impl Entry {
    /// The policy with default parameters.
    pub fn build_default(&self) -> Box<dyn Scheduler> {
        (self.build)(None).expect("every policy has default parameters")
    }
}

/// A [`Build`] for a policy that has no workload design: its default always.
macro_rules! fixed {
    ($e:expr) => {{
        fn build(_: Option<&kvsched_spec::WorkloadFile>) -> Result<Box<dyn Scheduler>, String> {
            Ok(Box::new($e))
        }
        build
    }};
}

/// A [`Build`] for a policy with a fluid design (`from_workload`) and by-name defaults.
macro_rules! designed {
    ($t:ty, $name:literal) => {{
        fn build(w: Option<&kvsched_spec::WorkloadFile>) -> Result<Box<dyn Scheduler>, String> {
            match w {
                None => Ok(Box::new(<$t>::default())),
                Some(w) => match <$t>::from_workload(w) {
                    Ok(s) => Ok(Box::new(s)),
                    Err(e) => Err(format!(
                        "{}: no fluid design for this workload ({e}); {} needs a workload with \
                         an affine step time and a fluid solution (kvsched fluid WORKLOAD.toml){}",
                        $name,
                        $name,
                        if $name == "wait" {
                            "; to run WAIT without the design, with the experiments' knob tl \
                             spread over the types (its by-name thresholds), use --scheduler \
                             wait:tl=64"
                        } else {
                            ""
                        }
                    )),
                },
            }
        }
        build
    }};
}

const HIDDEN: &str = "prompts, progress and memory only; never an output length (Hidden)";
const HIDDEN_MAX: &str = "prompts, progress and memory, plus a fixed maximum output length \
                          parameter; never a true output length (Hidden)";
const PREDICTED: &str = "predicted output lengths (Predicted): exact by default, noisy with \
                         simulate --prediction-noise EPS; a request without a prediction is an \
                         error (MissingPrediction), never charged a worst case";
const KNOWN: &str = "true output lengths (Known), as in WAIT paper Algorithm 1";

/// Every scheduler.
#[allow(clippy::too_many_lines, reason = "a table: one entry per scheduler")]
pub fn catalog() -> Vec<Entry> {
    vec![
        Entry {
            name: "mcsf",
            models: "MC-SF (arXiv 2502.07115 §4): shortest predicted output first, maximal \
                     prefix passing the future-memory check at predicted completions",
            parameters: "protection=0 (fraction of capacity held back); patience=0.5 s \
                         (deviation: a request waiting that long goes first; the paper's \
                         MC-SF has none)",
            reads: PREDICTED,
            build: fixed!(mcsf::Mcsf::default().with_patience(mcsf::DEFAULT_PATIENCE_NS)),
        },
        Entry {
            name: "mc-benchmark",
            models: "MC-Benchmark (arXiv 2502.07115 §6): FCFS order with MC-SF's memory check",
            parameters: "protection=0",
            reads: PREDICTED,
            build: fixed!(mcsf::Mcsf::benchmark()),
        },
        Entry {
            name: "vllm-v0",
            models: "vLLM v0 default: FCFS, prefill-first, watermark, preempt most recent \
                     (recompute)",
            parameters: "max_num_seqs=256, max_num_batched_tokens=4096, \
                         watermark=memory.watermark_fraction",
            reads: HIDDEN,
            build: fixed!(vllm_v0::VllmV0::default()),
        },
        Entry {
            name: "vllm-v1",
            models: "vLLM v1 scheduler: token budget, running first (chunked prefill), preempt \
                     last running by recompute, no admission in a step that preempted",
            parameters: "max_num_batched_tokens=2048, max_num_seqs=256 (vllm serve on A100), \
                         reserve_full_isl=true (vLLM 0.33: admit only if the whole prompt's \
                         blocks are free)",
            reads: HIDDEN,
            build: fixed!(vllm_v1::VllmV1::default()),
        },
        Entry {
            name: "vllm-v1-no-reserve",
            models: "vllm-v1 with reserve_full_isl=false (vLLM 0.8 to 0.11): only the first \
                     prefill chunk must fit at admission",
            parameters: "max_num_batched_tokens=2048, max_num_seqs=256, reserve_full_isl=false",
            reads: HIDDEN,
            build: fixed!(vllm_v1::VllmV1::no_reserve()),
        },
        Entry {
            name: "sarathi",
            models: "Sarathi-Serve as in Vidur: decodes first, then partial prefills, then FCFS \
                     admission under a chunk budget; watermark; preempt most recent",
            parameters: "chunk_size=512, batch_size_cap=128, \
                         watermark=memory.watermark_fraction",
            reads: HIDDEN,
            build: fixed!(sarathi::Sarathi::default()),
        },
        Entry {
            name: "sglang",
            models: "SGLang: prefill-first admission reserving new_token_ratio x max_new_tokens, \
                     chunked prefill, retract fewest-output requests on decode OOM",
            parameters: "max_new_tokens=2048, chunked_prefill_size=8192, \
                         max_prefill_tokens=16384, max_running_requests=4096, \
                         init_new_token_ratio=0.7, min_new_token_ratio=0.098, \
                         new_token_ratio_decay=(0.7-0.098)/600, clip_max_new_tokens=4096, \
                         retract_decode_steps=20",
            reads: HIDDEN_MAX,
            build: fixed!(sglang::Sglang::default()),
        },
        Entry {
            name: "orca",
            models: "Orca-style: reserve prompt + maximum output at admission, never evict",
            parameters: "max_output_tokens=2048, max_batch_size=128",
            reads: HIDDEN_MAX,
            build: fixed!(orca::Orca::default()),
        },
        Entry {
            name: "alpha-protect",
            models: "MC-SF paper baseline: alpha-protection greedy (admit FCFS while memory <= \
                     (1-alpha)M, clear all running on overflow)",
            parameters: "alpha=0.21",
            reads: HIDDEN,
            build: fixed!(alpha_protect::AlphaProtect::default()),
        },
        Entry {
            name: "alpha-clear",
            models: "MC-SF paper baseline: alpha-protection phi-clearing (evict a fraction phi of \
                     running requests, most recent first, on overflow)",
            parameters: "alpha=0.21, phi=0.2",
            reads: HIDDEN,
            build: fixed!(alpha_clear::AlphaClear::default()),
        },
        Entry {
            name: "wait",
            models: "WAIT (WAIT paper Algorithm 1): known output lengths, per-type per-stage \
                     thresholds, serve eligible types {j: n_j0 >= n_j} at every stage, else wait",
            parameters: "by name: tl=64 spread over types by arrival counts (n_j >= 1); with a \
                         workload: fluid design n_j = ceil(dT* lambda_j), or --scheduler \
                         wait:tl=X for the tl spread where no design exists; drain=true",
            reads: KNOWN,
            build: designed!(wait::Wait, "wait"),
        },
        Entry {
            name: "nested-wait",
            models: "Nested WAIT (WAIT paper Algorithm 2): hidden lengths, decode segments with \
                     resident boundary queues, prefix rule, LIFO boundary-queue overflow repair",
            parameters: "by name: one segment, n_1 = 64 / (mean revealed output + 1); with a \
                         workload: segments at the class outputs, q_k = min(p_k + 0.05, 0.99), \
                         entry slack 0.1; repair=true, drain=true",
            reads: HIDDEN,
            build: designed!(nested_wait::NestedWait, "nested-wait"),
        },
        Entry {
            name: "wait-cp",
            models: "WAIT-CP, the WAIT authors' Vidur variant: segment budgets rotating per \
                     stage, wait_gate, chunked prefill per request, tl admission cap, free \
                     interior stages",
            parameters: "tl=64, one segment (B_1 = tl), chunk_size=256, wait_gate=true, \
                         watermark=memory.watermark_fraction",
            reads: HIDDEN,
            build: fixed!(wait_cp::WaitCp::default()),
        },
    ]
}

/// The scheduler with this CLI name and default parameters.
pub fn by_name(name: &str) -> Option<Box<dyn Scheduler>> {
    catalog().into_iter().find(|e| e.name == name).map(|e| e.build_default())
}

/// The scheduler with this CLI name, designed for `workload` where the design needs it:
/// `wait` and `nested-wait` get fluid-designed thresholds (WAIT paper §4–§5); every other
/// policy gets its default parameters. `Err` names what failed: an unknown name (with the
/// known ones), or a WAIT design that does not exist for this workload (no affine step time,
/// no fluid solution). A failed design is an error, never a silent fallback to the by-name
/// thresholds: the error says how to run WAIT without the design instead (`wait:tl=X`, the
/// experiments' knob `tl`, [`wait::Wait::from_tl`], as by name with `X = 64`), a form only
/// `for_workload` reads.
pub fn for_workload(
    name: &str,
    workload: &kvsched_spec::WorkloadFile,
) -> Result<Box<dyn Scheduler>, String> {
    if let Some(tl) = name.strip_prefix("wait:tl=") {
        return match tl.parse::<f64>() {
            Ok(tl) if tl.is_finite() && tl > 0.0 => Ok(Box::new(wait::Wait::from_tl(tl))),
            _ => Err(format!("{name:?}: tl must be a positive number, as in wait:tl=64")),
        };
    }
    let catalog = catalog();
    match catalog.iter().find(|e| e.name == name) {
        Some(e) => (e.build)(Some(workload)),
        None => {
            let names: Vec<_> = catalog.iter().map(|e| e.name).collect();
            Err(format!("unknown scheduler {name:?}; expected one of {}", names.join(", ")))
        }
    }
}

/// Memory arithmetic shared by the policies.
pub(crate) mod mem {
    use crate::sim::{Repeat, ResidentView, View};
    use kvsched_spec::{BatchItem, RequestId, Tokens};

    /// Tokens a request holds once its whole prompt is prefilled (plus the first output token
    /// under [`kvsched_spec::FirstToken::WithPrefill`]).
    pub fn prompt_hold(view: &View<'_>, prompt: Tokens) -> Tokens {
        prompt + view.config().first_token.output_of_prefill(true)
    }

    /// Tokens held after a prefill chunk of `chunk` tokens on top of `prefilled` of `prompt`,
    /// with `generated` output tokens held already (0 for a prefilling request).
    fn held_after_chunk(view: &View<'_>, prefilled: Tokens, prompt: Tokens, chunk: u64) -> Tokens {
        let after = prefilled + Tokens(chunk);
        if after == prompt {
            prompt_hold(view, prompt)
        } else {
            after
        }
    }

    /// Footprint growth of a prefill chunk (`prefilled` of `prompt` done so far).
    pub fn chunk_growth(view: &View<'_>, prefilled: Tokens, prompt: Tokens, chunk: u64) -> Tokens {
        let after = held_after_chunk(view, prefilled, prompt, chunk);
        view.footprint(after) - view.footprint(prefilled)
    }

    /// The largest chunk `c <= want` whose growth fits in `free` (0 if none).
    pub fn max_chunk(
        view: &View<'_>,
        prefilled: Tokens,
        prompt: Tokens,
        want: u64,
        free: Tokens,
    ) -> u64 {
        let fits = |c: u64| chunk_growth(view, prefilled, prompt, c) <= free;
        if want == 0 || !fits(1) {
            return 0;
        }
        let (mut lo, mut hi) = (1u64, want);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo
    }

    /// Footprint growth of one decode of a request holding `held`.
    pub fn decode_growth(view: &View<'_>, held: Tokens) -> Tokens {
        view.footprint(held + Tokens(1)) - view.footprint(held)
    }

    /// Footprint growth of one iteration of `item` for the resident (or waiting) request `r`.
    pub fn item_growth(view: &View<'_>, r: &ResidentView, item: &BatchItem) -> Tokens {
        match *item {
            BatchItem::Decode { .. } => decode_growth(view, r.held()),
            BatchItem::Prefill { tokens, .. } => {
                chunk_growth(view, r.prefilled(), r.request().prompt_tokens(), tokens.get())
            }
        }
    }

    pub use crate::sim::util::decode_steps_within_room as decode_steps_within;

    /// `Repeat::UpTo(k)` for a decode-only batch that stays valid and identical for `k` steps
    /// given `room` tokens of headroom; `Repeat::Once` for any other batch.
    pub fn repeat_for(view: &View<'_>, batch: &[BatchItem], room: Tokens) -> Repeat {
        if batch.is_empty() || batch.iter().any(|i| matches!(i, BatchItem::Prefill { .. })) {
            return Repeat::Once;
        }
        let ids: Vec<RequestId> = batch.iter().map(BatchItem::id).collect();
        Repeat::UpTo(decode_steps_within(view, &ids, room, u64::MAX / 4).max(1))
    }
}
