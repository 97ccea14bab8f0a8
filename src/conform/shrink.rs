//! Shrinking a failing instance to a minimal one that fails with the same verdict code.
//!
//! Greedy delta debugging, re-running the scheduler on every candidate:
//! 1. remove chunks of requests (halves, then quarters, ... then single requests), keeping the
//!    rest in arrival order with dense ids;
//! 2. shrink every request's prompt and output length (to 1, to half, minus one), repeatedly
//!    while it still fails;
//! 3. move arrivals earlier (to the previous request's arrival, or to 0).
//!
//! A candidate is kept only when the run ends with the same verdict code as the original
//! failure. The search stops after `max_runs` runs or `max_time`, keeping the best so far.

use super::run::run_instance;
use super::verdict::{Verdict, VerdictCode};
use super::{Candidate, ConformConfig};
use kvsched_spec::{Instance, Nanos, Request, RequestId, Tokens};
use std::time::Instant;

/// A shrunk failure.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The smallest failing instance found.
    pub instance: Instance,
    /// Its verdict.
    pub verdict: Verdict,
    /// Runs spent.
    pub runs: usize,
}

struct Search<'a> {
    candidate: &'a dyn Candidate,
    label: String,
    seed: u64,
    cfg: &'a ConformConfig,
    code: VerdictCode,
    runs: usize,
    started: Instant,
    best: Instance,
    verdict: Verdict,
}

impl Search<'_> {
    fn exhausted(&self) -> bool {
        self.runs >= self.cfg.shrink_max_runs || self.started.elapsed() > self.cfg.shrink_max_time
    }

    /// Runs `candidate`; keeps it when it fails the same way.
    fn try_keep(&mut self, requests: Vec<Request>) -> bool {
        if self.exhausted() || requests.is_empty() {
            return false;
        }
        let instance = Instance { config: self.best.config.clone(), requests: renumber(requests) };
        self.runs += 1;
        let r = run_instance(self.candidate, &self.label, &instance, self.seed, self.cfg);
        if r.verdict.code == self.code {
            self.best = instance;
            self.verdict = r.verdict;
            true
        } else {
            false
        }
    }

    fn remove_chunks(&mut self) {
        let mut chunk = self.best.requests.len().div_ceil(2);
        while chunk >= 1 && !self.exhausted() {
            let mut start = 0;
            while start < self.best.requests.len() && !self.exhausted() {
                let mut reqs = self.best.requests.clone();
                let end = (start + chunk).min(reqs.len());
                reqs.drain(start..end);
                if !self.try_keep(reqs) {
                    start += chunk;
                }
            }
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
    }

    fn shrink_lengths(&mut self) {
        for i in 0..self.best.requests.len() {
            for field in [0, 1] {
                loop {
                    let get =
                        |r: &Request| if field == 0 { r.prompt_tokens } else { r.output_tokens };
                    let v = get(&self.best.requests[i]).get();
                    let mut kept = false;
                    for nv in [1, v / 2, v.saturating_sub(1)] {
                        if nv == 0 || nv >= v || self.exhausted() {
                            continue;
                        }
                        let mut reqs = self.best.requests.clone();
                        let r = &mut reqs[i];
                        match field {
                            0 => r.prompt_tokens = Tokens(nv),
                            _ => {
                                r.output_tokens = Tokens(nv);
                                r.predicted_output_tokens =
                                    r.predicted_output_tokens.map(|p| p.min(Tokens(nv)));
                            }
                        }
                        if self.try_keep(reqs) {
                            kept = true;
                            break;
                        }
                    }
                    if !kept {
                        break;
                    }
                }
            }
        }
    }

    fn shift_arrivals(&mut self) {
        for i in 0..self.best.requests.len() {
            let prev = if i == 0 { Nanos::ZERO } else { self.best.requests[i - 1].arrival_ns };
            if self.best.requests[i].arrival_ns == prev || self.exhausted() {
                continue;
            }
            let mut reqs = self.best.requests.clone();
            reqs[i].arrival_ns = prev;
            self.try_keep(reqs);
        }
    }
}

fn renumber(mut requests: Vec<Request>) -> Vec<Request> {
    for (i, r) in requests.iter_mut().enumerate() {
        r.id = RequestId(i as u32);
    }
    requests
}

/// Shrinks `instance`, on which `candidate` failed with `verdict`.
pub fn shrink(
    candidate: &dyn Candidate,
    label: &str,
    instance: &Instance,
    seed: u64,
    verdict: &Verdict,
    cfg: &ConformConfig,
) -> Shrunk {
    let mut s = Search {
        candidate,
        label: format!("{label}/shrink"),
        seed,
        cfg,
        code: verdict.code,
        runs: 0,
        started: Instant::now(),
        best: instance.clone(),
        verdict: verdict.clone(),
    };
    // Two rounds: removing lengths can make more requests removable.
    for _ in 0..2 {
        let before = (s.best.requests.len(), total(&s.best));
        s.remove_chunks();
        s.shrink_lengths();
        s.shift_arrivals();
        if (s.best.requests.len(), total(&s.best)) == before {
            break;
        }
    }
    Shrunk { instance: s.best, verdict: s.verdict, runs: s.runs }
}

fn total(i: &Instance) -> u64 {
    i.requests.iter().map(|r| r.peak_tokens().get() + r.arrival_ns.get()).sum()
}
