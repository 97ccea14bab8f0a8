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
//! **Fast path** ([`NestedWait::fast_path`], default on; the same decisions, checked by
//! `fast_paths_decide_what_the_general_paths_decide`). With one segment (the catalog's
//! `TotalLimit` design) every resident is in segment 1 and has no boundary queue, so the
//! repair never evicts, and the general path's batch is: the first `caps[0]` waiting requests
//! (once that many wait, or in the drain), and the first `ceil(n_1)` residents of every stage
//! in admission order. That is a `decode_all` plan holding back ([`crate::sim::Plan::hold`])
//! the residents past `ceil(n_1)` in their stage. A stage index kept incrementally (members
//! keyed by `generated - clock`, where the clock counts fast batches, so a batch moves only
//! the held; the stages with two or more members in a set) yields them in `O(held + crowded
//! stages)`, and the decision costs `O(admissions + held + crowded stages + log n)` plus the
//! engine's `O(block + held log n)`. When the batch does not fit, the memory guard's trims and
//! evictions follow a known order (admissions from the end, then decodes from the most recent
//! resident, then evictions of the most recent residents), which the fast path computes too
//! (trimmed decodes join the hold list; evictions go in the plan), in `O(trimmed + evicted)`.
//! With `ceil(n_1) = 1` stages crowd for good once two residents meet (the held one meets the
//! next younger), so the hold list is usually non-empty (BENCHMARKS.md: 2.7 to 4 residents
//! held a decision on the lmsys-like mix).
//!
//! With several segments (the fluid design `for_workload` builds) the same index gives the
//! entry counts of the prefix rule (its stage sizes at the cut points, `O(L log n)`) and every
//! stage's cap (`caps[k]` at a boundary queue, `ceil(n_k)` inside, 0 in a paused segment), so
//! the plan holds the tails of the crowded stages, the boundary queues on a zero turn, and
//! every resident of a paused segment: `O(paused residents)` a decision. When more residents
//! are held than selected, the plan lists its batch instead (`O(selected + active stages)`;
//! the index then moves the selected up and keeps its clock). The repair (the held
//! boundary-queue residents, most recent first; under `EvictionRule::Lifo` only while each is
//! the most recent resident left) and the guard's trims are computed the same way. The general
//! path decides whenever this does not apply: a resident mid-prefill, a guard that evicts (with
//! one segment: that evicts every resident), a drain decision that selects nothing (zero
//! turns), or an interior threshold of 0 ([`NestedWait::general_decisions`] counts them); a
//! general batch invalidates the index, which is rebuilt (`O(n log n)`) at the next fast
//! decision.
//! BENCHMARKS.md counts what takes the general path and the hold lists' sizes.
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
use std::collections::{BTreeMap, BTreeSet, VecDeque};

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
    /// Decide from a stage index kept incrementally, with a `decode_all` plan and a hold list
    /// (or a listed batch when most residents are held; see the module doc). Default `true`;
    /// `false` runs the general path always (the equivalence tests compare the two).
    pub fast_path: bool,
    /// Fast-path decisions whose plan held at least one resident back.
    pub fast_holds: u64,
    /// Fast-path decisions that held a paused segment's residents (several segments).
    pub paused_holds: u64,
    /// Fast-path decisions with several segments that listed their batch (most residents
    /// held: the selected are fewer than the held).
    pub explicit_batches: u64,
    /// Fast-path decisions whose repair evicted (several segments).
    pub fast_repairs: u64,
    /// Decisions with several segments that the fast path left to the general path because
    /// the batch did not fit even after the repair's evictions and the guard's trims.
    pub overflow_fallbacks: u64,
    /// Decisions the general path took while the fast path is on.
    pub general_decisions: u64,
    rotors: Vec<Rotor>,
    revealed: (u64, u64),
    stages: StageIndex,
}

/// `(key, admission sequence)` of the indexed residents, by id: a window of consecutive ids
/// from the smallest member's to the largest's (residents are admitted in about id order,
/// so the window is about the residents' span), `O(1)` per operation, amortized.
#[derive(Clone, Debug, Default, PartialEq)]
struct Members {
    base: u32,
    slots: VecDeque<Option<(i64, u64)>>,
    len: usize,
}

