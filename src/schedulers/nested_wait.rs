//! Nested WAIT (WAIT paper, arXiv 2504.11320, Algorithm 2, `papers/unknown_type.tex` and the
//! June 2026 appendix `nested_wait_full_algorithm.tex`; notes §3.2).
//!
//! Output lengths are **hidden** ([`Information::Hidden`]): the policy sees prompts and the
//! progress of resident requests, and learns a length only when a request completes. It
//! never reads an output hint (and under `Hidden` the class is not visible either).
//!
//! **Segments.** Decode boundaries `r_1 < ... < r_L` (output tokens; the design's `l'_k`).
//! Segment 1 is the prefill plus the decodes up to `r_1`; segment `k >= 2` covers the decodes
//! `r_{k-1} + 1 .. r_k`. Its **entry queue** is segment 1's waiting requests, or for `k >= 2`
//! the **resident boundary queue** `Q_{k, r_{k-1}}`: residents that have generated exactly
//! `r_{k-1}` tokens and did not complete there (they keep their KV). Its other stages are the
//! residents strictly inside the segment, one stage per generated-token count. The last
//! segment is open-ended, so a request longer than `r_L` is still served.
//!
//! **Prefix rule.** With per-stage thresholds `n_k`: the largest `k` such that every entry
//! queue `k' <= k` holds at least `n_{k'}`; segments `1..k` run together, taking
//! `a_{k's} = min(n_{k'}, Q_{k's})` from every stage (FIFO / admission order); segments after
//! `k` stay paused and resident. If segment 1's entry queue is short, nothing runs (wait).
//!
//! **Overflow repair** (appendix, "Overflow / memory repair"). Before a batch is launched its
//! exact post-iteration footprint is computed; while it exceeds `C`, the most recently
//! admitted **unselected boundary-queue** resident is evicted (it returns to the waiting queue
//! and restarts from prefill). Under `EvictionRule::Lifo` the victim must also be the most
//! recent resident overall, else the repair stops. The appendix's other repair point ("after
//! completions, while resident memory > C") never applies here: the engine keeps memory
//! within `C` after every step. [`NestedWait::repair_evictions`] counts the evictions.
//!
//! Thresholds are real: entry caps rotate ([`Rotor`]) around `n_k`, so fractional designs
//! with `p_k < n_k / n_{k-1} < 1` are served in the long-run mean; interior stages take
//! `min(ceil(n_k), count)`; `n_1` is raised to at least 1. A memory guard trims admissions if
//! repair cannot make a batch fit ([`NestedWait::guard_trims`]), and evicts the most recent
//! residents only if nothing fits at all ([`NestedWait::guard_evictions`]). At the end of a
//! finite run every segment runs without waiting ([`NestedWait::drain`], as in [`super::wait`]).
//!
//! Deviation (the `nested_wait_drain_does_not_stall` fix): a boundary queue whose rotor is on a
//! zero turn (`floor(acc + n_k) = 0`, a fractional `n_k < 1` of a fluid design) selects
//! nothing; during the drain, with no other work, that decision was empty and the run stalled
//! for good (found by the lmsys as-run experiment). Once every request has arrived, an empty
//! decision now advances the joined rotors to their next positive turn instead: an empty
//! decision is not a batch.

use super::mem;
use super::wait::{admit_growth, fit_or_evict, resident_item, tokens_after_prefill, Rotor};
use crate::sim::{Plan, Repeat, ResidentView, Scheduler, View};
use kvsched_spec::fluid::nested::Segments;
use kvsched_spec::fluid::FluidInputs;
use kvsched_spec::{BatchItem, EvictionRule, Information, RequestId, Tokens, WorkloadFile};

/// Where the per-stage thresholds come from.
#[derive(Clone, Debug, PartialEq)]
pub enum NestedThresholds {
    /// One threshold `n_k` per segment.
    Fixed(Vec<f64>),
    /// One open-ended segment with `n_1 = tl / (stages of the mean revealed output)`, learned
    /// from completions (1 until the first completion).
    TotalLimit(f64),
}

/// Nested WAIT (Algorithm 2) with the appendix's overflow repair.
#[derive(Clone, Debug, PartialEq)]
pub struct NestedWait {
    /// Decode boundaries `r_1 < ... < r_L` (output tokens). Default: empty (one segment).
    pub boundaries: Vec<u64>,
    /// Thresholds. Default: `TotalLimit(64.0)`.
    pub thresholds: NestedThresholds,
    /// Evict boundary-queue prompts (LIFO) when a batch would overflow. Default `true`.
    pub repair: bool,
    /// Serve every segment without waiting once every request has arrived. Default `true`.
    pub drain: bool,
    /// Evictions made by the repair.
    pub repair_evictions: u64,
    /// Decisions at which the repair evicted at least once.
    pub repair_events: u64,
    /// Batches the memory guard trimmed.
    pub guard_trims: u64,
    /// Last-resort evictions of any resident when nothing fits even after the repair.
    pub guard_evictions: u64,
    rotors: Vec<Rotor>,
    revealed: (u64, u64),
}

