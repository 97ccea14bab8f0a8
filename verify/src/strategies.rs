//! Proptest strategies shared by the tests, and the seed discipline of randomized tests.
//!
//! - [`instance`]: small instances (capacity 1..=64 tokens, block size 1, 2, 4 or 16, up to 6
//!   requests, both [`FirstToken`] conventions, both [`EvictionRule`]s, both [`Preemption`]
//!   rules, every information set).
//! - [`action_choices`] + [`choose_action`]: random action sequences. A choice is raw entropy
//!   that [`choose_action`] interprets against the current state, so about four in five actions
//!   are valid (the interesting states, memory pressure and evictions, are reached), the rest
//!   are aimed at breaking one rule, and shrinking still works on the entropy.
//! - [`seed_from_env`], [`runner`], [`replay_line`], [`run_property`]: fixed seeds, `KVSCHED_SEED`
//!   overrides, and one replay line on failure.

use kvsched_spec::{
    Action, BatchItem, EvictionRule, FirstToken, Information, Instance, MemoryConfig, ModelConfig,
    Nanos, Phase, Preemption, Request, RequestId, State, StepTime, Tokens, Violation,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

/// The seed for a randomized test: `KVSCHED_SEED` (decimal or `0x` hex) when set, else
/// `default`. Panics with a message naming the variable when it does not parse.
pub fn seed_from_env(default: u64) -> u64 {
    match std::env::var("KVSCHED_SEED") {
        Ok(s) => {
            let s = s.trim();
            let parsed = match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("KVSCHED_SEED={s}: expected an integer"))
        }
        Err(_) => default,
    }
}

/// The one-line replay command for a failing test of this crate.
pub fn replay_line(seed: u64, test: &str) -> String {
    format!("note: rerun with KVSCHED_SEED={seed:#x} cargo test -p kvsched-verify {test}")
}

/// A proptest runner with a ChaCha RNG seeded from `seed` only (no persistence, no fork).
pub fn runner(seed: u64, cases: u32) -> TestRunner {
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(b"kvsched!");
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Runs a property over `cases` values of `strategy` with the seed from [`seed_from_env`];
/// on failure panics with the shrunk input, the seed and the replay line.
pub fn run_property<S: Strategy>(
    test: &str,
    default_seed: u64,
    cases: u32,
    strategy: S,
    property: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let seed = seed_from_env(default_seed);
    eprintln!("{test}: KVSCHED_SEED={seed:#x}");
    let mut runner = runner(seed, cases);
    if let Err(e) = runner.run(&strategy, property) {
        panic!("{test} failed with seed {seed:#x}: {e}\n{}", replay_line(seed, test));
    }
}

/// Memory: capacity 1..=64 tokens, block size 1, 2, 4 or 16 (clamped to 1 above capacity).
pub fn memory() -> impl Strategy<Value = MemoryConfig> {
    (1u64..=64, prop_oneof![Just(1u64), Just(2), Just(4), Just(16)]).prop_map(|(cap, block)| {
        MemoryConfig {
            kv_capacity_tokens: cap,
            block_size_tokens: if block > cap { 1 } else { block },
            watermark_fraction: 0.0,
        }
    })
}

/// Unit rounds or an affine law with small integer-friendly coefficients.
pub fn step_time() -> impl Strategy<Value = StepTime> {
    prop_oneof![
        Just(StepTime::UnitRounds),
        (1u32..20, 0u32..5).prop_map(|(d0_ms, d1_us)| StepTime::Affine {
            d0_s: f64::from(d0_ms) * 1e-3,
            d1_s_per_token: f64::from(d1_us) * 1e-6,
        }),
    ]
}

/// A model configuration over [`memory`] and [`step_time`], with every convention.
pub fn config() -> impl Strategy<Value = ModelConfig> {
    let first = prop_oneof![Just(FirstToken::SeparateDecode), Just(FirstToken::WithPrefill)];
    let evict = prop_oneof![Just(EvictionRule::Any), Just(EvictionRule::Lifo)];
    let info = prop_oneof![
        Just(Information::Known),
        Just(Information::Predicted),
        Just(Information::Hidden)
    ];
    (memory(), step_time(), first, evict, preemption(), info).prop_map(
        |(memory, step_time, first_token, eviction, preemption, information)| ModelConfig {
            memory,
            step_time,
            first_token,
            eviction,
            preemption,
            information,
        },
    )
}

/// Both preemption rules, equally often.
pub fn preemption() -> impl Strategy<Value = Preemption> {
    prop_oneof![Just(Preemption::Restart), Just(Preemption::KeepGenerated)]
}

/// 1..=`max_n` requests: prompts 1..=12, outputs 1..=8, gaps of 0..=3 half-seconds.
pub fn requests(max_n: usize) -> impl Strategy<Value = Vec<Request>> {
    let one = (0u64..=3, 1u64..=12, 1u64..=8, proptest::option::of(1u64..=10), 0u32..3);
    proptest::collection::vec(one, 1..=max_n).prop_map(|raw| {
        let mut t = 0u64;
        raw.into_iter()
            .enumerate()
            .map(|(i, (gap, prompt, output, predicted, class))| {
                t += gap * 500_000_000;
                Request {
                    id: RequestId(i as u32),
                    arrival_ns: Nanos(t),
                    prompt_tokens: Tokens(prompt),
                    output_tokens: Tokens(output),
                    predicted_output_tokens: predicted.map(Tokens),
                    class,
                }
            })
            .collect()
    })
}

/// A small valid instance (see the module doc).
pub fn instance() -> impl Strategy<Value = Instance> {
    (config(), requests(6)).prop_map(|(config, requests)| Instance { config, requests })
}

/// Raw entropy for one action; see [`choose_action`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActionChoice {
    /// Mode: below 160 a valid action that fits memory; 160..200 a valid-looking batch that
    /// ignores memory; 200 and above an action aimed at one rule.
    pub mode: u8,
    /// Which request or variant.
    pub pick: u32,
    /// Chunk sizes and time offsets.
    pub size: u32,
    /// Which candidates join a batch.
    pub mask: u32,
}

