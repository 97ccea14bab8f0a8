//! What a run produced: per-request records, counters, and the summary serving engineers read.
//!
//! Latency is end-to-end (arrival to last token). TTFT is arrival to the first output token
//! (the first ever: a token shown to the user before an eviction stays shown). TPOT is
//! `(finish - first token) / (output - 1)` for requests with more than one output token.
//! Effective throughput counts only the output tokens of completed requests.
//!
//! Means and percentiles are taken over a **measurement window**: by default the middle 50% of
//! requests by arrival order (the WAIT paper's trim 0.25/0.25), which drops the warm-up and the
//! drain. [`Summary::window`] says which window was used.

use super::core::{Core, Slot, SlotPhase};
use hdrhistogram::Histogram;
use kvsched_spec::{Nanos, RequestId, Tokens};
use serde::Serialize;

/// One request's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    /// Id.
    pub id: RequestId,
    /// Class.
    pub class: u32,
    /// Arrival.
    pub arrival_ns: Nanos,
    /// Prompt length.
    pub prompt_tokens: Tokens,
    /// Output length.
    pub output_tokens: Tokens,
    /// First output token, if any.
    pub first_token_ns: Option<Nanos>,
    /// Completion, if completed.
    pub finish_ns: Option<Nanos>,
    /// Times evicted.
    pub evictions: u32,
    /// Output tokens it kept across its evictions under `Preemption::KeepGenerated` (prefilled
    /// again on resumption, not generated again); 0 under `Restart` (and then not serialized).
    #[serde(skip_serializing_if = "is_zero")]
    pub kept_tokens: Tokens,
}

fn is_zero(t: &Tokens) -> bool {
    *t == Tokens::ZERO
}

/// Memory and queues at a decision point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TimelinePoint {
    /// Time.
    pub t_ns: Nanos,
    /// KV footprint.
    pub kv_used_tokens: Tokens,
    /// Waiting requests.
    pub waiting: u64,
    /// Resident requests.
    pub running: u64,
}

/// Everything a run produced.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// Scheduler name.
    pub scheduler: String,
    /// Per request, by id.
    pub requests: Vec<RequestRecord>,
    /// Simulated time at the end.
    pub simulated_ns: Nanos,
    /// Iterations.
    pub steps: u64,
    /// Evictions.
    pub evictions: u64,
    /// Admissions (including re-admissions after eviction).
    pub admissions: u64,
    /// Completed requests.
    pub completed: u64,
    /// KV capacity (tokens, whole blocks).
    pub kv_capacity_tokens: Tokens,
    /// Integral of KV footprint over time (token-nanoseconds).
    pub kv_token_ns: u128,
    /// Decision-point samples, when requested.
    pub timeline: Vec<TimelinePoint>,
    /// A trace-writing error, if one happened (the run itself is unaffected).
    pub trace_error: Option<String>,
    /// Most requests the engine held at once (arrived, not yet retired): what its memory
    /// follows. Completed requests leave in arrival order, so one slow request keeps the ones
    /// behind it.
    pub peak_window_requests: u64,
    /// For a streamed run ([`super::simulate_stream`]), the window's statistics; `requests`
    /// is then empty.
    #[serde(skip)]
    pub streamed: Option<WindowStats>,
}

impl RequestRecord {
    /// The record of a request's slot (no first token or finish if it never got them).
    pub(crate) fn of(s: &Slot) -> RequestRecord {
        RequestRecord {
            id: s.request.id,
            class: s.request.class,
            arrival_ns: s.request.arrival_ns,
            prompt_tokens: s.request.prompt_tokens,
            output_tokens: s.request.output_tokens,
            first_token_ns: s.first_token_ns,
            finish_ns: if s.phase == SlotPhase::Done { s.finish_ns } else { None },
            evictions: s.evictions,
            kept_tokens: s.kept,
        }
    }
}

/// Where a run's per-request records go.
#[derive(Clone, Debug)]
pub enum Records {
    /// Keep every record ([`Outcome::requests`]).
    All(Vec<RequestRecord>),
    /// Keep only the window's statistics: memory independent of the number of requests.
    Window(Box<WindowStats>),
}

impl Records {
    /// Adds one request's record (requests come in id order).
    pub fn push(&mut self, r: RequestRecord) {
        match self {
            Records::All(v) => v.push(r),
            Records::Window(w) => w.push(&r),
        }
    }
}

