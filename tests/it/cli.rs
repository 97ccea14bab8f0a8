//! The command line as a user meets it: `simulate` with every input kind, JSON keys, exit codes,
//! and parsers that never panic on bad input (proptest over mutated files).

use crate::common::seed;
use proptest::prelude::*;
use std::process::Command;

fn kvsched(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kvsched")).args(args).output().expect("runs");
    let code = out.status.code().unwrap_or(-1);
    (code, String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn path(rel: &str) -> String {
    format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn simulate_json_has_the_documented_keys() {
    let w = path("workloads/p512d20.toml");
    let (code, out, err) =
        kvsched(&["simulate", &w, "--scheduler", "sarathi", "--requests", "300", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
    for key in [
        "completed",
        "mean_latency_s",
        "p99_latency_s",
        "mean_ttft_s",
        "throughput_tokens_per_s",
        "evictions",
        "simulated_time_s",
    ] {
        assert!(v.get(key).is_some_and(|x| !x.is_null()), "missing {key} in {out}");
    }
    assert_eq!(v["completed"], 300);
}

/// `--stream` gives the same run as the full one (same counts and simulated time, means to
/// rounding), and refuses the inputs it cannot stream with a message naming the flag.
#[test]
fn simulate_stream_matches_and_refuses_what_it_cannot_stream() {
    let w = path("workloads/lmsys-like.toml");
    let args = ["simulate", &w, "--scheduler", "vllm-v0", "--requests", "3000", "--json"];
    let (c1, full, e1) = kvsched(&args);
    let (c2, streamed, e2) = kvsched(&[&args[..], &["--stream"]].concat());
    assert_eq!((c1, c2), (0, 0), "{e1}{e2}");
    let a: serde_json::Value = serde_json::from_str(&full).expect("JSON");
    let b: serde_json::Value = serde_json::from_str(&streamed).expect("JSON");
    for key in ["completed", "evictions", "steps", "simulated_time_s"] {
        assert_eq!(a[key], b[key], "{key}");
    }
    let (ma, mb) = (a["mean_latency_s"].as_f64().unwrap(), b["mean_latency_s"].as_f64().unwrap());
    assert!((ma - mb).abs() <= 1e-9 * ma, "{ma} vs {mb}");
    for extra in [["--horizon-s", "10"], ["--trace-csv", "x.csv"]] {
        let (code, _, err) = kvsched(&[&args[..], &["--stream"], &extra[..]].concat());
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("--stream") && err.contains(extra[0]), "{err}");
    }
}

/// The simulator accepts the project's A100 calibration file in place of the workload's law.
#[test]
fn simulate_accepts_the_a100_calibration() {
    let w = path("workloads/p512d20.toml");
    let cal = path("spec/calibration/a100-llama2-7b.toml");
    let run = |extra: &[&str]| {
        let mut args = vec!["simulate", &w, "--requests", "400", "--json"];
        args.extend_from_slice(extra);
        let (code, out, err) = kvsched(&args);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["mean_latency_s"].as_f64().unwrap()
    };
    let affine = run(&[]);
    let calibrated = run(&["--calibration", &cal]);
    // The calibrated law charges prefill tokens; the affine one nearly does not.
    assert!(calibrated > affine, "calibrated {calibrated} vs affine {affine}");
}

#[test]
fn simulate_replays_a_vidur_csv_trace() {
    let w = path("workloads/p512d20.toml");
    let csv = path("tests/data/vidur_small.csv");
    let (code, out, err) = kvsched(&["simulate", &w, "--trace-csv", &csv, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["completed"], 5);
}

#[test]
fn bad_inputs_exit_2_naming_file_line_and_field() {
    let dir = std::env::temp_dir().join(format!("kvsched-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    let text = std::fs::read_to_string(path("workloads/p512d20.toml")).unwrap();
    std::fs::write(&bad, text.replace("output_tokens = 20", "output_tokens = -3")).unwrap();
    let (code, _, err) = kvsched(&["simulate", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.toml:") && err.contains("output_tokens"), "{err}");
    let csv = dir.join("bad.csv");
    std::fs::write(&csv, "arrived_at,num_prefill_tokens,num_decode_tokens\n0.1,12,x\n").unwrap();
    let w = path("workloads/p512d20.toml");
    let (code, _, err) = kvsched(&["simulate", &w, "--trace-csv", csv.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.csv:2") && err.contains("num_decode_tokens"), "{err}");
    let (code, _, err) = kvsched(&["simulate", &w, "--scheduler", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("--scheduler"), "{err}");
}

#[test]
fn help_lists_the_subcommands() {
    let (code, out, _) = kvsched(&["--help"]);
    assert_eq!(code, 0);
    for sub in ["fluid", "simulate", "schedulers", "check-trace", "opt", "bench"] {
        assert!(out.contains(sub), "--help does not list {sub}:\n{out}");
    }
}

fn mutate(text: &str, cut: usize, insert: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let at = cut % (chars.len() + 1);
    let end = (at + insert.len() % 7).min(chars.len());
    chars.splice(at..end, insert.chars());
    chars.into_iter().collect()
}

/// The workload and trace-CSV parsers return errors, never panic, on mutated input.
#[test]
fn parsers_never_panic_on_mutated_input() {
    let workload = std::fs::read_to_string(path("workloads/lmsys-like.toml")).unwrap();
    let csv = std::fs::read_to_string(path("tests/data/vidur_small.csv")).unwrap();
    let config = ProptestConfig { cases: 400, ..ProptestConfig::default() };
    let mut runner = proptest::test_runner::TestRunner::new_with_rng(
        config,
        proptest::test_runner::TestRng::from_seed(
            proptest::test_runner::RngAlgorithm::ChaCha,
            &[seed(11) as u8; 32],
        ),
    );
    let strategy = (any::<usize>(), "[ -~\n]{0,12}", any::<usize>(), "[ -~\n]{0,12}");
    runner
        .run(&strategy, |(c1, i1, c2, i2)| {
            let w = mutate(&mutate(&workload, c1, &i1), c2, &i2);
            let _ = kvsched_spec::WorkloadFile::parse("w.toml", &w);
            let t = mutate(&mutate(&csv, c1, &i1), c2, &i2);
            let _ = kvsched::workload::read_vidur_csv("t.csv", &t, Some(3.0), 1);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", crate::common::replay(seed(11), "parsers_never")));
}

/// A trace without length columns gets lengths from a distribution; without one, a clear error.
#[test]
fn trace_without_lengths_draws_them_from_a_distribution() {
    let dir = std::env::temp_dir().join(format!("kvsched-cli-len-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("no_decode.csv");
    std::fs::write(&csv, "arrived_at,num_prefill_tokens\n0.0,50\n0.1,60\n0.2,70\n").unwrap();
    let w = path("workloads/p512d20.toml");
    let c = csv.to_str().unwrap();
    let (code, _, err) = kvsched(&["simulate", &w, "--trace-csv", c]);
    assert_eq!(code, 2);
    assert!(err.contains("--decode-dist"), "{err}");
    let (code, out, err) = kvsched(&[
        "simulate",
        &w,
        "--trace-csv",
        c,
        "--decode-dist",
        "empirical:10:1,30:1",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["completed"], 3);
    let (code, _, err) =
        kvsched(&["simulate", &w, "--trace-csv", c, "--decode-dist", "lognormal:4.7,x,500"]);
    assert_eq!(code, 2);
    assert!(err.contains("--decode-dist"), "{err}");
}

/// The log-normal and empirical samplers follow their parameters (median, support).
#[test]
fn length_distributions_follow_their_parameters() {
    use kvsched::workload::LengthDist;
    let mut rng = kvsched::prng::stream(seed(5), kvsched::prng::Stream::Lengths);
    let d = LengthDist::parse("lognormal:4.75,0.9,500").unwrap();
    let mut xs: Vec<u64> = (0..4000).map(|_| d.sample(&mut rng)).collect();
    xs.sort_unstable();
    let median = xs[xs.len() / 2] as f64;
    // exp(4.75) = 115.6, the lmsys decode median the WAIT paper reports (116).
    assert!((median - 115.6).abs() < 10.0, "median {median}");
    assert!(xs.iter().all(|&x| (1..=500).contains(&x)));
    let e = LengthDist::parse("empirical:20:3,200:1").unwrap();
    let n20 = (0..4000).filter(|_| e.sample(&mut rng) == 20).count() as f64;
    assert!((n20 / 4000.0 - 0.75).abs() < 0.03, "share of 20: {}", n20 / 4000.0);
}

/// `kvsched opt`: proves the small example optimal (JSON keys and the schedule's latency
/// agree), and on a paper-size synthetic instance starts from the local search, which beats
/// MC-SF, and says the time-limited answer is not proven.
#[test]
fn opt_reports_proof_status_and_search_warm_start() {
    let (code, out, err) = kvsched(&["opt", &path("tests/data/round_example.toml"), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(v["proven_optimal"], true, "{v}");
    let total = v["total_latency"].as_u64().unwrap();
    let sum: u64 =
        v["schedule"].as_array().unwrap().iter().map(|r| r["latency"].as_u64().unwrap()).sum();
    assert_eq!(sum, total);
    assert!(total <= v["mcsf_total_latency"].as_u64().unwrap());

    let inst = kvsched::opt::families::synthetic(kvsched::prng::derive_seed(1, 0), false);
    let dir = std::env::temp_dir().join(format!("kvsched-cli-opt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("synthetic.json");
    std::fs::write(&p, serde_json::to_string(&inst).unwrap()).unwrap();
    let p = p.to_string_lossy().to_string();
    let args = ["opt", &p, "--json", "--time-limit-s", "0.2", "--search-iters", "2000"];
    let (code, out, err) = kvsched(&args);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
    let mc = v["mcsf_total_latency"].as_u64().unwrap();
    let found = v["search_total_latency"].as_u64().unwrap();
    let best = v["total_latency"].as_u64().unwrap();
    assert!(best <= found && found < mc, "{best} {found} {mc}");
    assert_eq!(v["proven_optimal"], false);
    assert!(v["lower_bound"].as_f64().unwrap() <= best as f64);
    let (code, text, err) =
        kvsched(&["opt", &p, "--time-limit-s", "0.2", "--search-iters", "2000"]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("best total latency") && text.contains("NOT proven optimal"), "{text}");
}

/// A reader that closes the pipe early (`kvsched opt … | head -1`) ends the command quietly:
/// exit 0, no panic message (before `outln!`, this panicked with exit 101).
#[test]
fn closed_stdout_is_not_a_panic() {
    let child = Command::new(env!("CARGO_BIN_EXE_kvsched"))
        .args(["opt", &path("tests/data/round_synthetic_0.toml"), "--time-limit-s", "0.2"])
        .args(["--search-iters", "100"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawns");
    // Close the read end before the child prints anything (it searches and solves first):
    // its first write fails with a broken pipe.
    let mut child = child;
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("waits");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

/// Ctrl-C (SIGINT) stops a long `kvsched opt` (paper-size instance, no time limit: the search
/// would run for hours) within seconds, with the best schedule found, a message on standard
/// error and exit 130. A child killed before it installed its handler (signal, no exit code)
/// is retried with a longer start-up delay.
#[cfg(unix)]
#[test]
fn opt_stops_on_ctrl_c_with_its_best_schedule() {
    use std::time::{Duration, Instant};
    let inst = path("tests/data/round_synthetic_0.toml");
    for delay_ms in [1_000, 3_000, 8_000] {
        let child = Command::new(env!("CARGO_BIN_EXE_kvsched"))
            .args(["opt", &inst, "--json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawns");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let sent = Instant::now();
        let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        assert!(kill.is_ok_and(|s| s.success()), "kill -INT failed");
        let out = child.wait_with_output().expect("waits");
        let took = sent.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        let Some(code) = out.status.code() else { continue };
        assert_eq!(code, 130, "{err}");
        assert!(took < Duration::from_secs(10), "took {took:?} to stop");
        assert!(err.contains("interrupted (Ctrl-C)") && err.contains("best found"), "{err}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
        assert_eq!(
            (v["interrupted"].as_bool(), v["proven_optimal"].as_bool()),
            (Some(true), Some(false))
        );
        let best = v["total_latency"].as_u64().unwrap();
        assert!(best <= v["mcsf_total_latency"].as_u64().unwrap(), "{v}");
        assert!(v["lower_bound"].as_f64().unwrap() <= best as f64, "{v}");
        return;
    }
    panic!("kvsched opt never installed its Ctrl-C handler within 8 s");
}

/// `--preemption keep-generated` changes an evicting run (and checks clean under `--check`);
/// the default is `restart`, the same as saying it; a bad value exits 2 naming the flag.
#[test]
fn simulate_preemption_flag() {
    // 4096 tokens of memory for requests of 200 + 300 tokens arriving at 20/s: vLLM preempts.
    let w = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli_preemption.toml");
    let text = "[memory]\nkv_capacity_tokens = 4096\nblock_size_tokens = 16\n[step_time]\n\
                kind = \"affine\"\nd0_s = 0.01\nd1_s_per_token = 3.5e-7\n[[class]]\n\
                prompt_tokens = 200\noutput_tokens = 300\nrate_per_s = 20.0\n";
    std::fs::write(&w, text).unwrap();
    let w = w.to_str().unwrap();
    let args = ["simulate", w, "--scheduler", "vllm-v1", "--requests", "300", "--json"];
    let run = |extra: &[&str]| {
        let (code, out, err) = kvsched(&[&args[..], extra].concat());
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).expect("JSON")
    };
    let default = run(&[]);
    let restart = run(&["--preemption", "restart"]);
    let keep = run(&["--preemption", "keep-generated", "--check"]);
    assert_eq!(default, restart);
    assert!(default["evictions"].as_u64().unwrap() > 0, "no eviction: raise --requests");
    assert_eq!(keep["completed"], 300);
    assert_ne!(keep["steps"], default["steps"]);
    let (code, _, err) = kvsched(&[&args[..], &["--preemption", "keep"]].concat());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--preemption"), "{err}");
}
