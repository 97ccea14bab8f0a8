//! `check_trace` against real simulator traces: a vLLM-v0 run under memory pressure is valid;
//! each kind of corruption (kv past capacity, an item advanced twice, a dropped arrival,
//! progress kept across an eviction, a wrong duration, a garbage line) is reported with its
//! kind and line; the `check-trace` CLI exits 0/1/2; and no input makes the checker panic.

use crate::common::{replay, seed};
use kvsched::schedulers::by_name;
use kvsched::sim::{simulate, Check, SimOptions};
use kvsched_spec::*;
use kvsched_verify::check::{check_trace, TraceErrorKind, TraceViolation, ViolationKind};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// Twelve requests of 20..=59 prompt and 10..=69 output tokens arriving within 0.1 s on 256
/// tokens of paged memory (block 16): vLLM v0 must preempt.
fn pressured_instance() -> Instance {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    let mut t = 0;
    let requests = (0..12)
        .map(|i| {
            t += next(10_000_000);
            Request {
                id: RequestId(i),
                arrival_ns: Nanos(t),
                prompt_tokens: Tokens(20 + next(40)),
                output_tokens: Tokens(10 + next(60)),
                predicted_output_tokens: None,
                class: 0,
            }
        })
        .collect();
    let config = ModelConfig {
        memory: MemoryConfig {
            kv_capacity_tokens: 256,
            block_size_tokens: 16,
            watermark_fraction: 0.0,
        },
        step_time: StepTime::Affine { d0_s: 0.01, d1_s_per_token: 3.5e-7 },
        first_token: FirstToken::WithPrefill,
        eviction: EvictionRule::Any,
        preemption: kvsched_spec::Preemption::Restart,
        information: Information::Hidden,
    };
    Instance { config, requests }
}

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("trace_check_{name}.jsonl"))
}

/// Simulates the pressured instance with vLLM v0 and check mode on; returns the trace lines.
fn real_trace() -> Vec<String> {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = tmp(&format!("real_{}_{run}", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    let options =
        SimOptions { trace: Some(Box::new(file)), check: Check::On, ..SimOptions::default() };
    let mut scheduler = by_name("vllm-v0").expect("vllm-v0 exists");
    let outcome = simulate(&pressured_instance(), scheduler.as_mut(), options).expect("run");
    assert!(outcome.trace_error.is_none(), "{:?}", outcome.trace_error);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).ok();
    text.lines().map(str::to_string).collect()
}

fn check(lines: &[String]) -> Vec<TraceViolation> {
    let text = lines.join("\n");
    check_trace(text.as_bytes()).expect("well-formed").violations
}

fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap()
}

/// Index of the first line whose record kind is `k` and that satisfies `pred`.
fn find(lines: &[String], k: &str, pred: impl Fn(&Value) -> bool) -> usize {
    lines
        .iter()
        .position(|l| {
            let v = json(l);
            v["k"] == k && pred(&v)
        })
        .unwrap_or_else(|| panic!("no {k} record as required"))
}

fn names(v: &Value, id: u64) -> bool {
    let Some(items) = v["items"].as_array() else { return false };
    items
        .iter()
        .any(|i| i.get("prefill").or_else(|| i.get("decode")).is_some_and(|x| x["id"] == id))
}

/// The real trace is valid, and the run reached evictions (so the corruption below is real).
#[test]
fn real_trace_is_valid() {
    let lines = real_trace();
    assert_eq!(check(&lines), vec![]);
    assert!(lines.iter().any(|l| json(l)["k"] == "evict"), "no eviction: weaken the memory");
    assert!(lines.iter().any(|l| json(l)["repeat"].as_u64().is_some_and(|r| r > 1)));
}

#[test]
fn kv_past_capacity_is_caught_at_its_line() {
    let mut lines = real_trace();
    let i = find(&lines, "step", |_| true);
    let mut v = json(&lines[i]);
    v["kv"] = Value::from(257u64);
    lines[i] = v.to_string();
    let found = check(&lines);
    let cap = Tokens(256);
    assert!(
        found.contains(&TraceViolation {
            line: i + 1,
            kind: ViolationKind::KvOverCapacity { claimed: Tokens(257), capacity: cap },
        }),
        "{found:?}"
    );
    assert!(found.iter().all(|f| f.line == i + 1), "resynchronised: {found:?}");
}

#[test]
fn item_advanced_twice_is_caught_at_its_line() {
    let mut lines = real_trace();
    let i = find(&lines, "step", |v| v["items"].as_array().unwrap().len() >= 2);
    let mut v = json(&lines[i]);
    let first = v["items"][0].clone();
    v["items"].as_array_mut().unwrap().push(first);
    lines[i] = v.to_string();
    let found = check(&lines);
    let first = found.first().expect("caught");
    assert_eq!(first.line, i + 1, "{found:?}");
    let dup = matches!(first.kind, ViolationKind::Spec(Violation::DuplicateInBatch { .. }));
    assert!(dup, "{found:?}");
    assert_eq!(found.len(), 1, "the duplicate is dropped and replay goes on: {found:?}");
}

