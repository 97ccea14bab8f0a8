//! WAIT paper claims (`W-*` in `spec/CLAIMS.md`): the WAIT, Nested WAIT and WAIT-CP
//! schedulers checked against the spec, and the theorems and experiments measured through
//! `kvsched::experiments::wait`, printing `claim <ID>: paper=..., ours=... [CI], verdict=...`.
//!
//! What is asserted: what our machinery guarantees (no violation, WAIT never evicts and its
//! memory guard never acts under its conditions, slopes have finite intervals, the repair runs
//! without a buffer) and verdicts only where the theory guarantees them.

use crate::common::{replay, seed};
use kvsched::experiments::wait::*;
use kvsched::experiments::{as_run, ClaimResult, ClaimVerdict, Scale};
use kvsched::schedulers::{by_name, for_workload};
use kvsched::sim::{simulate, Check, SimOptions, Stepping};
use kvsched::workload::{generate, Amount};
use kvsched_spec::{EvictionRule, FirstToken, Information, Instance};

fn scale() -> Scale {
    if crate::common::slow() {
        Scale::Full
    } else {
        Scale::Quick
    }
}

fn print(results: &[ClaimResult]) {
    for r in results {
        println!("{}", r.line());
        if !r.notes.is_empty() {
            println!("    {}", r.notes);
        }
    }
}

fn finite_slopes(results: &[ClaimResult], what: &str) {
    for r in results.iter().filter(|r| r.paper_text.starts_with("slope")) {
        let (lo, hi) = r.ci.unwrap_or_else(|| panic!("{what}: {} has no interval", r.label));
        assert!(lo.is_finite() && hi.is_finite(), "{what}: {} interval not finite", r.label);
    }
}

/// The three WAIT schedulers run small two-type workloads under both first-token conventions
/// with every action replayed through the spec, fast-forward and step-by-step alike.
#[test]
fn wait_schedulers_are_valid_under_the_spec() {
    let s = seed(0x3a17);
    for first in [FirstToken::SeparateDecode, FirstToken::WithPrefill] {
        let mut w = scaled_workload(&prop3_base(24), 1.0);
        w.first_token = first;
        w.eviction = EvictionRule::Any;
        w.classes[1].rate_per_s = 0.2;
        w.classes[1].prompt_tokens = 3;
        w.classes[1].output_tokens = 5;
        let requests = generate(&w, Amount::Requests(300), s);
        let inst = Instance { config: w.model_config(Information::Hidden), requests };
        for name in ["wait", "nested-wait", "wait-cp"] {
            for stepping in [Stepping::FastForward, Stepping::EveryStep] {
                // WAIT's integer design does not fit this workload (rounding exceeds C), and
                // `for_workload` says so instead of falling back: run its by-name policy then.
                let fluid = for_workload(name, &w).unwrap_or_else(|_| by_name(name).unwrap());
                let mut sched =
                    if stepping == Stepping::EveryStep { by_name(name).unwrap() } else { fluid };
                let opts = SimOptions { check: Check::On, stepping, ..SimOptions::default() };
                let out = simulate(&inst, sched.as_mut(), opts)
                    .unwrap_or_else(|e| panic!("{name} {first:?}: {e}\n{}", replay(s, "wait")));
                assert_eq!(out.completed, 300, "{name} {first:?}");
            }
        }
        assert!(by_name("wait").is_some() && by_name("nested-wait").is_some());
    }
}

/// Checks W-THM1-CRITICAL (WAIT paper Theorem 1): WAIT at C = M* = 9, n = n* = (1, 1) on
/// Proposition 3's instance; gap slope in zeta T against -1/2, latency slope against 1/2.
#[test]
fn thm1_critical_and_slack_scaling() {
    let s = seed(0x7e41);
    let (res, crit, slack) = thm1(scale(), s);
    print(&res);
    for sw in [&crit, &slack] {
        assert!(sw.errors().is_empty(), "{:?}\n{}", sw.errors(), replay(s, "thm1"));
        assert_eq!(sw.total(|r| r.guard_trims), 0, "WAIT's memory guard acted");
        assert_eq!(sw.total(|r| r.outcome.evictions), 0, "WAIT evicted");
    }
    finite_slopes(&res, "thm1");
}

