//! WAIT-CP: the (Nested) WAIT variant the WAIT authors ran in Vidur for the revision's figures
//! (`Luoxiaogan/vidur_or`, `general_nested_chunked_replica_scheduler.py` and
//! `general_nested_booking_limit_replica_scheduler.py` @011fe971; notes §3.3, "What the Vidur
//! implementation actually does"). Output lengths are hidden ([`Information::Hidden`]).
//!
//! Segments are cut at decode boundaries `r_1 < ... < r_L` (the last segment is open-ended);
//! segment `k` has a request budget `B_k` (`seg_total_limit`) over its `S_k` stages (segment 1:
//! `K = ceil(mean prompt / cs)` prefill chunks plus `r_1` decodes; segment `k >= 2`:
//! `r_k - r_{k-1}` decodes). At every decision:
//! - the per-stage limit of segment `k` rotates between `floor(B_k / S_k)` and `+1` across the
//!   batches the segment joins;
//! - **WAIT gate** ([`WaitCp::wait_gate`]): segment `k` joins only if its entry count is at
//!   least the limit, or entry plus interior count is at least `B_k`;
//! - a joining segment admits `min(limit, B_k - interior)` from its entry queue (segment 1:
//!   also at most `tl - #requests holding KV`, and only while the whole prompt fits with the
//!   watermark to spare); its **interior stages advance freely** (no per-stage cap);
//! - prefill is **chunked per request** at `cs` tokens (several prefills may share a batch);
//! - a decode that does not fit preempts the most recent resident (recompute), as Vidur does.
//!
//! Differences from Algorithms 1 and 2: budgets per segment instead of per-stage thresholds;
//! independent segment gates instead of the prefix rule; free interior stages (so the batch
//! is not stage-balanced); chunked prefill (the paper prefills in one iteration); admission
//! limited by `tl` and the watermark; eviction of any most-recent resident instead of the
//! boundary-queue repair; no known types. Not modelled: the optional token gate
//! (`WAIT_CP_GATE`, which caps batch tokens at about what the chunks already give) and
//! `force_clear` (replaced by a drain: the gate is off once every request has arrived).
//!
//! Deviation (the `wait_cp_adversarial_stall` fix): when `B_k < S_k`, `floor(B_k / S_k) = 0`
//! and the `+1` falls on only `B_k` of every `S_k` turns, so a segment's limit is 0 on the
//! other turns. If a decision would then give an empty batch, it skips each such segment's
//! rotation to its next positive turn (`next_positive_turn`) instead of idling: an empty
//! decision is not a batch. Before, with nothing resident and every request arrived, the
//! server idled for good (the battery's `adversarial` scenario: `B_1 = 64`, `S_1 = 370`);
//! before the last arrival it idled until the next one with work waiting.
//!
//! Admission-rate cap: segment 1 admits at most `B_1` of every `S_1` decisions (one turn of
//! the rotation per decision, as the authors' `_batch_count`), so at most `B_1 / S_1` requests
//! per iteration; with the authors' one segment over the 500-token lmsys horizon and tl 300
//! that is 0.6, about 58 req/s at d0 = 10.2 ms. It is Algorithm 2's own drift condition, not an
//! artefact of this reading: `spec/WAIT_NOTES.md` §1 (test `wait_cp_one_segment_admission_cap`).
//!
//! Defaults: `tl = 64` (the authors' `total_limit`), one segment (`B_1 = tl`), `cs = 256`
//! (the single-type runs), `wait_gate = true`. With one segment and no budgets given, `S_1`
//! uses the mean revealed output length (1 until the first completion).

use super::mem;
use super::wait::tokens_after_prefill;
use crate::sim::{Plan, Repeat, ResidentView, Scheduler, View};
use kvsched_spec::fluid::design;
use kvsched_spec::{BatchItem, Information, RequestId, Tokens, WorkloadFile};

/// WAIT-CP parameters and bookkeeping.
#[derive(Clone, Debug, PartialEq)]
pub struct WaitCp {
    /// System-wide cap on requests holding KV (`total_limit`).
    pub tl: u64,
    /// Decode boundaries `r_1 < ... < r_L` (output tokens). Empty: one segment.
    pub boundaries: Vec<u64>,
    /// Budgets `B_k`, one per segment. Empty: `[tl]`.
    pub budgets: Vec<u64>,
    /// Prefill chunk per request and iteration (`cs`).
    pub chunk_size: u64,
    /// The WAIT gate (`wait_gate`).
    pub wait_gate: bool,
    /// Take the fast path (default): with one segment, no resident mid-prefill and room for
    /// every decode, the decision reads no resident (every one decodes, as a `decode_all`
    /// plan: `O(1)` plus its admissions). Otherwise, and off, every decision reads the whole
    /// batch; the records are the same (tested).
    pub fast_path: bool,
    /// Preemptions made (recompute).
    pub evictions: u64,
    turns: Vec<u64>,
    revealed: (u64, u64),
    prompts: (u64, u64),
    /// The previous plan was a fast decode stretch: each iteration it ran beyond the first
    /// stood for one more decision (one more turn).
    stretch: bool,
    last_steps_total: u64,
}

