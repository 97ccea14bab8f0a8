//! WAIT: Waiting for Accumulated Inference Threshold (WAIT paper, arXiv 2504.11320,
//! Algorithm 1, `papers/known_type.tex`; notes `shared/papers/wait-nested-wait.md` §3.1).
//!
//! Output lengths are known on arrival ([`Information::Known`]). A **type** is the pair
//! `(prompt tokens, output tokens)`, the paper's definition of a type `(l_j, l'_j)`; workload
//! classes with equal lengths merge into one type (their fluid thresholds add up, as
//! `n_j = tau lambda_j` does). The class id is not used, so a trace with per-request lengths
//! works as well as a class workload.
//!
//! A type's pipeline has one **stage** per iteration of a request: stage 0 is waiting
//! (admission plus the whole prefill in one iteration), then one stage per decode iteration.
//! Under `FirstToken::SeparateDecode` (the paper's convention) that is `l' + 1` stages, under
//! `WithPrefill` `l'` stages. At every decision:
//! - `J = { j : n_{j0} >= n_j }`, with `n_{j0}` the type's waiting requests (eligible types);
//! - if `J` is empty: wait (empty plan, the server idles until the next arrival);
//! - else one batch takes `a_{js} = min(n_j, n_{js})` requests from every stage of every
//!   eligible type (FIFO at stage 0, admission order at resident stages); the residents of
//!   other types stay paused with their KV.
//!
//! Thresholds ([`Thresholds`]): per type from the fluid design (`n_j = ceil(tau lambda_j)`,
//! [`Wait::from_workload`]) or from the experiments' knob `tl` ([`Wait::from_tl`]), spread
//! over the types in proportion to their observed arrival counts, as the authors' early code
//! does with rates: `n_j = max(1, tl c_j / sum_k c_k K_k)` (`K_k` stages).
//! Real thresholds are applied through a [`Rotor`]: the admission cap of a batch alternates
//! between `floor` and `ceil` so that its long-run mean is `n_j`; resident stages take
//! `min(ceil(n_j), n_{js})`. Thresholds below 1 are raised to 1 (as the authors' code does).
//!
//! Deviations, all documented in the fields: a memory **guard** trims admissions (and never
//! evicts) if a batch would not fit; it never triggers when `M^pi <= C` with integer
//! thresholds, and [`Wait::guard_trims`] counts it; only if nothing at all fits (memory full
//! of paused residents, possible only outside the conditions) it evicts the most recent
//! residents ([`Wait::guard_evictions`]), since WAIT alone would deadlock. At the end of a
//! finite run (every request arrived, [`View::arrivals_done`]) every type with work is served
//! without waiting ([`Wait::drain`]), like the authors' `force_clear`; otherwise the run would
//! stall.
//!
//! **Fast path** ([`Wait::fast_path`], default on; off is the general path, which regroups
//! every resident by type at every decision). The policy files each resident under its type
//! when its admission is seen resident (the next decision reads the engine's admission
//! sequence number), drops it on [`View::completed_since_last`] or when its own plan evicts
//! it, and records each resident's progress (prefilled, tokens generated), advancing it for
//! every item its plan keeps: every WAIT item is a decode or a whole remaining prompt, and
//! the engine runs a plan as given. A decision then reads the types with waiting requests or
//! residents (`O(1)` each: the `tl` spread keeps `sum_k c_k K_k` as an integer, so the
//! thresholds are the same `f64`s) and, for each eligible type only, its residents in
//! admission order; paused types are not read. The memory guard reads every resident only
//! when it must evict (its trimming round needs none). Conditions: none on the input; if the
//! count of filed residents ever differs from the engine's (a run started with residents),
//! the filing is rebuilt from the view ([`Wait::fast_path_rebuilds`], asserted 0 in the WAIT
//! equivalence test). The records are the general path's
//! (`fast_paths_decide_what_the_general_paths_decide` and
//! `wait_fast_path_on_a_designed_mix_and_with_paused_residents`). Cost per decision:
//! `O(active types + residents of the eligible types + admissions)`, with `O(log n)` per
//! arrival, admission and completion. The plan still lists its batch item by item (it is a
//! strict subset of the residents whenever a type is paused; as a `decode_all` plan it would
//! hold every paused resident back at every step), so an iteration costs `O(batch)` in the
//! policy and in the engine.
//!
//! By design of Algorithm 1, a type below its threshold waits while later arrivals of
//! eligible types are admitted past it, even with memory free. The conformance battery judges
//! such waiting only while the request is the head of the queue and could run to completion in
//! the memory left free (`src/conform/run.rs`); `wait` passes it (seeds 1–12 of every scenario,
//! 200 requests, checked when this was written), and the drain bounds the wait at the end of a
//! run.

