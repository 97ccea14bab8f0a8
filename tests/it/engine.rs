//! The simulator engine: known answers, rejection of invalid plans, fast-forward equivalence,
//! determinism.
//!
//! Known answers are computed by hand from the step-time law and asserted exactly (integer ns).

use crate::common::{replay, seed};
use kvsched::prng::{stream, Stream};
use kvsched::schedulers::vllm_v0::VllmV0;
use kvsched::sim::{simulate, Check, SimErrorKind, SimOptions, Stepping};
use kvsched::sim::{Plan, Repeat, Scheduler, View};
use kvsched_spec::*;
use rand::Rng;

fn config(capacity: u64, step_time: StepTime) -> ModelConfig {
    ModelConfig {
        memory: MemoryConfig::tokens(capacity),
        step_time,
        first_token: FirstToken::WithPrefill,
        eviction: EvictionRule::Any,
        preemption: Preemption::Restart,
        information: Information::Hidden,
    }
}

fn req(id: u32, arrival_s: f64, prompt: u64, output: u64) -> Request {
    Request {
        id: RequestId(id),
        arrival_ns: Nanos::from_secs_f64(arrival_s).unwrap(),
        prompt_tokens: Tokens(prompt),
        output_tokens: Tokens(output),
        predicted_output_tokens: None,
        class: 0,
    }
}

fn checked() -> SimOptions {
    SimOptions { check: Check::On, ..SimOptions::default() }
}

fn latencies_s(o: &kvsched::sim::Outcome) -> Vec<f64> {
    o.requests.iter().map(|r| (r.finish_ns.unwrap() - r.arrival_ns).as_secs_f64()).collect()
}

/// One request alone under the affine law: a prefill iteration attending l tokens, then o - 1
/// decode iterations attending l + 2, ..., l + o tokens.
#[test]
fn one_request_alone_has_the_closed_form_latency() {
    let (d0_ns, d1_ns) = (10_000_000u64, 0.5f64);
    let st = StepTime::Affine { d0_s: 0.010, d1_s_per_token: 0.5e-9 };
    let (l, o) = (100u64, 10u64);
    let inst = Instance { config: config(1000, st), requests: vec![req(0, 1.0, l, o)] };
    let out = simulate(&inst, &mut VllmV0::default(), checked()).unwrap();
    let mut expected = d0_ns + (d1_ns * l as f64).floor() as u64;
    for s in 2..=o {
        expected += d0_ns + (d1_ns * (l + s) as f64).floor() as u64;
    }
    let r = &out.requests[0];
    assert_eq!((r.finish_ns.unwrap() - r.arrival_ns).get(), expected);
    assert_eq!((r.first_token_ns.unwrap() - r.arrival_ns).get(), d0_ns + 50);
    assert_eq!(out.steps, o);
}

/// Everything fits: n identical requests arriving together are prefilled together and finish
/// together after o unit rounds.
#[test]
fn identical_requests_that_fit_finish_together() {
    let requests = (0..8).map(|i| req(i, 0.0, 3, 5)).collect();
    let inst = Instance { config: config(8 * 8, StepTime::UnitRounds), requests };
    let out = simulate(&inst, &mut VllmV0::default(), checked()).unwrap();
    assert_eq!(latencies_s(&out), vec![5.0; 8]);
    assert_eq!(out.evictions, 0);
}

/// Capacity for exactly one request: they run one after another, in arrival order.
#[test]
fn capacity_for_one_request_serialises_in_arrival_order() {
    let (l, o) = (4u64, 3u64);
    let requests = (0..5).map(|i| req(i, 0.0, l, o)).collect();
    let inst = Instance { config: config(l + o, StepTime::UnitRounds), requests };
    let out = simulate(&inst, &mut VllmV0::default(), checked()).unwrap();
    let expected: Vec<f64> = (1..=5).map(|k| (k * o) as f64).collect();
    assert_eq!(latencies_s(&out), expected);
    assert_eq!(out.evictions, 0);
}

/// A policy that returns a fixed plan once, then nothing.
struct Scripted(Option<Plan>);

impl Scheduler for Scripted {
    fn name(&self) -> String {
        "scripted".into()
    }
    fn information(&self) -> Information {
        Information::Hidden
    }
    fn decide(&mut self, _view: &View<'_>) -> Plan {
        self.0.take().unwrap_or_default()
    }
}

