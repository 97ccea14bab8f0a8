//! Property tests of the spec itself (`kvsched_spec::model`), on random action sequences.
//!
//! Method: a small random instance and a sequence of raw choices
//! (`kvsched_verify::strategies`); each choice becomes an action against the current state,
//! mostly valid, sometimes aimed at one rule. "Always" properties are checked after every
//! action; each has "sometimes" siblings that fail if the generator never reaches the states
//! that would make the "always" meaningful (memory full, evictions, long queues, every
//! `Violation` variant). Seeds are fixed; `KVSCHED_SEED` overrides them, and a failure prints
//! the seed and a one-line replay command.

use kvsched_spec::{apply_mut, Action, Instance, Phase, Preemption, State, Tokens};
use kvsched_verify::strategies::{
    choose_action, replay_line, run_property, runner, scenario, seed_from_env, violation_name,
    ActionChoice, ALL_VIOLATIONS,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use std::collections::BTreeSet;

/// Replays `choices` on `instance`, calling `each(before, action, result, after)` per action.
fn replay(
    instance: &Instance,
    choices: &[ActionChoice],
    mut each: impl FnMut(&State, &Action, &Result<(), kvsched_spec::Violation>, &State),
) {
    let step_time = instance.config.step_time.compile().expect("valid instance");
    let mut state = State::init(instance);
    for c in choices {
        let action = choose_action(instance, &state, c);
        let before = state.clone();
        let result = apply_mut(instance, &step_time, &mut state, &action).map(|_| ());
        each(&before, &action, &result, &state);
    }
}

/// Tests one transition against the "always" properties; returns the first broken one.
fn transition_ok(
    instance: &Instance,
    before: &State,
    action: &Action,
    result: &Result<(), kvsched_spec::Violation>,
    after: &State,
) -> Result<(), String> {
    if result.is_err() {
        // A rejected action changes nothing.
        return if before == after { Ok(()) } else { Err("rejected action changed state".into()) };
    }
    after.check_invariants(instance)?;
    if after.kv_used > instance.config.memory.capacity() {
        return Err(format!("memory: kv_used {} over capacity", after.kv_used));
    }
    if after.time_ns < before.time_ns {
        return Err("time went backwards".into());
    }
    let (mut pending, mut waiting, mut resident, mut done) = (0usize, 0usize, 0usize, 0usize);
    for (i, (b, a)) in before.requests.iter().zip(&after.requests).enumerate() {
        match a.phase {
            Phase::Pending => pending += 1,
            Phase::Waiting => waiting += 1,
            Phase::Resident(_) => resident += 1,
            Phase::Done { .. } => done += 1,
        }
        progress_ok(i, b.phase, a.phase, action)?;
        output_ok(instance, i, b, a, action)?;
    }
    if pending + waiting + resident + done != instance.requests.len()
        || pending != instance.requests.len() - after.next_arrival
    {
        return Err("conservation: phase counts do not add up".into());
    }
    Ok(())
}

/// Monotone progress of request `i` from phase `b` to phase `a` under `action`.
fn progress_ok(i: usize, b: Phase, a: Phase, action: &Action) -> Result<(), String> {
    let evicted = matches!(action, Action::Evict(id) if id.index() == i);
    let arrived = matches!(action, Action::Arrive(id) if id.index() == i);
    let held = |p: Phase| match p {
        Phase::Resident(r) => Some((r.prefilled, r.generated)),
        _ => None,
    };
    match (b, a) {
        (Phase::Done { .. }, a) if a != b => Err(format!("r{i}: done did not stay done")),
        (Phase::Resident(_), Phase::Waiting) if !evicted => {
            Err(format!("r{i}: lost its KV without an eviction"))
        }
        (Phase::Pending, p) if p != Phase::Pending && !arrived => {
            Err(format!("r{i}: left pending without an arrival"))
        }
        (Phase::Resident(_), Phase::Resident(_)) => {
            let ((p0, g0), (p1, g1)) = (held(b).unwrap(), held(a).unwrap());
            if p1 < p0 || g1 < g0 {
                Err(format!("r{i}: progress decreased without an eviction"))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// The output a request has produced never decreases, except to zero by an eviction under
/// `Restart`; under `KeepGenerated` an eviction keeps it exactly.
fn output_ok(
    instance: &Instance,
    i: usize,
    b: &kvsched_spec::model::RequestState,
    a: &kvsched_spec::model::RequestState,
    action: &Action,
) -> Result<(), String> {
    let evicted = matches!(action, Action::Evict(id) if id.index() == i);
    let (before, after) = (b.output_so_far(), a.output_so_far());
    match instance.config.preemption {
        Preemption::Restart if evicted => {
            (after == Tokens::ZERO).then_some(()).ok_or(format!("r{i}: kept output on restart"))
        }
        Preemption::KeepGenerated if evicted && after != before => {
            Err(format!("r{i}: eviction changed its output {before} -> {after}"))
        }
        _ if after < before && !matches!(a.phase, Phase::Done { .. }) => {
            Err(format!("r{i}: output decreased {before} -> {after}"))
        }
        _ => Ok(()),
    }
}

/// Always: memory within capacity, conservation, `check_invariants`, monotone time and
/// progress (generated tokens drop only to 0, by an eviction), done stays done, and a rejected
/// action leaves the state unchanged. 512 random scenarios of up to 80 actions.
#[test]
fn spec_random_actions_keep_invariants() {
    let test = "spec_random_actions_keep_invariants";
    run_property(test, 0x5bec_0001, 512, scenario(80), |(instance, choices)| {
        let mut broken = None;
        replay(&instance, &choices, |before, action, result, after| {
            if broken.is_none() {
                if let Err(e) = transition_ok(&instance, before, action, result, after) {
                    broken = Some(format!("{e} (after {action:?} -> {result:?})"));
                }
            }
        });
        match broken {
            None => Ok(()),
            Some(e) => Err(TestCaseError::fail(e)),
        }
    });
}

/// Generates scenarios from a fixed seed until `done(seen)` or `limit` scenarios, calling
/// `visit` on every transition; returns how many scenarios it took.
fn explore(
    seed: u64,
    limit: usize,
    mut visit: impl FnMut(&Instance, &Action, &Result<(), kvsched_spec::Violation>, &State),
    mut done: impl FnMut() -> bool,
) -> usize {
    let mut runner = runner(seed, 1);
    let strategy = scenario(120);
    for n in 0..limit {
        if done() {
            return n;
        }
        let (instance, choices) = strategy.new_tree(&mut runner).expect("strategy").current();
        replay(&instance, &choices, |_, action, result, after| {
            visit(&instance, action, result, after)
        });
    }
    limit
}

/// Sometimes: every `Violation` variant is produced by some action (so each rejection rule is
/// exercised, and `check_trace`'s reports can be trusted to cover them). Fails naming the
/// variants never reached in 5,000 scenarios.
#[test]
fn spec_every_violation_is_reachable() {
    let test = "spec_every_violation_is_reachable";
    let seed = seed_from_env(0x5bec_0002);
    let seen = std::cell::RefCell::new(BTreeSet::new());
    let n = explore(
        seed,
        5_000,
        |_, _, result, _| {
            if let Err(v) = result {
                seen.borrow_mut().insert(violation_name(v));
            }
        },
        || seen.borrow().len() == ALL_VIOLATIONS.len(),
    );
    eprintln!("{test}: all reached after {n} scenarios");
    let seen = seen.into_inner();
    let missing: Vec<_> = ALL_VIOLATIONS.iter().filter(|v| !seen.contains(*v)).collect();
    assert!(
        missing.is_empty(),
        "never reached {missing:?} in {n} scenarios (seed {seed:#x})\n{}",
        replay_line(seed, test)
    );
}

/// Sometimes: memory is exactly full, evictions happen, three or more requests wait at once,
/// whole instances complete, and under `KeepGenerated` a request resumes keeping output
/// (`kept > 0`), produces more in its new residency, and completes (so the "always" properties
/// are not vacuous).
#[test]
fn spec_memory_pressure_evictions_and_queues_occur() {
    let test = "spec_memory_pressure_evictions_and_queues_occur";
    let seed = seed_from_env(0x5bec_0003);
    let flags = std::cell::RefCell::new([false; 6]);
    let names = [
        "kv_used == capacity",
        "an eviction",
        "3+ waiting",
        "all requests done",
        "a resumed request (kept > 0) generates",
        "a resumed request (kept > 0) completes",
    ];
    let n = explore(
        seed,
        5_000,
        |instance, action, result, after| {
            if result.is_err() {
                return;
            }
            let mut f = flags.borrow_mut();
            let cap = instance.config.memory.capacity();
            f[0] |= after.kv_used == cap && cap > Tokens::ZERO;
            f[1] |= matches!(action, Action::Evict(_));
            f[2] |= after.requests.iter().filter(|r| r.phase == Phase::Waiting).count() >= 3;
            f[3] |= after.all_done();
            f[4] |= after.requests.iter().any(|r| {
                r.kept > Tokens::ZERO
                    && matches!(r.phase, Phase::Resident(res) if res.generated > Tokens::ZERO)
            });
            f[5] |= after
                .requests
                .iter()
                .any(|r| r.kept > Tokens::ZERO && matches!(r.phase, Phase::Done { .. }));
        },
        || flags.borrow().iter().all(|&f| f),
    );
    eprintln!("{test}: all reached after {n} scenarios");
    let flags = flags.into_inner();
    let missing: Vec<_> = names.iter().zip(flags).filter(|(_, f)| !f).map(|(n, _)| n).collect();
    assert!(
        missing.is_empty(),
        "never reached {missing:?} in {n} scenarios (seed {seed:#x})\n{}",
        replay_line(seed, test)
    );
}