use super::mem;
use crate::sim::{Plan, ResidentView, Scheduler, View};
use kvsched_spec::fluid::{design, FluidInputs};
use kvsched_spec::{BatchItem, Information, RequestId, Tokens, WorkloadFile};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A WAIT type: `(prompt tokens, output tokens)`.
pub type TypeKey = (u64, u64);

/// A real threshold served as integer caps whose long-run mean is `n`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rotor {
    /// The real threshold.
    pub n: f64,
    /// Fractional carry in `[0, 1)`.
    acc: f64,
}

impl Rotor {
    /// A rotor for threshold `n >= 0`.
    pub fn new(n: f64) -> Rotor {
        Rotor { n: n.max(0.0), acc: 0.0 }
    }
    /// The cap of the next batch: `floor(acc + n)`.
    pub fn cap(&self) -> u64 {
        (self.acc + self.n).floor() as u64
    }
    /// Records that a batch used [`Rotor::cap`].
    pub fn advance(&mut self) {
        let x = self.acc + self.n;
        self.acc = x - x.floor();
    }
}

/// Output tokens a request holds right after its prefill: 1 under `WithPrefill`, else 0.
pub(crate) fn tokens_after_prefill(view: &View<'_>) -> u64 {
    view.config().first_token.output_of_prefill(true).get()
}

/// Iterations a request with `output` tokens needs (full prefill): its number of stages.
pub(crate) fn stages_of(view: &View<'_>, output: u64) -> u64 {
    output + 1 - tokens_after_prefill(view)
}

/// The item that advances resident `r` by one stage (rest of the prompt, or one decode).
pub(crate) fn resident_item(r: &ResidentView, chunk: Option<u64>) -> BatchItem {
    if r.prefill_done() {
        BatchItem::Decode { id: r.id() }
    } else {
        let rem = r.prefill_remaining().get();
        BatchItem::Prefill { id: r.id(), tokens: Tokens(chunk.map_or(rem, |c| rem.min(c))) }
    }
}

/// Footprint growth of admitting a prompt of `prompt` tokens with a full prefill.
pub(crate) fn admit_growth(view: &View<'_>, prompt: Tokens) -> Tokens {
    view.footprint(mem::prompt_hold(view, prompt))
}

/// What [`fit_or_evict`] keeps: admissions, other items (each with its growth), evictions,
/// and whether anything was trimmed or evicted.
pub(crate) type FitOrEvict =
    (Vec<(BatchItem, Tokens)>, Vec<(BatchItem, Tokens)>, Vec<RequestId>, bool);

/// Trims `admit` then `rest` from the end until their growth fits in `free`; if nothing is left
/// while residents exist (memory full of paused requests: a deadlock without eviction), evicts
/// residents most recent first (never one in `skip`) until some item fits. Returns the kept
/// items, the evictions, and whether anything was trimmed or evicted.
pub(crate) fn fit_or_evict(
    view: &View<'_>,
    mut admit: Vec<(BatchItem, Tokens)>,
    mut rest: Vec<(BatchItem, Tokens)>,
    mut free: Tokens,
    skip: &[RequestId],
) -> FitOrEvict {
    let mut stack: Vec<ResidentView> = view.running().filter(|r| !skip.contains(&r.id())).collect();
    let mut evict = Vec::new();
    let total = |a: &[(BatchItem, Tokens)]| a.iter().map(|x| x.1).sum::<Tokens>();
    let mut acted = false;
    loop {
        let (mut a, mut r) = (admit.clone(), rest.clone());
        let mut need = total(&a) + total(&r);
        while need > free {
            acted = true;
            match a.pop().or_else(|| r.pop()) {
                Some((_, g)) => need -= g,
                None => break,
            }
        }
        if !(a.is_empty() && r.is_empty()) || (admit.is_empty() && rest.is_empty()) {
            return (a, r, evict, acted);
        }
        let Some(v) = stack.pop() else { return (a, r, evict, acted) };
        free += view.footprint(v.held());
        rest.retain(|x| x.0.id() != v.id());
        admit.retain(|x| x.0.id() != v.id());
        evict.push(v.id());
    }
}

