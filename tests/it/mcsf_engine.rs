//! MC-SF and MC-Benchmark as engine schedulers (`src/schedulers/mcsf.rs`).
//!
//! - On the paper's synthetic instances the engine run equals the pure round-model run of
//!   `kvsched::opt::round_sim` exactly (same total latency): the engine with unit rounds and
//!   `FirstToken::WithPrefill` *is* the paper's round model.
//! - With predictions that never under-estimate, MC-SF's schedules never need the overflow
//!   fallback (no eviction), under the spec's pair assertions; a "sometimes" check shows the
//!   memory check binding (a waiting request refused while memory is below capacity).
//! - With under-estimates, the fallback keeps every run valid.

use crate::common::{replay, seed};
use kvsched::opt::families::synthetic;
use kvsched::opt::round_sim::{self, Fcfs, Mcsf as RoundMcsf};
use kvsched::schedulers::mcsf::Mcsf;
use kvsched::sim::{simulate, Check, SimOptions};
use kvsched::workload::add_predictions;
use kvsched_spec::rounds::{check_schedule, to_spec, RoundInstance};
use kvsched_spec::{Instance, Tokens};

/// The engine instance of a round instance, with exact predictions.
fn engine_instance(inst: &RoundInstance) -> Instance {
    let starts: Vec<u64> = serial_starts(inst);
    let mut spec = to_spec(inst, &starts).expect("serial schedule is feasible").instance;
    for r in &mut spec.requests {
        r.predicted_output_tokens = Some(r.output_tokens);
    }
    spec
}

/// A trivially feasible schedule (one request at a time), only to build the spec instance.
fn serial_starts(inst: &RoundInstance) -> Vec<u64> {
    let mut order: Vec<usize> = (0..inst.len()).collect();
    order.sort_by_key(|&i| (inst.requests[i].arrival_round, i));
    let mut starts = vec![0; inst.len()];
    let mut t = 0;
    for i in order {
        let r = &inst.requests[i];
        t = t.max(r.arrival_round);
        starts[i] = t;
        t += r.output_tokens;
    }
    starts
}

fn engine_total_latency_s(inst: &Instance, mut s: Mcsf) -> (u64, u64) {
    let out = simulate(inst, &mut s, SimOptions { check: Check::On, ..SimOptions::default() })
        .expect("valid run");
    let total: u64 = out
        .requests
        .iter()
        .map(|r| (r.finish_ns.expect("completed") - r.arrival_ns).get() / 1_000_000_000)
        .sum();
    (total, out.evictions)
}

/// The engine's MC-SF and MC-Benchmark equal the round model's on synthetic instances.
#[test]
fn engine_mcsf_equals_the_round_model() {
    let base = seed(0x5EED);
    for k in 0..16 {
        let s = base + k;
        let inst = synthetic(s, k % 2 == 1);
        let engine = engine_instance(&inst);
        let starts = round_sim::simulate(&inst, &mut RoundMcsf).expect("round run");
        let round_total = check_schedule(&inst, &starts).expect("feasible");
        let (engine_total, ev) = engine_total_latency_s(&engine, Mcsf::default());
        assert_eq!(engine_total, round_total, "MC-SF {}", replay(s, "engine_mcsf_equals"));
        assert_eq!(ev, 0);
        let starts = round_sim::simulate(&inst, &mut Fcfs).expect("round run");
        let round_total = check_schedule(&inst, &starts).expect("feasible");
        let (engine_total, _) = engine_total_latency_s(&engine, Mcsf::benchmark());
        assert_eq!(engine_total, round_total, "MC-Bench {}", replay(s, "engine_mcsf_equals"));
    }
}

fn with_predictions(inst: &RoundInstance, s: u64, over: bool) -> Instance {
    let mut e = engine_instance(inst);
    add_predictions(&mut e.requests, 0.5, s);
    for r in &mut e.requests {
        let p = r.predicted_output_tokens.expect("prediction").get();
        let o = r.output_tokens.get();
        // Over-estimates: max(p, o); under-estimates: min(p, o).
        let q = if over { p.max(o) } else { p.min(o) };
        r.predicted_output_tokens = Some(Tokens(q.max(1)));
    }
    e
}

/// Over-estimating predictions never trigger the overflow fallback, and the memory check binds
/// sometimes; under-estimates may, and every run stays valid.
#[test]
fn mcsf_is_never_infeasible_with_over_estimates() {
    let base = seed(0xAB);
    let (mut refused, mut under_evictions) = (0, 0);
    for k in 0..16 {
        let s = base + k;
        let inst = synthetic(s, k % 2 == 0);
        let over = with_predictions(&inst, s, true);
        let mut policy = Mcsf::default();
        let opts = SimOptions { check: Check::On, timeline: true, ..SimOptions::default() };
        let out = simulate(&over, &mut policy, opts).expect("valid run");
        assert_eq!(out.evictions, 0, "{}", replay(s, "mcsf_is_never_infeasible"));
        let cap = out.kv_capacity_tokens;
        refused += out.timeline.iter().filter(|p| p.waiting > 0 && p.kv_used_tokens < cap).count();
        let under = with_predictions(&inst, s, false);
        let out = simulate(
            &under,
            &mut Mcsf::default(),
            SimOptions { check: Check::On, ..Default::default() },
        )
        .expect("valid run with under-estimates");
        under_evictions += out.evictions;
    }
    assert!(refused > 0, "the memory check never bound");
    println!("under-estimate fallback evictions over 16 instances: {under_evictions}");
}
