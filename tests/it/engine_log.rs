//! Engine step logs (`spec/TRACE.md`, "Engine step logs"): the hand-written vLLM-v1 log in
//! `tests/data/engine_vllm_v1.jsonl` is valid; each corruption (over capacity, admission in a
//! preempting step, preempting a non-last request, progress kept after preemption, a double
//! advance, a garbage line) is caught with its kind and line; `check-trace` exits 0/1/2 on
//! engine logs; and mutated logs never panic the parser.

use crate::common::{replay, seed};
use kvsched_verify::engine_log::{check_engine_log, EngineViolationKind as K};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use std::path::PathBuf;
use std::process::Command;

fn example() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/engine_vllm_v1.jsonl");
    std::fs::read_to_string(path).unwrap().lines().map(str::to_string).collect()
}

/// The example with `line` (1-based) passed through `f`.
fn edited(line: usize, f: impl Fn(&str) -> String) -> Vec<String> {
    let mut lines = example();
    lines[line - 1] = f(&lines[line - 1]);
    lines
}

fn violations(lines: &[String]) -> Vec<(usize, K)> {
    let report = check_engine_log(lines.join("\n").as_bytes()).expect("well-formed");
    report.violations.into_iter().map(|v| (v.line, v.kind)).collect()
}

/// The first violation is `kind` at `line`.
fn caught(lines: &[String], line: usize, kind: K) {
    let v = violations(lines);
    assert_eq!(v.first(), Some(&(line, kind)), "all: {v:?}");
}

#[test]
fn example_vllm_v1_log_is_valid() {
    let report = check_engine_log(example().join("\n").as_bytes()).unwrap();
    assert!(report.is_valid(), "{:?}", report.violations);
    assert_eq!((report.steps, report.requests, report.finished, report.preemptions), (5, 3, 3, 1));
}

#[test]
fn engine_usage_over_capacity_is_caught() {
    let lines = edited(5, |l| l.replace("\"num_used_blocks\":3", "\"num_used_blocks\":4"));
    let v = violations(&lines);
    assert!(v.contains(&(5, K::EngineKvOverCapacity { used_blocks: 4, capacity_blocks: 3 })));
}

#[test]
fn replay_over_capacity_is_caught() {
    let lines = edited(1, |l| l.replace("\"kv_capacity_tokens\":48", "\"kv_capacity_tokens\":32"));
    let v = violations(&lines);
    let capacity = kvsched_spec::Tokens(32);
    let replay = K::ReplayKvOverCapacity { used: kvsched_spec::Tokens(48), capacity };
    assert!(v.contains(&(5, replay)), "{v:?}");
    assert!(v.contains(&(5, K::EngineKvOverCapacity { used_blocks: 3, capacity_blocks: 2 })));
}

#[test]
fn admission_in_a_preempting_step_is_caught() {
    let lines = edited(3, |l| {
        l.replace("\"new_reqs\":[]", "\"new_reqs\":[{\"req_id\":\"c\",\"prompt_len\":8}]").replace(
            "\"scheduled\":[",
            concat!(
                r#""scheduled":[{"req_id":"c","#,
                r#""num_scheduled_tokens":8,"num_computed_tokens":0},"#
            ),
        )
    });
    caught(&lines, 3, K::AdmissionAfterPreemption { id: "c".into() });
}

#[test]
fn preempting_a_non_last_request_is_caught() {
    let lines = edited(3, |l| {
        l.replace("\"preempted_req_ids\":[\"b\"]", "\"preempted_req_ids\":[\"a\"]")
            .replace("{\"req_id\":\"a\",", "{\"req_id\":\"b\",")
    });
    caught(&lines, 3, K::PreemptNotLast { id: "a".into(), expected: "b".into() });
}

#[test]
fn preempt_last_uses_the_tracked_order_without_running() {
    let lines = edited(3, |l| {
        l.replace("\"preempted_req_ids\":[\"b\"]", "\"preempted_req_ids\":[\"a\"]")
            .replace("{\"req_id\":\"a\",", "{\"req_id\":\"b\",")
            .replace("\"running\":[\"a\",\"b\"],", "")
    });
    caught(&lines, 3, K::PreemptNotLast { id: "a".into(), expected: "b".into() });
}

