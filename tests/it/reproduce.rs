//! `kvsched reproduce`, sweeps, shards and merge: snapshots of the rendered summary tables for
//! fixed seeds (values rounded to 4 significant digits, so any change in a reproduced number
//! shows in review), resumption after an interruption, sharding and merging, and the CLI.

use kvsched::experiments::registry;
use kvsched::experiments::render::{self, sig};
use kvsched::experiments::report;
use kvsched::experiments::sim_figures::{figure_schedulers, p512d20};
use kvsched::experiments::sweep::{self, merge, read_rows, Row, RunOptions, Sweep, SweepSpec};
use kvsched::experiments::{Ctx, Scale};
use std::path::{Path, PathBuf};

const QUICK: Ctx = Ctx { scale: Scale::Quick, seed: 1 };

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kvsched-repro-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The summary table of the named experiments' claims (only those claims). Each experiment
/// must draw exactly the figures its row names.
fn table_of(experiments: &[&str], claim_ids: &[&str]) -> String {
    let ids: Vec<String> = claim_ids.iter().map(|s| s.to_string()).collect();
    let claims = report::select(&ids).unwrap();
    let outputs = registry::experiments()
        .into_iter()
        .filter(|e| experiments.contains(&e.name))
        .map(|e| {
            let out = (e.run)(&QUICK);
            let drawn: Vec<&str> = out.figures.iter().map(|f| f.file.as_str()).collect();
            assert_eq!(drawn, e.figures, "{}: its row names other figures", e.name);
            (e, out, 0.0)
        })
        .collect();
    let entries = report::assemble(&QUICK, &claims, outputs).claims;
    format!("{}\n{}", render::summary_table(&entries), render::results_table(&entries))
}

#[test]
fn claims_md_is_parsed_and_every_claim_gets_a_verdict() {
    let claims = registry::claims();
    let sections = registry::CLAIMS_MD.lines().filter(|l| l.starts_with("### ")).count();
    assert_eq!(claims.len(), sections);
    assert!(claims.iter().all(|c| !c.statement.is_empty() && !c.paper_value.is_empty()));
    // With no experiment run at all, every claim still has a verdict and a reason.
    let r = report::assemble(&QUICK, &claims, vec![]);
    assert_eq!(r.claims.len(), claims.len());
    for e in &r.claims {
        assert_eq!(e.verdict.code(), "not_reproducible", "{}", e.id);
        assert!(!e.verdict.reason().is_empty());
    }
    let table = render::summary_table(&r.claims);
    assert!(table.contains("not reproducible here (no experiment implemented yet)"));
    assert!(report::select(&["NOPE".into()]).is_err());
}

#[test]
fn snapshot_fluid_claims() {
    let t = table_of(
        &["fluid-identities", "fluid-lmsys", "fluid-long-decode"],
        &[
            "W-FLUID-SINGLE",
            "W-FLUID-MULTI",
            "W-LMSYS-CROSSING",
            "W-TABLE2",
            "W-LONGDECODE-MSTAR",
            "W-PROP1",
            "W-EXP-TWOTYPE",
        ],
    );
    insta::assert_snapshot!("fluid_claims", t);
}

#[test]
fn snapshot_mcsf_cheap_claims() {
    let t = table_of(
        &["mcsf-lb-sqrt-n", "mcsf-hetero", "mcsf-thm-o1", "mcsf-semi-online", "mcsf-randomized"],
        &["M-LB-SQRT-N", "M-HETERO-SQRT-M", "M-THM-O1", "M-V1-SEMI-ONLINE", "M-V1-RANDOMIZED"],
    );
    insta::assert_snapshot!("mcsf_claims", t);
}

fn p512_sweep(schedulers: &[&str], scales: &[f64], seeds: &[u64], requests: u64) -> Sweep {
    let spec = SweepSpec {
        workloads: vec!["p512d20".into()],
        schedulers: schedulers.iter().map(|s| s.to_string()).collect(),
        rate_scales: scales.to_vec(),
        relative_to: sweep::RelativeTo::LambdaMax,
        seeds: seeds.to_vec(),
        requests,
        window: 0.5,
    };
    Sweep::new(spec, vec![("p512d20".into(), p512d20())]).unwrap()
}