impl Default for WaitCp {
    fn default() -> Self {
        WaitCp::from_tl(64, 256)
    }
}

/// A resident's segment, and whether it sits in the segment's entry (boundary) queue.
fn segment_of(cuts: &[u64], r: &ResidentView) -> (usize, bool) {
    if !r.prefill_done() {
        return (0, false);
    }
    let g = r.generated().get();
    let k = cuts.iter().take_while(|&&c| c <= g).count();
    (k, k > 0 && cuts[k - 1] == g)
}

impl WaitCp {
    /// One segment with budget `tl` and chunk `cs`.
    pub fn from_tl(tl: u64, chunk_size: u64) -> WaitCp {
        WaitCp {
            tl,
            boundaries: Vec::new(),
            budgets: Vec::new(),
            chunk_size: chunk_size.max(1),
            wait_gate: true,
            fast_path: true,
            evictions: 0,
            turns: Vec::new(),
            revealed: (0, 0),
            prompts: (0, 0),
            stretch: false,
            last_steps_total: 0,
        }
    }

    /// The authors' nested design ([`design::tl_nested`]): segments at `boundaries`
    /// (`0 = r_0 < ... < r_L`), budgets `B_k` from `tl`, the workload's class mix and
    /// `seg_margin`.
    pub fn nested(
        w: &WorkloadFile,
        boundaries: &[u64],
        tl: u64,
        seg_margin: f64,
        chunk_size: u64,
    ) -> Result<WaitCp, String> {
        let classes: Vec<(u64, f64)> =
            w.classes.iter().map(|c| (c.output_tokens, c.rate_per_s)).collect();
        let segs = design::tl_nested(&classes, boundaries, tl as f64, seg_margin)
            .map_err(|e| format!("{e:?}"))?;
        let mut cp = WaitCp::from_tl(tl, chunk_size);
        cp.boundaries = segs.iter().map(|s| s.end).collect();
        cp.budgets = segs.iter().map(|s| s.cap).collect();
        Ok(cp)
    }

    fn cuts(&self) -> &[u64] {
        &self.boundaries[..self.boundaries.len().saturating_sub(1)]
    }

    /// `(B_k, S_k)` per segment.
    fn budgets_and_stages(&self, view: &View<'_>) -> Vec<(u64, u64)> {
        let mean_prompt = self.prompts.1.checked_div(self.prompts.0).unwrap_or(1);
        let k_pre = mean_prompt.div_ceil(self.chunk_size).max(1);
        if self.budgets.is_empty() {
            let (c, s) = self.revealed;
            let decodes = s.checked_div(c).unwrap_or(1);
            let decodes = decodes.saturating_sub(tokens_after_prefill(view)).max(1);
            return vec![(self.tl, k_pre + decodes)];
        }
        let mut prev = 0;
        self.budgets
            .iter()
            .zip(&self.boundaries)
            .enumerate()
            .map(|(k, (&b, &r))| {
                let s = r.saturating_sub(prev).max(1) + if k == 0 { k_pre } else { 0 };
                prev = r;
                (b, s)
            })
            .collect()
    }
}

/// Per-decision state: free memory net of reservations, and the plan being built.
struct Build {
    free: Tokens,
    batch: Vec<BatchItem>,
    evict: Vec<RequestId>,
}

/// Memory a prefilling resident has reserved but not yet filled (Vidur allocates the whole
/// prompt at admission).
fn reserved(view: &View<'_>, r: &ResidentView) -> Tokens {
    if r.prefill_done() {
        return Tokens::ZERO;
    }
    view.footprint(mem::prompt_hold(view, r.request().prompt_tokens())) - view.footprint(r.held())
}

/// The smallest `i >= 1` such that turn `t + i` of a rotation over `stages` turns gets the
/// `+1` (`(t + i) % stages < plus`); `u64::MAX` when no turn does (`plus = 0`).
fn turns_to_plus(t: u64, stages: u64, plus: u64) -> u64 {
    if plus == 0 {
        return u64::MAX;
    }
    let m = (t + 1) % stages;
    if m < plus {
        1
    } else {
        1 + (stages - m)
    }
}