fn rejected(plan: Plan, capacity: u64) -> SimErrorKind {
    let inst = Instance {
        config: config(capacity, StepTime::UnitRounds),
        requests: vec![req(0, 0.0, 4, 2), req(1, 0.0, 4, 2), req(2, 5.0, 4, 2)],
    };
    simulate(&inst, &mut Scripted(Some(plan)), checked()).unwrap_err().kind
}

fn violation(kind: SimErrorKind) -> Violation {
    match kind {
        SimErrorKind::Violation { violation, .. } => violation,
        other => panic!("expected a violation, got {other:?}"),
    }
}

/// The engine rejects invalid plans with the spec's violation and never repairs them.
#[test]
fn invalid_plans_are_rejected_with_the_spec_violation() {
    let pf = |id, t| BatchItem::Prefill { id: RequestId(id), tokens: Tokens(t) };
    let plan = |batch| Plan {
        evict: vec![],
        batch,
        repeat: Repeat::Once,
        decode_all: false,
        hold: Vec::new(),
    };
    assert_eq!(
        violation(rejected(plan(vec![pf(0, 4), pf(1, 4)]), 9)),
        Violation::MemoryExceeded { used: Tokens(10), capacity: Tokens(9) }
    );
    assert_eq!(
        violation(rejected(plan(vec![pf(0, 2), pf(0, 2)]), 100)),
        Violation::DuplicateInBatch { id: RequestId(0) }
    );
    assert_eq!(
        violation(rejected(plan(vec![pf(2, 4)]), 100)),
        Violation::NotArrived { id: RequestId(2) }
    );
    assert!(matches!(violation(rejected(plan(vec![pf(0, 5)]), 100)), Violation::BadChunk { .. }));
    let decode = plan(vec![BatchItem::Decode { id: RequestId(0) }]);
    assert_eq!(violation(rejected(decode, 100)), Violation::NotDecodable { id: RequestId(0) });
    let evict = Plan { evict: vec![RequestId(1)], ..Plan::default() };
    assert_eq!(violation(rejected(evict, 100)), Violation::NotResident { id: RequestId(1) });
    let unknown = plan(vec![pf(7, 1)]);
    assert_eq!(violation(rejected(unknown, 100)), Violation::UnknownRequest { id: RequestId(7) });
    let repeat = Plan {
        evict: vec![],
        batch: vec![pf(0, 4)],
        repeat: Repeat::UpTo(3),
        decode_all: false,
        hold: Vec::new(),
    };
    assert_eq!(rejected(repeat, 100), SimErrorKind::RepeatWithPrefill);
}

/// A policy that plays plans in order, then admits every waiting request and decodes
/// everything, and records every resident's output at each decision.
struct Script {
    plans: std::collections::VecDeque<Plan>,
    seen: Vec<Vec<(u32, u64)>>,
}

impl Scheduler for Script {
    fn name(&self) -> String {
        "script".into()
    }
    fn information(&self) -> Information {
        Information::Hidden
    }
    fn decide(&mut self, view: &View<'_>) -> Plan {
        self.seen.push(view.running().map(|r| (r.id().0, r.generated().get())).collect());
        let admit =
            view.waiting().map(|r| BatchItem::Prefill { id: r.id(), tokens: r.prompt_tokens() });
        let all = Plan { decode_all: true, batch: admit.collect(), ..Plan::default() };
        self.plans.pop_front().unwrap_or(all)
    }
}

fn script(plans: Vec<Plan>) -> Script {
    Script { plans: plans.into(), seen: Vec::new() }
}

/// Requests 0 and 1 (prompt 4, output 5) prefilled in the first plan; request 2 at 5 s.
fn hold_instance() -> Instance {
    Instance {
        config: config(100, StepTime::UnitRounds),
        requests: vec![req(0, 0.0, 4, 5), req(1, 0.0, 4, 5), req(2, 5.0, 4, 5)],
    }
}

fn prefill_both() -> Plan {
    let pf = |id| BatchItem::Prefill { id: RequestId(id), tokens: Tokens(4) };
    Plan { batch: vec![pf(0), pf(1)], ..Plan::default() }
}

