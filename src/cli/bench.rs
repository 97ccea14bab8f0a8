//! `kvsched bench [--max-requests N]`: the simulator's scaling table.
//!
//! Two sweeps, each run once per point, single-threaded, wall time from the OS clock, streamed
//! runs (`kvsched::sim::simulate_stream`: requests generated on arrival, so the wall time
//! includes generating them and memory follows the requests in flight):
//! - requests: 10^4 .. `--max-requests` of the lmsys-like mix (`workloads/lmsys-like.toml`,
//!   embedded) at half of its fluid `lambda_max`, under vLLM v0 and Sarathi;
//! - output length: one class with a 60-token prompt and outputs 20 .. 2000 tokens, 20,000
//!   requests at half of the class's fluid `lambda_max`, under vLLM v0.
//!
//! Under fast-forward the cost should grow linearly in requests and stay flat in output length.
//! Timing belongs here, in a benchmark, not in tests.
//!
//! `--loads`: for every scheduler (or `--scheduler NAME`, repeatable), the stability threshold
//! measured on the lmsys-like mix ([`kvsched::experiments::loads`]: bisection on the rate, printed
//! as an interval next to the fluid `lambda_max`), then `--requests` streamed requests timed at
//! 0.5x, 0.9x and 1.2x of the threshold's lower end, `--repeat` times each, with the process's
//! peak resident memory (Linux `VmHWM`, reset before each run). Run it on one core:
//! `RAYON_NUM_THREADS=1 taskset -c 0 kvsched bench --loads`.

use kvsched_spec::WorkloadFile;
use std::process::ExitCode;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Largest request count of the request sweep (a power of ten).
    #[arg(long, default_value_t = 10_000_000)]
    pub max_requests: u64,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Per-scheduler loads table instead of the scaling table.
    #[arg(long)]
    pub loads: bool,
    /// With --loads: only these schedulers (default: every built-in one).
    #[arg(long)]
    pub scheduler: Vec<String>,
    /// With --loads: requests per timed run.
    #[arg(long, default_value_t = 1_000_000)]
    pub requests: u64,
    /// With --loads: requests per stability probe.
    #[arg(long, default_value_t = 20_000)]
    pub probe_requests: u64,
    /// With --loads: bisection steps of the threshold search.
    #[arg(long, default_value_t = 7)]
    pub bisect_steps: u32,
    /// With --loads: timed runs per load (each printed).
    #[arg(long, default_value_t = 2)]
    pub repeat: u32,
    /// With --loads: loads as multiples of the measured threshold.
    #[arg(long, value_delimiter = ',', default_values_t = vec![0.5, 0.9, 1.2])]
    pub at: Vec<f64>,
}

/// Resets the process's peak resident memory (Linux `clear_refs`; best effort).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// CPU seconds (user + system) this process has used so far (Linux `/proc/self/stat`, 10 ms
/// ticks; `NaN` where unknown): on a shared machine the wall time of a run also counts the
/// time other processes held the core.
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends with the last ')'): utime is the 12th, stime
    // the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok());
    match (field(11), field(12)) {
        (Some(u), Some(s)) => (u + s) / 100.0,
        _ => f64::NAN,
    }
}

