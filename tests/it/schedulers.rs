//! The practical schedulers (`src/schedulers/`): validity on random instances under the spec's
//! pair assertions, reachability of the interesting regimes (evictions, full memory, long
//! queues), fast-forward equivalence, and known answers for vLLM v0.

use crate::common;
use kvsched::prng::{stream, Stream};
use kvsched::schedulers::nested_wait::{NestedThresholds, NestedWait};
use kvsched::schedulers::{
    self, alpha_clear, alpha_protect, mcsf, orca, sarathi, sglang, vllm_v0, vllm_v1, wait, wait_cp,
};
use kvsched::sim::Scheduler;
use kvsched::sim::{simulate, Check, Outcome, SimErrorKind, SimOptions, Stepping};
use kvsched_spec::{
    BatchItem, EvictionRule, FirstToken, Information, Instance, MemoryConfig, ModelConfig, Nanos,
    Preemption, Request, RequestId, StepTime, Tokens,
};
use proptest::prelude::*;
use rand::Rng;

/// Load regimes of the random instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Regime {
    /// Sparse arrivals, memory for many requests.
    Light,
    /// Bursty arrivals, memory for a few requests.
    Overload,
    /// Memory for about one request at its peak.
    Tiny,
}

const REGIMES: [Regime; 3] = [Regime::Light, Regime::Overload, Regime::Tiny];

/// Longest prompt and output of the generated requests.
const MAX_PROMPT: u64 = 48;
const MAX_OUTPUT: u64 = 64;

/// A random instance: 8 to 40 requests, every one of which fits in memory alone.
fn instance(seed: u64, regime: Regime) -> Instance {
    let mut rng = stream(seed, Stream::Instances);
    let n = rng.random_range(8..=40u32);
    let mut t = 0u64;
    let mut requests = Vec::with_capacity(n as usize);
    let gap_ns = match regime {
        Regime::Light => 400_000_000,
        Regime::Overload | Regime::Tiny => 5_000_000,
    };
    for id in 0..n {
        if rng.random_bool(0.7) {
            t += rng.random_range(0..=2 * gap_ns);
        }
        requests.push(Request {
            id: RequestId(id),
            arrival_ns: Nanos(t),
            prompt_tokens: Tokens(rng.random_range(1..=MAX_PROMPT)),
            output_tokens: Tokens(rng.random_range(1..=MAX_OUTPUT)),
            predicted_output_tokens: None,
            class: 0,
        });
    }
    // Predictions (for the policies that read them) from their own stream, so that the
    // instance stream is unchanged; noise 0.5 reaches under-estimates.
    kvsched::workload::add_predictions(&mut requests, 0.5, seed);
    let block = if rng.random_bool(0.3) { 4 } else { 1 };
    let peak = requests.iter().map(|r| r.peak_tokens().get()).max().unwrap_or(1) + 1;
    let peak = peak.div_ceil(block) * block;
    let capacity = match regime {
        Regime::Light => peak * rng.random_range(6..=12),
        Regime::Overload => peak * rng.random_range(2..=3),
        Regime::Tiny => peak + block * rng.random_range(0..=2),
    };
    let watermark_fraction =
        if regime != Regime::Tiny && rng.random_bool(0.5) { 0.01 } else { 0.0 };
    let step_time = if rng.random_bool(0.5) {
        StepTime::Affine { d0_s: 0.001, d1_s_per_token: 2e-6 }
    } else {
        StepTime::UnitRounds
    };
    let first_token =
        if rng.random_bool(0.5) { FirstToken::WithPrefill } else { FirstToken::SeparateDecode };
    // Drawn last, so that the draws above are those of the instances before the rule existed.
    let preemption =
        if rng.random_bool(0.5) { Preemption::Restart } else { Preemption::KeepGenerated };
    Instance {
        config: ModelConfig {
            memory: MemoryConfig {
                kv_capacity_tokens: capacity,
                block_size_tokens: block,
                watermark_fraction,
            },
            step_time,
            first_token,
            eviction: EvictionRule::Any,
            preemption,
            information: Information::Hidden,
        },
        requests,
    }
}

/// Every policy under test: each CLI name, and a small-budget variant (`NAME/small`) that
/// exercises chunking, batch caps and admission limits on these small instances.
fn policies() -> Vec<String> {
    let mut out: Vec<String> = schedulers::catalog().iter().map(|e| e.name.to_string()).collect();
    for base in ["vllm-v0", "vllm-v1", "sarathi", "sglang", "orca", "alpha-clear"] {
        out.push(format!("{base}/small"));
    }
    out
}

fn small_sglang() -> sglang::Sglang {
    let mut s = sglang::Sglang::default();
    s.max_new_tokens = 24;
    s.chunked_prefill_size = 20;
    s.max_prefill_tokens = 40;
    s.max_running_requests = 6;
    s
}