/// The first turn `>= t` on which segment `(B, S)` has a positive per-stage limit (`t` itself
/// when every turn is positive or none is).
fn next_positive_turn(t: u64, (budget, stages): (u64, u64)) -> u64 {
    if budget / stages > 0 || budget == 0 || t % stages < budget % stages {
        t
    } else {
        t.next_multiple_of(stages)
    }
}

impl WaitCp {
    /// Advances the interior (and selected entry) residents; preempts the most recent
    /// resident when a decode does not fit.
    fn advance(
        &mut self,
        view: &View<'_>,
        movers: &[ResidentView],
        all: &[ResidentView],
        b: &mut Build,
    ) {
        let mut stack: Vec<&ResidentView> = all.iter().collect();
        for r in movers {
            if b.evict.contains(&r.id()) {
                continue;
            }
            if !r.prefill_done() {
                let rem = r.prefill_remaining().get().min(self.chunk_size);
                b.batch.push(BatchItem::Prefill { id: r.id(), tokens: Tokens(rem) });
                continue;
            }
            let need = mem::decode_growth(view, r.held());
            while need > b.free {
                let Some(v) = stack.pop() else { break };
                if b.evict.contains(&v.id()) {
                    continue;
                }
                b.evict.push(v.id());
                b.batch.retain(|i| i.id() != v.id());
                b.free += view.footprint(v.held()) + reserved(view, v);
                self.evictions += 1;
                if v.id() == r.id() {
                    break;
                }
            }
            if !b.evict.contains(&r.id()) && need <= b.free {
                b.free -= need;
                b.batch.push(BatchItem::Decode { id: r.id() });
            }
        }
    }

    /// Builds one decision; also returns the segments that joined on a zero turn of the
    /// rotation (`floor(B_k / S_k) = 0` and no `+1`).
    fn build(&mut self, view: &View<'_>, segs: &[(u64, u64)]) -> (Build, Vec<usize>) {
        let cuts = self.cuts().to_vec();
        let all: Vec<ResidentView> = view.running().collect();
        let (mut entry, mut interior) = (vec![Vec::new(); segs.len()], vec![0u64; segs.len()]);
        let mut movers: Vec<Vec<ResidentView>> = vec![Vec::new(); segs.len()];
        for r in &all {
            let (k, is_entry) = segment_of(&cuts, r);
            let k = k.min(segs.len() - 1);
            if is_entry {
                entry[k].push(*r);
            } else {
                interior[k] += 1;
                movers[k].push(*r);
            }
        }
        let gate = self.wait_gate && !view.arrivals_done();
        let reserve = all.iter().fold(Tokens::ZERO, |acc, r| acc + reserved(view, r));
        let mut b =
            Build { free: view.kv_free().saturating_sub(reserve), batch: vec![], evict: vec![] };
        let (mut admit_limit, mut zero) = (None, Vec::new());
        for (k, &(budget, stages)) in segs.iter().enumerate() {
            let limit = budget / stages + u64::from(self.turns[k] % stages < budget % stages);
            let n_entry = if k == 0 { view.waiting_len() as u64 } else { entry[k].len() as u64 };
            if gate && n_entry < limit && n_entry + interior[k] < budget {
                continue;
            }
            if limit == 0 && n_entry > 0 {
                zero.push(k);
            }
            self.turns[k] += 1;
            let take = limit.min(budget.saturating_sub(interior[k]));
            if k == 0 {
                let holding = all.len() as u64;
                admit_limit = Some(take.min(self.tl.saturating_sub(holding)));
            } else {
                movers[k].extend(entry[k].iter().take(take as usize).copied());
            }
            let m = std::mem::take(&mut movers[k]);
            self.advance(view, &m, &all, &mut b);
        }
        if let Some(limit) = admit_limit {
            self.admit(view, limit, &mut b);
        }
        (b, zero)
    }

