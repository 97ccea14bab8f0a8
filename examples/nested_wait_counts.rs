//! What Nested WAIT's fast path does on the lmsys-like mix with its fluid design
//! (`for_workload`, the design `kvsched simulate --scheduler nested-wait` builds): decisions,
//! those the general path took, repairs, guard trims, listed batches, paused segments and the
//! mean and largest hold list, at each rate scale given (relative to the file's 66 req/s).
//!
//! `cargo run --release --example nested_wait_counts -- REQUESTS SCALE...`, e.g.
//! `-- 100000 1 0.4139 0.745 0.9933` (BENCHMARKS.md, Nested WAIT).

use kvsched::schedulers::nested_wait::NestedWait;
use kvsched::sim::{Plan, Scheduler, View};
use kvsched_spec::{Information, WorkloadFile};

/// Nested WAIT, counting decisions and the residents its plans hold.
struct Counted<'a> {
    policy: &'a mut NestedWait,
    decisions: u64,
    held: u64,
    most_held: u64,
}

impl Scheduler for Counted<'_> {
    fn name(&self) -> String {
        self.policy.name()
    }
    fn information(&self) -> Information {
        self.policy.information()
    }
    fn decide(&mut self, view: &View<'_>) -> Plan {
        let plan = self.policy.decide(view);
        self.decisions += 1;
        self.held += plan.hold.len() as u64;
        self.most_held = self.most_held.max(plan.hold.len() as u64);
        plan
    }
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: nested_wait_counts REQUESTS SCALE...";
    let n: u64 = args.first().and_then(|a| a.parse().ok()).ok_or(usage)?;
    let text = include_str!("../workloads/lmsys-like.toml");
    let file = WorkloadFile::parse("lmsys-like.toml", text).map_err(|e| e.to_string())?;
    for arg in &args[1..] {
        let scale: f64 = arg.parse().map_err(|_| format!("{usage} (bad scale {arg:?})"))?;
        let mut w = file.clone();
        w.classes.iter_mut().for_each(|c| c.rate_per_s *= scale);
        let mut policy = NestedWait::from_workload(&w)?;
        let mut c = Counted { policy: &mut policy, decisions: 0, held: 0, most_held: 0 };
        let t = kvsched::experiments::loads::time_run(&w, &mut c, n, 0)?;
        let (decisions, held, most) = (c.decisions, c.held, c.most_held);
        let p = &policy;
        println!(
            "scale {scale} ({:.1} req/s): {} iterations, {} completed, peak held {}{}",
            w.total_rate_per_s(),
            t.iterations,
            t.completed,
            t.peak_held,
            t.error.map_or(String::new(), |e| format!(", stopped: {e}"))
        );
        println!(
            "  {decisions} decisions: general {} (overflow {}), fast repairs {} ({} evictions \
             in all), guard trims {}, listed batches {}, paused segments held {}, plans \
             holding {}; held {:.1} a decision, at most {most}",
            p.general_decisions,
            p.overflow_fallbacks,
            p.fast_repairs,
            p.repair_evictions,
            p.guard_trims,
            p.explicit_batches,
            p.paused_holds,
            p.fast_holds,
            held as f64 / decisions.max(1) as f64
        );
    }
    Ok(())
}