/// Orca with these parameters, its fast path on or off.
fn orca_with(max_output_tokens: u64, max_batch_size: usize, fast_path: bool) -> orca::Orca {
    let mut o = orca::Orca::default();
    (o.max_output_tokens, o.max_batch_size, o.fast_path) =
        (max_output_tokens, max_batch_size, fast_path);
    o
}

/// WAIT-CP with one segment of budget `tl` and chunk `cs`, its fast path on or off.
fn wait_cp_with(tl: u64, cs: u64, fast_path: bool) -> wait_cp::WaitCp {
    let mut w = wait_cp::WaitCp::from_tl(tl, cs);
    w.fast_path = fast_path;
    w
}

/// A fresh policy by name (variants included), with Orca's and SGLang's output bound set to
/// the generator's maximum so that Orca's contract holds.
fn make(name: &str) -> Box<dyn Scheduler> {
    match name {
        "orca" => Box::new(orca_with(MAX_OUTPUT, 128, true)),
        "sglang" => {
            let mut s = sglang::Sglang::default();
            s.max_new_tokens = MAX_OUTPUT;
            Box::new(s)
        }
        _ => match policies_small_by_name(name) {
            Some(p) => p,
            None => schedulers::by_name(name).expect("known scheduler"),
        },
    }
}

fn policies_small_by_name(name: &str) -> Option<Box<dyn Scheduler>> {
    let base = name.strip_suffix("/small")?;
    let p: Box<dyn Scheduler> = match base {
        "vllm-v0" => Box::new(vllm_v0::VllmV0 { max_num_seqs: 6, max_num_batched_tokens: 40 }),
        "vllm-v1" => Box::new(vllm_v1::VllmV1 {
            max_num_batched_tokens: 20,
            max_num_seqs: 6,
            ..Default::default()
        }),
        "sarathi" => {
            Box::new(sarathi::Sarathi { chunk_size: 16, batch_size_cap: 6, ..Default::default() })
        }
        "sglang" => Box::new(small_sglang()),
        "orca" => Box::new(orca_with(16, 4, true)),
        "alpha-clear" => {
            Box::new(alpha_clear::AlphaClear { alpha: 0.05, phi: 0.5, ..Default::default() })
        }
        _ => return None,
    };
    Some(p)
}

fn run(inst: &Instance, name: &str, check: Check, stepping: Stepping) -> Outcome {
    let mut policy = make(name);
    let options = SimOptions {
        check,
        stepping,
        max_steps: Some(2_000_000),
        timeline: true,
        ..Default::default()
    };
    match simulate(inst, policy.as_mut(), options) {
        Ok(o) => o,
        Err(e) => {
            panic!("{name}: {e} (completed {} of {})", e.partial.completed, inst.requests.len())
        }
    }
}

/// Statistics of one regime for one policy over all seeds.
#[derive(Default)]
struct Reached {
    evictions: u64,
    full_memory: bool,
    long_queue: bool,
    /// A request resumed keeping output (`KeepGenerated`, `kept > 0`) and completed.
    resumed_with_output: bool,
}

const SEEDS_PER_REGIME: u64 = 12;

#[test]
fn every_policy_is_valid_and_completes_under_pair_assertions() {
    let base = common::seed(0x5c4e_d001);
    for name in policies() {
        let mut reached = [Reached::default(), Reached::default(), Reached::default()];
        for (ri, &regime) in REGIMES.iter().enumerate() {
            for i in 0..SEEDS_PER_REGIME {
                let seed = kvsched::prng::derive_seed(base, i);
                let inst = instance(seed, regime);
                let replay = common::replay(base, "schedulers::every_policy");
                let o = std::panic::catch_unwind(|| {
                    run(&inst, &name, Check::On, Stepping::FastForward)
                })
                .unwrap_or_else(|_| panic!("{name} {regime:?} seed {seed:#x}\n{replay}"));
                assert_eq!(
                    o.completed as usize,
                    inst.requests.len(),
                    "{name} {regime:?} {seed:#x}"
                );
                assert!(o.requests.iter().all(|r| r.finish_ns.is_some()), "{name} {seed:#x}");
                let cap = o.kv_capacity_tokens.get();
                let peak = o.timeline.iter().map(|p| p.kv_used_tokens.get()).max().unwrap_or(0);
                let queue = o.timeline.iter().map(|p| p.waiting).max().unwrap_or(0);
                let r = &mut reached[ri];
                r.evictions += o.evictions;
                r.full_memory |= peak * 10 >= cap * 8;
                r.long_queue |= queue >= 8;
                r.resumed_with_output |= o.requests.iter().any(|q| q.kept_tokens > Tokens::ZERO);
                if inst.config.preemption == Preemption::Restart {
                    assert!(o.requests.iter().all(|q| q.kept_tokens == Tokens::ZERO), "{name}");
                }
                if name.starts_with("orca") && !name.ends_with("/small") {
                    assert_eq!(o.evictions, 0, "orca evicted with a valid bound, seed {seed:#x}");
                }
            }
        }
        check_reached(&name, &reached);
    }
}

