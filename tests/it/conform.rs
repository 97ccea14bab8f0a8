//! Conformance harness (`kvsched conform`, `spec/PROTOCOL.md`): built-in schedulers pass
//! through the wire protocol and match their in-process runs exactly; every broken client in
//! `tests/clients/` is caught with the right verdict and shrunk to a few requests; malformed
//! messages, crashes and hangs end in precise verdicts; the protocol parsers never panic.

use kvsched::conform::{
    check_scheduler, run_battery, run_replay, scenarios, ConformConfig, ConformReport,
    ExternalCommand, ExternalOptions, VerdictCode,
};
use kvsched::protocol::wire::{parse_from_scheduler, parse_to_scheduler};
use kvsched_spec::Information;
use proptest::prelude::*;
use std::time::Duration;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn command(program: &str, args: &[&str], timeout_ms: u64) -> ExternalCommand {
    ExternalCommand {
        program: program.into(),
        args: args.iter().map(|s| s.to_string()).collect(),
        options: ExternalOptions {
            decision_timeout: Duration::from_millis(timeout_ms),
            handshake_timeout: Duration::from_secs(20).max(Duration::from_millis(timeout_ms)),
            total_timeout: Duration::from_secs(60),
            stderr_log: None,
        },
    }
}

fn serve(name: &str, views: &str) -> ExternalCommand {
    let bin = env!("CARGO_BIN_EXE_kvsched");
    command(bin, &["serve", "--scheduler", name, "--views", views], 20_000)
}

fn battery(c: &ExternalCommand, cfg: &ConformConfig) -> ConformReport {
    run_battery(c, &scenarios(cfg).expect("scenarios"), cfg, &mut |_| {})
}

fn builtin_cfg() -> ConformConfig {
    ConformConfig {
        requests: 40,
        information: Information::Known,
        baselines: vec![],
        shrink: false,
        ..ConformConfig::default()
    }
}

/// Every scenario's verdict and metrics, for comparing two runs.
fn results(r: &ConformReport) -> Vec<String> {
    r.scenarios.iter().map(|s| format!("{} {} {:?}", s.scenario, s.verdict, s.metrics)).collect()
}

#[test]
fn builtin_schedulers_conform_over_the_protocol_and_match_in_process() {
    let cfg = builtin_cfg();
    let names: Vec<&str> = kvsched::schedulers::catalog().iter().map(|e| e.name).collect();
    assert!(names.len() >= 12, "{names:?}");
    for name in names {
        let wire = battery(&serve(name, "delta"), &cfg);
        let local = check_scheduler(|| kvsched::schedulers::by_name(name).unwrap(), &cfg);
        assert_eq!(results(&wire), results(&local), "{name}: wire and in-process differ");
        assert!(wire.conforms, "{name}:\n{}", wire.summary());
    }
}

/// The starvation check bites a real algorithm: the paper's MC-SF (shortest first, no aging)
/// passes long requests over while they could run to completion, so it fails `long-decode`;
/// the catalog's `mcsf` (patience 0.5 s, a documented deviation) passes the same runs.
#[test]
fn paper_mcsf_starves_and_the_catalog_one_does_not() {
    use kvsched::schedulers::mcsf::{Mcsf, DEFAULT_PATIENCE_NS};
    let cfg = ConformConfig {
        requests: 200,
        seeds: vec![1, 2],
        scenarios: vec!["long-decode".into()],
        information: Information::Known,
        baselines: vec![],
        shrink: false,
        ..ConformConfig::default()
    };
    let paper = check_scheduler(|| Box::new(Mcsf::default()), &cfg);
    assert!(!paper.conforms, "paper MC-SF conformed:\n{}", paper.summary());
    assert!(
        paper.scenarios.iter().any(|s| s.verdict.code == VerdictCode::Starvation),
        "{}",
        paper.summary()
    );
    let aged =
        check_scheduler(|| Box::new(Mcsf::default().with_patience(DEFAULT_PATIENCE_NS)), &cfg);
    assert!(aged.conforms, "{}", aged.summary());
}