/// [`fit_or_evict`] with `free = view.kv_free()` and nothing skipped, reading the residents
/// only when it must evict: its first round (trim `admit`, then `rest`, from the end) needs
/// none of them, and when that round leaves something it is the answer.
fn trim_or_evict(
    view: &View<'_>,
    mut admit: Vec<(BatchItem, Tokens)>,
    mut rest: Vec<(BatchItem, Tokens)>,
) -> FitOrEvict {
    let free = view.kv_free();
    let mut need: Tokens = admit.iter().chain(&rest).map(|x| x.1).sum();
    if need <= free {
        return (admit, rest, Vec::new(), false);
    }
    let (mut la, mut lr) = (admit.len(), rest.len());
    while need > free && la + lr > 0 {
        if la > 0 {
            la -= 1;
            need -= admit[la].1;
        } else {
            lr -= 1;
            need -= rest[lr].1;
        }
    }
    if la + lr == 0 {
        return fit_or_evict(view, admit, rest, free, &[]);
    }
    admit.truncate(la);
    rest.truncate(lr);
    (admit, rest, Vec::new(), true)
}

/// Where thresholds come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Thresholds {
    /// Per-type per-stage thresholds `n_j`; unknown types get 1.
    PerType(BTreeMap<TypeKey, f64>),
    /// The experiments' `tl`, spread over types by observed arrival counts.
    TotalLimit(f64),
}

/// WAIT (Algorithm 1).
#[derive(Clone, Debug, PartialEq)]
pub struct Wait {
    /// Thresholds. Default: `TotalLimit(64.0)` (the authors' `total_limit` default).
    pub thresholds: Thresholds,
    /// Serve every type without waiting once every request has arrived. Default `true`.
    pub drain: bool,
    /// Batches the memory guard trimmed (0 when the WAIT conditions hold).
    pub guard_trims: u64,
    /// Last-resort evictions when paused residents fill memory (0 under the conditions).
    pub guard_evictions: u64,
    /// Take the fast path (default; see the module doc): residents are kept by type
    /// incrementally and a decision reads only the active types and the residents of the
    /// eligible ones. Off, every decision regroups every resident (the general path); the
    /// records are the same (tested).
    pub fast_path: bool,
    /// Decisions at which a type held residents and was not eligible (its residents paused).
    pub paused_decisions: u64,
    /// Decisions at which a stage of an eligible type held more residents than its cap
    /// `ceil(n_j)` (the per-stage selection left some behind).
    pub crowded_decisions: u64,
    rotors: BTreeMap<TypeKey, Rotor>,
    queues: BTreeMap<TypeKey, VecDeque<RequestId>>,
    arrivals: BTreeMap<TypeKey, u64>,
    /// `sum_k c_k K_k` over the arrivals (an integer, so its `f64` is the general path's sum).
    work: u64,
    fast: Fast,
}

/// The fast path's incremental state.
#[derive(Clone, Debug, Default, PartialEq)]
struct Fast {
    /// Residents per type, by admission sequence number (the engine's `running` order).
    residents: BTreeMap<TypeKey, Residents>,
    /// Where each tracked resident is filed.
    filed: BTreeMap<RequestId, (TypeKey, u64)>,
    /// Admitted by the previous plan, filed at the next decision (their sequence numbers are
    /// the engine's).
    pending: Vec<RequestId>,
    /// Types with waiting requests or residents (a superset: pruned when read).
    active: BTreeSet<TypeKey>,
    /// Requests per decode stage, reset after each type's batch.
    taken: Vec<u64>,
    /// Whole rebuilds from `view.running()` (0 when the bookkeeping never lost track).
    rebuilds: u64,
}

/// A filed resident and its progress, advanced when the policy's own plan advances it (every
/// item of a WAIT plan is a decode or a whole remaining prompt, and the engine runs the plan
/// as given), so the selection reads no [`ResidentView`].
#[derive(Clone, Copy, Debug, PartialEq)]
struct Filed {
    seq: u64,
    id: RequestId,
    /// Gone (completed or evicted); dropped when its type is next read.
    gone: bool,
    prefill_done: bool,
    generated: u64,
    /// Selected by the decision being built (cleared when it is settled).
    selected: bool,
}