#[test]
fn progress_kept_after_preemption_is_caught() {
    let lines = edited(5, |l| {
        l.replace(
            "{\"req_id\":\"b\",\"num_scheduled_tokens\":17,\"num_computed_tokens\":0}",
            "{\"req_id\":\"b\",\"num_scheduled_tokens\":1,\"num_computed_tokens\":16}",
        )
    });
    caught(&lines, 5, K::ProgressAfterPreemption { id: "b".into(), claimed: 16 });
}

#[test]
fn double_advance_is_caught() {
    let lines = edited(4, |l| {
        l.replace(
            "\"scheduled\":[",
            concat!(
                r#""scheduled":[{"req_id":"a","#,
                r#""num_scheduled_tokens":1,"num_computed_tokens":17},"#
            ),
        )
    });
    caught(&lines, 4, K::DoubleAdvance { id: "a".into() });
}

#[test]
fn garbage_line_is_malformed_at_its_line() {
    let lines = edited(4, |_| "not json".to_string());
    let err = check_engine_log(lines.join("\n").as_bytes()).unwrap_err();
    assert_eq!(err.line, 4);
}

fn tmp(name: &str, lines: &[String]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("kvsched-engine-{}-{name}", std::process::id()));
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

fn cli(path: &std::path::Path, extra: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kvsched"))
        .arg("check-trace")
        .args(extra)
        .arg(path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn cli_exit_codes_on_engine_logs() {
    let valid = tmp("valid", &example());
    assert_eq!(cli(&valid, &[]).0, 0, "{}", cli(&valid, &[]).1);
    assert_eq!(cli(&valid, &["--format", "engine"]).0, 0);
    // Read as a kvsched trace, the engine log is malformed.
    assert_eq!(cli(&valid, &["--format", "kvsched"]).0, 2);
    let bad =
        tmp("bad", &edited(4, |l| l.replace("\"num_used_blocks\":2", "\"num_used_blocks\":9")));
    let (code, text) = cli(&bad, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains(":4: "), "{text}");
    let garbage = tmp("garbage", &edited(2, |_| "{".to_string()));
    let (code, text) = cli(&garbage, &[]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("line 2"), "{text}");
    for p in [valid, bad, garbage] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn mutated_logs_never_panic() {
    let seed = seed(0xe6_1065);
    let lines = example();
    let strategy = (1..=lines.len(), any::<u32>(), 0usize..6);
    let mut runner = kvsched_verify::strategies::runner(seed, 1);
    for _ in 0..256 {
        let (line, x, how) = strategy.new_tree(&mut runner).unwrap().current();
        let mut mutated = lines.clone();
        mutated[line - 1] = mutate(&lines[line - 1], x, how);
        let text = mutated.join("\n");
        let outcome = std::panic::catch_unwind(|| check_engine_log(text.as_bytes()));
        assert!(
            outcome.is_ok(),
            "panic on {:?}\n{}",
            mutated[line - 1],
            replay(seed, "engine_log")
        );
    }
}

/// One of: truncate, replace a digit, drop a character, swap two ids, huge number, empty list.
fn mutate(line: &str, x: u32, how: usize) -> String {
    let at = x as usize % line.len().max(1);
    let cut = (0..=at).rev().find(|i| line.is_char_boundary(*i)).unwrap_or(0);
    match how {
        0 => line[..cut].to_string(),
        1 => line.replacen(char::from(b'0' + (x % 10) as u8), &(x % 100).to_string(), 1),
        2 => format!("{}{}", &line[..cut], line[cut..].chars().skip(1).collect::<String>()),
        3 => line.replace("\"a\"", "\"tmp\"").replace("\"b\"", "\"a\"").replace("\"tmp\"", "\"b\""),
        4 => line.replacen("16", "18446744073709551615", 1),
        _ => line.replacen("[\"", "[], \"x\":[\"", 1),
    }
}