impl Members {
    fn len(&self) -> usize {
        self.len
    }

    fn slot(&self, id: RequestId) -> Option<usize> {
        id.0.checked_sub(self.base).map(|i| i as usize).filter(|&i| i < self.slots.len())
    }

    fn get(&self, id: RequestId) -> Option<&(i64, u64)> {
        self.slot(id).and_then(|i| self.slots[i].as_ref())
    }

    fn get_mut(&mut self, id: RequestId) -> Option<&mut (i64, u64)> {
        self.slot(id).and_then(|i| self.slots[i].as_mut())
    }

    fn insert(&mut self, id: RequestId, value: (i64, u64)) {
        if self.slots.is_empty() {
            self.base = id.0;
        }
        while id.0 < self.base {
            self.slots.push_front(None);
            self.base -= 1;
        }
        let i = (id.0 - self.base) as usize;
        if i >= self.slots.len() {
            self.slots.resize(i + 1, None);
        }
        self.len += usize::from(self.slots[i].is_none());
        self.slots[i] = Some(value);
    }

    fn remove(&mut self, id: RequestId) -> Option<(i64, u64)> {
        let i = self.slot(id)?;
        let out = self.slots[i].take()?;
        self.len -= 1;
        while self.slots.front().is_some_and(Option::is_none) {
            self.slots.pop_front();
            self.base += 1;
        }
        while self.slots.back().is_some_and(Option::is_none) {
            self.slots.pop_back();
        }
        Some(out)
    }
}

/// The one-segment fast path's index of the decode-ready residents by stage.
///
/// A member's key is `generated - clock`, where `clock` counts the fast-path batches since the
/// index was built: a batch advances every member but the held ones, so it moves only the
/// held (key minus one) and the clock. Members with equal keys share a stage. Kept from what
/// the policy decides and what the view reports: the last fast plan's admissions join at the
/// next decision (once their prompt is complete), completions leave. Any other change (a
/// general-path batch, an eviction, a resident mid-prefill) invalidates it; it is rebuilt
/// from the residents (`O(n log n)`) at the next fast decision.
#[derive(Clone, Debug, Default, PartialEq)]
struct StageIndex {
    valid: bool,
    clock: i64,
    /// Key -> members `(admission sequence, id)` in admission order.
    stages: BTreeMap<i64, Vec<(u64, RequestId)>>,
    /// Keys of the stages with at least two members.
    crowded: BTreeSet<i64>,
    /// Member -> `(key, admission sequence)`.
    member: Members,
    /// Admitted by the last fast plan, not indexed yet.
    pending: Vec<RequestId>,
    /// Buffers of [`StageIndex::ran_over`], kept to spare allocations.
    scratch_keys: Vec<i64>,
    scratch_tail: Vec<(u64, RequestId)>,
}

impl StageIndex {
    fn key(&self, r: &ResidentView) -> i64 {
        r.generated().get() as i64 - self.clock
    }

    fn insert(&mut self, id: RequestId, seq: u64, key: i64) {
        let stage = self.stages.entry(key).or_default();
        let at = stage.partition_point(|m| m.0 < seq);
        stage.insert(at, (seq, id));
        if stage.len() == 2 {
            self.crowded.insert(key);
        }
        self.member.insert(id, (key, seq));
    }

    fn remove(&mut self, id: RequestId) -> Option<(i64, u64)> {
        let (key, seq) = self.member.remove(id)?;
        let stage = self.stages.get_mut(&key).expect("a member's stage");
        let at = stage.partition_point(|m| m.0 < seq);
        stage.remove(at);
        match stage.len() {
            0 => {
                self.stages.remove(&key);
            }
            1 => {
                self.crowded.remove(&key);
            }
            _ => {}
        }
        Some((key, seq))
    }

    fn rebuild(&mut self, view: &View<'_>) {
        let clock = self.clock;
        *self = StageIndex { valid: true, clock, ..StageIndex::default() };
        for r in view.running().filter(ResidentView::prefill_done) {
            self.insert(r.id(), r.admitted_seq(), self.key(&r));
        }
    }