#[test]
fn dropped_arrival_is_caught() {
    let mut lines = real_trace();
    let i = find(&lines, "arrive", |v| v["id"] == 1);
    lines.remove(i);
    // First use of r1 after the removed line: a batch naming it, or the next arrival.
    let first_use = lines[i..]
        .iter()
        .position(|l| {
            let v = json(l);
            (v["k"] == "step" && names(&v, 1)) || v["k"] == "arrive"
        })
        .map(|p| i + p + 1)
        .unwrap();
    let found = check(&lines);
    let first = found.first().expect("caught");
    assert_eq!(first.line, first_use, "{found:?}");
    let r1 = RequestId(1);
    assert!(
        matches!(
            first.kind,
            ViolationKind::BeforeArrival { id } | ViolationKind::MissingArrival { id } if id == r1
        ),
        "{found:?}"
    );
    assert!(found.iter().any(|f| f.kind == ViolationKind::MissingArrival { id: r1 }));
    assert!(found.iter().any(|f| matches!(f.kind, ViolationKind::CompletedMismatch { .. })));
}

#[test]
fn progress_kept_after_eviction_is_caught() {
    let mut lines = real_trace();
    let e = find(&lines, "evict", |_| true);
    let id = json(&lines[e])["id"].as_u64().unwrap();
    // The re-admission: the first later batch naming the request. Make it a decode, as an
    // engine that kept the request's progress would.
    let j = e + lines[e..].iter().position(|l| names(&json(l), id)).unwrap();
    let mut v = json(&lines[j]);
    for item in v["items"].as_array_mut().unwrap() {
        if item.get("prefill").is_some_and(|p| p["id"] == id) {
            *item = serde_json::json!({ "decode": { "id": id } });
        }
    }
    lines[j] = v.to_string();
    let found = check(&lines);
    assert_eq!(
        found.first(),
        Some(&TraceViolation {
            line: j + 1,
            kind: ViolationKind::ProgressAfterEviction { id: RequestId(id as u32) }
        }),
        "{found:?}"
    );
}

#[test]
fn wrong_duration_is_caught_and_only_once() {
    let mut lines = real_trace();
    let i = find(&lines, "step", |v| v["repeat"].as_u64().is_some_and(|r| r > 1));
    let mut v = json(&lines[i]);
    let dur = v["dur"].as_u64().unwrap();
    v["dur"] = Value::from(dur + 1);
    lines[i] = v.to_string();
    let found = check(&lines);
    assert_eq!(
        found,
        vec![TraceViolation {
            line: i + 1,
            kind: ViolationKind::DurationMismatch { claimed: Nanos(dur + 1), expected: Nanos(dur) },
        }]
    );
}

#[test]
fn malformed_input_names_the_line() {
    let lines = real_trace();
    let err_of = |ls: &[String]| check_trace(ls.join("\n").as_bytes()).unwrap_err();
    let mut garbage = lines.clone();
    garbage.insert(2, "this is not json".into());
    let e = err_of(&garbage);
    assert_eq!(e.line, 3);
    assert!(matches!(e.kind, TraceErrorKind::Json(_)), "{e}");
    let mut unknown = lines.clone();
    unknown[3] = r#"{"k":"teleport","t":0}"#.into();
    let e = err_of(&unknown);
    assert_eq!((e.line, e.kind.clone()), (4, TraceErrorKind::UnknownKind("teleport".into())));
    assert!(e.to_string().contains("expected header, arrive"), "{e}");
    let mut version = lines.clone();
    version[0] = version[0].replace("\"format_version\":1", "\"format_version\":2");
    assert_eq!(err_of(&version).kind, TraceErrorKind::Version(2));
    assert_eq!(err_of(&lines[1..]).kind, TraceErrorKind::MissingHeader);
    assert_eq!(err_of(&[]).kind, TraceErrorKind::MissingHeader);
}

fn cli(path: &std::path::Path) -> (i32, String, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_kvsched")).arg("check-trace").arg(path).output().unwrap();
    let s = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code().unwrap(), s(out.stdout), s(out.stderr))
}

#[test]
fn cli_exit_codes() {
    let lines = real_trace();
    let pid = std::process::id();
    let write = |name: &str, ls: &[String]| {
        let p = tmp(&format!("{name}_{pid}"));
        std::fs::write(&p, ls.join("\n") + "\n").unwrap();
        p
    };
    let valid = write("valid", &lines);
    let (code, out, _) = cli(&valid);
    assert_eq!(code, 0, "{out}");
    let mut bad = lines.clone();
    let i = find(&bad, "step", |_| true);
    bad[i] = bad[i].replacen("\"kv\":", "\"kv\":9", 1);
    let bad = write("bad", &bad);
    let (code, out, _) = cli(&bad);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("{}:{}: kv", bad.display(), i + 1)), "{out}");
    let mut garbage = lines.clone();
    garbage.insert(1, "{".into());
    let garbage = write("garbage", &garbage);
    let (code, _, err) = cli(&garbage);
    assert_eq!(code, 2);
    assert!(err.contains(&garbage.display().to_string()) && err.contains("line 2"), "{err}");
    let (code, _, err) = cli(&tmp("does_not_exist"));
    assert_eq!(code, 2);
    assert!(err.contains("does_not_exist"), "{err}");
    for p in [valid, bad, garbage] {
        std::fs::remove_file(p).ok();
    }
}