/// "Sometimes" assertions: the generator really reaches the regimes the policies are about.
fn check_reached(name: &str, reached: &[Reached; 3]) {
    let [_, overload, tiny] = reached;
    assert!(overload.long_queue || tiny.long_queue, "{name}: no long queue reached");
    assert!(overload.full_memory || tiny.full_memory, "{name}: memory never close to full");
    let evicting = ["vllm-v0", "vllm-v1", "sarathi", "sglang", "alpha-protect", "alpha-clear"];
    if evicting.contains(&name) {
        assert!(overload.evictions + tiny.evictions > 0, "{name}: no eviction reached");
        assert!(
            overload.resumed_with_output || tiny.resumed_with_output,
            "{name}: no request resumed keeping its output (KeepGenerated)"
        );
    }
}

fn records_equal(inst: &Instance, name: &str, seed: u64) -> Result<(), TestCaseError> {
    let ff = run(inst, name, Check::Off, Stepping::FastForward);
    let every = run(inst, name, Check::Off, Stepping::EveryStep);
    let replay = common::replay(seed, "schedulers::fast_forward");
    prop_assert_eq!(&ff.requests, &every.requests, "{} seed {:#x}\n{}", name, seed, replay);
    prop_assert_eq!(ff.steps, every.steps, "{} seed {:#x}", name, seed);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn fast_forward_matches_every_step(seed in any::<u64>(), r in 0usize..3) {
        let seed = common::seed(seed);
        let inst = instance(seed, REGIMES[r]);
        for name in policies() {
            records_equal(&inst, &name, seed)?;
        }
    }
}

/// d0 = 10 ms and d1 = 1 us per token are whole nanoseconds, so no step rounds.
fn affine_instance(requests: Vec<(u64, u64)>, capacity: u64) -> Instance {
    let requests = requests
        .into_iter()
        .enumerate()
        .map(|(i, (prompt, output))| Request {
            id: RequestId(i as u32),
            arrival_ns: Nanos(0),
            prompt_tokens: Tokens(prompt),
            output_tokens: Tokens(output),
            predicted_output_tokens: None,
            class: 0,
        })
        .collect();
    Instance {
        config: ModelConfig {
            memory: MemoryConfig::tokens(capacity),
            step_time: StepTime::Affine { d0_s: 0.010, d1_s_per_token: 1e-6 },
            first_token: FirstToken::WithPrefill,
            eviction: EvictionRule::Any,
            preemption: Preemption::Restart,
            information: Information::Hidden,
        },
        requests,
    }
}

/// Service time of a request alone: one prefill iteration attending `l` tokens, which also
/// produces token 1, then `o - 1` decodes; the decode at stage `s` attends `l + s + 1` tokens
/// (its `l + s` held tokens and the new one).
fn alone_ns(l: u64, o: u64) -> u64 {
    let (d0, d1) = (10_000_000u64, 1_000u64);
    let prefill = d0 + d1 * l;
    let decodes: u64 = (1..o).map(|s| d0 + d1 * (l + s + 1)).sum();
    prefill + decodes
}

#[test]
fn vllm_v0_one_request_alone_has_the_affine_latency() {
    let inst = affine_instance(vec![(100, 20)], 10_000);
    let o = run(&inst, "vllm-v0", Check::On, Stepping::FastForward);
    let r = &o.requests[0];
    assert_eq!(r.finish_ns, Some(Nanos(alone_ns(100, 20))));
    assert_eq!(r.first_token_ns, Some(Nanos(10_000_000 + 100_000)));
    assert_eq!(o.steps, 20);
    assert_eq!(o.evictions, 0);
}

#[test]
fn vllm_v0_capacity_for_one_request_serves_in_order() {
    // Two prompts of 60 never fit together in 90 tokens: the requests run one at a time.
    let inst = affine_instance(vec![(60, 30), (60, 30), (60, 30)], 90);
    let o = run(&inst, "vllm-v0", Check::On, Stepping::FastForward);
    let t = alone_ns(60, 30);
    for (i, r) in o.requests.iter().enumerate() {
        assert_eq!(r.finish_ns, Some(Nanos(t * (i as u64 + 1))), "request {i}");
        assert_eq!(r.evictions, 0);
    }
}

/// A deliberately wrong fast path: the policy's plan with its last admission dropped whenever
/// it admits two or more into an empty memory, or into any memory with `.1` set (still a
/// valid plan). The equivalence check must tell it apart.
struct DropLastAdmission(Box<dyn Scheduler>, bool);

impl Scheduler for DropLastAdmission {
    fn name(&self) -> String {
        self.0.name()
    }
    fn information(&self) -> Information {
        self.0.information()
    }
    fn decide(&mut self, view: &kvsched::sim::View<'_>) -> kvsched::sim::Plan {
        let mut plan = self.0.decide(view);
        let prefills = plan.batch.iter().filter(|i| matches!(i, BatchItem::Prefill { .. })).count();
        if prefills >= 2 && (self.1 || view.running_len() == 0) {
            let last = plan.batch.iter().rposition(|i| matches!(i, BatchItem::Prefill { .. }));
            plan.batch.remove(last.expect("counted"));
        }
        plan
    }
}