    /// Takes in what happened since the last decision: completions leave, the last fast
    /// plan's admissions join (a prompt still incomplete invalidates the index).
    fn sync(&mut self, view: &View<'_>) {
        if !self.valid {
            return;
        }
        for c in view.completed_since_last() {
            self.remove(c.id);
        }
        for id in std::mem::take(&mut self.pending) {
            match view.resident(id) {
                Some(r) if r.prefill_done() => self.insert(id, r.admitted_seq(), self.key(&r)),
                Some(_) => self.valid = false,
                None => {}
            }
        }
    }

    /// The members past the first `cap` of every stage, as `(admission sequence, id)`.
    fn over(&self, cap: u64) -> impl Iterator<Item = (u64, RequestId)> + '_ {
        self.crowded.iter().flat_map(move |k| self.stages[k].iter().skip(cap as usize).copied())
    }

    /// A fast batch ran: every member but `hold` advanced by one, `admitted` join next time.
    fn ran(&mut self, hold: &[RequestId], admitted: Vec<RequestId>) {
        for &id in hold {
            let (key, seq) = self.remove(id).expect("a held member is indexed");
            self.insert(id, seq, key - 1);
        }
        self.clock += 1;
        self.pending = admitted;
    }

    /// [`StageIndex::ran`] when the hold list is exactly [`StageIndex::over`]`(cap)`: every
    /// stage's members past `cap` move one stage down together.
    fn ran_over(&mut self, cap: u64, admitted: Vec<RequestId>) {
        let cap = cap as usize;
        let mut keys = std::mem::take(&mut self.scratch_keys);
        keys.clear();
        keys.extend(self.crowded.iter().copied().filter(|k| self.stages[k].len() > cap));
        self.move_tails(keys.iter().map(|&k| (k, cap)));
        self.scratch_keys = keys;
        self.clock += 1;
        self.pending = admitted;
    }

    /// [`StageIndex::ran`] when the hold list is, for each `(key, keep)` of `tails` (increasing
    /// keys), the members of stage `key` past its first `keep`, and the members `also`.
    fn ran_tails(&mut self, tails: &[(i64, usize)], also: &[RequestId], admitted: Vec<RequestId>) {
        self.move_tails(tails.iter().copied());
        for &id in also {
            let (key, seq) = self.remove(id).expect("a held member is indexed");
            self.insert(id, seq, key - 1);
        }
        self.clock += 1;
        self.pending = admitted;
    }

    /// Moves the members of each stage `key` past its first `keep` one stage down, as a held
    /// member moves against the clock (keys increasing, so a stage gives its own tail away
    /// before it receives the next one's).
    fn move_tails(&mut self, tails: impl Iterator<Item = (i64, usize)>) {
        let mut tail = std::mem::take(&mut self.scratch_tail);
        for (key, keep) in tails {
            tail.clear();
            let stage = self.stages.get_mut(&key).expect("a stage with a tail");
            tail.extend(stage.drain(keep..));
            if keep == 0 {
                self.stages.remove(&key);
            }
            if keep < 2 {
                self.crowded.remove(&key);
            }
            for m in &tail {
                self.member.get_mut(m.1).expect("a member").0 = key - 1;
            }
            let below = self.stages.entry(key - 1).or_default();
            below.extend_from_slice(&tail);
            below.sort_unstable();
            if below.len() >= 2 {
                self.crowded.insert(key - 1);
            }
        }
        self.scratch_tail = tail;
    }

    /// An explicit batch ran: the members `ran` advanced by one (the clock stays), `admitted`
    /// join next time.
    fn advanced(&mut self, ran: &[(u64, RequestId)], admitted: Vec<RequestId>) {
        for &(_, id) in ran {
            let (key, seq) = self.remove(id).expect("a decoded member is indexed");
            self.insert(id, seq, key + 1);
        }
        self.pending = admitted;
    }

    /// Members at stage `generated` (`O(log n)`).
    fn count_at(&self, generated: u64) -> u64 {
        self.stages.get(&(generated as i64 - self.clock)).map_or(0, |s| s.len() as u64)
    }

    /// Whether the index holds exactly the decode-ready residents at their stages (`O(n)`;
    /// debug builds check it at every fast decision).
    fn matches(&self, view: &View<'_>) -> bool {
        view.decode_ready_len() == self.member.len()
            && view
                .running()
                .filter(ResidentView::prefill_done)
                .all(|r| self.member.get(r.id()) == Some(&(self.key(&r), r.admitted_seq())))
    }
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
            fast_path: true,
            fast_holds: 0,
            paused_holds: 0,
            fast_repairs: 0,
            explicit_batches: 0,
            overflow_fallbacks: 0,
            general_decisions: 0,
            rotors: Vec::new(),
            revealed: (0, 0),
            stages: StageIndex::default(),
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