    /// [`WaitCp::build`] where it reads no resident: one segment (every resident is interior,
    /// the entry queue is the waiting queue), no resident mid-prefill (nothing reserved) and
    /// room for every decode (no preemption), so every resident decodes. `None` elsewhere.
    fn decide_fast(&mut self, view: &View<'_>, segs: &[(u64, u64)]) -> Option<Plan> {
        let running = view.running_len() as u64;
        let growth = view.decode_all_growth(1);
        let nested = !self.cuts().is_empty() || segs.len() != 1;
        if nested || running == 0 || view.decode_ready_len() as u64 != running {
            return None;
        }
        if growth > view.kv_free() {
            return None;
        }
        let (budget, stages) = segs[0];
        let limit = budget / stages + u64::from(self.turns[0] % stages < budget % stages);
        let n_entry = view.waiting_len() as u64;
        let gate = self.wait_gate && !view.arrivals_done();
        if gate && n_entry < limit && n_entry + running < budget {
            // The segment waits: nothing runs (no zero turn is involved).
            return Some(Plan::idle());
        }
        let turn = self.turns[0];
        self.turns[0] += 1;
        let cap = budget.saturating_sub(running).min(self.tl.saturating_sub(running));
        let mut b = Build { free: view.kv_free() - growth, batch: vec![], evict: vec![] };
        self.admit(view, limit.min(cap), &mut b);
        if !b.batch.is_empty() {
            return Some(Plan {
                evict: vec![],
                batch: b.batch,
                repeat: Repeat::Once,
                decode_all: true,
                hold: Vec::new(),
            });
        }
        // Decode only. The next decisions, until an arrival or a completion, see the same
        // queue and residents with less memory, one turn later each: they decode only as
        // well while the gate stays open and no admission becomes possible, which can change
        // only on a turn with the rotation's `+1` (or when memory runs out).
        let plus = turns_to_plus(turn, stages, budget % stages);
        let head_blocked = view.waiting().next().is_none_or(|r| {
            let need = view.footprint(mem::prompt_hold(view, r.prompt_tokens()));
            b.free < need || b.free - need < view.memory().watermark()
        });
        let never_admits = cap == 0 || head_blocked;
        let mut k = view.decode_all_steps_within(view.kv_free(), u64::MAX / 4).max(1);
        if !never_admits {
            k = k.min(plus);
        }
        if gate && n_entry + running < budget && n_entry <= budget / stages {
            k = k.min(plus);
        }
        self.stretch = true;
        Some(Plan {
            evict: vec![],
            batch: vec![],
            repeat: Repeat::UpTo(k),
            decode_all: true,
            hold: Vec::new(),
        })
    }

    fn admit(&self, view: &View<'_>, limit: u64, b: &mut Build) {
        let watermark = view.memory().watermark();
        for r in view.waiting().take(limit as usize) {
            let need = view.footprint(mem::prompt_hold(view, r.prompt_tokens()));
            if b.free < need || b.free - need < watermark {
                break;
            }
            b.free -= need;
            let chunk = r.prompt_tokens().get().min(self.chunk_size);
            b.batch.push(BatchItem::Prefill { id: r.id(), tokens: Tokens(chunk) });
        }
    }
}

impl Scheduler for WaitCp {
    fn name(&self) -> String {
        "wait-cp".into()
    }

    fn information(&self) -> Information {
        Information::Hidden
    }

    fn decide(&mut self, view: &View<'_>) -> Plan {
        for c in view.completed_since_last() {
            self.revealed = (self.revealed.0 + 1, self.revealed.1 + c.output_tokens.get());
        }
        for id in view.arrived_since_last() {
            if let Some(r) = view.request(*id) {
                self.prompts = (self.prompts.0 + 1, self.prompts.1 + r.prompt_tokens().get());
            }
        }
        let segs = self.budgets_and_stages(view);
        self.turns.resize(segs.len(), 0);
        if std::mem::take(&mut self.stretch) {
            let ran = view.steps_total() - self.last_steps_total;
            self.turns[0] += ran.saturating_sub(1);
        }
        self.last_steps_total = view.steps_total();
        if let Some(plan) = self.fast_path.then(|| self.decide_fast(view, &segs)).flatten() {
            return plan;
        }
        let before = self.turns.clone();
        let (mut b, zero) = self.build(view, &segs);
        if b.batch.is_empty() && b.evict.is_empty() && !zero.is_empty() {
            // A zero turn of the rotation would leave the server idle (for good once every
            // request has arrived): skip to each such segment's next positive turn.
            self.turns = before;
            for k in zero {
                self.turns[k] = next_positive_turn(self.turns[k], segs[k]);
            }
            b = self.build(view, &segs).0;
        }
        // The gate and the rotation change after every batch: never repeat here (the fast
        // path repeats only where the next decisions provably decode all the same).
        Plan {
            evict: b.evict,
            batch: b.batch,
            repeat: Repeat::Once,
            decode_all: false,
            hold: Vec::new(),
        }
    }
}