/// A type's filed residents in admission order, with the gone ones left in place until the
/// type is next read (a completion costs `O(log n)`, not a shift).
#[derive(Clone, Debug, Default, PartialEq)]
struct Residents {
    list: Vec<Filed>,
    live: usize,
}

impl Residents {
    fn insert(&mut self, f: Filed) {
        let at = self.list.partition_point(|g| g.seq < f.seq);
        self.list.insert(at, f);
        self.live += 1;
    }

    fn remove(&mut self, seq: u64) {
        if let Ok(i) = self.list.binary_search_by_key(&seq, |f| f.seq) {
            if !self.list[i].gone {
                self.list[i].gone = true;
                self.live -= 1;
            }
        }
    }

    fn compact(&mut self) {
        if self.live != self.list.len() {
            self.list.retain(|f| !f.gone);
        }
    }
}

impl Filed {
    /// The progress one iteration of its item gives (a decode, or the whole remaining prompt).
    fn advance(&mut self, after_prefill: u64) {
        if self.prefill_done {
            self.generated += 1;
        } else {
            self.prefill_done = true;
            self.generated += after_prefill;
        }
    }
}

/// The type of resident `r`, as the policy sees it.
fn resident_key(r: &ResidentView) -> TypeKey {
    let out = r.request().output_hint().tokens().map_or(0, |t| t.get());
    (r.request().prompt_tokens().get(), out)
}

impl Fast {
    fn file(&mut self, r: &ResidentView) {
        let key = resident_key(r);
        let f = Filed {
            seq: r.admitted_seq(),
            id: r.id(),
            gone: false,
            prefill_done: r.prefill_done(),
            generated: r.generated().get(),
            selected: false,
        };
        self.residents.entry(key).or_default().insert(f);
        self.filed.insert(r.id(), (key, r.admitted_seq()));
        self.active.insert(key);
    }

    fn unfile(&mut self, id: RequestId) {
        if let Some((key, seq)) = self.filed.remove(&id) {
            if let Some(m) = self.residents.get_mut(&key) {
                m.remove(seq);
            }
        }
    }

    /// Settles the selection of the decision just built, type by type in `eligible` order:
    /// the selected residents whose items the plan kept advance (`keep(i, id)` for the `i`-th
    /// selected), and every mark is cleared.
    fn settle(
        &mut self,
        eligible: &[TypeKey],
        after_prefill: u64,
        mut keep: impl FnMut(usize, RequestId) -> bool,
    ) {
        let mut i = 0;
        for key in eligible {
            let Some(filed) = self.residents.get_mut(key) else { continue };
            for f in filed.list.iter_mut().filter(|f| f.selected) {
                f.selected = false;
                if keep(i, f.id) {
                    f.advance(after_prefill);
                }
                i += 1;
            }
        }
    }

    /// Files the previous plan's admissions, drops the completions, and rebuilds from the view
    /// if the count of residents disagrees (a run started with residents, or any surprise).
    fn sync(&mut self, view: &View<'_>) {
        for id in std::mem::take(&mut self.pending) {
            if let Some(r) = view.resident(id) {
                self.file(&r);
            }
        }
        for c in view.completed_since_last() {
            self.unfile(c.id);
        }
        if self.filed.len() != view.running_len() {
            self.rebuilds += 1;
            self.residents.clear();
            self.filed.clear();
            for r in view.running() {
                self.file(&r);
            }
        }
    }
}

impl Default for Wait {
    fn default() -> Self {
        Wait::from_tl(64.0)
    }
}

impl Wait {
    /// WAIT with explicit per-type thresholds.
    pub fn with_thresholds(thresholds: Thresholds) -> Wait {
        Wait {
            thresholds,
            drain: true,
            guard_trims: 0,
            guard_evictions: 0,
            fast_path: true,
            paused_decisions: 0,
            crowded_decisions: 0,
            rotors: BTreeMap::new(),
            queues: BTreeMap::new(),
            arrivals: BTreeMap::new(),
            work: 0,
            fast: Fast::default(),
        }
    }

    /// WAIT driven by the experiments' knob `tl` (requests in service across all stages).
    pub fn from_tl(tl: f64) -> Wait {
        Wait::with_thresholds(Thresholds::TotalLimit(tl))
    }