impl NestedWait {
    /// The one-segment decision in `O(admissions + held + crowded stages + log n)` (plus the
    /// residents its memory guard trims or evicts), or `None` where the general path must
    /// decide: several segments, a resident mid-prefill, or a guard that evicts every
    /// resident.
    ///
    /// With one segment every resident is in segment 1 (`place` gives it no entry queue, so
    /// the repair has no victim), and the general path admits the first `caps[0]` waiting
    /// requests once that many wait (or in the drain) and decodes the first `ceil(n_1)`
    /// residents of every stage in admission order: every decode-ready resident but the
    /// index's members past `ceil(n_1)` in their stage, which the plan holds. If that does not
    /// fit, [`fit_or_evict`] drops admissions from the end, then selected decodes from the most
    /// recent (they join the hold list), and evicts the most recent residents while not even
    /// the oldest resident's decode fits; this does the same without listing the batch.
    fn decide_fast(
        &mut self,
        view: &View<'_>,
        n: &[f64],
        caps: &[u64],
        drain: bool,
    ) -> Option<Plan> {
        if view.decode_ready_len() != view.running_len() {
            return None;
        }
        if !(drain || view.waiting_len() as u64 >= caps[0]) {
            return Some(Plan::idle());
        }
        if n.len() != 1 {
            return self.decide_fast_segments(view, n, caps, drain);
        }
        if !self.stages.valid {
            self.stages.rebuild(view);
        }
        debug_assert!(self.stages.matches(view), "the stage index drifted");
        let growth = |r: &ResidentView| mem::decode_growth(view, r.held());
        let admit: Vec<(RequestId, Tokens, Tokens)> = view
            .waiting()
            .take(caps[0] as usize)
            .map(|r| (r.id(), r.prompt_tokens(), admit_growth(view, r.prompt_tokens())))
            .collect();
        // Held by the stage rule: (admission sequence, id), sorted by sequence.
        let cap = n[0].ceil() as u64;
        let mut held: Vec<(u64, RequestId)> = self.stages.over(cap).collect();
        let mut rest_need = view.decode_all_growth(1);
        for &(_, id) in &held {
            rest_need -= growth(&view.resident(id).expect("an indexed member is resident"));
        }
        if rest_need + admit.iter().map(|a| a.2).sum::<Tokens>() > view.kv_free() {
            held.sort_unstable(); // for the guard's lookups
        }
        let is_held = |r: &ResidentView| held.binary_search(&(r.admitted_seq(), r.id())).is_ok();
        if admit.is_empty() && held.len() == view.running_len() {
            // Nothing selected (no resident, nothing to admit): the general path's empty plan.
            return Some(Plan::idle());
        }
        let Guarded { admitted, trimmed, evict, acted } =
            fast_guard(view, &admit, rest_need, &is_held)?;
        if admitted == 0 && evict.len() == view.running_len() {
            return None; // nothing runs: the general path's empty plan (rare)
        }
        self.guard_trims += u64::from(acted);
        self.guard_evictions += evict.len() as u64;
        // Evicted residents are the most recent `evict.len()`: sequences past the last kept.
        let kept_below = view.running().nth_back(evict.len()).map_or(0, |r| r.admitted_seq() + 1);
        let mut hold: Vec<RequestId> =
            held.iter().filter(|h| h.0 < kept_below).map(|h| h.1).collect();
        hold.extend(trimmed);
        self.rotors[0].advance();
        self.fast_holds += u64::from(!hold.is_empty());
        let batch = admit[..admitted]
            .iter()
            .map(|&(id, tokens, _)| BatchItem::Prefill { id, tokens })
            .collect();
        let admitted = admit[..admitted].iter().map(|a| a.0).collect();
        if evict.is_empty() && hold.len() == held.len() {
            self.stages.ran_over(cap, admitted);
        } else {
            for id in &evict {
                self.stages.remove(*id);
            }
            self.stages.ran(&hold, admitted);
        }
        Some(Plan { evict, batch, repeat: Repeat::Once, decode_all: true, hold })
    }
}