#[test]
fn full_views_match_delta_views() {
    let cfg = builtin_cfg();
    for name in ["vllm-v0", "sglang"] {
        let full = battery(&serve(name, "full"), &cfg);
        let delta = battery(&serve(name, "delta"), &cfg);
        assert!(full.conforms, "{}", full.summary());
        assert_eq!(results(&full), results(&delta), "{name}");
    }
}

#[test]
fn python_reference_clients_conform() {
    let cfg = ConformConfig { requests: 30, baselines: vec![], ..ConformConfig::default() };
    for client in ["clients/python/fcfs.py", "clients/python/wrap_example.py"] {
        let path = root().join(client);
        let r = battery(&command("python3", &[path.to_str().unwrap()], 20_000), &cfg);
        assert!(r.conforms, "{client}:\n{}", r.summary());
    }
}

/// Runs a broken client on one scenario; checks the verdict and the shrunk replay.
fn caught(client: &str, scenario: &str, code: VerdictCode, max_requests: usize) {
    let path = root().join("tests/clients").join(client);
    let c = command("python3", &[path.to_str().unwrap()], 300);
    let cfg = ConformConfig {
        requests: 20,
        scenarios: vec![scenario.into()],
        baselines: vec![],
        shrink_max_runs: 60,
        shrink_max_time: Duration::from_secs(30),
        ..ConformConfig::default()
    };
    let r = battery(&c, &cfg);
    assert!(!r.conforms, "{client} passed:\n{}", r.summary());
    assert_eq!(r.scenarios[0].verdict.code, code, "{client}:\n{}", r.summary());
    let shrunk = r.shrunk.as_ref().expect("a shrunk replay");
    let n = shrunk.replay.instance.requests.len();
    assert!(n <= max_requests, "{client}: shrunk to {n} requests:\n{}", r.summary());
    assert_eq!(shrunk.replay.verdict.code, code);
    // The replay file round-trips and reproduces the failure.
    let text = serde_json::to_string(&shrunk.replay).unwrap();
    let replay = kvsched::conform::parse_replay(&text).expect("replay parses");
    let again = run_replay(&c, &replay);
    assert_eq!(again.scenarios[0].verdict.code, code, "{}", again.summary());
}

#[test]
fn broken_over_admits_memory() {
    caught("over_admits.py", "tiny", VerdictCode::MemoryExceeded, 6);
}
#[test]
fn broken_advances_twice() {
    caught("double_advance.py", "light", VerdictCode::DuplicateInBatch, 2);
}
#[test]
fn broken_names_unknown_request() {
    caught("unknown_id.py", "light", VerdictCode::UnknownRequest, 3);
}
#[test]
fn broken_crashes() {
    caught("crashes.py", "light", VerdictCode::Crash, 4);
}
#[test]
fn broken_hangs() {
    caught("hangs.py", "light", VerdictCode::Timeout, 3);
}
#[test]
fn broken_prints_garbage() {
    caught("garbage.py", "light", VerdictCode::Garbage, 3);
}
#[test]
fn broken_peeks_at_future_arrivals() {
    caught("peeks.py", "tiny", VerdictCode::NotArrived, 4);
}
#[test]
fn broken_asks_for_hidden_information() {
    caught("greedy_info.py", "light", VerdictCode::InformationDenied, 1);
}
#[test]
fn broken_starves_a_request() {
    caught("starves.py", "light", VerdictCode::Starvation, 8);
}

fn one_run(script: &str) -> VerdictCode {
    let c = command("python3", &["-c", script], 300);
    let cfg = ConformConfig {
        requests: 5,
        scenarios: vec!["light".into()],
        baselines: vec![],
        shrink: false,
        ..ConformConfig::default()
    };
    let r = battery(&c, &cfg);
    r.scenarios[0].verdict.code
}