impl Default for NestedWait {
    fn default() -> Self {
        NestedWait::new(Vec::new(), NestedThresholds::TotalLimit(64.0))
    }
}

/// A resident's place: segment and stage (generated tokens; `u64::MAX` while prefilling).
fn place(cuts: &[u64], r: &ResidentView) -> (usize, u64, bool) {
    if !r.prefill_done() {
        return (0, u64::MAX, false);
    }
    let g = r.generated().get();
    let k = cuts.iter().take_while(|&&c| c <= g).count();
    let entry = k > 0 && cuts[k - 1] == g;
    (k, g, entry)
}

/// The Nested WAIT fluid design: `q_k = min(p_k + margin, 0.99)`, `n_k = n_1 prod_{r<k} q_r`,
/// and `n_1 = (1 + slack) d0 / (1 / Lambda - d1 m)` with `m = M^pi / n_1`, the smallest `n_1`
/// meeting the entry drift `dT(n) < n_1 / Lambda` scaled by `1 + slack`. Returns the
/// boundaries and thresholds, or why no design exists.
pub fn fluid_thresholds(
    inputs: &FluidInputs,
    margin: f64,
    slack: f64,
) -> Result<(Vec<u64>, Vec<f64>), String> {
    let seg = Segments::from_inputs(inputs).ok_or("no class with a positive rate")?;
    let p = seg.continuation();
    let mut rel = vec![1.0; seg.len()];
    for k in 1..seg.len() {
        rel[k] = rel[k - 1] * (p[k] + margin).min(0.99);
    }
    let m = seg.base_memory(&rel);
    let denom = 1.0 / seg.tail_rates()[0] - inputs.d1_s_per_token * m;
    if denom <= 0.0 {
        return Err("entry drift cannot hold: d1 m >= 1 / Lambda".into());
    }
    let n1 = ((1.0 + slack) * inputs.d0_s / denom).max(1.0);
    Ok((seg.outputs.clone(), rel.iter().map(|r| r * n1).collect()))
}

impl NestedWait {
    /// Nested WAIT with these boundaries and thresholds.
    pub fn new(boundaries: Vec<u64>, thresholds: NestedThresholds) -> NestedWait {
        NestedWait {
            boundaries,
            thresholds,
            repair: true,
            drain: true,
            repair_evictions: 0,
            repair_events: 0,
            guard_trims: 0,
            guard_evictions: 0,
            rotors: Vec::new(),
            revealed: (0, 0),
        }
    }

    /// The fluid design of a workload file ([`fluid_thresholds`], margin 0.05, slack 0.1).
    pub fn from_workload(w: &WorkloadFile) -> Result<NestedWait, String> {
        let inputs = FluidInputs::from_workload(w).map_err(|e| e.to_string())?;
        let (b, n) = fluid_thresholds(&inputs, 0.05, 0.1)?;
        Ok(NestedWait::new(b, NestedThresholds::Fixed(n)))
    }

    /// Cut points between segments: every boundary but the last (the last segment is open).
    fn cuts(&self) -> &[u64] {
        &self.boundaries[..self.boundaries.len().saturating_sub(1)]
    }

    fn thresholds_now(&self, view: &View<'_>) -> Vec<f64> {
        let mut n = match &self.thresholds {
            NestedThresholds::Fixed(n) => n.clone(),
            NestedThresholds::TotalLimit(tl) => {
                let (c, sum) = self.revealed;
                let stages = if c == 0 {
                    *tl
                } else {
                    sum as f64 / c as f64 + 1.0 - tokens_after_prefill(view) as f64
                };
                vec![tl / stages.max(1.0)]
            }
        };
        n.resize(self.cuts().len() + 1, 1.0);
        n[0] = n[0].max(1.0);
        n
    }
}

/// What one decision selects, with the footprint growth of each item.
#[derive(Default)]
struct Selection {
    admit: Vec<(BatchItem, Tokens)>,
    rest: Vec<(BatchItem, Tokens)>,
    joined: usize,
}