/// `decode_all` with a hold list ("decode the group except these"): a held member does not
/// advance, in one iteration nor in a repeated stretch, while the others do; the spec's pair
/// assertions (`Check::On`) agree at every step.
#[test]
fn a_held_member_does_not_advance() {
    let hold = |k| Plan {
        decode_all: true,
        hold: vec![RequestId(1)],
        repeat: if k > 1 { Repeat::UpTo(k) } else { Repeat::Once },
        ..Plan::default()
    };
    let mut s = script(vec![prefill_both(), hold(1), hold(2)]);
    let out = simulate(&hold_instance(), &mut s, checked()).unwrap();
    // After the prefill (first token with it), one held iteration, a held stretch of two.
    assert_eq!(s.seen[1], vec![(0, 1), (1, 1)]);
    assert_eq!(s.seen[2], vec![(0, 2), (1, 1)]);
    assert_eq!(s.seen[3], vec![(0, 4), (1, 1)]);
    // Then everything decodes: request 0 ends at 5 s, request 1 four iterations later.
    let finish: Vec<f64> =
        out.requests.iter().map(|r| r.finish_ns.unwrap().as_secs_f64()).collect();
    assert_eq!(finish[..2], [5.0, 8.0]);
    assert_eq!(out.completed, 3);
}

/// A bad hold list is a clear error ([`SimErrorKind::BadHold`]), never a panic or a repair.
#[test]
fn a_bad_hold_list_is_a_clear_error() {
    let bad = |plan: Plan| -> SimErrorKind {
        let mut s = script(vec![prefill_both(), plan]);
        simulate(&hold_instance(), &mut s, checked()).unwrap_err().kind
    };
    let with = |hold: &[u32]| Plan {
        decode_all: true,
        hold: hold.iter().map(|&i| RequestId(i)).collect(),
        ..Plan::default()
    };
    let err = |id, why| SimErrorKind::BadHold { id: RequestId(id), why };
    assert_eq!(bad(with(&[7])), err(7, "not a decode-group member"));
    // Not arrived yet, and evicted by the same plan.
    assert_eq!(bad(with(&[2])), err(2, "not a decode-group member"));
    let evicted = Plan { evict: vec![RequestId(1)], ..with(&[1]) };
    assert_eq!(bad(evicted), err(1, "not a decode-group member"));
    assert_eq!(bad(with(&[0, 1, 0])), err(0, "held twice"));
    let listed = Plan { batch: vec![BatchItem::Decode { id: RequestId(0) }], ..with(&[0]) };
    assert_eq!(bad(listed), err(0, "held and listed in the batch"));
    let explicit = Plan { decode_all: false, ..with(&[0]) };
    assert_eq!(bad(explicit), err(0, "hold without decode_all"));
    // A resident mid-prefill is not in the decode group.
    let half = Plan {
        batch: vec![BatchItem::Prefill { id: RequestId(0), tokens: Tokens(2) }],
        ..Plan::default()
    };
    let mut s = script(vec![half, with(&[0])]);
    let e = simulate(&hold_instance(), &mut s, checked()).unwrap_err();
    assert_eq!(e.kind, err(0, "not a decode-group member"));
    assert!(e.to_string().contains("invalid hold list: request 0"), "{e}");
}

/// A policy that never runs anything stalls once no arrival is left, and the error carries the
/// outcome so far.
#[test]
fn a_policy_that_never_runs_is_reported_stalled_with_partial_results() {
    let inst =
        Instance { config: config(100, StepTime::UnitRounds), requests: vec![req(0, 2.0, 1, 1)] };
    let err = simulate(&inst, &mut Scripted(None), SimOptions::default()).unwrap_err();
    assert_eq!(err.kind, SimErrorKind::Stalled { waiting: 1, resident: 0 });
    assert_eq!(err.partial.simulated_ns, Nanos(2_000_000_000));
    assert_eq!(err.partial.requests.len(), 1);
}

fn random_instance(seed: u64, n: u32) -> Instance {
    let mut rng = stream(seed, Stream::Instances);
    let mut t = 0.0;
    let requests = (0..n)
        .map(|i| {
            t += rng.random::<f64>() * 0.05;
            req(i, t, rng.random_range(1..200), rng.random_range(1..300))
        })
        .collect();
    let st = StepTime::Affine { d0_s: 0.01, d1_s_per_token: 3.5e-7 };
    let mut config = config(rng.random_range(600..4000), st);
    config.memory.block_size_tokens = [1, 16][rng.random_range(0..2)];
    config.preemption = [Preemption::Restart, Preemption::KeepGenerated][rng.random_range(0..2)];
    Instance { config, requests }
}

