//! Real engines (issue 18, `spec/ENGINES.md`): a slow-starting scheduler is judged once
//! `--handshake-timeout-ms` allows its start, and its start does not eat the run's time;
//! `vllm-v1` reserves the whole prompt at admission (`reserve_full_isl`, vLLM 0.33's default)
//! and `vllm-v1-no-reserve` does not.

use kvsched::conform::{run_battery, scenarios, ConformConfig, ExternalCommand, ExternalOptions};
use kvsched::schedulers::vllm_v1::VllmV1;
use std::time::Duration;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The reference FCFS client, started after `delay_s` seconds of "import".
fn slow_fcfs(delay_s: f64, handshake_ms: u64, total_s: u64) -> ExternalCommand {
    let clients = root().join("clients/python");
    let script = format!(
        "import sys, time\ntime.sleep({delay_s})\nsys.path.insert(0, {:?})\n\
         from fcfs import Fcfs\nfrom kvsched_client import serve\nsys.exit(serve(Fcfs()))",
        clients.display().to_string()
    );
    ExternalCommand {
        program: "python3".into(),
        args: vec!["-c".into(), script],
        options: ExternalOptions {
            decision_timeout: Duration::from_secs(20),
            handshake_timeout: Duration::from_millis(handshake_ms),
            total_timeout: Duration::from_secs(total_s),
            stderr_log: None,
        },
    }
}

fn one_tiny_run(c: &ExternalCommand) -> String {
    let cfg = ConformConfig {
        requests: 5,
        scenarios: vec!["tiny".into()],
        baselines: vec![],
        shrink: false,
        ..ConformConfig::default()
    };
    let r = run_battery(c, &scenarios(&cfg).expect("scenarios"), &cfg, &mut |_| {});
    r.scenarios[0].verdict.code.clone()
}

#[test]
fn a_slow_start_times_out_under_a_short_handshake_limit_and_passes_under_a_long_one() {
    assert_eq!(one_tiny_run(&slow_fcfs(1.5, 300, 60)), "timeout");
    // 1.5 s of start-up, a 1 s run limit: the run's time counts from `ready`.
    assert_eq!(one_tiny_run(&slow_fcfs(1.5, 20_000, 1)), "pass");
}

#[test]
fn cli_conform_takes_a_handshake_timeout() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kvsched"))
        .args(["conform", "--handshake-timeout-ms", "200", "--requests", "3"])
        .args(["--scenario", "tiny", "--no-baselines", "--no-shrink", "--"])
        .args(["python3", "-c", "import time; time.sleep(30)"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("timeout"), "{stdout}");
}

/// Two requests at time 0 on 64 tokens, an 8-token step budget: r0 (prompt 40, output 12)
/// runs; r1's first chunk (8 tokens) fits beside it but its whole prompt (30) does not.
fn reserve_instance() -> kvsched_spec::Instance {
    use kvsched_spec::*;
    let req = |i: u32, prompt: u64, output: u64| Request {
        id: RequestId(i),
        arrival_ns: Nanos(0),
        prompt_tokens: Tokens(prompt),
        output_tokens: Tokens(output),
        predicted_output_tokens: None,
        class: 0,
    };
    Instance {
        config: ModelConfig {
            memory: MemoryConfig::tokens(64),
            step_time: StepTime::Affine { d0_s: 0.010, d1_s_per_token: 1e-6 },
            first_token: FirstToken::WithPrefill,
            eviction: EvictionRule::Any,
            information: Information::Hidden,
        },
        requests: vec![req(0, 40, 12), req(1, 30, 2)],
    }
}

#[test]
fn reserve_full_isl_admits_only_whole_prompts_and_no_reserve_admits_piecemeal() {
    use kvsched::sim::{simulate, Check, SimOptions};
    let inst = reserve_instance();
    let run = |mut s: VllmV1| {
        s.max_num_batched_tokens = 8;
        let opts = SimOptions { check: Check::On, ..Default::default() };
        simulate(&inst, &mut s, opts).expect("valid run")
    };
    let reserve = run(VllmV1::default());
    let piecemeal = run(VllmV1::no_reserve());
    assert_eq!((reserve.completed, piecemeal.completed), (2, 2));
    // With the reservation r1 waits for r0 and nobody is preempted; without it r1 is admitted
    // chunk by chunk, memory runs out, and the last running request (r1) is preempted.
    assert_eq!(reserve.evictions, 0);
    assert!(piecemeal.evictions >= 1, "{}", piecemeal.evictions);
    assert_eq!(reserve.scheduler, "vllm-v1");
    assert_eq!(piecemeal.scheduler, "vllm-v1-no-reserve");
}