/// Checks W-THM1-SLACK (WAIT paper Theorem 1, strict slack): WAIT with n = (2, 2) at
/// C = M^pi = 18 on Proposition 3's instance; gap slope against -1, latency flat. Measured in
/// `thm1_critical_and_slack_scaling`; this test asserts the slack regime's own guarantee that
/// the backlog stays bounded (mean gap times zeta T does not grow by more than 4x).
#[test]
fn thm1_slack_backlog_is_bounded() {
    let s = seed(0x7e42);
    let (zetas, reps) = sweep_size(Scale::Quick);
    let sw = ZetaSweep::run(
        &prop3_base(18),
        &zetas,
        reps,
        &Policy::Wait(vec![((1, 1), 2.0), ((1, 2), 2.0)]),
        s,
    );
    let backlog: Vec<f64> = sw.means(|r| r.gap).iter().map(|(z, g)| z * g).collect();
    println!("claim W-THM1-SLACK [backlog tokens by zeta T]: paper=O(1), ours={backlog:?}");
    assert!(backlog.last().unwrap() <= &(4.0 * backlog[0].max(1.0)), "{}", replay(s, "thm1"));
}

/// Checks W-THM2 (WAIT paper Theorem 2): Nested WAIT with the buffer M_req stays within
/// memory (overflow frequency against delta, Clopper-Pearson), gap slope -1, latency flat;
/// and without the buffer (C = M^pi) the LIFO boundary-queue repair is exercised.
#[test]
fn thm2_nested_wait_buffer_and_repair() {
    let s = seed(0x7e43);
    let (res, sweep, no_buffer_repairs) = thm2(scale(), s);
    print(&res);
    assert!(sweep.errors().is_empty(), "{:?}\n{}", sweep.errors(), replay(s, "thm2"));
    assert!(no_buffer_repairs > 0, "repair never exercised at C = M^pi\n{}", replay(s, "thm2"));
    finite_slopes(&res, "thm2");
}

/// Checks W-PROP3 (WAIT paper Proposition 3): at C = M* = 9 FCFS (vllm-v0, LIFO recompute)
/// keeps an Omega(1) gap while WAIT's vanishes.
#[test]
fn prop3_fcfs_gap_vs_wait() {
    let s = seed(0x7e44);
    let (res, fcfs, wait) = prop3(scale(), s);
    print(&res);
    assert!(wait.errors().is_empty() && fcfs.errors().is_empty(), "{}", replay(s, "prop3"));
    assert_eq!(wait.total(|r| r.outcome.evictions), 0, "WAIT evicted");
    finite_slopes(&res, "prop3");
    let _ = ClaimVerdict::Supported;
}

/// Checks W-PROP2 (WAIT paper Proposition 2): no catalog scheduler beats the fluid bound
/// sum lambda_j l'_j on a stable workload. Asserted: completed tokens never exceed arrived
/// tokens in any run (accounting), and each scheduler's 99.9% interval reaches the bound.
#[test]
fn prop2_no_scheduler_beats_the_fluid_bound() {
    let s = seed(0x7e45);
    let res = prop2(scale(), s, 0.999);
    for (c, excess) in &res {
        println!("{}", c.line());
        assert!(*excess <= 0, "{}: completed more tokens than arrived", c.label);
        assert!(
            !matches!(c.verdict, ClaimVerdict::NotSupported(_)),
            "{}\n{}",
            c.line(),
            replay(s, "prop2")
        );
    }
    assert_eq!(res.len(), kvsched::schedulers::catalog().len());
}

/// Checks W-EXP-SINGLE (WAIT paper §6, single type p512d20): stability thresholds of vLLM,
/// Sarathi and WAIT on the calibrated A100 (spec/calibration/a100-llama2-7b.toml). Asserted:
/// WAIT (Algorithm 1 and WAIT-CP) never evicts; the ordering is printed, not asserted.
#[test]
fn exp_single_type_thresholds() {
    let s = seed(0x7e46);
    let (c, curves) = exp_single(scale(), s);
    print(&[c]);
    for cv in curves.iter().filter(|c| c.label.starts_with("wait")) {
        assert!(cv.points.iter().all(|p| p.3 == 0), "{} evicted", cv.label);
    }
}

/// Checks W-EXP-TWOTYPE (WAIT paper §6, 0.7 p512d20 + 0.3 p512d50): stability thresholds of
/// vLLM, Sarathi, WAIT-CP and Nested WAIT on the calibrated A100. Printed, not asserted.
#[test]
fn exp_two_type_thresholds() {
    let s = seed(0x7e47);
    let (c, curves) = exp_twotype(scale(), s);
    print(&[c]);
    assert_eq!(curves.len(), 4);
}