/// Fast-forward and one-iteration-at-a-time give identical per-request results, under both
/// preemption rules, and the generator reaches evictions and, under `KeepGenerated`, requests
/// that resume keeping output (the "sometimes" checks).
#[test]
fn fast_forward_equals_stepping_and_reaches_evictions() {
    let base = seed(0xF00D);
    let (mut evictions, mut resumed) = (0, 0);
    for k in 0..12 {
        let s = base + k;
        let inst = random_instance(s, 120);
        let ff = simulate(&inst, &mut VllmV0::default(), checked());
        let step = simulate(
            &inst,
            &mut VllmV0::default(),
            SimOptions { check: Check::On, stepping: Stepping::EveryStep, ..SimOptions::default() },
        );
        let (ff, step) = match (ff, step) {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => {
                panic!("run failed: {:?} {:?}\n{}", a.err(), b.err(), replay(s, "fast_forward"))
            }
        };
        assert_eq!(ff.requests, step.requests, "{}", replay(s, "fast_forward_equals_stepping"));
        assert!(ff.steps == step.steps, "{}", replay(s, "fast_forward_equals_stepping"));
        evictions += ff.evictions;
        resumed += ff.requests.iter().filter(|r| r.kept_tokens > Tokens::ZERO).count();
    }
    assert!(evictions > 0, "the generator never reached an eviction");
    assert!(resumed > 0, "no request resumed keeping its output (KeepGenerated)");
}

/// `max_evictions`: a run that evicts `E` times stops with `EvictionLimit(k)` for every
/// `k < E`, at the first decision point past `k + 1` evictions, with the unlimited run's prefix
/// as its partial outcome (its steps and its completed requests, which the unlimited run also
/// completes with the same records); with `k >= E` it is the unlimited run. The generator
/// reaches runs with several evictions (the "sometimes" check).
#[test]
fn an_eviction_limit_stops_at_the_unlimited_runs_prefix() {
    let base = seed(0xE71C);
    let mut limited = 0;
    for k in 0..12 {
        let s = base + k;
        let inst = random_instance(s, 120);
        let full = simulate(&inst, &mut VllmV0::default(), checked())
            .unwrap_or_else(|e| panic!("{e}\n{}", replay(s, "an_eviction_limit")));
        let e = full.evictions;
        for limit in [0, e / 2, e.saturating_sub(1), e, e + 1] {
            let opts = SimOptions { max_evictions: Some(limit), ..checked() };
            match simulate(&inst, &mut VllmV0::default(), opts) {
                Ok(o) => {
                    assert!(limit >= e, "limit {limit} < {e} evictions not enforced");
                    assert_eq!(o.requests, full.requests, "{}", replay(s, "an_eviction_limit"));
                }
                Err(err) => {
                    assert_eq!(err.kind, SimErrorKind::EvictionLimit(limit));
                    assert!(limit < e, "{err} although the run evicts only {e} times");
                    let p = &err.partial;
                    assert!(p.evictions > limit && p.evictions <= e && p.steps <= full.steps);
                    for r in p.requests.iter().filter(|r| r.finish_ns.is_some()) {
                        let same = full.requests.iter().find(|f| f.id == r.id);
                        assert_eq!(Some(r), same, "{}", replay(s, "an_eviction_limit"));
                    }
                    limited += 1;
                }
            }
        }
    }
    assert!(limited > 3, "the generator reached too few evicting runs ({limited})");
}

/// The same seed gives a byte-identical trace, twice, and on a rayon pool of 1 or 2 threads.
#[test]
fn same_seed_gives_byte_identical_traces_on_any_thread_count() {
    fn traced(seed: u64) -> Vec<u8> {
        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let opts = SimOptions {
            trace: Some(Box::new(buf.clone())),
            seed: Some(seed),
            ..SimOptions::default()
        };
        simulate(&random_instance(seed, 200), &mut VllmV0::default(), opts).unwrap();
        let bytes = buf.0.lock().unwrap().clone();
        bytes
    }
    let s = seed(7);
    let reference = traced(s);
    assert!(reference.len() > 1000);
    assert_eq!(traced(s), reference, "{}", replay(s, "same_seed_gives_byte_identical"));
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let runs: Vec<Vec<u8>> = pool.install(|| {
            use rayon::prelude::*;
            (0..4).into_par_iter().map(|_| traced(s)).collect()
        });
        assert!(
            runs.iter().all(|r| *r == reference),
            "{}",
            replay(s, "same_seed_gives_byte_identical")
        );
    }
}