/// A policy built with its fast path on (`true`) or off.
type Make = fn(bool) -> Box<dyn Scheduler>;

/// Every policy variant with a fast path, by name.
#[allow(clippy::too_many_lines, reason = "a table: one entry per variant")]
fn fast_path_variants() -> [(&'static str, Make); 34] {
    [
        ("alpha-protect", |f| {
            Box::new(alpha_protect::AlphaProtect { fast_path: f, ..Default::default() })
        }),
        ("alpha-clear", |f| {
            Box::new(alpha_clear::AlphaClear { fast_path: f, ..Default::default() })
        }),
        ("alpha-clear/small", |f| {
            Box::new(alpha_clear::AlphaClear { alpha: 0.05, phi: 0.5, fast_path: f })
        }),
        ("vllm-v1", |f| Box::new(vllm_v1::VllmV1 { fast_path: f, ..Default::default() })),
        ("vllm-v1-no-reserve", |f| {
            Box::new(vllm_v1::VllmV1 { fast_path: f, ..vllm_v1::VllmV1::no_reserve() })
        }),
        ("sarathi", |f| Box::new(sarathi::Sarathi { fast_path: f, ..Default::default() })),
        ("vllm-v1/small", |f| {
            Box::new(vllm_v1::VllmV1 {
                max_num_batched_tokens: 20,
                max_num_seqs: 6,
                reserve_full_isl: false,
                fast_path: f,
            })
        }),
        ("sarathi/small", |f| {
            Box::new(sarathi::Sarathi { chunk_size: 16, batch_size_cap: 6, fast_path: f })
        }),
        ("sglang", |f| {
            let mut s = sglang::Sglang::default();
            s.max_new_tokens = MAX_OUTPUT;
            s.fast_path = f;
            Box::new(s)
        }),
        ("sglang/small", |f| {
            let mut s = small_sglang();
            s.fast_path = f;
            Box::new(s)
        }),
        ("sglang/tight", |f| {
            // Underestimates max_new_tokens: retraction and the ratio's reset are reached.
            let mut s = small_sglang();
            s.max_new_tokens = 4;
            s.fast_path = f;
            Box::new(s)
        }),
        ("mcsf", |f| {
            let mut s = mcsf::Mcsf::default().with_patience(mcsf::DEFAULT_PATIENCE_NS / 100);
            s.fast_path = f;
            Box::new(s)
        }),
        ("mcsf/paper", |f| {
            let mut s = mcsf::Mcsf::default();
            s.fast_path = f;
            Box::new(s)
        }),
        ("mc-benchmark", |f| {
            let mut s = mcsf::Mcsf::benchmark();
            s.fast_path = f;
            Box::new(s)
        }),
        // Exact predictions: the checkpoints are kept across decisions.
        ("mcsf/exact", |f| {
            let mut s = mcsf::Mcsf::default();
            s.fast_path = f;
            Box::new(s)
        }),
        ("mc-benchmark/exact", |f| {
            let mut s = mcsf::Mcsf::benchmark();
            s.fast_path = f;
            Box::new(s)
        }),
        ("orca", |f| Box::new(orca_with(MAX_OUTPUT, 128, f))),
        // Outputs beyond the bound: reservations are outgrown and decodes stop fitting.
        ("orca/small", |f| Box::new(orca_with(16, 4, f))),
        ("wait-cp", |f| Box::new(wait_cp_with(64, 256, f))),
        // B_1 < S_1: zero turns of the rotation, the tl cap, and residents mid-prefill.
        ("wait-cp/tight", |f| Box::new(wait_cp_with(4, 256, f))),
        ("wait-cp/chunked", |f| Box::new(wait_cp_with(6, 8, f))),
        ("wait-cp/no-gate", |f| {
            let mut w = wait_cp_with(5, 256, f);
            w.wait_gate = false;
            Box::new(w)
        }),
        // WAIT by name (tl spread over the types by arrival counts), a tight tl (more types
        // below their thresholds, so more paused residents), and real per-type thresholds
        // (the rotor alternates caps, resident stages take ceil(n_j)).
        ("wait", |f| Box::new(wait_with(wait::Wait::from_tl(64.0), f))),
        ("wait/tight", |f| Box::new(wait_with(wait::Wait::from_tl(6.0), f))),
        ("wait/per-type", |f| Box::new(wait_with(wait_per_type(), f))),
        // A large tl: thresholds start high and fall as arrivals accumulate, so stages hold more
        // residents than the later ceil(n_j) and the per-stage cap selects among them.
        ("wait/falling", |f| Box::new(wait_with(wait::Wait::from_tl(400.0), f))),
        ("sglang/clipped", |f| {
            // The clip binds: the fast path's sorted reservations, not its incremental ones.
            let mut s = small_sglang();
            s.clip_max_new_tokens = 8;
            s.fast_path = f;
            Box::new(s)
        }),
        // One segment: the catalog's design, a fractional threshold (admission caps of 1 and
        // 2, stages of 2), and a large one.
        ("nested-wait", |f| Box::new(nested_wait_with(NestedThresholds::TotalLimit(64.0), f))),
        ("nested-wait/fixed", |f| {
            Box::new(nested_wait_with(NestedThresholds::Fixed(vec![1.5]), f))
        }),
        ("nested-wait/wide", |f| {
            Box::new(nested_wait_with(NestedThresholds::TotalLimit(200.0), f))
        }),
        // Several segments: fractional thresholds (entry rotors on zero turns, paused
        // segments, the repair), wider ones, and the fluid design of the lmsys-like mix.
        ("nested-wait/segments", |f| Box::new(nested_segments(f))),
        // The same under `EvictionRule::Lifo` (the instance's rule is set by the suffix): the
        // repair stops at the first recent resident that is not a victim.
        ("nested-wait/segments/lifo", |f| Box::new(nested_segments(f))),
        ("nested-wait/segments-wide", |f| {
            let mut s =
                NestedWait::new(vec![16, 32, 48], NestedThresholds::Fixed(vec![6.0, 3.5, 1.2]));
            s.fast_path = f;
            Box::new(s)
        }),
        ("nested-wait/lmsys-fluid", |f| {
            let text = include_str!("../../workloads/lmsys-like.toml");
            let w = kvsched_spec::WorkloadFile::parse("lmsys-like.toml", text).expect("parses");
            let mut s = NestedWait::from_workload(&w).expect("the lmsys-like design exists");
            s.fast_path = f;
            Box::new(s)
        }),
    ]
}

fn wait_with(mut w: wait::Wait, fast_path: bool) -> wait::Wait {
    w.fast_path = fast_path;
    w
}

/// Real thresholds between 0.5 and 3 for every type the generator draws.
fn wait_per_type() -> wait::Wait {
    let mut m = std::collections::BTreeMap::new();
    for p in 1..=MAX_PROMPT {
        for o in 1..=MAX_OUTPUT {
            m.insert((p, o), 0.5 + ((p * 7 + o * 3) % 6) as f64 / 2.0);
        }
    }
    wait::Wait::with_thresholds(wait::Thresholds::PerType(m))
}

/// A four-segment Nested WAIT with fractional thresholds, its fast path on or off.
fn nested_segments(fast_path: bool) -> NestedWait {
    let mut s =
        NestedWait::new(vec![6, 12, 24, 40], NestedThresholds::Fixed(vec![2.0, 1.5, 1.2, 0.7]));
    s.fast_path = fast_path;
    s
}

/// One-segment Nested WAIT with these thresholds, its fast path on or off.
fn nested_wait_with(thresholds: NestedThresholds, fast_path: bool) -> NestedWait {
    let mut s = NestedWait::new(Vec::new(), thresholds);
    s.fast_path = fast_path;
    s
}

/// Counts the plans that hold a decode-group member back ([`kvsched::sim::Plan::hold`]), and
/// the `decode_all` plans that evict (a fast path's memory guard).
struct CountHolds(Box<dyn Scheduler>, u64, u64);

impl Scheduler for CountHolds {
    fn name(&self) -> String {
        self.0.name()
    }
    fn information(&self) -> Information {
        self.0.information()
    }
    fn decide(&mut self, view: &kvsched::sim::View<'_>) -> kvsched::sim::Plan {
        let plan = self.0.decide(view);
        self.1 += u64::from(!plan.hold.is_empty());
        self.2 += u64::from(plan.decode_all && !plan.evict.is_empty());
        plan
    }
}

/// Every policy with a fast path (vLLM v1's and Sarathi's common case, SGLang's incremental
/// queue and reservations and `decode_all` stretch, MC-SF's and MC-Benchmark's ordered queue,
/// Orca's incremental reservations, WAIT-CP's one-segment `decode_all` stretch, Nested WAIT's
/// one-segment and multi-segment plans with a hold list, WAIT's residents filed by type)
/// decides exactly what its general path decides: identical records and iteration counts with
/// the fast path on and off, in every regime (evictions and full memory included), with default
/// and small parameters. A deliberately wrong fast path ([`DropLastAdmission`]) is caught for
/// each. Sometimes: Nested WAIT's fast path holds residents back (a stage more crowded than its
/// cap), a fast memory guard evicts within a `decode_all` plan, and with several segments a
/// fast decision holds a paused segment, the fast repair evicts, and a fast batch is listed.
#[test]
fn fast_paths_decide_what_the_general_paths_decide() {
    let base = common::seed(0xFA57);
    let variants = fast_path_variants();
    let (mut evictions, mut holds, mut fast_evictions) = (0, 0, 0);
    for (name, make_it) in variants {
        let mut caught = 0;
        for &regime in &REGIMES {
            for i in 0..SEEDS_PER_REGIME {
                let seed = kvsched::prng::derive_seed(base, i);
                let mut inst = instance(seed, regime);
                if name.ends_with("/exact") {
                    inst.requests.iter_mut().for_each(|r| {
                        r.predicted_output_tokens = Some(r.output_tokens);
                    });
                }
                if name.ends_with("/lifo") {
                    inst.config.eviction = EvictionRule::Lifo;
                }
                let go = |s: &mut dyn Scheduler| {
                    let opts = SimOptions { check: Check::On, ..Default::default() };
                    simulate(&inst, s, opts).expect("valid run")
                };
                let mut counted = CountHolds(make_it(true), 0, 0);
                let (fast, general) = (go(&mut counted), go(make_it(false).as_mut()));
                holds += counted.1;
                fast_evictions += counted.2;
                let ctx = format!("{name} {regime:?}\n{}", common::replay(base, "fast_paths"));
                assert_eq!(fast.requests, general.requests, "{ctx}");
                assert_eq!(fast.steps, general.steps, "{ctx}");
                evictions += fast.evictions;
                let opts = SimOptions { check: Check::On, ..Default::default() };
                // The mutant may also stall (a policy that lost track of a request): caught.
                let mutant = simulate(&inst, &mut DropLastAdmission(make_it(true), false), opts);
                caught += u32::from(!mutant.is_ok_and(|m| m.requests == general.requests));
            }
        }
        assert!(caught > 0, "{name}: the check never told a wrong fast path apart");
    }
    assert!(evictions > 0, "the generator never reached an eviction");
    assert!(holds > 0, "no fast path ever held a resident back");
    assert!(fast_evictions > 0, "no decode_all plan ever evicted (a fast memory guard)");
    // Sometimes, with several segments: the fast path decides with a paused segment, its
    // repair evicts (under either eviction rule), and it lists a batch that holds most
    // residents.
    let (mut paused, mut repaired, mut explicit, mut repaired_lifo) = (0, 0, 0, 0);
    for &regime in &REGIMES {
        for i in 0..SEEDS_PER_REGIME {
            let mut inst = instance(kvsched::prng::derive_seed(base, i), regime);
            let mut s = nested_segments(true);
            simulate(&inst, &mut s, SimOptions::default()).expect("valid run");
            paused += s.paused_holds;
            repaired += s.fast_repairs;
            explicit += s.explicit_batches;
            inst.config.eviction = EvictionRule::Lifo;
            let mut s = nested_segments(true);
            simulate(&inst, &mut s, SimOptions::default()).expect("valid run");
            repaired_lifo += s.fast_repairs;
        }
    }
    assert!(paused > 0, "no fast decision held a paused segment");
    assert!(repaired > 0, "the fast path's repair never evicted");
    assert!(repaired_lifo > 0, "the fast path's repair never evicted under Lifo");
    assert!(explicit > 0, "the fast path never listed its batch (most residents held)");
}

/// A policy that reads predictions stops the run at a request without one
/// (`MissingPrediction`), never charging it a worst case; with the default exact predictions
/// the same run completes. `kvsched schedulers` states what each policy reads, matching the
/// information set it asks the engine for.
#[test]
fn predictions_are_required_and_the_catalog_says_who_reads_what() {
    let mut inst = instance(common::seed(0x9ED1), Regime::Light);
    inst.requests.iter_mut().for_each(|r| r.predicted_output_tokens = None);
    for name in ["mcsf", "mc-benchmark"] {
        let err = simulate(&inst, make(name).as_mut(), SimOptions::default()).unwrap_err();
        assert_eq!(err.kind, SimErrorKind::MissingPrediction { id: RequestId(0) }, "{name}");
        assert!(err.to_string().contains("--prediction-noise"), "{err}");
        let mut given = inst.clone();
        kvsched::workload::default_predictions(Information::Predicted, &mut given.requests);
        let out = simulate(&given, make(name).as_mut(), SimOptions::default()).expect(name);
        assert_eq!(out.completed, inst.requests.len() as u64, "{name}");
    }
    for e in schedulers::catalog() {
        let info = schedulers::by_name(e.name).expect("catalog name").information();
        let word = format!("({info:?})");
        assert!(e.reads.contains(&word), "{}: reads {:?}, asks for {info:?}", e.name, e.reads);
    }
}

/// A WAIT design that does not exist is an error naming why, not a silent fallback.
#[test]
fn a_wait_design_that_does_not_exist_is_an_error() {
    let text = include_str!("../../workloads/lmsys-like.toml");
    let w = kvsched_spec::WorkloadFile::parse("lmsys-like.toml", text).unwrap();
    let err = schedulers::for_workload("wait", &w).err().expect("no integer design on lmsys");
    assert!(err.contains("no fluid design"), "{err}");
    // The error says how to run WAIT without the design, and that form runs.
    assert!(err.contains("--scheduler wait:tl=64"), "{err}");
    let by_tl = schedulers::for_workload("wait:tl=64", &w).expect("wait:tl=64");
    assert_eq!(by_tl.name(), "wait");
    for bad in ["wait:tl=0", "wait:tl=-3", "wait:tl=nan", "wait:tl=", "wait:tl=x"] {
        let e = schedulers::for_workload(bad, &w).err().expect(bad);
        assert!(e.contains("positive number"), "{bad}: {e}");
    }
    assert!(schedulers::by_name("wait:tl=64").is_none(), "only for_workload reads the form");
    assert!(schedulers::for_workload("nope", &w).err().expect("unknown").contains("vllm-v0"));
    assert!(schedulers::for_workload("vllm-v0", &w).is_ok());
}

/// One registry: every name is in the table once, builds a policy that calls itself by that
/// name both with defaults and designed for a workload, and a name outside the table exists
/// nowhere (neither `by_name` nor `for_workload` knows it).
#[test]
fn the_scheduler_registry_is_one_table() {
    let text = include_str!("../../workloads/lmsys-like.toml");
    let lmsys = kvsched_spec::WorkloadFile::parse("lmsys-like.toml", text).unwrap();
    let catalog = schedulers::catalog();
    let mut names: Vec<&str> = catalog.iter().map(|e| e.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), catalog.len(), "a name appears twice");
    let mut designed = 0;
    for e in &catalog {
        assert_eq!(schedulers::by_name(e.name).expect("by name").name(), e.name);
        match schedulers::for_workload(e.name, &lmsys) {
            Ok(s) => assert_eq!(s.name(), e.name),
            Err(err) => {
                assert!(err.starts_with(e.name) && err.contains("no fluid design"), "{err}");
                designed += 1;
            }
        }
    }
    // Sometimes: the table has rows whose build reads the workload.
    assert!(designed > 0, "no row designed itself for the workload");
    assert!(schedulers::by_name("vllm-v2").is_none());
    assert!(schedulers::for_workload("vllm-v2", &lmsys).is_err());
}