/// The statistics of a streamed run: latency, TTFT and TPOT of the window's requests in
/// HDR histograms (nanoseconds, 3 significant digits: percentiles within 0.1 %; means exact),
/// and the whole run's completed output tokens.
#[derive(Clone, Debug)]
pub struct WindowStats {
    /// Requests in the run.
    pub total: u64,
    /// The window, as a centred fraction.
    pub window: f64,
    lo: u64,
    hi: u64,
    seen: u64,
    latency: Histogram<u64>,
    ttft: Histogram<u64>,
    tpot: Histogram<u64>,
    sums_s: [f64; 3],
    /// Output tokens of the completed requests (whole run).
    pub completed_output_tokens: u64,
}

impl WindowStats {
    /// Statistics over the centred `window` of `total` requests.
    pub fn new(total: u64, window: f64) -> WindowStats {
        let w = window.clamp(0.0, 1.0);
        let lo = ((1.0 - w) / 2.0 * total as f64).floor() as u64;
        let hi = (total - lo).max(lo);
        // 1 ns to about 41 days, 3 significant digits (values above saturate).
        let h = || Histogram::new_with_bounds(1, 1 << 62, 3).expect("valid bounds");
        WindowStats {
            total,
            window: w,
            lo,
            hi,
            seen: 0,
            latency: h(),
            ttft: h(),
            tpot: h(),
            sums_s: [0.0; 3],
            completed_output_tokens: 0,
        }
    }

    fn push(&mut self, r: &RequestRecord) {
        let i = self.seen;
        self.seen += 1;
        if r.finish_ns.is_some() {
            self.completed_output_tokens += r.output_tokens.get();
        }
        if i < self.lo || i >= self.hi {
            return;
        }
        let a = r.arrival_ns;
        if let Some(ft) = r.first_token_ns {
            self.add(1, (ft - a).get() as f64);
        }
        if let Some(f) = r.finish_ns {
            self.add(0, (f - a).get() as f64);
            if let (Some(ft), true) = (r.first_token_ns, r.output_tokens.get() > 1) {
                self.add(2, (f - ft).get() as f64 / (r.output_tokens.get() - 1) as f64);
            }
        }
    }

    fn add(&mut self, k: usize, ns: f64) {
        let h = match k {
            0 => &mut self.latency,
            1 => &mut self.ttft,
            _ => &mut self.tpot,
        };
        h.saturating_record(ns.round() as u64);
        self.sums_s[k] += ns / 1e9;
    }

    fn dist(&self, k: usize) -> Dist {
        let h = match k {
            0 => &self.latency,
            1 => &self.ttft,
            _ => &self.tpot,
        };
        let n = h.len();
        if n == 0 {
            return Dist::default();
        }
        let q = |p: f64| h.value_at_quantile(p) as f64 / 1e9;
        Dist { n, mean: self.sums_s[k] / n as f64, p50: q(0.5), p90: q(0.9), p99: q(0.99) }
    }
}

impl Outcome {
    pub(super) fn from_core(
        core: &Core,
        records: Records,
        scheduler: String,
        kv_token_ns: u128,
    ) -> Outcome {
        let (requests, streamed) = match records {
            Records::All(v) => (v, None),
            Records::Window(w) => (Vec::new(), Some(*w)),
        };
        Outcome {
            scheduler,
            requests,
            peak_window_requests: core.peak_window as u64,
            streamed,
            simulated_ns: core.now,
            steps: core.steps,
            evictions: core.evictions,
            admissions: core.admissions,
            completed: core.completed,
            kv_capacity_tokens: core.capacity,
            kv_token_ns,
            timeline: Vec::new(),
            trace_error: None,
        }
    }

    /// The summary over the middle `window` fraction of requests by arrival (0.5 = middle 50%).
    pub fn summary(&self, window: f64) -> Summary {
        Summary::of(self, window)
    }
}