/// Arbitrary bytes, and real traces with lines deleted, duplicated, swapped or with numbers
/// changed, never make `check_trace` panic. 300 cases of each, fixed seed.
#[test]
fn check_trace_never_panics() {
    let test = "check_trace_never_panics";
    let s = seed(0xC4EC_7ACE);
    let lines = real_trace();
    let mut runner = kvsched_verify::strategies::runner(s, 1);
    let bytes = proptest::collection::vec(any::<u8>(), 0..400);
    let edits = proptest::collection::vec((0usize..1000, 0u8..4, any::<u32>()), 1..6);
    for _ in 0..300 {
        let b = bytes.new_tree(&mut runner).unwrap().current();
        let r = std::panic::catch_unwind(|| check_trace(&b[..]).map(|_| ()));
        assert!(r.is_ok(), "panicked on bytes {b:?}\n{}", replay(s, test));
        let mut ls = lines.clone();
        for (at, op, x) in edits.new_tree(&mut runner).unwrap().current() {
            let at = at % ls.len();
            match op {
                0 => drop(ls.remove(at)),
                1 => ls.insert(at, ls[at].clone()),
                2 => {
                    let other = x as usize % ls.len();
                    ls.swap(at, other)
                }
                _ => ls[at] = mutate_number(&ls[at], x),
            }
            if ls.is_empty() {
                break;
            }
        }
        let text = ls.join("\n");
        let r = std::panic::catch_unwind(|| check_trace(text.as_bytes()).map(|_| ()));
        assert!(r.is_ok(), "panicked on trace\n{text}\n{}", replay(s, test));
    }
}

/// Replaces the `x`-th number in a line with a value derived from `x` (small, huge or zero).
fn mutate_number(line: &str, x: u32) -> String {
    let digits: Vec<usize> =
        line.match_indices(|c: char| c.is_ascii_digit()).map(|(i, _)| i).collect();
    let Some(&at) = digits.get(x as usize % digits.len().max(1)) else {
        return line.to_string();
    };
    let end = line[at..].find(|c: char| !c.is_ascii_digit()).map_or(line.len(), |e| at + e);
    let value = match x % 3 {
        0 => "0".to_string(),
        1 => u64::MAX.to_string(),
        _ => (x % 1000).to_string(),
    };
    format!("{}{}{}", &line[..at], value, &line[end..])
}

/// The pressured instance under `preemption`, simulated by vLLM v1 in check mode: the trace.
fn trace_under(preemption: Preemption) -> Vec<String> {
    let path = tmp(&format!("preemption_{preemption:?}_{}", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    let options =
        SimOptions { trace: Some(Box::new(file)), check: Check::On, ..SimOptions::default() };
    let mut instance = pressured_instance();
    instance.config.preemption = preemption;
    let mut scheduler = by_name("vllm-v1").expect("vllm-v1 exists");
    let outcome = simulate(&instance, scheduler.as_mut(), options).expect("run");
    assert!(outcome.trace_error.is_none(), "{:?}", outcome.trace_error);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).ok();
    text.lines().map(str::to_string).collect()
}

/// The header carries the preemption rule (only when it is not the default), `check_trace`
/// follows it, and a trace replayed under the other rule is rejected: a resumption that
/// prefills prompt plus kept output is a bad chunk under `restart`, and a restarted request
/// that decodes after prefilling only its prompt is, under `keep_generated`, not decodable
/// (its kept output is not prefilled yet).
#[test]
fn the_header_carries_the_preemption_rule_and_the_wrong_rule_is_rejected() {
    let keep = trace_under(Preemption::KeepGenerated);
    let restart = trace_under(Preemption::Restart);
    assert_eq!(json(&keep[0])["config"]["preemption"], "keep_generated");
    assert!(json(&restart[0])["config"].get("preemption").is_none(), "{}", restart[0]);
    assert!(keep.iter().any(|l| json(l)["k"] == "evict"), "no eviction: weaken the memory");
    assert_eq!(check(&keep), vec![]);
    assert_eq!(check(&restart), vec![]);
    let mut as_restart = keep.clone();
    as_restart[0] = as_restart[0].replace(r#","preemption":"keep_generated""#, "");
    let found = check(&as_restart);
    assert!(
        found.iter().any(|v| matches!(v.kind, ViolationKind::Spec(Violation::BadChunk { .. }))),
        "{found:?}"
    );
    let mut as_keep = restart.clone();
    as_keep[0] = as_keep[0]
        .replace(r#""eviction":"any""#, r#""eviction":"any","preemption":"keep_generated""#);
    assert_ne!(as_keep[0], restart[0]);
    let found = check(&as_keep);
    assert!(
        found.iter().any(|v| matches!(v.kind, ViolationKind::Spec(Violation::NotDecodable { .. }))),
        "{found:?}"
    );
}