/// WAIT's fast path on the lmsys-like mix (ten types, many requests each) decides what its
/// general path decides, and a dropped admission is caught: with the real-valued fluid design
/// `n_j = dT* lambda_j` (the integer one exceeds C there), by name (`tl = 64`), and with a large
/// `tl` whose thresholds fall as arrivals accumulate, so that stages hold more residents than
/// the current `ceil(n_j)` and the per-stage cap selects among them. Sometimes: the runs reach
/// decisions with paused residents of a non-eligible type, here and on the generator's
/// instances, and the fast path's bookkeeping never loses track (no rebuild from the view).
#[test]
fn wait_fast_path_on_a_designed_mix_and_with_paused_residents() {
    use kvsched::workload::{generate, Amount};
    let text = include_str!("../../workloads/lmsys-like.toml");
    let w = kvsched_spec::WorkloadFile::parse("lmsys-like.toml", text).unwrap();
    let inputs = kvsched_spec::fluid::FluidInputs::from_workload(&w).unwrap();
    let designed = wait::Wait::from_inputs(&inputs, false, None).expect("real design exists");
    let variants = [designed, wait::Wait::from_tl(64.0), wait::Wait::from_tl(3000.0)];
    let base = common::seed(0x3A17_FA57);
    let (mut paused, mut crowded) = (0, 0);
    for i in 0..2 {
        let seed = kvsched::prng::derive_seed(base, i);
        let inst = Instance {
            config: w.model_config(Information::Known),
            requests: generate(&w, Amount::Requests(400), seed),
        };
        for (v, policy) in variants.iter().enumerate() {
            let opts = || SimOptions { check: Check::Off, ..Default::default() };
            let (mut fast, mut general) =
                (wait_with(policy.clone(), true), wait_with(policy.clone(), false));
            let a = simulate(&inst, &mut fast, opts()).expect("valid run");
            let b = simulate(&inst, &mut general, opts()).expect("valid run");
            let ctx = format!("variant {v}\n{}", common::replay(base, "wait_fast_path"));
            assert_eq!(a.completed, 400, "{ctx}");
            assert_eq!(a.requests, b.requests, "{ctx}");
            assert_eq!(a.steps, b.steps, "{ctx}");
            assert_eq!(fast.paused_decisions, general.paused_decisions, "{ctx}");
            assert_eq!(fast.crowded_decisions, general.crowded_decisions, "{ctx}");
            assert_eq!(fast.fast_path_rebuilds(), 0, "{ctx}");
            paused += fast.paused_decisions;
            crowded += fast.crowded_decisions;
            // The mutant drops an admission while others run (memory is never empty here).
            let mutant = DropLastAdmission(Box::new(wait_with(policy.clone(), true)), true);
            let mutant = simulate(&inst, &mut { mutant }, opts());
            assert!(!mutant.is_ok_and(|m| m.requests == b.requests), "mutant kept\n{ctx}");
        }
    }
    assert!(paused > 0, "the lmsys runs never paused a type with residents");
    assert!(crowded > 0, "no stage ever held more residents than its cap");
    let base = common::seed(0xFA57);
    let mut paused = 0;
    for &regime in &REGIMES {
        for i in 0..SEEDS_PER_REGIME {
            let inst = instance(kvsched::prng::derive_seed(base, i), regime);
            let mut fast = wait::Wait::from_tl(6.0);
            let opts = SimOptions { check: Check::On, ..Default::default() };
            simulate(&inst, &mut fast, opts).expect("valid run");
            assert_eq!(fast.fast_path_rebuilds(), 0, "{regime:?} {i}");
            paused += fast.paused_decisions;
        }
    }
    assert!(paused > 0, "the generator never reached a paused resident of a waiting type");
}

