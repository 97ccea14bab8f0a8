//! Primal heuristic for the round model: list scheduling plus seeded local search.
//!
//! A *list* (a permutation of the requests) is decoded by the serial schedule-generation scheme
//! of resource-constrained project scheduling: requests are placed in list order, each at the
//! earliest round `k ≥ a_i` at which it fits under the memory already committed by the requests
//! placed before it (later requests may fill gaps left earlier, unlike MC-SF's chronological
//! admission). The local search moves one request to another list position and keeps the move
//! by simulated annealing; the iteration count, not the clock, bounds it, so a seed always gives
//! the same schedule. Every schedule it returns is feasible (checked with
//! `kvsched_spec::rounds::check_schedule` by the caller), so its cost is an *upper* bound on OPT
//! and `MC-SF / best found` a proven *lower* bound on `MC-SF / OPT` (`spec/MCSF_NOTES.md` §0.3).

use crate::prng::Prng;
use kvsched_spec::rounds::RoundInstance;
use rand::Rng;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Memory committed per round while a list is decoded.
struct Profile {
    used: Vec<u64>,
}

impl Profile {
    fn new() -> Profile {
        Profile { used: Vec::new() }
    }

    fn clear(&mut self) {
        self.used.iter_mut().for_each(|u| *u = 0);
    }

    fn at(&self, t: u64) -> u64 {
        self.used.get(t as usize).copied().unwrap_or(0)
    }

    /// The earliest `k ≥ from` at which a request `(s, o)` fits under capacity `m`.
    fn earliest_fit(&self, m: u64, s: u64, o: u64, from: u64) -> u64 {
        let mut k = from;
        'candidate: loop {
            for t in k + 1..=k + o {
                let u = self.at(t);
                if u + s + (t - k) > m {
                    // Holding at `t` falls only by starting later: the next candidate that can
                    // pass round `t` starts at `u + s + t − m` (or after `t`, not covering it).
                    k = (k + 1).max((u + s + t).saturating_sub(m).min(t));
                    continue 'candidate;
                }
            }
            return k;
        }
    }

    fn place(&mut self, s: u64, o: u64, k: u64) {
        let end = (k + o) as usize + 1;
        if self.used.len() < end {
            self.used.resize(end, 0);
        }
        for j in 1..=o {
            self.used[(k + j) as usize] += s + j;
        }
    }
}

/// Decodes `list` (serial scheme) into `starts`; returns the total latency. The first `keep`
/// entries of `list` must be placed where `starts` already has them (the decoding of any list
/// with the same prefix): they are committed without searching.
fn decode(
    inst: &RoundInstance,
    list: &[usize],
    keep: usize,
    prof: &mut Profile,
    starts: &mut [u64],
) -> u64 {
    prof.clear();
    let m = inst.memory_tokens;
    let mut total = 0;
    for (pos, &i) in list.iter().enumerate() {
        let r = &inst.requests[i];
        let k = if pos < keep {
            starts[i]
        } else {
            prof.earliest_fit(m, r.prompt_tokens, r.output_tokens, r.arrival_round)
        };
        prof.place(r.prompt_tokens, r.output_tokens, k);
        starts[i] = k;
        total += k + r.output_tokens - r.arrival_round;
    }
    total
}

/// The serial decoding of `list` on top of memory `background` already held (index = round,
/// missing entries 0): each request at the earliest round `≥ a_i` where it fits. Always
/// feasible (a request fits once the background and the requests before it have ended).
/// Used to warm-start the re-solving policy's IPs (`opt::regret`). Errors on an invalid
/// instance (a request whose peak exceeds memory fits nowhere).
pub fn serial_schedule(
    inst: &RoundInstance,
    list: &[usize],
    background: &[u64],
) -> Result<Vec<u64>, String> {
    let problems = inst.validate();
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let mut prof = Profile { used: background.to_vec() };
    let mut starts = vec![0u64; inst.len()];
    for &i in list {
        let r = &inst.requests[i];
        let k = prof.earliest_fit(
            inst.memory_tokens,
            r.prompt_tokens,
            r.output_tokens,
            r.arrival_round,
        );
        prof.place(r.prompt_tokens, r.output_tokens, k);
        starts[i] = k;
    }
    Ok(starts)
}

/// Options of [`improve`].
#[derive(Clone, Debug)]
pub struct SearchOptions {
    /// Local-search moves (list decodings) in all.
    pub iterations: u64,
    /// Initial annealing temperature, in rounds of total latency (0: pure descent).
    pub temperature: f64,
    /// Ends the search early (with the best schedule so far) once another thread sets it.
    pub interrupt: Option<Arc<AtomicBool>>,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions { iterations: 20_000, temperature: 10.0, interrupt: None }
    }
}

/// The best schedule found: start rounds and total latency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Start round of each request.
    pub starts: Vec<u64>,
    /// Total latency `Σ (c_i − a_i)`.
    pub total_latency: u64,
}

/// Improves on `incumbent` (start rounds of a feasible schedule, e.g. MC-SF's) by list
/// scheduling and simulated annealing over lists. Returns the best of the incumbent and
/// everything decoded; deterministic in `rng`'s seed. An invalid instance (see
/// `RoundInstance::validate`) gets the incumbent back unchanged.
pub fn improve(
    inst: &RoundInstance,
    incumbent: &[u64],
    opts: &SearchOptions,
    rng: &mut Prng,
) -> Found {
    let n = inst.len();
    let cost_of = |starts: &[u64]| -> u64 {
        inst.requests
            .iter()
            .zip(starts)
            .map(|(r, &k)| (k + r.output_tokens).saturating_sub(r.arrival_round))
            .sum()
    };
    let mut best = Found { starts: incumbent.to_vec(), total_latency: cost_of(incumbent) };
    if n < 2 || !inst.validate().is_empty() {
        return best;
    }
    // Start from the incumbent's start order (ties: shorter first, then index).
    let mut list: Vec<usize> = (0..n).collect();
    list.sort_by_key(|&i| (incumbent[i], inst.requests[i].output_tokens, i));
    let mut prof = Profile::new();
    let mut cur_starts = vec![0u64; n];
    let mut cur = decode(inst, &list, 0, &mut prof, &mut cur_starts);
    if cur < best.total_latency {
        best = Found { starts: cur_starts.clone(), total_latency: cur };
    }
    let mut cand = list.clone();
    let mut starts = cur_starts.clone();
    for it in 0..opts.iterations {
        if it % 64 == 0 && opts.interrupt.as_ref().is_some_and(|f| f.load(Ordering::Relaxed)) {
            break;
        }
        let from = rng.random_range(0..n);
        let mut to = rng.random_range(0..n - 1);
        if to >= from {
            to += 1;
        }
        cand.copy_from_slice(&list);
        let x = cand.remove(from);
        cand.insert(to, x);
        starts.copy_from_slice(&cur_starts);
        let c = decode(inst, &cand, from.min(to), &mut prof, &mut starts);
        let temp = opts.temperature * (1.0 - it as f64 / opts.iterations as f64);
        let accept =
            c <= cur || (temp > 0.0 && rng.random::<f64>() < (-((c - cur) as f64) / temp).exp());
        if accept {
            list.copy_from_slice(&cand);
            cur_starts.copy_from_slice(&starts);
            cur = c;
            if c < best.total_latency {
                best = Found { starts: starts.clone(), total_latency: c };
            }
        }
    }
    best
}