/// Mean and percentiles of a sample (seconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Dist {
    /// Number of values.
    pub n: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Dist {
    /// Nearest-rank percentiles of `values` (sorted in place).
    pub fn of(values: &mut [f64]) -> Dist {
        if values.is_empty() {
            return Dist::default();
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let pct = |p: f64| values[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        Dist {
            n: n as u64,
            mean: values.iter().sum::<f64>() / n as f64,
            p50: pct(0.5),
            p90: pct(0.9),
            p99: pct(0.99),
        }
    }
}

/// The numbers serving engineers read.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Scheduler.
    pub scheduler: String,
    /// Requests in the run.
    pub requests: u64,
    /// Completed requests (whole run).
    pub completed: u64,
    /// Completed / requests.
    pub completion_rate: f64,
    /// Measurement window: fraction of requests kept, centred by arrival order.
    pub window: f64,
    /// End-to-end latency over the window's completed requests (s).
    pub latency_s: Dist,
    /// Time to first token over the window (s).
    pub ttft_s: Dist,
    /// Time per output token after the first, over the window (s).
    pub tpot_s: Dist,
    /// Output tokens of completed requests per second of simulated time (whole run).
    pub throughput_tokens_per_s: f64,
    /// Completed requests per second of simulated time (whole run).
    pub completions_per_s: f64,
    /// Evictions (whole run).
    pub evictions: u64,
    /// Evictions / admissions.
    pub restart_rate: f64,
    /// Time-averaged KV footprint / capacity.
    pub kv_utilization_mean: f64,
    /// Simulated time (s).
    pub simulated_time_s: f64,
    /// Iterations.
    pub steps: u64,
}

impl Summary {
    fn of(o: &Outcome, window: f64) -> Summary {
        if let Some(st) = &o.streamed {
            let dists = [st.dist(0), st.dist(1), st.dist(2)];
            return Summary::assemble(o, st.total, st.window, dists, st.completed_output_tokens);
        }
        let n = o.requests.len();
        let w = window.clamp(0.0, 1.0);
        let lo = ((1.0 - w) / 2.0 * n as f64).floor() as usize;
        let hi = (n - lo).max(lo);
        let (mut lat, mut ttft, mut tpot) = (Vec::new(), Vec::new(), Vec::new());
        for r in &o.requests[lo..hi] {
            let a = r.arrival_ns.as_secs_f64();
            if let Some(ft) = r.first_token_ns {
                ttft.push(ft.as_secs_f64() - a);
            }
            if let Some(f) = r.finish_ns {
                lat.push(f.as_secs_f64() - a);
                if let (Some(ft), true) = (r.first_token_ns, r.output_tokens.get() > 1) {
                    tpot.push(
                        (f.as_secs_f64() - ft.as_secs_f64()) / (r.output_tokens.get() - 1) as f64,
                    );
                }
            }
        }
        let tokens: u64 = o
            .requests
            .iter()
            .filter(|r| r.finish_ns.is_some())
            .map(|r| r.output_tokens.get())
            .sum();
        let dists = [Dist::of(&mut lat), Dist::of(&mut ttft), Dist::of(&mut tpot)];
        Summary::assemble(o, n as u64, w, dists, tokens)
    }

    /// The summary from the window's latency, TTFT and TPOT distributions and the whole run's
    /// completed output tokens; the rest comes from the outcome's counters.
    fn assemble(o: &Outcome, n: u64, window: f64, dists: [Dist; 3], tokens: u64) -> Summary {
        let t = o.simulated_ns.as_secs_f64();
        let per_s = |x: f64| if t > 0.0 { x / t } else { 0.0 };
        let cap_ns = o.kv_capacity_tokens.get() as f64 * o.simulated_ns.get() as f64;
        let [latency_s, ttft_s, tpot_s] = dists;
        Summary {
            scheduler: o.scheduler.clone(),
            requests: n,
            completed: o.completed,
            completion_rate: if n > 0 { o.completed as f64 / n as f64 } else { 0.0 },
            window,
            latency_s,
            ttft_s,
            tpot_s,
            throughput_tokens_per_s: per_s(tokens as f64),
            completions_per_s: per_s(o.completed as f64),
            evictions: o.evictions,
            restart_rate: if o.admissions > 0 {
                o.evictions as f64 / o.admissions as f64
            } else {
                0.0
            },
            kv_utilization_mean: if cap_ns > 0.0 { o.kv_token_ns as f64 / cap_ns } else { 0.0 },
            simulated_time_s: t,
            steps: o.steps,
        }
    }
}