impl NestedWait {
    /// The decision with several segments, or `None` where the general path must decide (a
    /// memory guard that evicts, a drain decision that selects nothing, an interior threshold
    /// of 0). With every resident decode-ready, the general path's batch is: the first
    /// `caps[0]` waiting requests, and from every stage of a joined
    /// segment its first `cap` residents in admission order (`caps[k]` at segment `k`'s
    /// boundary queue, `ceil(n_k)` inside); paused segments' residents are all left out. That
    /// is a `decode_all` plan holding every stage's tail past its cap. Entry counts are the
    /// index's stage sizes at the cut points (`O(L log n)`); the tails come from the crowded
    /// stages below the first paused segment, the boundary queues on a zero turn, and every
    /// stage from the first paused segment on (`O(paused residents)`); when more are held
    /// than selected, the plan lists the selected instead. If the batch does not fit, the
    /// repair evicts held boundary-queue residents, most recent first (under `Lifo` only
    /// while each is the most recent resident left), exactly as
    /// [`NestedWait::repair_overflow`] would, then the memory guard ([`fit_or_evict`])
    /// drops admissions from the end and selected decodes from the most recent resident.
    /// [`NestedWait::decide_fast`] has already waited when segment 1's entry queue is short.
    fn decide_fast_segments(
        &mut self,
        view: &View<'_>,
        n: &[f64],
        caps: &[u64],
        drain: bool,
    ) -> Option<Plan> {
        let inner: Vec<u64> = n.iter().map(|x| x.ceil() as u64).collect();
        if inner.contains(&0) {
            return None;
        }
        if !self.stages.valid {
            self.stages.rebuild(view);
        }
        debug_assert!(self.stages.matches(view), "the stage index drifted");
        let (cuts, ix) = (self.cuts(), &self.stages);
        let joined = if drain {
            n.len()
        } else {
            1 + (1..n.len()).take_while(|&k| ix.count_at(cuts[k - 1]) >= caps[k]).count()
        };
        let sc = SegmentCaps { cuts, caps, inner, joined, clock: ix.clock };
        let (tails, active_tails) = segment_tails(ix, &sc);
        let mut pick = pick_segments(view, ix, &sc, &tails);
        let admit: Vec<(RequestId, Tokens, Tokens)> = view
            .waiting()
            .take(caps[0] as usize)
            .map(|r| (r.id(), r.prompt_tokens(), admit_growth(view, r.prompt_tokens())))
            .collect();
        if admit.is_empty() && pick.chosen == 0 {
            return None; // nothing selected: the drain's zero turns (general path)
        }
        let mut need = pick.need + admit.iter().map(|a| a.2).sum::<Tokens>();
        let (mut evict, mut free) = (Vec::new(), view.kv_free());
        if need > free && self.repair {
            let lifo = view.config().eviction == EvictionRule::Lifo;
            (evict, free) = fast_repair(view, ix, &tails, need, lifo);
        }
        // The memory guard: admissions dropped from the end, then selected decodes from the
        // most recent resident; if that drops everything, the general path evicts.
        let acted = need > free;
        let mut admitted = admit.len();
        while need > free && admitted > 0 {
            admitted -= 1;
            need -= admit[admitted].2;
        }
        let trimmed = if need > free { pick.trim(view, need - free) } else { Some(Vec::new()) };
        let Some(trimmed) = trimmed.filter(|t| admitted > 0 || t.len() < pick.chosen) else {
            self.overflow_fallbacks += 1;
            return None;
        };
        self.repair_events += u64::from(!evict.is_empty());
        self.repair_evictions += evict.len() as u64;
        self.fast_repairs += u64::from(!evict.is_empty());
        self.guard_trims += u64::from(acted);
        self.paused_holds += u64::from(tails.len() > active_tails);
        self.explicit_batches += u64::from(pick.explicit);
        self.rotors.iter_mut().take(joined).for_each(Rotor::advance);
        Some(self.segments_plan(view, &pick, &tails, &admit[..admitted], &trimmed, evict))
    }