/// WAIT-CP on the conformance battery's adversarial scenario used to idle for good with
/// requests left (a stall): every request must complete.
#[test]
fn wait_cp_adversarial_stall() {
    use kvsched::conform::battery::scenario;
    use kvsched::schedulers::wait_cp::WaitCp;
    for s in [1, 2, 3] {
        let sc = scenario("adversarial", 200, s).unwrap();
        let mut sched = WaitCp::default();
        let opts = SimOptions { check: Check::On, ..SimOptions::default() };
        match simulate(&sc.instance, &mut sched, opts) {
            Ok(o) => assert_eq!(o.completed, 200, "seed {s}"),
            Err(e) => panic!("seed {s}: {e} ({} completed)", e.partial.completed),
        }
    }
}

/// Checks W-EXP-LONGDECODE (WAIT paper §6 and Table 1, p512d1000): latency of WAIT, WAIT-CP,
/// Sarathi and vLLM at lambda 4.5 and restart rates at 4.0 on the calibrated A100, 300
/// requests per rate (quick; about 4 s in the dev profile). Asserted: WAIT-CP (tl 88,
/// 88 x 1,520 <= 0.99 C) never evicts; the ordering and restart rates are printed, not
/// asserted (WAIT with `n = 1` runs outside its conditions, M* > C, and its guard evicts).
#[test]
fn exp_long_decode_latency_and_restarts() {
    let s = seed(0x7e48);
    let (cs, curves) = exp_longdecode(scale(), s);
    print(&cs);
    let cp = curves.iter().find(|c| c.label == "wait-cp").expect("wait-cp curve");
    assert!(cp.points.iter().all(|p| p.3 == 0), "wait-cp evicted");
}

/// Checks W-EXP-LMSYS (WAIT paper §6, lmsys figure): Nested WAIT's mean latency against Sarathi
/// and vLLM v0 on the lmsys-like mix, calibrated A100, 600 requests per rate (quick). Asserted:
/// every policy's points are finite and Nested WAIT completes at least 90% of the rate at the
/// lowest rate (it is live); the verdict is measured and printed.
#[test]
fn exp_lmsys_latency_against_baselines() {
    let s = seed(0x1a5);
    let (cs, curves) = kvsched::experiments::wait::exp_lmsys(scale(), s);
    print(&cs);
    assert!(curves.iter().all(|c| c.points.iter().all(|p| p.1.is_finite())));
    let nw = curves.iter().find(|c| c.label == "nested-wait").expect("nested-wait curve");
    assert!(nw.points[0].2 >= 0.9, "nested-wait not live at the lowest rate: {:?}", nw.points);
}

/// Checks W-PROP5 (WAIT paper Proposition 5), as evidence on two non-predictive policies: at
/// C = M* = 9 on Proposition 3's instance, FCFS and bufferless Nested WAIT keep a gap that does
/// not decay with zeta T. Asserted: every run is valid and the verdict is measured (printed).
#[test]
fn prop5_non_predictive_gap_without_buffer() {
    let cs = kvsched::experiments::wait::prop5(scale(), seed(0x9505));
    print(&cs);
    assert!(!matches!(cs[0].verdict, ClaimVerdict::NotReproducible(_)), "{}", cs[0].line());
}

/// Checks W-PROP4 (WAIT paper Proposition 4), as evidence on one instance: a single type at
/// C = M* = 3, where every policy is non-predictive; WAIT (n = 1, vanishing gap) has latency
/// growing like (zeta T)^(1/2). Asserted: the slope fit exists; the verdict is measured.
#[test]
fn prop4_critical_latency_grows_like_sqrt() {
    let cs = kvsched::experiments::wait::prop4(scale(), seed(0x9404));
    print(&cs);
    assert!(cs[0].measured.is_some_and(f64::is_finite), "{}", cs[0].line());
}