/// One [`ActionChoice`].
pub fn action_choice() -> impl Strategy<Value = ActionChoice> {
    any::<(u8, u32, u32, u32)>().prop_map(|(mode, pick, size, mask)| ActionChoice {
        mode,
        pick,
        size,
        mask,
    })
}

/// 1..`max_len` choices.
pub fn action_choices(max_len: usize) -> impl Strategy<Value = Vec<ActionChoice>> {
    proptest::collection::vec(action_choice(), 1..max_len)
}

/// An instance with a sequence of choices.
pub fn scenario(max_len: usize) -> impl Strategy<Value = (Instance, Vec<ActionChoice>)> {
    (instance(), action_choices(max_len))
}

/// Interprets `choice` against `state`.
pub fn choose_action(instance: &Instance, state: &State, choice: &ActionChoice) -> Action {
    if choice.mode >= 200 {
        return wild_action(instance, state, choice);
    }
    if let Some(next) = instance.requests.get(state.next_arrival) {
        if next.arrival_ns <= state.time_ns {
            return Action::Arrive(next.id);
        }
    }
    let residents: Vec<RequestId> = state.resident_by_admission.values().copied().collect();
    if choice.pick.is_multiple_of(10) && !residents.is_empty() {
        return Action::Evict(eviction_target(instance, &residents, choice.size));
    }
    if choice.pick % 10 == 1 {
        if let Some(idle) = idle_to_next(instance, state) {
            return idle;
        }
    }
    let batch = build_batch(instance, state, choice, choice.mode < 160);
    if !batch.is_empty() {
        return Action::Step(batch);
    }
    if let Some(idle) = idle_to_next(instance, state) {
        return idle;
    }
    match residents.last() {
        Some(_) => Action::Evict(eviction_target(instance, &residents, choice.size)),
        None => Action::Idle { until_ns: state.time_ns + Nanos(1) },
    }
}

fn eviction_target(instance: &Instance, residents: &[RequestId], size: u32) -> RequestId {
    match instance.config.eviction {
        EvictionRule::Lifo => *residents.last().expect("non-empty"),
        EvictionRule::Any => residents[size as usize % residents.len()],
    }
}

fn idle_to_next(instance: &Instance, state: &State) -> Option<Action> {
    let next = instance.requests.get(state.next_arrival)?;
    (next.arrival_ns > state.time_ns).then_some(Action::Idle { until_ns: next.arrival_ns })
}