    /// The plan of a multi-segment fast decision, and the index moved past it.
    fn segments_plan(
        &mut self,
        view: &View<'_>,
        pick: &SegmentPick,
        tails: &[(i64, usize, bool)],
        admit: &[(RequestId, Tokens, Tokens)],
        trimmed: &[RequestId],
        evict: Vec<RequestId>,
    ) -> Plan {
        let mut batch: Vec<BatchItem> =
            admit.iter().map(|&(id, tokens, _)| BatchItem::Prefill { id, tokens }).collect();
        let admitted: Vec<RequestId> = admit.iter().map(|a| a.0).collect();
        if pick.explicit {
            self.fast_holds += u64::from(pick.selected.len() < view.running_len());
            batch.extend(pick.selected.iter().map(|&(_, id)| BatchItem::Decode { id }));
            self.stages.advanced(&pick.selected, admitted);
            for id in &evict {
                self.stages.remove(*id);
            }
            return Plan { evict, batch, ..Plan::default() };
        }
        let moves: Vec<(i64, usize)> = tails.iter().map(|t| (t.0, t.1)).collect();
        let mut gone = evict.clone();
        gone.sort_unstable();
        let mut hold: Vec<RequestId> = pick.held.iter().map(|h| h.1).collect();
        hold.retain(|id| gone.binary_search(id).is_err());
        hold.extend(trimmed);
        self.fast_holds += u64::from(!hold.is_empty());
        self.stages.ran_tails(&moves, trimmed, admitted);
        for id in &evict {
            self.stages.remove(*id);
        }
        Plan { evict, batch, repeat: Repeat::Once, decode_all: true, hold }
    }
}

/// The stage caps of a decision with several segments.
struct SegmentCaps<'a> {
    cuts: &'a [u64],
    caps: &'a [u64],
    /// `ceil(n_k)`: the cap of an interior stage of segment `k`.
    inner: Vec<u64>,
    joined: usize,
    clock: i64,
}

impl SegmentCaps<'_> {
    /// The cap of the stage at index key `key`, and whether it is a boundary queue.
    fn cap_of(&self, key: i64) -> (usize, bool) {
        let g = (key + self.clock) as u64;
        let k = self.cuts.partition_point(|&c| c <= g);
        let entry = k > 0 && self.cuts[k - 1] == g;
        let cap = if k >= self.joined {
            0
        } else if entry {
            self.caps[k]
        } else {
            self.inner[k]
        };
        (cap as usize, entry)
    }

    /// The index key of the first paused segment's first stage, if a segment is paused.
    fn paused_from(&self) -> Option<i64> {
        (self.joined < self.inner.len()).then(|| self.cuts[self.joined - 1] as i64 - self.clock)
    }
}

