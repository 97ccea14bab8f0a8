//! Unit tests of the fluid benchmark: identities, edge cases, Nested WAIT and designs.

use super::design::*;
use super::nested::*;
use super::*;
use crate::step_time::BatchShape;

fn class(l: u64, lp: u64, rate: f64) -> FluidClass {
    FluidClass { name: None, prompt_tokens: l, output_tokens: lp, rate_per_s: rate }
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-300)
}

#[test]
fn mass_is_the_sum_over_stages() {
    for (l, lp) in [(1u64, 1u64), (512, 20), (58, 147), (1, 1000)] {
        let direct: u64 = (0..=lp).map(|s| l + s).sum();
        assert_eq!(kv_mass(l, lp), direct as f64);
    }
}

#[test]
fn mass_matches_the_affine_step_time() {
    // d0 = 0: the KV part of one request's l'+1 iterations is d1 * S (WAIT Eq. 1).
    let st = StepTime::Affine { d0_s: 0.0, d1_s_per_token: 1e-6 }.compile().unwrap();
    let (l, lp) = (100u64, 30u64);
    let total: u64 = (0..=lp)
        .map(|s| {
            let shape = BatchShape { attended_kv_tokens: l + s, ..BatchShape::default() };
            st.duration_ns(&shape).get()
        })
        .sum();
    assert_eq!(total as f64, 1e-6 * kv_mass(l, lp) * 1e9);
}

#[test]
fn single_type_closed_form() {
    let (d0, d1, lam) = (0.01, 3e-7, 2.0);
    let inp = FluidInputs::new(vec![class(512, 1000, lam)], d0, d1, 1e6).unwrap();
    let s = FluidSolution::solve(&inp);
    let big_s = kv_mass(512, 1000);
    let n = d0 * lam / (1.0 - d1 * lam * big_s);
    assert!(close(s.classes[0].n_per_stage.unwrap(), n, 1e-14));
    assert!(close(s.memory_tokens.unwrap(), n * big_s, 1e-14));
    // Flow balance: (d0 + d1 M*) lambda = n*.
    assert!(close((d0 + d1 * s.memory_tokens.unwrap()) * lam, n, 1e-14));
    assert_eq!(s.throughput_tokens_per_s, 2000.0);
}

#[test]
fn toy_example_hello_hi() {
    // l = 1, l' = 1, lambda = 4, C = 12: 4 prompts per stage, memory 12 (WAIT §1).
    // With d1 = 0 and d0 = 1 round: n* = 4, M* = 4 * S = 4 * 3 = 12.
    let inp = FluidInputs::new(vec![class(1, 1, 4.0)], 1.0, 0.0, 12.0).unwrap();
    let s = FluidSolution::solve(&inp);
    assert_eq!(s.classes[0].n_per_stage, Some(4.0));
    assert_eq!(s.memory_tokens, Some(12.0));
    assert!(s.stable);
    assert_eq!(s.lambda_pole_per_s, None);
    assert_eq!(s.lambda_max_per_s, 4.0);
}

#[test]
fn lambda_max_solves_m_star_equals_c() {
    let inp = FluidInputs::new(vec![class(58, 147, 3.0), class(20, 400, 1.0)], 0.01, 3.9e-7, 137e3)
        .unwrap();
    let s = FluidSolution::solve(&inp);
    let m = s.m_star_at_scale(s.max_scale).unwrap();
    assert!(close(m, 137e3, 1e-12), "{m}");
    assert!(s.lambda_max_per_s < s.lambda_pole_per_s.unwrap());
}

#[test]
fn beyond_the_cut_is_none_not_inf() {
    let inp = FluidInputs::new(vec![class(512, 1000, 3.5)], 0.010103, 3.059e-7, 137e3).unwrap();
    let s = FluidSolution::solve(&inp);
    assert_eq!(s.regime, Regime::Unbounded);
    assert!(!s.stable && s.memory_tokens.is_none() && s.iteration_time_s.is_none());
    let json = serde_json::to_string(&s).unwrap();
    assert!(!json.contains("inf") && !json.contains("NaN"), "{json}");
}

#[test]
fn rich_step_time_is_rejected() {
    let text = "[memory]\nkv_capacity_tokens = 1000\n[step_time]\nkind = \"rich\"\nbase_s = 0.01\n\
                [[class]]\nprompt_tokens = 5\noutput_tokens = 5\nrate_per_s = 1.0\n";
    let w = WorkloadFile::parse("w.toml", text).unwrap();
    let e = FluidSolution::from_workload(&w).unwrap_err();
    assert!(matches!(e, FluidError::UnsupportedStepTime(_)), "{e}");
}

#[test]
fn theta_solves_its_equation_and_bound_holds() {
    for &(p, a, b) in &[(0.3, 10.0, 4.0), (0.5, 100.0, 51.0), (0.9, 5.0, 4.6), (0.01, 3.0, 1.0)] {
        let t = theta(p, a, b).unwrap();
        let r = t.root.unwrap();
        let lhs = -r * b + a * (1.0 - p + p * r.exp()).ln();
        assert!(lhs.abs() < 1e-9 * (r * b).max(1e-12), "p={p} root={r} lhs={lhs}");
        assert!(t.bound_holds, "{t:?}");
    }
    assert!(theta(0.5, 10.0, 5.0).is_none(), "p n_prev = n_k: no negative drift");
    assert_eq!(theta(0.5, 10.0, 10.0).unwrap().root, None, "bounded queue");
}