/// A streamed run (requests generated on arrival, records summarized on retirement) gives the
/// summary of the full run: the same counts, means to rounding, percentiles within the HDR
/// histogram's 0.1 %, for every practice scheduler, over random instances that reach evictions
/// (and overload: their queues grow through the run, so the window is most of it; the bounded
/// window under stable load is `a_long_streamed_run_holds_a_bounded_window`).
#[test]
fn streamed_runs_match_full_runs_and_hold_only_requests_in_flight() {
    use kvsched::sim::simulate_stream;
    let base = seed(0x57EA);
    let mut evictions = 0;
    for k in 0..4 {
        let s = base + k;
        let inst = random_instance(s, 1_500);
        for name in ["vllm-v0", "vllm-v1", "sarathi", "sglang", "alpha-clear"] {
            let mk = || kvsched::schedulers::by_name(name).expect("built-in");
            let full = simulate(&inst, mk().as_mut(), SimOptions::default());
            let mut source = inst.requests.iter().cloned();
            let total = inst.requests.len() as u64;
            let streamed = simulate_stream(
                &inst.config,
                total,
                &mut source,
                mk().as_mut(),
                SimOptions::default(),
                0.5,
            );
            let (full, streamed) = match (full, streamed) {
                (Ok(a), Ok(b)) => (a, b),
                (a, b) => panic!("{name}: {:?} {:?}\n{}", a.err(), b.err(), replay(s, "streamed")),
            };
            let ctx = format!("{name}\n{}", replay(s, "streamed_runs_match_full_runs"));
            assert!(streamed.requests.is_empty(), "{ctx}");
            let (a, b) = (full.summary(0.5), streamed.summary(0.5));
            assert_eq!(
                (a.requests, a.completed, a.evictions, a.steps),
                (b.requests, b.completed, b.evictions, b.steps),
                "{ctx}"
            );
            assert_eq!(a.simulated_time_s, b.simulated_time_s, "{ctx}");
            let close = |what: &str, x: f64, y: f64, tol: f64| {
                assert!((x - y).abs() <= tol * x.abs().max(1e-12), "{what}: {x} vs {y}; {ctx}")
            };
            close("throughput", a.throughput_tokens_per_s, b.throughput_tokens_per_s, 1e-12);
            for (what, x, y) in
                [("latency", a.latency_s, b.latency_s), ("ttft", a.ttft_s, b.ttft_s)]
            {
                assert_eq!(x.n, y.n, "{what} count; {ctx}");
                close(what, x.mean, y.mean, 1e-9);
                for (p, q) in [(x.p50, y.p50), (x.p90, y.p90), (x.p99, y.p99)] {
                    close(what, p, q, 1e-3);
                }
            }
            assert_eq!(full.peak_window_requests, streamed.peak_window_requests, "{ctx}");
            evictions += a.evictions;
        }
    }
    assert!(evictions > 0, "the generator never reached an eviction");
}

/// Streaming keeps the engine's memory bounded by the requests in flight: a long, stable run
/// never holds more than a small multiple of its in-flight requests.
#[test]
fn a_long_streamed_run_holds_a_bounded_window() {
    use kvsched::sim::simulate_stream;
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads/lmsys-like.toml"),
    )
    .expect("workload");
    let mut w = WorkloadFile::parse("workloads/lmsys-like.toml", &text).expect("valid");
    for c in &mut w.classes {
        c.rate_per_s *= 0.5;
    }
    let total = 200_000;
    let mut source =
        kvsched::workload::Generator::new(&w, kvsched::workload::Amount::Requests(total), 7);
    let config = w.model_config(Information::Hidden);
    let mut sched = VllmV0::default();
    let o = simulate_stream(&config, total, &mut source, &mut sched, SimOptions::default(), 0.5)
        .expect("runs");
    assert_eq!(o.completed, total);
    assert!(o.peak_window_requests < 2_000, "peak window {}", o.peak_window_requests);
}