/// `(key, kept, boundary queue)` of every stage with members past its cap, keys increasing,
/// and how many of them lie below the first paused segment: the crowded stages there, the
/// boundary queues on a zero turn, then every stage from the first paused segment on.
fn segment_tails(ix: &StageIndex, sc: &SegmentCaps<'_>) -> (Vec<(i64, usize, bool)>, usize) {
    let paused_from = sc.paused_from();
    let mut tails: Vec<(i64, usize, bool)> = Vec::new();
    for &key in &ix.crowded {
        if paused_from.is_some_and(|p| key >= p) {
            break;
        }
        let (cap, entry) = sc.cap_of(key);
        if ix.stages[&key].len() > cap {
            tails.push((key, cap, entry));
        }
    }
    for k in 1..sc.joined {
        let key = sc.cuts[k - 1] as i64 - sc.clock;
        if sc.caps[k] == 0 && ix.stages.get(&key).is_some_and(|s| s.len() == 1) {
            tails.push((key, 0, true));
        }
    }
    tails.sort_unstable();
    let active = tails.len();
    if let Some(p) = paused_from {
        tails.extend(ix.stages.range(p..).map(|(&key, _)| (key, 0, sc.cap_of(key).1)));
    }
    (tails, active)
}

/// A multi-segment decision's decodes: the held `(sequence, id)`, or, when most residents are
/// held (`explicit`), the selected ones in admission order; their count and growth.
struct SegmentPick {
    explicit: bool,
    held: Vec<(u64, RequestId)>,
    selected: Vec<(u64, RequestId)>,
    chosen: usize,
    need: Tokens,
}

fn pick_segments(
    view: &View<'_>,
    ix: &StageIndex,
    sc: &SegmentCaps<'_>,
    tails: &[(i64, usize, bool)],
) -> SegmentPick {
    let growth =
        |id: RequestId| mem::decode_growth(view, view.resident(id).expect("a member").held());
    let held_count: usize = tails.iter().map(|t| ix.stages[&t.0].len() - t.1).sum();
    let explicit = 2 * held_count > view.running_len();
    let mut pick = SegmentPick {
        explicit,
        held: Vec::new(),
        selected: Vec::new(),
        chosen: view.running_len() - held_count,
        need: Tokens::ZERO,
    };
    if explicit {
        for (&key, stage) in ix.stages.range(..sc.paused_from().unwrap_or(i64::MAX)) {
            let take = sc.cap_of(key).0.min(stage.len());
            pick.selected.extend_from_slice(&stage[..take]);
        }
        pick.selected.sort_unstable();
        pick.need = pick.selected.iter().map(|s| growth(s.1)).sum();
    } else {
        pick.need = view.decode_all_growth(1);
        for &(key, keep, _) in tails {
            for &(seq, id) in &ix.stages[&key][keep..] {
                pick.need -= growth(id);
                pick.held.push((seq, id));
            }
        }
    }
    pick
}

impl SegmentPick {
    /// Drops selected decodes from the most recent resident until `over` is freed; `None` if
    /// even dropping all of them does not.
    fn trim(&mut self, view: &View<'_>, mut over: Tokens) -> Option<Vec<RequestId>> {
        let growth = |r: &ResidentView| mem::decode_growth(view, r.held());
        let mut trimmed = Vec::new();
        if self.explicit {
            while over > Tokens::ZERO {
                let (_, id) = self.selected.pop()?;
                trimmed.push(id);
                over = over.saturating_sub(growth(&view.resident(id).expect("a member")));
            }
            return Some(trimmed);
        }
        let mut seqs: Vec<u64> = self.held.iter().map(|h| h.0).collect();
        seqs.sort_unstable();
        for r in view.running().rev().filter(|r| seqs.binary_search(&r.admitted_seq()).is_err()) {
            trimmed.push(r.id());
            over = over.saturating_sub(growth(&r));
            if over == Tokens::ZERO {
                return Some(trimmed);
            }
        }
        None
    }
}