#[test]
fn nested_segments_and_required_memory() {
    // Two types p512d20 (0.7) and p512d50 (0.3) at total rate 20.
    let seg = Segments::from_outputs(512.0, &[(50, 6.0), (20, 14.0)]).unwrap();
    assert_eq!(seg.outputs, vec![20, 50]);
    let p = seg.continuation();
    assert!(close(p[1], 0.3, 1e-15));
    // widths: (21, 10) and (30, 35.5); M^pi = n1 (512 + 10) 21 + n2 (512 + 35.5) 30.
    let n = [2.0, 1.0];
    assert_eq!(seg.base_memory(&n), 2.0 * 522.0 * 21.0 + 547.5 * 30.0);
    let buf = BufferParams { horizon_s: 100.0, zeta: 1.0, segments: 2, delta: 0.01 };
    let c = check_thresholds(&seg, &n, 0.01, 3.3e-7, &buf);
    assert!(c.boundary_drift_ok[1]);
    let th = c.theta[1].unwrap().root.unwrap();
    let expect = seg.base_memory(&n) + (512.0 + 20.0) * (1.0 + buf.log_factor(0.01) / th);
    assert!(close(c.required_memory_tokens.unwrap(), expect, 1e-14));
}

#[test]
fn fluid_design_meets_conditions_on_paper_workloads() {
    let inp = FluidInputs::new(
        vec![class(512, 20, 14.0), class(512, 50, 6.0)],
        0.010042,
        3.342e-7,
        137e3,
    )
    .unwrap();
    let d = fluid_design(&inp, None).unwrap();
    assert!(wait_conditions(&inp, &d.n, 1e-12).is_some());
    assert!(d.n.iter().all(|n| n.fract() == 0.0 && *n >= 1.0));
    let r = fluid_design_real(&inp, None).unwrap();
    assert!(r.slack_s.abs() < 1e-12, "canonical design has zero slack: {}", r.slack_s);
}

#[test]
fn design_errors_name_the_regime() {
    let inp = FluidInputs::new(vec![class(512, 1000, 3.0)], 0.010103, 3.059e-7, 137e3).unwrap();
    assert!(matches!(fluid_design(&inp, None), Err(DesignError::MemoryBound { .. })));
    let ok = inp.scaled(0.5);
    let r = fluid_design_real(&ok, Some(1.0));
    assert!(matches!(r, Err(DesignError::BadArgument(_))), "tau A > C is rejected: {r:?}");
    let tau = 1.5 * FluidSolution::solve(&ok).iteration_time_s.unwrap();
    assert!(fluid_design_real(&ok, Some(tau)).unwrap().slack_s > 0.0, "strict slack");
    let inp = inp.scaled(2.0);
    assert_eq!(fluid_design(&inp, None), Err(DesignError::Unbounded));
}

#[test]
fn tl_designs_match_the_paper_examples() {
    let v = tl_single(21, 512, 20, Some(256));
    assert_eq!(v.len(), 22);
    assert_eq!(v.iter().sum::<u64>(), 21);
    let segs = tl_nested(&[(20, 0.7), (50, 0.3)], &[0, 20, 50], 30.0, 0.0).unwrap();
    let caps: Vec<u64> = segs.iter().map(|s| s.cap).collect();
    assert_eq!(caps, vec![21, 9], "notes §3.3: tl = 30 gives caps of about 21 and 9");
    assert!(close(segs[1].n / segs[0].n, 0.3, 1e-12));
    let segs = tl_nested(&[(20, 0.7), (50, 0.3)], &[0, 20, 50], 30.0, 0.8).unwrap();
    assert_eq!(segs[0].q_next, 0.99, "q is capped at 0.99");
}

#[test]
fn tl_nested_with_margin_meets_boundary_drift() {
    // notes §3.3 with seg_margin 0.05: q_k > p_k, so n_k / n_{k-1} > p_k (negative drift).
    let inp = FluidInputs::new(
        vec![class(512, 20, 15.4), class(512, 50, 6.6)],
        0.010042,
        3.342e-7,
        137e3,
    )
    .unwrap();
    let seg = Segments::from_inputs(&inp).unwrap();
    let d = tl_nested(&[(20, 15.4), (50, 6.6)], &[0, 20, 50], 30.0, 0.05).unwrap();
    let n: Vec<f64> = d.iter().map(|s| s.n).collect();
    let buf = BufferParams { horizon_s: 600.0, zeta: 1.0, segments: 2, delta: 0.01 };
    let c = check_thresholds(&seg, &n, inp.d0_s, inp.d1_s_per_token, &buf);
    assert!(c.boundary_drift_ok[1] && c.entry_drift_ok, "{c:?}");
    assert!(c.required_memory_tokens.unwrap() > c.base_memory_tokens);
    // Without the margin the design sits exactly on the boundary n_2 / n_1 = p_2.
    let d0 = tl_nested(&[(20, 15.4), (50, 6.6)], &[0, 20, 50], 30.0, 0.0).unwrap();
    let n0: Vec<f64> = d0.iter().map(|s| s.n).collect();
    let ratio = n0[1] / n0[0];
    assert!((ratio - seg.continuation()[1]).abs() < 1e-12, "margin 0: on the boundary, {ratio}");
}