    /// The fluid design `n_j = ceil(tau lambda_j)` ([`design::fluid_design`]) of `inputs`, or
    /// the real-valued `n_j = tau lambda_j` when `integer` is false; `tau = dT*` when `None`.
    pub fn from_inputs(
        inputs: &FluidInputs,
        integer: bool,
        tau: Option<f64>,
    ) -> Result<Wait, String> {
        let d = if integer {
            design::fluid_design(inputs, tau)
        } else {
            design::fluid_design_real(inputs, tau)
        }
        .map_err(|e| format!("WAIT fluid design: {e:?}"))?;
        let mut map = BTreeMap::new();
        for (c, n) in inputs.classes.iter().zip(&d.n) {
            *map.entry((c.prompt_tokens, c.output_tokens)).or_insert(0.0) += n;
        }
        Ok(Wait::with_thresholds(Thresholds::PerType(map)))
    }

    /// The integer fluid design of a workload file (affine step time, `M* <= C`).
    pub fn from_workload(w: &WorkloadFile) -> Result<Wait, String> {
        let inputs = FluidInputs::from_workload(w).map_err(|e| e.to_string())?;
        Wait::from_inputs(&inputs, true, None)
    }

    /// `sum_k c_k K_k` over the arrivals, summed afresh (the general path).
    fn summed_work(&self, view: &View<'_>) -> f64 {
        self.arrivals.iter().map(|(k, c)| *c as f64 * stages_of(view, k.1) as f64).sum()
    }

    /// Type `key`'s threshold, given the arrivals' `work = sum_k c_k K_k`.
    fn threshold(&self, key: TypeKey, work: f64) -> f64 {
        let n = match &self.thresholds {
            Thresholds::PerType(m) => m.get(&key).copied().unwrap_or(1.0),
            Thresholds::TotalLimit(tl) => {
                let c = self.arrivals.get(&key).copied().unwrap_or(0) as f64;
                if work > 0.0 {
                    tl * c / work
                } else {
                    1.0
                }
            }
        };
        n.max(1.0)
    }

    fn note_arrivals(&mut self, view: &View<'_>) {
        for &id in view.arrived_since_last() {
            let Some(r) = view.request(id) else { continue };
            let out = r.output_hint().tokens().map_or(0, |t| t.get());
            let key = (r.prompt_tokens().get(), out);
            self.queues.entry(key).or_default().push_back(id);
            *self.arrivals.entry(key).or_insert(0) += 1;
            self.work += stages_of(view, out);
            self.fast.active.insert(key);
        }
    }

    /// The first `cap` waiting requests of type `key`, each with its whole prompt.
    fn admissions(
        &self,
        key: TypeKey,
        cap: u64,
        admit: &mut Vec<(TypeKey, BatchItem, Tokens)>,
        view: &View<'_>,
    ) {
        let prompt = Tokens(key.0);
        let growth = admit_growth(view, prompt);
        for &id in self.queues.get(&key).into_iter().flatten().take(cap as usize) {
            admit.push((key, BatchItem::Prefill { id, tokens: prompt }, growth));
        }
    }

    /// Books the memory guard's outcome: its counters, the admitted taken off their queues
    /// (`keys[i]` is admission `i`'s type), and each evicted request waiting again under its
    /// type, in its place by id (as in the engine). Returns the evicted requests' types.
    fn book(
        &mut self,
        keys: &[TypeKey],
        admit: &[(BatchItem, Tokens)],
        evict: &[RequestId],
        acted: bool,
        view: &View<'_>,
    ) -> Vec<TypeKey> {
        self.guard_trims += u64::from(acted);
        self.guard_evictions += evict.len() as u64;
        for (key, (item, _)) in keys.iter().zip(admit) {
            let q = self.queues.get_mut(key).expect("queued type");
            debug_assert_eq!(q.front(), Some(&item.id()));
            q.pop_front();
        }
        let mut types = Vec::with_capacity(evict.len());
        for id in evict {
            let key = resident_key(&view.resident(*id).expect("evicted from residents"));
            let q = self.queues.entry(key).or_default();
            let pos = q.partition_point(|x| x < id);
            q.insert(pos, *id);
            types.push(key);
        }
        types
    }