fn rows_table(rows: &[Row]) -> String {
    let mut out =
        String::from("| config | seed | rate/s | latency s | p99 s | tok/s | evictions |\n");
    let esc = |c: &str| c.replace('|', "\\|");
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            esc(&r.config),
            r.seed,
            sig(r.rate_per_s, 4),
            sig(r.latency_mean_s, 4),
            sig(r.latency_p99_s, 4),
            sig(r.throughput_tokens_per_s, 4),
            r.evictions
        ));
    }
    out
}

#[test]
fn snapshot_latency_vs_rate_sweep() {
    let names = figure_schedulers();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let s = p512_sweep(&refs, &[0.8, 1.1], &[7], 400);
    let rows = sweep::run_in_memory(&s);
    insta::assert_snapshot!("latency_sweep", rows_table(&rows));
}

fn write_spec(dir: &Path, requests: u64) -> PathBuf {
    let w = dir.join("p512d20.toml");
    std::fs::write(&w, include_str!("../../workloads/p512d20.toml")).unwrap();
    let spec = format!(
        "workloads = [\"p512d20.toml\"]\nschedulers = [\"vllm-v0\", \"sarathi\"]\n\
         rate_scales = [5.0, 9.0, 11.0]\nseeds = [1, 2]\nrequests = {requests}\n"
    );
    let p = dir.join("spec.toml");
    std::fs::write(&p, spec).unwrap();
    p
}

/// The lines of a results file, sorted (rows are keyed by (config, seed) and written once).
fn sorted_lines(p: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_to_string(p).unwrap().lines().map(String::from).collect();
    v.sort();
    v
}

fn run(s: &Sweep, out: &Path, shard: Option<(usize, usize)>, limit: Option<usize>) -> usize {
    let opts = RunOptions { shard, limit, progress: false };
    sweep::run(s, out, &opts).unwrap().appended
}

#[test]
fn interrupted_sweep_resumes_to_the_uninterrupted_result() {
    let dir = temp_dir("resume");
    let s = Sweep::load(&write_spec(&dir, 300)).unwrap();
    for ext in ["jsonl", "csv"] {
        let full = dir.join(format!("full.{ext}"));
        assert_eq!(run(&s, &full, None, None), 12);
        assert_eq!(run(&s, &full, None, None), 0, "a finished sweep appends nothing");
        let part = dir.join(format!("part.{ext}"));
        assert_eq!(run(&s, &part, None, Some(5)), 5);
        // The interruption also cut a row in half.
        let half = std::fs::read_to_string(&full).unwrap().lines().last().unwrap().to_string();
        let mut f = std::fs::OpenOptions::new().append(true).open(&part).unwrap();
        std::io::Write::write_all(&mut f, &half.as_bytes()[..half.len() / 2]).unwrap();
        drop(f);
        assert_eq!(read_rows(&part, false).unwrap().len(), 5);
        assert_eq!(run(&s, &part, None, Some(4)), 4);
        assert_eq!(run(&s, &part, None, None), 3);
        assert_eq!(sorted_lines(&part), sorted_lines(&full), "{ext}");
        let keys: std::collections::BTreeSet<_> =
            read_rows(&part, false).unwrap().iter().map(Row::key).collect();
        assert_eq!(keys.len(), 12, "no duplicated (config, seed)");
    }
}

