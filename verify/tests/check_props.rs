//! `check_trace` has no false alarms and reports lost requests: traces written from random
//! spec runs (every convention, paging, LIFO) check clean except for exactly the requests the
//! run left unfinished.
//!
//! Method: replay random mostly-valid action sequences through the spec, write a trace record
//! for each accepted action (the spec's own durations, footprints and completions), end the
//! trace, and compare the checker's report with the expected `Lost` / `MissingArrival` list.

use kvsched_spec::trace::{TraceRecord, TRACE_FORMAT_VERSION};
use kvsched_spec::{apply_mut, Action, Instance, Phase, RequestId, State};
use kvsched_verify::check::{check_records, ViolationKind};
use kvsched_verify::strategies::{choose_action, run_property, scenario, ActionChoice};
use proptest::prelude::*;

/// The trace of the accepted actions, and the final state.
fn trace_of(instance: &Instance, choices: &[ActionChoice]) -> (Vec<TraceRecord>, State) {
    let step_time = instance.config.step_time.compile().unwrap();
    let mut state = State::init(instance);
    let mut out = vec![TraceRecord::Header {
        format_version: TRACE_FORMAT_VERSION,
        config: instance.config.clone(),
        scheduler: "random".into(),
        seed: None,
        requests: Some(instance.requests.len() as u64),
    }];
    for c in choices {
        let action = choose_action(instance, &state, c);
        let t = state.time_ns;
        let Ok(report) = apply_mut(instance, &step_time, &mut state, &action) else { continue };
        out.push(match action {
            Action::Arrive(id) => {
                let r = instance.request(id);
                TraceRecord::Arrive {
                    t,
                    id,
                    arrival: r.arrival_ns,
                    prompt: r.prompt_tokens,
                    output: r.output_tokens,
                    predicted: r.predicted_output_tokens,
                    class: r.class,
                }
            }
            Action::Evict(id) => TraceRecord::Evict { t, id },
            Action::Idle { until_ns } => TraceRecord::Idle { t, until: until_ns },
            Action::Step(items) => TraceRecord::Step {
                t,
                dur: report.duration_ns,
                repeat: 1,
                items,
                kv: report.kv_peak,
                done: report.completed,
            },
        });
    }
    out.push(TraceRecord::End { t: state.time_ns, completed: state.completed });
    (out, state)
}

/// 400 random spec runs of up to 100 actions check clean, up to the unfinished requests.
#[test]
fn spec_runs_check_clean_except_unfinished() {
    let test = "spec_runs_check_clean_except_unfinished";
    run_property(test, 0xC4EC_0001, 400, scenario(100), |(instance, choices)| {
        let (records, state) = trace_of(&instance, &choices);
        let report = check_records(&records).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected: Vec<ViolationKind> = state
            .requests
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let id = RequestId(i as u32);
                match r.phase {
                    Phase::Pending => Some(ViolationKind::MissingArrival { id }),
                    Phase::Waiting | Phase::Resident(_) => Some(ViolationKind::Lost { id }),
                    Phase::Done { .. } => None,
                }
            })
            .collect();
        let found: Vec<ViolationKind> = report.violations.iter().map(|v| v.kind.clone()).collect();
        prop_assert_eq!(found, expected);
        prop_assert!(report.violations.iter().all(|v| v.line == records.len()));
        prop_assert_eq!(report.completed, state.completed);
        Ok(())
    });
}

/// Known answer: the worked example of `spec/TRACE.md` is valid, and changing its last step's
/// `kv` to 9 (over capacity 8) is reported at line 5 twice (over capacity, and not the spec's 6).
#[test]
fn trace_md_example_is_valid() {
    let text = include_str!("../../spec/TRACE.md");
    let start = text.find("```jsonl\n").expect("example block") + "```jsonl\n".len();
    let example = &text[start..start + text[start..].find("```").unwrap()];
    let report = kvsched_verify::check_trace(example.as_bytes()).unwrap();
    assert!(report.is_valid(), "{:?}", report.violations);
    assert_eq!((report.records, report.steps, report.completed), (6, 2, 1));
    let bad = example.replace("\"kv\":6", "\"kv\":9");
    let report = kvsched_verify::check_trace(bad.as_bytes()).unwrap();
    let lines: Vec<usize> = report.violations.iter().map(|v| v.line).collect();
    assert_eq!(lines, vec![5, 5], "{:?}", report.violations);
}