    /// Whole rebuilds of the fast path's bookkeeping (0 when it never lost track).
    pub fn fast_path_rebuilds(&self) -> u64 {
        self.fast.rebuilds
    }

    /// The batch of eligible type `key`: admissions and one item per selected resident; `true`
    /// if a stage held more residents than its cap.
    #[allow(clippy::too_many_arguments, reason = "one call site; the accumulators are its own")]
    fn type_batch(
        &self,
        key: TypeKey,
        cap: u64,
        n: f64,
        residents: &[ResidentView],
        admit: &mut Vec<(TypeKey, BatchItem, Tokens)>,
        rest: &mut Vec<(BatchItem, Tokens)>,
        view: &View<'_>,
    ) -> bool {
        self.admissions(key, cap, admit, view);
        let per_stage = n.ceil() as u64;
        let mut taken: BTreeMap<(bool, u64), u64> = BTreeMap::new();
        let mut crowded = false;
        for r in residents {
            let stage = (r.prefill_done(), r.generated().get());
            let t = taken.entry(stage).or_insert(0);
            if *t < per_stage {
                *t += 1;
                let item = resident_item(r, None);
                rest.push((item, mem::item_growth(view, r, &item)));
            } else {
                crowded = true;
            }
        }
        crowded
    }
}

impl Wait {
    /// [`Wait::type_batch`] from the filed residents of `key` (admission order), marking those
    /// it selects ([`Fast::settle`] advances them once the guard has spoken).
    #[allow(clippy::too_many_arguments, reason = "one call site; the accumulators are its own")]
    fn type_batch_fast(
        &mut self,
        key: TypeKey,
        cap: u64,
        n: f64,
        admit: &mut Vec<(TypeKey, BatchItem, Tokens)>,
        rest: &mut Vec<(BatchItem, Tokens)>,
        view: &View<'_>,
    ) -> bool {
        self.admissions(key, cap, admit, view);
        let Some(filed) = self.fast.residents.get_mut(&key) else { return false };
        filed.compact();
        let mut crowded = false;
        let per_stage = n.ceil() as u64;
        let taken = &mut self.fast.taken;
        // Stage index: 0 while prefilling, 1 + generated once decoding.
        let mut touched = Vec::new();
        for f in &mut filed.list {
            debug_assert_eq!(
                view.resident(f.id).map(|r| (r.prefill_done(), r.generated().get())),
                Some((f.prefill_done, f.generated)),
                "filed progress of {:?}",
                f.id
            );
            let stage = if f.prefill_done { 1 + f.generated as usize } else { 0 };
            if stage >= taken.len() {
                taken.resize(stage + 1, 0);
            }
            if taken[stage] == 0 {
                touched.push(stage);
            }
            if taken[stage] >= per_stage {
                crowded = true;
                continue;
            }
            taken[stage] += 1;
            f.selected = true;
            if f.prefill_done {
                let held = Tokens(key.0 + f.generated);
                rest.push((BatchItem::Decode { id: f.id }, mem::decode_growth(view, held)));
            } else {
                let r = view.resident(f.id).expect("filed residents are resident");
                let item = resident_item(&r, None);
                rest.push((item, mem::item_growth(view, &r, &item)));
            }
        }
        for s in touched {
            taken[s] = 0;
        }
        crowded
    }