#[test]
fn malformed_messages_crashes_and_hangs_have_precise_verdicts() {
    let ready = r#"print('{"type":"ready","version":1,"name":"x"}', flush=True)"#;
    let cases = [
        ("import sys; sys.exit(0)", VerdictCode::Crash),
        ("print('hello?', flush=True)", VerdictCode::Garbage),
        (r#"print('{"type":"ready","version":7,"name":"x"}', flush=True)"#, VerdictCode::Handshake),
        (r#"print('{"type":"plan","seq":1}', flush=True)"#, VerdictCode::Handshake),
    ];
    for (script, code) in cases {
        let full = format!("import sys\nsys.stdin.readline()\n{script}\nsys.stdin.readline()");
        assert_eq!(one_run(&full), code, "{script}");
    }
    let after_ready = [
        (r#"print('{"type":"plan","seq":9}', flush=True)"#, VerdictCode::Protocol),
        (
            r#"print('{"type":"plan","seq":1,"batch":[{"prefill":0}]}', flush=True)"#,
            VerdictCode::Garbage,
        ),
        (r#"print('{"type":"plan","seq":1,"repeat":0}', flush=True)"#, VerdictCode::Garbage),
        (
            r#"print('{"type":"error","code":"oops","message":"no"}', flush=True)"#,
            VerdictCode::SchedulerError,
        ),
        (r#"print('{"type":"ready","version":1,"name":"x"}', flush=True)"#, VerdictCode::Protocol),
        ("import time; time.sleep(30)", VerdictCode::Timeout),
        ("import sys; sys.exit(3)", VerdictCode::Crash),
    ];
    for (script, code) in after_ready {
        let full =
            format!("import sys\nsys.stdin.readline()\n{ready}\nsys.stdin.readline()\n{script}");
        assert_eq!(one_run(&full), code, "{script}");
    }
}

#[test]
fn spawn_failure_is_reported() {
    let c = command("/nonexistent/scheduler", &[], 300);
    let cfg = ConformConfig { requests: 5, baselines: vec![], ..ConformConfig::quick() };
    let r = battery(&c, &cfg);
    assert!(r.scenarios.iter().all(|s| s.verdict.code == VerdictCode::SpawnFailed));
}

#[test]
fn serve_answers_malformed_input_with_an_error() {
    use kvsched::protocol::wire::Views;
    let mut sched = kvsched::schedulers::by_name("vllm-v0").unwrap();
    for input in ["not json\n", "{\"type\":\"decide\"}\n", "{\"type\":\"nope\"}\n"] {
        let mut out = Vec::new();
        let r =
            kvsched::protocol::serve(&mut *sched, Views::Delta, &mut input.as_bytes(), &mut out);
        let rejected = matches!(r, Err(kvsched::protocol::ServeError::Rejected { .. }));
        assert!(rejected, "{input}: {r:?}");
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\"type\":\"error\""), "{input}: {text}");
    }
}

/// `kvsched serve --scheduler mcsf` stops with `missing_prediction` (naming the request) when
/// the harness sends a request without a prediction, never charging it a worst case; with the
/// prediction the same session is answered with a plan. Schedulers that read no prediction
/// (vllm-v0) are not concerned.
#[test]
fn serve_requires_the_predictions_a_policy_reads() {
    use kvsched::protocol::wire::{
        Decide, Hello, Req, ToScheduler, Views, PROTOCOL_NAME, PROTOCOL_VERSION,
    };
    use kvsched_spec::{EvictionRule, FirstToken, MemoryConfig, ModelConfig, StepTime};
    let config = ModelConfig {
        memory: MemoryConfig::tokens(1_000),
        step_time: StepTime::Affine { d0_s: 0.010, d1_s_per_token: 1e-6 },
        first_token: FirstToken::WithPrefill,
        eviction: EvictionRule::Any,
        information: Information::Predicted,
        preemption: kvsched_spec::Preemption::Restart,
    };
    let session = |predicted: Option<u64>| {
        let hello = ToScheduler::Hello(Hello {
            protocol: PROTOCOL_NAME.into(),
            version: PROTOCOL_VERSION,
            scenario: "one".into(),
            capacity_tokens: config.memory.capacity().get(),
            watermark_tokens: config.memory.watermark().get(),
            config: config.clone(),
        });
        let req = Req { id: 0, arrival: 0, prompt: 10, class: 0, known: None, predicted, kept: 0 };
        let decide = ToScheduler::Decide(Decide {
            seq: 1,
            t: 0,
            kv_used: 0,
            kv_capacity: 1_000,
            steps: 0,
            ran: 0,
            arrivals_done: true,
            arrived: vec![req],
            completed: vec![],
            waiting: None,
            running: None,
        });
        let lines: Vec<String> =
            [hello, decide].iter().map(|m| serde_json::to_string(m).unwrap()).collect();
        format!("{}\n", lines.join("\n"))
    };
    let answer = |name: &str, input: &str| {
        let mut sched = kvsched::schedulers::by_name(name).unwrap();
        let mut out = Vec::new();
        let end =
            kvsched::protocol::serve(&mut *sched, Views::Delta, &mut input.as_bytes(), &mut out);
        (end.map_err(|e| e.to_string()), String::from_utf8(out).unwrap())
    };
    for name in ["mcsf", "mc-benchmark"] {
        let (end, text) = answer(name, &session(None));
        assert!(end.is_err_and(|e| e.contains("missing_prediction")), "{name}: {text}");
        assert!(text.contains("\"code\":\"missing_prediction\""), "{name}: {text}");
        assert!(text.contains("r0 has no"), "{name}: {text}");
        let (end, text) = answer(name, &session(Some(5)));
        assert_eq!(end, Ok(kvsched::protocol::ServeEnd::EndOfInput), "{name}: {text}");
        assert!(text.contains("\"type\":\"plan\""), "{name}: {text}");
    }
    let (end, text) = answer("vllm-v0", &session(None));
    assert_eq!(end, Ok(kvsched::protocol::ServeEnd::EndOfInput), "vllm-v0: {text}");
    assert!(text.contains("\"type\":\"plan\""), "vllm-v0: {text}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn protocol_parsers_never_panic(s in ".{0,200}") {
        let _ = parse_from_scheduler(&s);
        let _ = parse_to_scheduler(&s);
    }

    #[test]
    fn plan_parser_never_panics_on_json_shaped_input(
        seq in any::<i64>(),
        ids in proptest::collection::vec(any::<i64>(), 0..4),
        tokens in proptest::option::of(any::<i64>()),
        repeat in proptest::option::of(any::<i64>()),
        pick in 0usize..4,
    ) {
        let item = match pick {
            0 => format!("{{\"decode\":{}}}", ids.first().copied().unwrap_or(0)),
            1 => format!("{{\"prefill\":{},\"tokens\":{}}}", ids.len(), tokens.unwrap_or(-1)),
            2 => "{\"decode\":1,\"prefill\":2}".to_string(),
            _ => "[]".to_string(),
        };
        let evict = ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        let rep = repeat.map_or(String::new(), |r| format!(",\"repeat\":{r}"));
        let line = format!(
            "{{\"type\":\"plan\",\"seq\":{seq},\"evict\":[{evict}],\"batch\":[{item}]{rep}}}"
        );
        if let Ok(kvsched::protocol::wire::FromScheduler::Plan(p)) =
            parse_from_scheduler(&line)
        {
            let _ = p.to_plan();
        }
    }
}

/// Under `keep_generated` preemption (vLLM's recompute, carried in `hello.config`), the
/// evicting built-ins conform over the protocol (liveness checks included) with delta and
/// full views, the client replica (`kvsched serve`) follows the rule (wire and in-process runs
/// match), and the rule changes the runs: evictions happen and some metric differs from the
/// same battery under `restart`.
#[test]
fn builtins_conform_under_keep_generated_preemption() {
    let keep =
        ConformConfig { preemption: kvsched_spec::Preemption::KeepGenerated, ..builtin_cfg() };
    for name in ["vllm-v1", "vllm-v0", "sarathi"] {
        let delta = battery(&serve(name, "delta"), &keep);
        let full = battery(&serve(name, "full"), &keep);
        let local = check_scheduler(|| kvsched::schedulers::by_name(name).unwrap(), &keep);
        assert!(delta.conforms, "{name}:\n{}", delta.summary());
        assert_eq!(results(&delta), results(&local), "{name}: wire and in-process differ");
        assert_eq!(results(&full), results(&delta), "{name}: full and delta views differ");
        let evictions: u64 =
            local.scenarios.iter().filter_map(|s| s.metrics.as_ref()).map(|m| m.evictions).sum();
        assert!(evictions > 0, "{name}: no eviction, so the rule was never exercised");
        let restart =
            check_scheduler(|| kvsched::schedulers::by_name(name).unwrap(), &builtin_cfg());
        assert_ne!(results(&restart), results(&local), "{name}: the rule changed nothing");
    }
}
