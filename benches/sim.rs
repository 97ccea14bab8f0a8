//! Criterion benchmarks of the simulator: 10,000 requests of the lmsys-like mix at half of its
//! fluid `lambda_max` under vLLM v0 and Sarathi, with fast-forward (the default) and with one
//! policy call per iteration (`Stepping::EveryStep`).
//!
//! The `overload` group times the slowest policy of `kvsched bench --loads` (BENCHMARKS.md,
//! "Every scheduler at its own load") on 10,000 requests at 1.2x its measured stability
//! threshold, where its waiting queue grows.
//!
//! Run with `cargo bench --bench sim`. The scaling table (10^4 .. 10^7 requests, outputs 20 ..
//! 2000 tokens) is `cargo run --release -- bench`; figures are in BENCHMARKS.md.

#![allow(missing_docs)] // criterion_group! generates undocumented functions.

use criterion::{criterion_group, criterion_main, Criterion};
use kvsched::schedulers::by_name;
use kvsched::sim::{simulate, SimOptions, Stepping};
use kvsched::workload::{generate, Amount};
use kvsched_spec::fluid::FluidSolution;
use kvsched_spec::{Information, Instance, WorkloadFile};

fn instance(n: u64) -> Instance {
    let text = include_str!("../workloads/lmsys-like.toml");
    let mut w = WorkloadFile::parse("lmsys-like.toml", text).expect("embedded workload");
    let sol = FluidSolution::from_workload(&w).expect("affine workload");
    let scale = 0.5 * sol.lambda_max_per_s / w.total_rate_per_s();
    for c in &mut w.classes {
        c.rate_per_s *= scale;
    }
    let requests = generate(&w, Amount::Requests(n), 1);
    Instance { config: w.model_config(Information::Hidden), requests }
}

fn bench(c: &mut Criterion) {
    let inst = instance(10_000);
    let mut group = c.benchmark_group("lmsys_10k");
    group.sample_size(10);
    for name in ["vllm-v0", "sarathi"] {
        for (label, stepping) in [("ff", Stepping::FastForward), ("step", Stepping::EveryStep)] {
            group.bench_function(format!("{name}/{label}"), |b| {
                b.iter(|| {
                    let mut s = by_name(name).expect("built-in");
                    let opts = SimOptions { stepping, ..SimOptions::default() };
                    simulate(&inst, s.as_mut(), opts).expect("valid run").completed
                })
            });
        }
    }
    group.finish();
}

/// The slowest policy of the loads table and the lower end of its measured threshold, as a
/// fraction of the mix's fluid `lambda_max` (BENCHMARKS.md: nested-wait, 47.7 / 75.8 req/s).
const SLOWEST: (&str, f64) = ("nested-wait", 0.629);

fn overload(c: &mut Criterion) {
    let text = include_str!("../workloads/lmsys-like.toml");
    let w = WorkloadFile::parse("lmsys-like.toml", text).expect("embedded workload");
    let (name, threshold) = SLOWEST;
    let wf = kvsched::experiments::loads::at_fraction(&w, 1.2 * threshold).expect("affine");
    let inst = Instance {
        config: wf.model_config(Information::Hidden),
        requests: generate(&wf, Amount::Requests(10_000), 1),
    };
    let mut group = c.benchmark_group("overload_10k");
    group.sample_size(10);
    group.bench_function(format!("{name}/1.2x_threshold"), |b| {
        b.iter(|| {
            let mut s = by_name(name).expect("built-in");
            simulate(&inst, s.as_mut(), SimOptions::default()).expect("valid run").completed
        })
    });
    group.finish();
}

criterion_group!(benches, bench, overload);
criterion_main!(benches);