/// Runs a policy's `decode_all` plans as their explicit batches ([`Plan::expanded`]: every
/// decode listed, held residents left out), so the engine takes its per-item path instead of
/// the decode group's. `drop_decode` is the mutant: it also leaves out one listed decode.
///
/// [`Plan::expanded`]: kvsched::sim::Plan::expanded
struct Explicit {
    inner: Box<dyn Scheduler>,
    drop_decode: bool,
    /// `decode_all` plans seen, those with a hold list, and decodes the mutant dropped.
    group_plans: u64,
    hold_plans: u64,
    dropped: u64,
}

impl Scheduler for Explicit {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn information(&self) -> Information {
        self.inner.information()
    }
    fn decide(&mut self, view: &kvsched::sim::View<'_>) -> kvsched::sim::Plan {
        let plan = self.inner.decide(view);
        if !plan.decode_all {
            return plan;
        }
        self.group_plans += 1;
        self.hold_plans += u64::from(!plan.hold.is_empty());
        let mut batch = plan.expanded(view);
        let decodes = batch.iter().filter(|i| matches!(i, BatchItem::Decode { .. })).count();
        if self.drop_decode && decodes >= 2 {
            let first = batch.iter().position(|i| matches!(i, BatchItem::Decode { .. }));
            batch.remove(first.expect("counted"));
            self.dropped += 1;
        }
        kvsched::sim::Plan { batch, decode_all: false, hold: Vec::new(), ..plan }
    }
}

