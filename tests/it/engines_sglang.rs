//! SGLang's real admission (issue 18, `spec/ENGINES.md`, "SGLang"): the built-in `sglang`'s
//! prefill pass ([`Sglang::admit`]) and request-entry clamp against SGLang 0.5.23's
//! `PrefillAdder`, recorded on fixed scenarios by `bench/engines/sglang/record.py` into
//! `tests/data/engines/sglang-0.5.23/admission.json`. No SGLang is needed here.

use kvsched::schedulers::sglang::{entry_max_new, PrefillMemory, PrefillState, Sglang};
use serde_json::Value;

fn fixture() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/engines/sglang-0.5.23/admission.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).expect("fixture JSON")
}

/// SGLang's memory at page size 1: a chunk takes its tokens; the first output token's slot is
/// allocated by the next decode step, as in SGLang, not with the prefill.
struct Tokens1;

impl PrefillMemory for Tokens1 {
    fn growth(&self, _prefilled: u64, _prompt: u64, chunk: u64) -> u64 {
        chunk
    }
    fn max_chunk(&self, _prefilled: u64, _prompt: u64, want: u64, free: u64) -> u64 {
        want.min(free)
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// What the built-in decides on one recorded scenario, against what SGLang decided: every
/// difference as a line (empty when they agree).
fn differences(doc: &Value, rec: &Value) -> Vec<String> {
    let sc = &rec["scenario"];
    let real = &rec["sglang"];
    let name = sc["name"].as_str().unwrap_or("?").to_string();
    let mut diffs = Vec::new();
    let mut check = |what: &str, built_in: String, sglang: String| {
        if built_in != sglang {
            diffs.push(format!("{name}: {what}: built-in {built_in}, SGLang {sglang}"));
        }
    };
    let cap = u(&sc["capacity"]);
    let mut s = Sglang::default();
    s.chunked_prefill_size = u(&sc["chunked_prefill_size"]);
    s.max_prefill_tokens = u(&sc["max_prefill_tokens"]);
    s.max_running_requests = u(&sc["max_running_requests"]) as usize;
    s.clip_max_new_tokens = u(&doc["clip_max_new_tokens"]);
    let clamp = |r: &Value| entry_max_new(u(&r["max_new"]), cap, u(&r["prompt"]));
    let list = |key: &str| sc[key].as_array().expect("list").clone();
    let (running, waiting) = (list("running"), list("waiting"));
    let clamped =
        |reqs: &[Value]| Value::from(reqs.iter().map(clamp).collect::<Vec<_>>()).to_string();
    check("running max_new", clamped(&running), real["running_max_new"].to_string());
    check("waiting max_new", clamped(&waiting), real["waiting_max_new"].to_string());
    let partial = (!sc["chunked"].is_null()).then(|| &sc["chunked"]);
    if let Some(c) = partial {
        check("chunked max_new", clamp(c).to_string(), real["chunked_max_new"].to_string());
    }
    let held: u64 = running.iter().map(|r| u(&r["prompt"]) + u(&r["output"])).sum::<u64>()
        + partial.map_or(0, |c| u(&c["prefilled"]));
    let free = cap - held;
    check("free tokens", free.to_string(), real["free_tokens"].to_string());
    let remaining: u64 =
        running.iter().map(|r| s.remaining_estimate(clamp(r), u(&r["output"]))).sum();
    let state = PrefillState {
        free,
        capacity: cap,
        reserved: remaining as f64 * sc["ratio"].as_f64().expect("ratio"),
        running: running.len() + usize::from(partial.is_some()),
        partial: partial
            .map(|c| (u(&c["prompt"]), u(&c["prefilled"]), s.remaining_estimate(clamp(c), 0))),
    };
    let queue = waiting.iter().map(|w| (u(&w["prompt"]), s.remaining_estimate(clamp(w), 0)));
    let got = s.admit(&state, queue, &Tokens1);
    // The one deliberate difference: SGLang continues a chunked request with a whole chunk when
    // the reservations leave nothing (`available_chunk_tokens`), past the free tokens; the
    // spec forbids exceeding memory, so the built-in's chunk is cut to the free tokens.
    let expected_partial = real["chunked_extend"].as_u64().map(|c| c.min(free));
    check("chunked request's chunk", format!("{:?}", got.partial), format!("{expected_partial:?}"));
    let admitted = real["admitted"].as_array().expect("admitted");
    for (i, a) in admitted.iter().enumerate() {
        assert_eq!(u(&a["index"]), i as u64, "{name}: SGLang admitted a non-prefix (FCFS)");
    }
    let sglang_chunks: Vec<u64> = admitted.iter().map(|a| u(&a["extend"])).collect();
    check("admitted chunks", format!("{:?}", got.waiting), format!("{sglang_chunks:?}"));
    diffs
}

fn all_differences(doc: &Value) -> Vec<String> {
    let recs = doc["scenarios"].as_array().expect("scenarios");
    recs.iter().flat_map(|r| differences(doc, r)).collect()
}

#[test]
fn built_in_sglang_admits_what_sglang_0_5_23_admits() {
    let doc = fixture();
    assert_eq!(doc["version"], "0.5.23");
    let diffs = all_differences(&doc);
    assert!(diffs.is_empty(), "{} differences:\n{}", diffs.len(), diffs.join("\n"));
}

#[test]
fn built_in_sglang_ratio_defaults_are_sglangs() {
    let doc = fixture();
    let r = &doc["new_token_ratio"];
    let init = r["init"].as_f64().expect("init");
    let min = init * r["min_factor"].as_f64().expect("min_factor");
    let decay = (init - min) / r["decay_steps"].as_f64().expect("decay_steps");
    let s = Sglang::default();
    assert_eq!(s.init_new_token_ratio, init);
    assert_eq!(s.min_new_token_ratio, min);
    assert_eq!(s.new_token_ratio_decay, decay);
    assert_eq!(s.clip_max_new_tokens, u(&doc["clip_max_new_tokens"]));
}

/// The scenarios reach what they are there for (a check that always passes on a fixture that
/// never exercises a rule proves nothing).
#[test]
fn the_recorded_scenarios_reach_every_admission_rule() {
    let doc = fixture();
    let recs = doc["scenarios"].as_array().expect("scenarios");
    assert!(recs.len() >= 20, "{} scenarios", recs.len());
    let by_name = |n: &str| {
        &recs.iter().find(|r| r["scenario"]["name"] == n).unwrap_or_else(|| panic!("{n}"))["sglang"]
    };
    let count = |r: &Value| r["admitted"].as_array().expect("admitted").len();
    let stops: Vec<&str> = recs.iter().filter_map(|r| r["sglang"]["stop"].as_str()).collect();
    for stop in ["queue_end", "result_NO_TOKEN", "result_OTHER", "batch_full", "budget_other"] {
        assert!(stops.contains(&stop), "no scenario stops with {stop}");
    }
    // The per-request page of overhead decides a boundary: 402 free tokens admit one request
    // of 100 + 100, 403 admit two.
    assert_eq!(count(by_name("memory-boundary-402")), 1);
    assert_eq!(count(by_name("memory-boundary-403")), 2);
    // The running requests' reservation shrinks as the ratio does.
    let by_ratio: Vec<usize> =
        ["reserve-running-one", "reserve-running-init", "reserve-running-mid"]
            .iter()
            .chain(&["reserve-running-min"])
            .map(|n| count(by_name(n)))
            .collect();
    assert_eq!(by_ratio, vec![0, 1, 2, 3]);
    // A long prompt is chunked; a continuing chunk is cut to what the reservations leave.
    assert!(recs.iter().any(|r| !r["sglang"]["new_chunked"].is_null()));
    assert_eq!(by_name("chunk-continue-memory")["chunked_extend"], 499);
    // max_prefill_tokens stops admission only once spent (chunked prefill on).
    assert_eq!(count(by_name("max-prefill")), 3);
    // The entry clamp cut some max_new_tokens.
    assert_eq!(by_name("clamp-max-new")["waiting_max_new"][0], 98);
}

/// A change to one recorded scenario.
type Edit = Box<dyn Fn(&mut Value)>;

/// The comparison detects a perturbed fixture: every scenario's decisions, changed, and the
/// boundary scenarios' memory, one token less.
#[test]
fn a_perturbed_sglang_fixture_is_caught() {
    let doc = fixture();
    let n = doc["scenarios"].as_array().expect("scenarios").len();
    let mut perturbed = 0;
    for i in 0..n {
        let mut edits: Vec<Edit> = Vec::new();
        let rec = &doc["scenarios"][i]["sglang"];
        if rec["admitted"].as_array().is_some_and(|a| !a.is_empty()) {
            edits.push(Box::new(|r| {
                r["sglang"]["admitted"].as_array_mut().unwrap().pop();
            }));
            edits.push(Box::new(|r| {
                let a = r["sglang"]["admitted"].as_array_mut().unwrap();
                let e = u(&a[0]["extend"]);
                a[0]["extend"] = (e + 1).into();
            }));
        } else {
            edits.push(Box::new(|r| {
                r["sglang"]["admitted"] = serde_json::json!([{"index": 0, "extend": 1}]);
            }));
        }
        if let Some(c) = rec["chunked_extend"].as_u64() {
            // Below the tolerance's cut (a chunk past the free tokens counts as the free tokens).
            let c = c.min(u(&rec["free_tokens"]));
            edits.push(Box::new(move |r| r["sglang"]["chunked_extend"] = (c - 1).into()));
        }
        let name = doc["scenarios"][i]["scenario"]["name"].as_str().unwrap_or("?");
        // One token less turns these from two admissions into one.
        if name == "memory-boundary-403" || name == "reserve-boundary-703" {
            edits.push(Box::new(|r| {
                let cap = u(&r["scenario"]["capacity"]);
                r["scenario"]["capacity"] = (cap - 1).into();
                r["sglang"]["free_tokens"] = (u(&r["sglang"]["free_tokens"]) - 1).into();
            }));
        }
        for edit in &edits {
            let mut bad = doc.clone();
            edit(&mut bad["scenarios"][i]);
            let diffs = differences(&bad, &bad["scenarios"][i]);
            assert!(!diffs.is_empty(), "{name}: a perturbed record still agrees");
            perturbed += 1;
        }
    }
    assert!(perturbed >= n + n / 2, "{perturbed} perturbations");
}