/// The repair of a multi-segment fast decision: held boundary-queue residents evicted, most
/// recent first, while `need` exceeds the free memory; the evictions and the memory then free.
/// Under `lifo` ([`EvictionRule::Lifo`]) each victim must also be the most recent resident
/// left, so the repair stops at the first recent resident that is not a victim, as
/// [`NestedWait::repair_overflow`] does: the victims, most recent first, are taken while they
/// are the residents from the most recent down (`O(evicted)` more).
fn fast_repair(
    view: &View<'_>,
    ix: &StageIndex,
    tails: &[(i64, usize, bool)],
    need: Tokens,
    lifo: bool,
) -> (Vec<RequestId>, Tokens) {
    let mut victims: Vec<(u64, RequestId)> = tails
        .iter()
        .filter(|t| t.2)
        .flat_map(|&(key, keep, _)| ix.stages[&key][keep..].iter().copied())
        .collect();
    victims.sort_unstable_by(|a, b| b.cmp(a));
    let (mut evict, mut free) = (Vec::new(), view.kv_free());
    let mut recent = view.running().rev();
    for &(_, id) in &victims {
        if need <= free {
            break;
        }
        if lifo && recent.next().map(|r| r.id()) != Some(id) {
            break;
        }
        free += view.footprint(view.resident(id).expect("a resident").held());
        evict.push(id);
    }
    (evict, free)
}

/// What the memory guard keeps of a fast decision: admissions kept (a prefix), selected decodes
/// dropped (to hold back), evictions, and whether it acted.
struct Guarded {
    admitted: usize,
    trimmed: Vec<RequestId>,
    evict: Vec<RequestId>,
    acted: bool,
}

/// The memory guard of a one-segment fast decision, as [`fit_or_evict`] decides it on the
/// batch `admit` (with growths) then every resident not `is_held` (admission order, growing by
/// `rest_need` in all): admissions dropped from the end, then decodes from the most recent,
/// and the most recent residents evicted while not even the oldest resident's decode fits.
/// `None` if it evicts every resident (rare; the general path decides).
fn fast_guard(
    view: &View<'_>,
    admit: &[(RequestId, Tokens, Tokens)],
    mut rest_need: Tokens,
    is_held: &dyn Fn(&ResidentView) -> bool,
) -> Option<Guarded> {
    let growth = |r: &ResidentView| mem::decode_growth(view, r.held());
    let mut free = view.kv_free();
    let mut evict: Vec<RequestId> = Vec::new();
    let mut victims = view.running().rev();
    let mut acted = false;
    loop {
        let mut need = rest_need + admit.iter().map(|a| a.2).sum::<Tokens>();
        let mut k = admit.len();
        while need > free && k > 0 {
            acted = true;
            k -= 1;
            need -= admit[k].2;
        }
        if need <= free {
            return Some(Guarded { admitted: k, trimmed: Vec::new(), evict, acted });
        }
        acted = true;
        if view.running_len() == evict.len() {
            return None; // every resident evicted and still nothing fits
        }
        let oldest = view.running().next().expect("a resident is left");
        if growth(&oldest) <= free {
            // Decodes are dropped from the most recent until the rest fits; the oldest
            // resident (first of its stage, never held) always stays.
            let mut trimmed = Vec::new();
            for r in view.running().rev().skip(evict.len()).filter(|r| !is_held(r)) {
                trimmed.push(r.id());
                need -= growth(&r);
                if need <= free {
                    break;
                }
            }
            return Some(Guarded { admitted: 0, trimmed, evict, acted });
        }
        let v = victims.next().expect("a resident is left");
        free += view.footprint(v.held());
        if !is_held(&v) {
            rest_need -= growth(&v);
        }
        evict.push(v.id());
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
        if self.fast_path {
            self.stages.sync(view);
            if let Some(plan) = self.decide_fast(view, &n, &caps, drain) {
                return plan;
            }
        }
        self.general_decisions += u64::from(self.fast_path);
        let plan = self.decide_general(view, &n, drain);
        if !(plan.batch.is_empty() && plan.evict.is_empty()) {
            self.stages.valid = false;
        }
        plan
    }
}

impl NestedWait {
    fn decide_general(&mut self, view: &View<'_>, n: &[f64], drain: bool) -> Plan {
        let caps: Vec<u64> = self.rotors.iter().map(Rotor::cap).collect();
        let mut sel = self.select(view, n, &caps, drain);
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
            sel = self.select(view, n, &caps, drain);
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
            return Plan { evict, batch, ..Plan::default() };
        }
        for r in self.rotors.iter_mut().take(sel.joined) {
            r.advance();
        }
        Plan { evict, batch, ..Plan::default() }
    }
}