#[test]
fn shards_merge_and_missing_or_duplicated_shards_are_listed() {
    let dir = temp_dir("shards");
    let s = Sweep::load(&write_spec(&dir, 200)).unwrap();
    let full = dir.join("full.jsonl");
    run(&s, &full, None, None);
    let shards: Vec<PathBuf> = (0..3)
        .map(|i| {
            let p = dir.join(format!("shard{i}.jsonl"));
            assert_eq!(run(&s, &p, Some((i, 3)), None), 4);
            p
        })
        .collect();
    let merged = dir.join("merged.jsonl");
    assert_eq!(merge(&merged, &shards), Ok(12));
    assert_eq!(sorted_lines(&merged), sorted_lines(&full));
    let missing = merge(&dir.join("m2.jsonl"), &shards[..2]).unwrap_err();
    assert_eq!(missing.0.len(), 4, "{missing:?}");
    assert!(missing.0.iter().all(|l| l.starts_with("missing: job ")));
    let twice = [shards[0].clone(), shards[1].clone(), shards[2].clone(), shards[1].clone()];
    let dup = merge(&dir.join("m3.jsonl"), &twice).unwrap_err();
    assert_eq!(dup.0.len(), 4, "{dup:?}");
    assert!(dup.0.iter().all(|l| l.starts_with("duplicated: job ")));
    // The CLI exits 1 with the list.
    let out = kvsched(&["merge", dir.join("m4.jsonl").to_str().unwrap(), path(&shards[0])]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing: job 1 of 12"));
}

fn kvsched(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_kvsched")).args(args).output().unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn sweep_binary_killed_midway_resumes() {
    let dir = temp_dir("kill");
    let spec = write_spec(&dir, 3000);
    let full = dir.join("full.jsonl");
    assert!(kvsched(&["sweep", path(&spec), "--out", path(&full), "--quiet"]).status.success());
    let out = dir.join("killed.jsonl");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kvsched"))
        .args(["sweep", path(&spec), "--out", path(&out), "--quiet"])
        .env("RAYON_NUM_THREADS", "1")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while start.elapsed().as_secs() < 60 {
        let n = std::fs::read_to_string(&out).map_or(0, |t| t.lines().count());
        if n >= 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().ok();
    child.wait().unwrap();
    let before = std::fs::read_to_string(&out).map_or(0, |t| t.lines().count());
    println!("killed after {before} of 12 rows");
    let again = kvsched(&["sweep", path(&spec), "--out", path(&out), "--quiet"]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(sorted_lines(&out), sorted_lines(&full));
}

#[test]
fn reproduce_cli_writes_index_json_and_figures() {
    let dir = temp_dir("cli");
    let out = kvsched(&[
        "reproduce",
        "--claim",
        "W-TABLE2",
        "W-EXP-TWOTYPE",
        "--claim",
        "W-LMSYS-CROSSING",
        "--out",
        path(&dir),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let index = std::fs::read_to_string(dir.join("index.md")).unwrap();
    assert!(index.contains("| W-TABLE2 |") && index.contains("m_star_curve.svg"));
    let svg = std::fs::read_to_string(dir.join("m_star_curve.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("Table 2"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    let claims = json["claims"].as_array().unwrap();
    let ids: Vec<&str> = claims.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["W-LMSYS-CROSSING", "W-TABLE2", "W-EXP-TWOTYPE"]);
    for c in claims {
        for key in ["paper", "measured", "ci", "verdict"] {
            assert!(c.get(key).is_some(), "{key} missing in {c}");
        }
    }
    assert_eq!(claims[1]["verdict"], "supported");
    assert_eq!(claims[1]["paper"], 34377.0);
    assert_eq!(
        kvsched(&["reproduce", "--claim", "NOPE", "--out", path(&dir)]).status.code(),
        Some(2)
    );
}

#[test]
fn snapshot_wait_claims() {
    let t = table_of(
        &[
            "wait-thm1",
            "wait-thm2",
            "wait-prop3",
            "wait-prop2",
            "wait-exp-single",
            "wait-exp-twotype",
            "wait-exp-longdecode",
        ],
        &[
            "W-PROP2",
            "W-THM1-CRITICAL",
            "W-THM1-SLACK",
            "W-THM2",
            "W-PROP3",
            "W-EXP-SINGLE",
            "W-EXP-TWOTYPE",
            "W-EXP-LONGDECODE",
        ],
    );
    insta::assert_snapshot!("wait_claims", t);
}