/// The process's peak resident memory in MiB since the last reset (`NaN` where unknown).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn run_loads(args: &Args) -> Result<(), String> {
    use kvsched::experiments::loads;
    let w = WorkloadFile::parse("lmsys-like.toml", LMSYS).map_err(|e| e.to_string())?;
    let names: Vec<String> = if args.scheduler.is_empty() {
        kvsched::schedulers::catalog().iter().map(|e| e.name.to_string()).collect()
    } else {
        args.scheduler.clone()
    };
    let lmax = loads::lambda_max(&w)?;
    outln!(
        "# loads: lmsys-like mix (workloads/lmsys-like.toml), fluid lambda_max {lmax:.1} req/s; \
         threshold by bisection ({} probes of {} requests, seed {}), then {} requests streamed \
         at {:?} x its lower end, {} runs each",
        args.bisect_steps + 2,
        args.probe_requests,
        args.seed,
        args.requests,
        args.at,
        args.repeat
    );
    outln!(
        "{:<14} {:>24} {:>6} {:>8} {:>9} {:>8} {:>10} {:>10} {:>9} {:>9} {:>10}",
        "scheduler",
        "threshold",
        "load",
        "rate",
        "wall_s",
        "cpu_s",
        "ns/req",
        "iters",
        "held",
        "rss_MiB",
        "completed"
    );
    for name in &names {
        let build = loads::Build::Catalog;
        let th =
            loads::threshold(&w, build, name, args.probe_requests, args.seed, args.bisect_steps)?;
        let Some(base) = th.base() else {
            outln!("{name:<14} {:>24} not stable at the search's lower end", th.describe());
            continue;
        };
        for &at in &args.at {
            let fraction = at * base;
            let wf = loads::at_fraction(&w, fraction)?;
            for _ in 0..args.repeat {
                let mut s = build.make(name, &wf)?;
                reset_peak_rss();
                let cpu0 = cpu_s();
                let t = loads::time_run(&wf, s.as_mut(), args.requests, args.seed)?;
                let cpu = cpu_s() - cpu0;
                let rss = peak_rss_mib();
                let done = match &t.error {
                    None => format!("{}", t.completed),
                    Some(e) => format!("{} ({e})", t.completed),
                };
                outln!(
                    "{name:<14} {:>24} {at:>6.2} {:>8.1} {:>9.3} {cpu:>8.2} {:>10.0} {:>10} {:>9} \
                     {rss:>9.1} {done:>10}",
                    th.describe(),
                    fraction * lmax,
                    t.wall_s,
                    t.wall_s * 1e9 / args.requests as f64,
                    t.iterations,
                    t.peak_held
                );
            }
        }
    }
    Ok(())
}

const LMSYS: &str = include_str!("../../workloads/lmsys-like.toml");

/// One timed streamed run of `scheduler` (default parameters): wall seconds, iterations and
/// the most requests held; a run that stops early is an error.
fn timed(w: &WorkloadFile, scheduler: &str, n: u64, seed: u64) -> Result<(f64, u64, u64), String> {
    use kvsched::experiments::loads;
    let mut s = kvsched::schedulers::by_name(scheduler).ok_or("unknown scheduler")?;
    let t = loads::time_run(w, s.as_mut(), n, seed)?;
    match t.error {
        Some(e) => Err(e),
        None => Ok((t.wall_s, t.iterations, t.peak_held)),
    }
}

fn run_inner(args: &Args) -> Result<(), String> {
    if args.loads {
        return run_loads(args);
    }
    let parsed = WorkloadFile::parse("lmsys-like.toml", LMSYS).map_err(|e| e.to_string())?;
    let lmsys = kvsched::experiments::loads::at_fraction(&parsed, 0.5)?;
    outln!("# requests sweep: lmsys-like mix at 0.5 lambda_max, seed {}", args.seed);
    let cols = ("scheduler", "requests", "wall_s", "ns/request", "iterations", "peak_held");
    outln!(
        "{:<10} {:<10} {:>10} {:>12} {:>12} {:>10}",
        cols.0,
        cols.1,
        cols.2,
        cols.3,
        cols.4,
        cols.5
    );
    let mut n = 10_000u64;
    while n <= args.max_requests {
        for s in ["vllm-v0", "sarathi"] {
            let (wall, steps, held) = timed(&lmsys, s, n, args.seed)?;
            let per = wall * 1e9 / n as f64;
            outln!("{s:<10} {n:<10} {wall:>10.3} {per:>12.0} {steps:>12} {held:>10}");
        }
        n *= 10;
    }
    outln!("\n# output-length sweep: prompt 60, 20,000 requests at 0.5 lambda_max, vllm-v0");
    outln!("{:<10} {:>10} {:>12} {:>12}", "output", "wall_s", "ns/request", "iterations");
    for out in [20u64, 50, 200, 500, 1000, 2000] {
        let mut w = lmsys.clone();
        w.classes.truncate(1);
        w.classes[0].output_tokens = out;
        w.classes[0].rate_per_s = 1.0;
        let w = kvsched::experiments::loads::at_fraction(&w, 0.5)?;
        let (wall, steps, _) = timed(&w, "vllm-v0", 20_000, args.seed)?;
        outln!("{out:<10} {wall:>10.3} {:>12.0} {steps:>12}", wall * 1e9 / 20_000.0);
    }
    Ok(())
}

/// Runs the subcommand.
pub fn run(args: &Args) -> ExitCode {
    let max = kvsched::workload::MAX_STREAM_REQUESTS;
    if let Err(e) = super::check_range("--max-requests", args.max_requests, 10_000..=max) {
        return super::input_error(e);
    }
    match run_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::input_error(e),
    }
}