    /// The fast path's decision: the general path's, reading only the active types and the
    /// filed residents of the eligible ones.
    fn decide_fast(&mut self, view: &View<'_>) -> Plan {
        self.note_arrivals(view);
        self.fast.sync(view);
        let drain = self.drain && view.arrivals_done();
        let keys: Vec<TypeKey> = self.fast.active.iter().copied().collect();
        let (mut admit, mut rest, mut eligible) = (Vec::new(), Vec::new(), Vec::new());
        let (mut paused, mut crowded) = (false, false);
        for key in keys {
            let queued = self.queues.get(&key).map_or(0, VecDeque::len) as u64;
            let has_residents = self.fast.residents.get(&key).is_some_and(|m| m.live > 0);
            if queued == 0 && !has_residents {
                // Never eligible (every cap is at least 1), and its rotor is untouched.
                self.fast.active.remove(&key);
                continue;
            }
            // The same f64 as the general path's sum: integers below 2^53 add exactly.
            let n = self.threshold(key, self.work as f64);
            let rotor = self.rotors.entry(key).or_insert_with(|| Rotor::new(n));
            rotor.n = n;
            let cap = rotor.cap();
            if queued >= cap || drain {
                eligible.push(key);
                crowded |= self.type_batch_fast(key, cap, n, &mut admit, &mut rest, view);
            } else if has_residents {
                paused = true;
            }
        }
        self.paused_decisions += u64::from(paused);
        self.crowded_decisions += u64::from(crowded);
        let keys: Vec<TypeKey> = admit.iter().map(|a| a.0).collect();
        let admit: Vec<(BatchItem, Tokens)> = admit.into_iter().map(|a| (a.1, a.2)).collect();
        let (admit, rest, evict, acted) = trim_or_evict(view, admit, rest);
        // Advance the residents whose items the plan kept: a prefix of the selection when the
        // guard only trimmed, any of them when it evicted.
        let after_prefill = tokens_after_prefill(view);
        if evict.is_empty() {
            self.fast.settle(&eligible, after_prefill, |i, _| i < rest.len());
        } else {
            let kept: BTreeSet<RequestId> = rest.iter().map(|x| x.0.id()).collect();
            self.fast.settle(&eligible, after_prefill, |_, id| kept.contains(&id));
        }
        for key in self.book(&keys, &admit, &evict, acted, view) {
            self.fast.active.insert(key);
        }
        self.fast.pending.extend(admit.iter().map(|x| x.0.id()));
        for id in &evict {
            self.fast.unfile(*id);
        }
        let batch: Vec<BatchItem> = admit.iter().chain(&rest).map(|x| x.0).collect();
        if !batch.is_empty() {
            for key in eligible {
                self.rotors.get_mut(&key).expect("rotor").advance();
            }
        }
        Plan { evict, batch, ..Plan::default() }
    }
}

impl Scheduler for Wait {
    fn name(&self) -> String {
        "wait".into()
    }

    fn information(&self) -> Information {
        Information::Known
    }

    fn decide(&mut self, view: &View<'_>) -> Plan {
        if self.fast_path {
            return self.decide_fast(view);
        }
        self.note_arrivals(view);
        let mut residents: BTreeMap<TypeKey, Vec<ResidentView>> = BTreeMap::new();
        for r in view.running() {
            let out = r.request().output_hint().tokens().map_or(0, |t| t.get());
            residents.entry((r.request().prompt_tokens().get(), out)).or_default().push(r);
        }
        let drain = self.drain && view.arrivals_done();
        let mut keys: Vec<TypeKey> = self.queues.keys().copied().collect();
        keys.extend(residents.keys().copied());
        keys.sort_unstable();
        keys.dedup();
        let (mut admit, mut rest, mut eligible) = (Vec::new(), Vec::new(), Vec::new());
        let (mut paused, mut crowded) = (false, false);
        let work = self.summed_work(view);
        for key in keys {
            let n = self.threshold(key, work);
            let rotor = self.rotors.entry(key).or_insert_with(|| Rotor::new(n));
            rotor.n = n;
            let cap = rotor.cap();
            let queued = self.queues.get(&key).map_or(0, VecDeque::len) as u64;
            let res = residents.get(&key).map_or(&[][..], Vec::as_slice);
            if queued >= cap || (drain && (queued > 0 || !res.is_empty())) {
                eligible.push(key);
                crowded |= self.type_batch(key, cap, n, res, &mut admit, &mut rest, view);
            } else if !res.is_empty() {
                paused = true;
            }
        }
        self.paused_decisions += u64::from(paused);
        self.crowded_decisions += u64::from(crowded);
        // Memory guard: trim the latest admissions, then the latest residents; evict only if
        // nothing at all fits (outside the WAIT conditions).
        let keys: Vec<TypeKey> = admit.iter().map(|a| a.0).collect();
        let admit: Vec<(BatchItem, Tokens)> = admit.into_iter().map(|a| (a.1, a.2)).collect();
        let (admit, rest, evict, acted) = fit_or_evict(view, admit, rest, view.kv_free(), &[]);
        self.book(&keys, &admit, &evict, acted, view);
        let batch: Vec<BatchItem> = admit.iter().chain(&rest).map(|x| x.0).collect();
        if !batch.is_empty() {
            for key in eligible {
                self.rotors.get_mut(&key).expect("rotor").advance();
            }
        }
        Plan { evict, batch, ..Plan::default() }
    }
}