/// Checks W-EXP-LONGDECODE-AS-RUN (WAIT paper §6 long decode as the authors ran it:
/// Llama-3-8B, C = 479,232, WAIT-CP tl 120 cs 128 gate off, vLLM cap 128, Sarathi 512/512,
/// affine fit to the paper's low-load latencies). Asserted: no run stops early, WAIT-CP
/// (120 x 1,520 tokens <= 0.99 C) never evicts, the headline row comes first and the
/// best-of-grid row is labelled; the verdicts are measured and printed.
#[test]
fn exp_long_decode_as_run() {
    let s = seed(0x7e58);
    let (cs, fixed, grid) = kvsched::experiments::as_run::longdecode(scale(), s);
    print(&cs);
    for p in fixed.iter().chain(&grid) {
        assert!(p.error.is_none(), "{p:?}\n{}", replay(s, "exp_long_decode_as_run"));
        assert!(p.latency_s.is_finite(), "{p:?}");
        if p.policy.starts_with("wait-cp") {
            assert_eq!(p.evictions, 0, "{p:?}");
        }
    }
    assert!(cs[0].label.starts_with("fixed config, lambda 4.5"), "{}", cs[0].line());
    assert!(cs.iter().any(|c| c.label.starts_with("authors' protocol")));
    // The unsourced 2.88 % is never judged as supported or refuted.
    let r = cs.iter().find(|c| c.label.starts_with("Sarathi restart")).expect("restart row");
    assert!(matches!(r.verdict, ClaimVerdict::NotReproducible(_)), "{}", r.line());
}

/// Checks W-EXP-LMSYS-AS-RUN (the authors' Llama-2-7B lmsys rerun: one-segment WAIT-CP tl 300
/// and tl 200, Algorithm 2, Sarathi 512 and 256 with cap 256, vLLM cap 128, λ up to 80 in the
/// quick tier). Asserted: every point is finite and no run stops early, the grid reaches
/// λ 80, Algorithm 2 is live at the lowest rate; the verdicts are measured and printed.
#[test]
fn exp_lmsys_as_run() {
    let s = seed(0x1a6);
    let (cs, pts) = kvsched::experiments::as_run::lmsys(scale(), s);
    print(&cs);
    for p in &pts {
        assert!(p.error.is_none() && p.latency_s.is_finite(), "{p:?}\n{}", replay(s, "lmsys"));
    }
    assert!(pts.iter().any(|p| p.lambda >= 80.0), "grid stops below 80");
    let low = pts.iter().map(|p| p.lambda).fold(f64::INFINITY, f64::min);
    let nw = pts.iter().filter(|p| p.policy.starts_with("nested") && p.lambda == low);
    assert!(nw.clone().count() > 0 && nw.clone().all(|p| p.completion_ratio >= 0.9));
    assert!(cs[0].label.starts_with("WAIT-CP tl 300 / Sarathi 512"), "{}", cs[0].line());
}

/// Checks W-EXP-LMSYS-AS-RUN, the admission-rate question (`spec/WAIT_NOTES.md` §1): the
/// authors' one-segment WAIT-CP with tl 300 over the 500-stage decode horizon admits at most
/// 300 of every 501 iterations (one per turn of its rotation), so at most 300/501 per
/// iteration and ~58 req/s at d0 = 10.2 ms, whatever the load. Asserted at λ = 100 (overload):
/// admissions never exceed the rotation's count, completions stay under `tl / (S d0)`, and
/// the cap binds (admissions reach 90% of it). Contrast ("sometimes"): kvsched's default
/// one-segment reading, which sizes the segment by the mean revealed output (~158 stages),
/// admits well above 300/501 per iteration on the same instance, so the cap comes from the
/// authors' 500-stage segment, not from the rotation mechanism alone.
#[test]
fn wait_cp_one_segment_admission_cap() {
    use kvsched::experiments::as_run::{
        affine_workload, one_segment_cap, run_point, Pol, LMSYS_AFFINE, LMSYS_AS_RUN_BINS,
    };
    use kvsched::schedulers::wait_cp::WaitCp;
    let s = seed(0x1a7);
    let (d0, d1, cap) = LMSYS_AFFINE;
    let pol = Pol::WaitCp { tl: 300, chunk: 128, gate: true, horizon: 500 };
    let law = kvsched_spec::StepTime::Affine { d0_s: d0, d1_s_per_token: d1 };
    let p = run_point(&law, cap, &LMSYS_AS_RUN_BINS, &pol, 100.0, 3_000, s);
    assert!(p.error.is_none(), "{p:?}\n{}", replay(s, "wait_cp_one_segment_admission_cap"));
    let (per_step, per_s) = one_segment_cap(300, 501, d0);
    let rotation = p.steps.div_ceil(501) * 300;
    println!(
        "tl 300 over 501 stages at lambda 100: {} admissions in {} iterations ({:.3} per \
         iteration, cap {per_step:.3}); {:.1} completions/s (cap {per_s:.1} at d0)",
        p.admissions,
        p.steps,
        p.admissions as f64 / p.steps as f64,
        p.completion_ratio * 100.0
    );
    assert!(p.admissions <= rotation, "{} admissions > rotation {rotation}", p.admissions);
    assert!(p.completion_ratio * 100.0 <= per_s, "{p:?}");
    assert!(p.admissions as f64 >= 0.9 * per_step * p.steps as f64, "cap does not bind: {p:?}");
    // Contrast: the segment sized by the mean revealed output.
    let w = affine_workload((d0, d1), cap, &LMSYS_AS_RUN_BINS, 100.0);
    let requests = generate(&w, Amount::Requests(3_000), s);
    let inst = Instance { config: w.model_config(Information::Hidden), requests };
    let o = simulate(&inst, &mut WaitCp::from_tl(300, 128), SimOptions::default())
        .unwrap_or_else(|e| *e.partial);
    let adm = o.admissions as f64 / o.steps as f64;
    println!("mean-output segment: {adm:.3} admissions per iteration");
    assert!(adm > 1.2 * per_step, "mean-output segment admits only {adm:.3} per iteration");
}