/// The engine side of every fast path, for every policy of the catalog (vLLM v0 included,
/// whose only path is `decode_all`): the decode group (lazy clock, footprint histogram,
/// completion heap, hold list) produces the same records and steps as the same plans run as
/// explicit batches. A mutant that drops one decode from the explicit batch is caught for every
/// policy whose `decode_all` plans ever decode two requests; "sometimes": most policies do, and
/// some hold.
#[test]
fn decode_group_plans_run_as_their_explicit_batches_for_every_policy() {
    let base = common::seed(0xDEC0);
    let (mut group_users, mut mutated, mut holds) = (Vec::new(), Vec::new(), 0);
    for entry in schedulers::catalog() {
        let name = entry.name;
        let make = || schedulers::by_name(name).expect("a catalog name builds by name");
        let (mut group_plans, mut dropped, mut caught) = (0, 0, 0);
        for &regime in &REGIMES {
            for i in 0..SEEDS_PER_REGIME / 3 {
                let seed = kvsched::prng::derive_seed(base, i);
                let mut inst = instance(seed, regime);
                inst.requests.iter_mut().for_each(|r| {
                    r.predicted_output_tokens = Some(r.output_tokens);
                });
                let opts = || SimOptions { check: Check::On, ..Default::default() };
                let ctx = format!("{name} {regime:?}\n{}", common::replay(base, "decode_group"));
                let grouped = simulate(&inst, make().as_mut(), opts()).expect(&ctx);
                let wrap = |drop_decode| Explicit {
                    inner: make(),
                    drop_decode,
                    group_plans: 0,
                    hold_plans: 0,
                    dropped: 0,
                };
                let mut explicit = wrap(false);
                let listed = simulate(&inst, &mut explicit, opts()).expect(&ctx);
                assert_eq!(grouped.requests, listed.requests, "{ctx}");
                assert_eq!(grouped.steps, listed.steps, "{ctx}");
                group_plans += explicit.group_plans;
                holds += explicit.hold_plans;
                // A policy that checks its own bookkeeping against the view (Nested WAIT's
                // stage index) may panic on the mutant's run: caught as well.
                let mut mutant = wrap(true);
                let m = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    simulate(&inst, &mut mutant, opts())
                }));
                dropped += mutant.dropped;
                caught += u32::from(!matches!(m, Ok(Ok(m)) if m.requests == grouped.requests));
            }
        }
        if dropped > 0 {
            assert!(caught > 0, "{name}: dropping a decode was never told apart");
            mutated.push(name);
        }
        if group_plans > 0 {
            group_users.push(name);
        }
    }
    println!("decode_all plans: {group_users:?}; mutant caught on: {mutated:?}; holds: {holds}");
    assert!(group_users.len() >= 10, "only {group_users:?} issued decode_all plans");
    assert!(mutated.len() >= 8, "the mutant only acted on {mutated:?}");
    assert!(group_users.contains(&"vllm-v0"), "{group_users:?}");
    assert!(holds > 0, "no catalog policy ever held a resident back");
}
