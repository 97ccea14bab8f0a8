//! Sarathi (chunk and cap given) on a Vidur-format trace with a calibration's step time: the
//! kvsched side of `bench/vidur/lmsys.sh` (the lmsys-like Sarathi runs next to Vidur's). Prints
//! one line: mean / p50 latency over the middle 50 % of requests by arrival (the WAIT authors'
//! metric window), completion rate, evictions, simulated time, steps.
//!
//! `cargo run --release --example sarathi_trace -- WORKLOAD.toml TRACE.csv CAL.toml CHUNK CAP`

use kvsched::schedulers::sarathi::Sarathi;
use kvsched::sim::{simulate, SimOptions};
use kvsched::workload::read_vidur_csv;
use kvsched_spec::calibration::Calibration;
use kvsched_spec::{Information, Instance, WorkloadFile};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 6 {
        eprintln!("usage: sarathi_trace WORKLOAD.toml TRACE.csv CAL.toml CHUNK CAP");
        std::process::exit(2);
    }
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p}: {e}"));
    let mut w = WorkloadFile::parse(&a[1], &read(&a[1])).unwrap_or_else(|e| panic!("{e}"));
    w.step_time =
        Calibration::parse(&a[3], &read(&a[3])).unwrap_or_else(|e| panic!("{e}")).step_time;
    let requests = read_vidur_csv(&a[2], &read(&a[2]), None, 1).unwrap_or_else(|e| panic!("{e}"));
    let num = |i: usize| a[i].parse::<u64>().unwrap_or_else(|e| panic!("argument {i}: {e}"));
    let mut s =
        Sarathi { chunk_size: num(4), batch_size_cap: num(5) as usize, ..Default::default() };
    let inst = Instance { config: w.model_config(Information::Hidden), requests };
    let o = match simulate(&inst, &mut s, SimOptions::default()) {
        Ok(o) => o,
        Err(e) => *e.partial,
    };
    let m = o.summary(0.5);
    println!(
        "latency_mean_s={:.3} latency_p50_s={:.3} completion_rate={:.4} evictions={} \
         simulated_time_s={:.1} steps={}",
        m.latency_s.mean,
        m.latency_s.p50,
        m.completion_rate,
        m.evictions,
        m.simulated_time_s,
        m.steps
    );
}