/// Nested WAIT with a fluid design whose deep segments have `n_k < 1` used to stall during
/// the drain: the only resident sat in a boundary queue on a zero turn of its rotor, the
/// decision was empty and no arrival was left (found by `exp_lmsys_as_run` at λ = 10, the
/// regression seed below). Every request must now complete, on that seed and two more.
#[test]
fn nested_wait_drain_does_not_stall() {
    use kvsched::experiments::as_run::{run_point, Pol, LMSYS_AFFINE, LMSYS_AS_RUN_BINS};
    let (d0, d1, cap) = LMSYS_AFFINE;
    let law = kvsched_spec::StepTime::Affine { d0_s: d0, d1_s_per_token: d1 };
    for s in [9_003_438_113_807_180_561, seed(0x1a8), seed(0x1a9)] {
        let p = run_point(&law, cap, &LMSYS_AS_RUN_BINS, &Pol::Nested, 10.0, 1_000, s);
        assert!(p.error.is_none(), "seed {s}: {p:?}");
        assert!(p.completion_ratio > 0.0 && p.admissions >= 1_000, "seed {s}: {p:?}");
    }
}

/// Checks an as-run threshold-ordering experiment (`name` for the replay): no run stops early,
/// WAIT-CP never evicts, every policy is controlled at the lowest rate (the criterion can
/// pass), and, sometimes, the grid reaches overload (some point fails the criterion), so the
/// ordering is decided by crossings, not by a tie at the grid's top. The ordering is measured
/// and printed.
fn check_ordering_as_run(
    name: &str,
    s: u64,
    run: fn(Scale, u64) -> (Vec<ClaimResult>, Vec<as_run::Point>),
) {
    let (cs, pts) = run(scale(), s);
    print(&cs);
    for p in &pts {
        assert!(p.error.is_none(), "{p:?}\n{}", replay(s, name));
        if p.policy.contains("wait-cp") {
            assert_eq!(p.evictions, 0, "{p:?}");
        }
    }
    let low = pts.iter().map(|p| p.lambda).fold(f64::INFINITY, f64::min);
    assert!(pts.iter().filter(|p| p.lambda == low).all(|p| p.completion_ratio >= 0.9));
    let first = |pol: &str| pts.iter().find(|p| p.policy == pol && p.lambda == low);
    let crossed = pts.iter().any(|p| {
        first(&p.policy)
            .is_some_and(|f| p.completion_ratio < 0.9 || p.latency_s > 4.0 * f.latency_s)
    });
    assert!(crossed, "no policy crosses its threshold on the grid: {pts:?}");
}

/// W-EXP-SINGLE-AS-RUN (the single-type figure as the authors ran it: Llama-3-8B, C = 479,232,
/// WAIT-CP tl 21 cs 256 gate off, Sarathi 512/512, vLLM cap 128).
#[test]
fn exp_single_type_as_run() {
    check_ordering_as_run("exp_single_type_as_run", seed(0x7e59), as_run::single);
}

/// W-EXP-TWOTYPE-AS-RUN (the two-type figure as the authors ran it: Llama-3-8B, C = 479,232,
/// Nested WAIT-CP tl 30 cs 128 over stages 1–20 / 21–50, Sarathi 512/512, vLLM cap 128).
#[test]
fn exp_two_type_as_run() {
    check_ordering_as_run("exp_two_type_as_run", seed(0x7e5a), as_run::two_type);
}