impl NestedWait {
    fn select(&self, view: &View<'_>, n: &[f64], caps: &[u64], drain: bool) -> Selection {
        let cuts = self.cuts();
        let segs = n.len();
        let mut entry_counts = vec![0u64; segs];
        entry_counts[0] = view.waiting_len() as u64;
        let running: Vec<ResidentView> = view.running().collect();
        for r in &running {
            let (k, _, entry) = place(cuts, r);
            if entry {
                entry_counts[k] += 1;
            }
        }
        let joined = if drain {
            segs
        } else {
            (0..segs).take_while(|&k| entry_counts[k] >= caps[k]).count()
        };
        let mut sel = Selection { joined, ..Selection::default() };
        if joined == 0 {
            return sel;
        }
        for r in view.waiting().take(caps[0] as usize) {
            let item = BatchItem::Prefill { id: r.id(), tokens: r.prompt_tokens() };
            sel.admit.push((item, admit_growth(view, r.prompt_tokens())));
        }
        let mut taken: std::collections::BTreeMap<(usize, u64), u64> = Default::default();
        for r in &running {
            let (k, g, entry) = place(cuts, r);
            if k >= joined {
                continue;
            }
            let cap = if entry { caps[k] } else { n[k].ceil() as u64 };
            let t = taken.entry((k, g)).or_insert(0);
            if *t < cap {
                *t += 1;
                let item = resident_item(r, None);
                sel.rest.push((item, mem::item_growth(view, r, &item)));
            }
        }
        sel
    }

    /// Evicts unselected boundary-queue residents, most recent first, while the batch does
    /// not fit. Returns the evictions and the memory they free.
    fn repair_overflow(
        &self,
        view: &View<'_>,
        sel: &Selection,
        need: Tokens,
    ) -> (Vec<RequestId>, Tokens) {
        let mut evict = Vec::new();
        let mut freed = Tokens::ZERO;
        let selected: std::collections::BTreeSet<RequestId> =
            sel.rest.iter().map(|r| r.0.id()).collect();
        let lifo = view.config().eviction == EvictionRule::Lifo;
        let cuts = self.cuts();
        let mut stack: Vec<ResidentView> = view.running().collect();
        while need > view.kv_free() + freed {
            let victim = if lifo {
                stack.pop().filter(|r| place(cuts, r).2 && !selected.contains(&r.id()))
            } else {
                let pos =
                    stack.iter().rposition(|r| place(cuts, r).2 && !selected.contains(&r.id()));
                pos.map(|i| stack.remove(i))
            };
            let Some(v) = victim else { break };
            freed += view.footprint(v.held());
            evict.push(v.id());
        }
        (evict, freed)
    }
}

impl Scheduler for NestedWait {
    fn name(&self) -> String {
        "nested-wait".into()
    }

    fn information(&self) -> Information {
        Information::Hidden
    }

    fn decide(&mut self, view: &View<'_>) -> Plan {
        for c in view.completed_since_last() {
            self.revealed.0 += 1;
            self.revealed.1 += c.output_tokens.get();
        }
        let n = self.thresholds_now(view);
        self.rotors.resize(n.len(), Rotor::new(1.0));
        for (r, &nk) in self.rotors.iter_mut().zip(&n) {
            r.n = nk;
        }
        let caps: Vec<u64> = self.rotors.iter().map(Rotor::cap).collect();
        let drain = self.drain && view.arrivals_done();
        let mut sel = self.select(view, &n, &caps, drain);
        if sel.joined == 0 {
            return Plan::idle();
        }
        // Zero turns only: advance the joined rotors until some resident is selected (each
        // rotor with n_k > 0 reaches a positive turn within ceil(1 / n_k) turns).
        let mut skips = 0;
        while drain && sel.admit.is_empty() && sel.rest.is_empty() && skips < 100_000 {
            if view.running_len() == 0 || !self.rotors.iter().any(|r| r.n > 0.0) {
                break;
            }
            self.rotors.iter_mut().take(sel.joined).for_each(Rotor::advance);
            let caps: Vec<u64> = self.rotors.iter().map(Rotor::cap).collect();
            sel = self.select(view, &n, &caps, drain);
            skips += 1;
        }
        let need: Tokens = sel.admit.iter().chain(&sel.rest).map(|x| x.1).sum();
        let (evict, freed) = if self.repair && need > view.kv_free() {
            self.repair_overflow(view, &sel, need)
        } else {
            (Vec::new(), Tokens::ZERO)
        };
        if !evict.is_empty() {
            self.repair_events += 1;
            self.repair_evictions += evict.len() as u64;
        }
        let sel_admit = std::mem::take(&mut sel.admit);
        let sel_rest = std::mem::take(&mut sel.rest);
        let (admit, rest, more, acted) =
            fit_or_evict(view, sel_admit, sel_rest, view.kv_free() + freed, &evict);
        self.guard_trims += u64::from(acted);
        self.guard_evictions += more.len() as u64;
        let mut evict = evict;
        evict.extend(more);
        let batch: Vec<BatchItem> = admit.iter().chain(&rest).map(|x| x.0).collect();
        if batch.is_empty() {
            return Plan { evict, batch, repeat: Repeat::Once, decode_all: false };
        }
        for r in self.rotors.iter_mut().take(sel.joined) {
            r.advance();
        }
        Plan { evict, batch, repeat: Repeat::Once, decode_all: false }
    }
}
