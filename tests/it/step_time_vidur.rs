//! Step-time fidelity against Vidur without Vidur: kvsched's A100 / Llama-2-7B calibration
//! (`spec/calibration/a100-llama2-7b.toml`) next to Vidur 0.0.26's own predictor on fixed probe
//! batches, whose predictions are committed in `tests/data/vidur-probe-llama2-7b.csv` (written by
//! `bench/vidur/probe.sh`: Vidur's random forests trained on the same profiles kvsched was fitted
//! to). The table of errors by batch shape is in BENCHMARKS.md ("Step time against Vidur").

use kvsched_spec::calibration::Calibration;
use kvsched_spec::BatchShape;
use std::collections::BTreeMap;

const FIXTURE: &str = include_str!("../data/vidur-probe-llama2-7b.csv");
const CAL: &str = include_str!("../../spec/calibration/a100-llama2-7b.toml");

/// One probe batch: its shape class, name, shape (kvsched's terms) and Vidur's time (s).
struct Probe {
    class: String,
    name: String,
    decodes: u64,
    shape: BatchShape,
    vidur_s: f64,
}

fn probes() -> Vec<Probe> {
    let mut out = Vec::new();
    for (i, line) in FIXTURE.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 6, "vidur-probe-llama2-7b.csv line {}: expected 6 fields", i + 1);
        let num = |s: &str| -> u64 { s.parse().unwrap_or_else(|e| panic!("line {}: {e}", i + 1)) };
        let (decodes, kv) = (num(f[2]), num(f[3]));
        let mut shape = BatchShape {
            decode_requests: decodes,
            attended_kv_tokens: decodes * kv,
            ..BatchShape::default()
        };
        for p in f[4].split(';').filter(|p| !p.is_empty()) {
            let (c, before) = p.split_once('@').expect("chunk@before");
            let (c, before) = (num(c), num(before));
            shape.prefill_tokens += c;
            shape.prefill_attn_token2 += c * (before + c);
            shape.attended_kv_tokens += before + c;
        }
        let vidur_s: f64 = f[5].parse().expect("vidur_s");
        out.push(Probe { class: f[0].into(), name: f[1].into(), decodes, shape, vidur_s });
    }
    out
}

/// kvsched's step time of every probe against Vidur's: relative error `(kvsched - vidur) /
/// vidur` by batch-shape class. The bounds are the measured errors of the current calibration
/// rounded up (BENCHMARKS.md): a change of the law or the fit that moves a class past them
/// fails here, and the table must then be re-measured.
#[test]
fn step_time_vidur_probe_errors_by_batch_shape() {
    let cal = Calibration::parse("a100-llama2-7b.toml", CAL).unwrap();
    let law = cal.step_time.compile().unwrap();
    let probes = probes();
    let mut by_class: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for p in &probes {
        let ks = law.duration_ns(&p.shape).0 as f64 / 1e9;
        let e = (ks - p.vidur_s) / p.vidur_s;
        println!(
            "{:22} {:40} vidur {:8.2} ms  kvsched {:8.2} ms  {:+6.1} %",
            p.class,
            p.name,
            p.vidur_s * 1e3,
            ks * 1e3,
            e * 100.0
        );
        by_class.entry(&p.class).or_default().push(e);
    }
    // Sometimes: every shape class is there, with several batches, and the fixture reaches past
    // the profiled decode batch (128) that Vidur's forests cannot extrapolate.
    assert_eq!(by_class.len(), 6, "{:?}", by_class.keys());
    assert!(by_class.values().all(|v| v.len() >= 2));
    assert!(probes.iter().any(|p| p.decodes > 128));
    println!("{:22} {:>3} {:>10} {:>10}", "class", "n", "mean", "max |e|");
    let mut worst = BTreeMap::new();
    for (class, es) in &by_class {
        let mean = es.iter().sum::<f64>() / es.len() as f64;
        let max = es.iter().fold(0.0f64, |m, e| m.max(e.abs()));
        println!("{class:22} {:>3} {:>+9.1}% {:>9.1}%", es.len(), mean * 100.0, max * 100.0);
        worst.insert(class.to_string(), max);
    }
    for (class, bound) in BOUNDS {
        let max = worst[*class];
        assert!(
            max <= *bound,
            "{class}: max |error| {:.1} % > {:.0} %",
            max * 100.0,
            bound * 100.0
        );
    }
}

/// Largest |relative error| per class, as measured (BENCHMARKS.md), rounded up.
const BOUNDS: &[(&str, f64)] = &[
    ("decode long-context", 0.08),
    ("decode short-prompt", 0.35),
    ("mixed long-chunk", 0.05),
    ("mixed short-prompt", 0.17),
    ("prefill long", 0.08),
    ("prefill short-prompt", 0.10),
];