/// A batch over the waiting and resident requests picked by `mask`; when `fit`, items that
/// would overflow memory are left out.
pub fn build_batch(
    instance: &Instance,
    state: &State,
    choice: &ActionChoice,
    fit: bool,
) -> Vec<BatchItem> {
    let mem = &instance.config.memory;
    let mut used = state.kv_used;
    let mut batch = Vec::new();
    let mut bit = 0u32;
    for (i, r) in state.requests.iter().enumerate() {
        let req = &instance.requests[i];
        // The prompt, plus the kept output of a request resuming under `KeepGenerated`.
        let target = r.prefill_target(req);
        let (held, item, after) = match r.phase {
            Phase::Waiting => {
                let chunk = chunk(target, choice.size.rotate_left(bit));
                let after = grown(instance, chunk, target);
                (Tokens::ZERO, BatchItem::Prefill { id: req.id, tokens: chunk }, after)
            }
            Phase::Resident(res) if res.prefilled < target => {
                let rest = target - res.prefilled;
                let chunk = chunk(rest, choice.size.rotate_left(bit));
                let after = grown(instance, res.prefilled + chunk, target);
                (res.held(), BatchItem::Prefill { id: req.id, tokens: chunk }, after)
            }
            Phase::Resident(res) => {
                (res.held(), BatchItem::Decode { id: req.id }, res.held() + Tokens(1))
            }
            _ => continue,
        };
        // Each candidate joins with probability 3/4.
        let join = (choice.mask >> (2 * (bit % 16))) & 3 != 0;
        bit += 1;
        if !join {
            continue;
        }
        let next = used - mem.footprint(held) + mem.footprint(after);
        if fit && next > mem.capacity() {
            continue;
        }
        used = next;
        batch.push(item);
    }
    batch
}

/// A chunk of at most `rest` tokens: the whole rest half of the time.
fn chunk(rest: Tokens, size: u32) -> Tokens {
    if size & 1 == 0 {
        rest
    } else {
        Tokens(1 + u64::from(size >> 1) % rest.get())
    }
}

/// KV held after prefilling up to `context` of a `prompt`-token prompt. A generator, not a
/// check: it uses the spec's statement of the first-token rule (the checks re-derive nothing
/// here; `apply` judges what is generated).
fn grown(instance: &Instance, context: Tokens, prompt: Tokens) -> Tokens {
    context + instance.config.first_token.output_of_prefill(context == prompt)
}

/// An action aimed at one rule (it may still happen to be valid).
fn wild_action(instance: &Instance, state: &State, c: &ActionChoice) -> Action {
    let n = instance.requests.len() as u32;
    let id = RequestId(c.pick % (n + 1));
    match c.mode % 8 {
        0 => Action::Arrive(id),
        1 => Action::Evict(id),
        2 => {
            let back = Nanos(u64::from(c.size % 3));
            Action::Idle { until_ns: state.time_ns.saturating_sub(back) }
        }
        // Now and then past the end of simulated time (`TimeLimit`).
        3 if c.size.is_multiple_of(7) => {
            Action::Idle { until_ns: Nanos(kvsched_spec::units::MAX_TIME_NS + 1) }
        }
        3 => Action::Idle { until_ns: state.time_ns + Nanos(u64::from(c.size) * 1_000_000) },
        4 => Action::Step(Vec::new()),
        5 => {
            let mut batch = build_batch(instance, state, c, true);
            if let Some(&first) = batch.first() {
                batch.push(first);
            }
            Action::Step(batch)
        }
        6 => Action::Step(vec![BatchItem::Prefill { id, tokens: Tokens(u64::from(c.size % 14)) }]),
        _ => Action::Step(vec![BatchItem::Decode { id }]),
    }
}

/// A stable name for each [`Violation`] variant. The match is exhaustive, so a new variant
/// fails to compile here until [`ALL_VIOLATIONS`] and the reachability test know it.
pub fn violation_name(v: &Violation) -> &'static str {
    match v {
        Violation::UnknownRequest { .. } => "UnknownRequest",
        Violation::NotArrived { .. } => "NotArrived",
        Violation::ArrivalOutOfOrder { .. } => "ArrivalOutOfOrder",
        Violation::ArrivalSkipped { .. } => "ArrivalSkipped",
        Violation::EmptyBatch => "EmptyBatch",
        Violation::DuplicateInBatch { .. } => "DuplicateInBatch",
        Violation::NotPrefillable { .. } => "NotPrefillable",
        Violation::BadChunk { .. } => "BadChunk",
        Violation::NotDecodable { .. } => "NotDecodable",
        Violation::NotResident { .. } => "NotResident",
        Violation::EvictionOrder { .. } => "EvictionOrder",
        Violation::MemoryExceeded { .. } => "MemoryExceeded",
        Violation::TimeNotForward { .. } => "TimeNotForward",
        Violation::TimeLimit { .. } => "TimeLimit",
    }
}

/// Every [`Violation`] variant's name.
pub const ALL_VIOLATIONS: [&str; 14] = [
    "UnknownRequest",
    "NotArrived",
    "ArrivalOutOfOrder",
    "ArrivalSkipped",
    "EmptyBatch",
    "DuplicateInBatch",
    "NotPrefillable",
    "BadChunk",
    "NotDecodable",
    "NotResident",
    "EvictionOrder",
    "MemoryExceeded",
    "TimeNotForward",
    "TimeLimit",
];
