//! SGLang's scheduler: prefill-first admission that reserves an estimated share of each
//! request's `max_new_tokens`, chunked prefill, and retraction on decode out-of-memory.
//!
//! Models `python/sglang/srt/managers/scheduler.py` (`get_next_batch_to_run`,
//! `get_new_batch_prefill`, `update_running_batch`), `schedule_policy.py` (`PrefillAdder`:
//! `add_chunked_req`, `add_one_req`, `_update_prefill_budget`, `budget_state`) and
//! `schedule_batch.py` (`ScheduleBatch.retract_decode`), SGLang 0.4.x to 0.5.x, FCFS policy,
//! no radix cache hits, `enable_mixed_chunk = False`:
//! - **Prefill first.** Each step first tries to build a prefill batch: the partly prefilled
//!   request (at most one) continues with the next chunk, then waiting requests are admitted in
//!   queue order. If that batch is non-empty it runs alone; otherwise all running requests decode.
//! - **Admission.** With `r` the current `new_token_ratio`, the running requests reserve
//!   `r * min(max(max_new_tokens - generated, 0), clip_max_new_tokens)` each; a waiting request
//!   is admitted when `prompt + min(max_new_tokens, clip) + 1` is strictly less than free memory
//!   minus all reservations (the `+ 1` is SGLang 0.5.23's page of allocation slack at
//!   `page_size` 1, [`page_overhead`]), and then reserves its prompt (or chunk), the page, and
//!   its clipped `max_new_tokens` in full (none for a chunk that does not finish the prompt).
//!   A prompt longer than what is left of `chunked_prefill_size` is chunked and stops
//!   admission; admission stops once the batch's prompt tokens reach `max_prefill_tokens` (a
//!   request is not refused for overrunning it: with chunked prefill on, SGLang checks only
//!   the spent budget); at most `max_running_requests` requests run. The partly prefilled
//!   request continues with `min(chunk budget, free - reservations)` tokens, or the whole
//!   chunk budget when the reservations leave nothing (`available_chunk_tokens`).
//! - **Ratio.** `new_token_ratio` starts at `init_new_token_ratio`, drops by
//!   `new_token_ratio_decay` at every decode step that needs no retraction, down to
//!   `min_new_token_ratio`, and returns to `init_new_token_ratio` when the server idles.
//! - **Retraction.** If the decode step does not fit, requests are retracted in the order of
//!   `retract_decode`: sorted by (output tokens, -prompt tokens) descending and popped from the
//!   end, i.e. fewest output tokens first, then longest prompt, then most recently admitted. At
//!   least one is retracted, and retraction continues while free memory is below
//!   `retract_decode_steps` tokens per remaining request (one request is always kept). The
//!   ratio becomes `min(1, (sum generated + retract_decode_steps * n) / (sum max_new + 1))` over
//!   the n remaining requests. Retracted requests join the back of the waiting queue.
//!
//! Defaults (`global_config.py` / `environ.py`, `server_args.py`): `init_new_token_ratio = 0.7`,
//! `min_new_token_ratio = 0.7 * 0.14 = 0.098`, `new_token_ratio_decay = (0.7 - 0.098) / 600`
//! (older releases used a flat min 0.1 and decay 0.001), `retract_decode_steps = 20`,
//! `clip_max_new_tokens = 4096` (`SGLANG_CLIP_MAX_NEW_TOKENS_ESTIMATION`),
//! `chunked_prefill_size = 8192` (the value `server_args` picks on 80 GB GPUs),
//! `max_prefill_tokens = 16384`, `max_running_requests = 4096` (the request-pool bound).
//!
//! **Information.** SGLang knows only the request's `max_new_tokens` sampling parameter, never
//! the true length: `max_new_tokens` here is a policy parameter applied to every request
//! (default 2048, a common client setting; SGLang's own `SamplingParams` default is 128, which
//! would truncate outputs). As SGLang does at request entry (`init_req_max_new_tokens`), it is
//! clamped per request to `capacity - prompt - 2` ([`entry_max_new`]), so a request alone in
//! memory is always admissible. A request that runs past `max_new_tokens` (SGLang would stop
//! it; the spec cannot) reserves nothing more.
//!
//! The admission ([`Sglang::admit`]) and the entry clamp are held to SGLang 0.5.23's own
//! `PrefillAdder`, recorded on 40 fixed scenarios (`bench/engines/sglang/`,
//! `tests/it/engines_sglang.rs`, `spec/ENGINES.md`). That comparison found four drifts, fixed
//! here: the page of overhead per request, the entry clamp (`capacity - 1 - prompt` before), the
//! continuing chunk cut by the reservations (cut only by free memory before), and
//! `max_prefill_tokens` (a request after the first was refused when its prompt reached what was
//! left of it).
//!
//! Deliberate deviations: retracted requests lose their output (spec recompute); under
//! `EvictionRule::Lifo` the most recently admitted request is retracted instead; a prefill chunk
//! is also shrunk to what fits in memory, so the plan never breaks the memory limit (SGLang
//! continues a chunked request with a whole chunk even when the reservations leave nothing); a
//! prompt of `capacity - 1` tokens or more, which SGLang refuses at entry, is admitted without
//! the page of overhead.

use super::mem;
use crate::sim::{Plan, Repeat, ResidentView, Scheduler, View};
use kvsched_spec::{BatchItem, EvictionRule, Information, RequestId, Tokens};

/// SGLang parameters and the policy's bookkeeping.
#[derive(Clone, Debug, PartialEq)]
pub struct Sglang {
    /// Assumed `max_new_tokens` of every request (the only output-length information).
    pub max_new_tokens: u64,
    /// Chunk budget of one prefill batch (`chunked_prefill_size`).
    pub chunked_prefill_size: u64,
    /// Prompt tokens of one prefill batch (`max_prefill_tokens`).
    pub max_prefill_tokens: u64,
    /// Maximum running requests.
    pub max_running_requests: usize,
    /// Initial (and after-idle) `new_token_ratio`.
    pub init_new_token_ratio: f64,
    /// Floor of `new_token_ratio`.
    pub min_new_token_ratio: f64,
    /// Decrease of `new_token_ratio` per decode step.
    pub new_token_ratio_decay: f64,
    /// `CLIP_MAX_NEW_TOKENS_ESTIMATION`.
    pub clip_max_new_tokens: u64,
    /// Free tokens per remaining request that retraction aims for.
    pub retract_decode_steps: u64,
    /// Take the fast paths (default): the queue kept incrementally, the decode batch as a
    /// `decode_all` plan, and the decode-stretch scan over a sorted aggregate of the running
    /// requests' reservations (`O(block + log n)` per scanned step). Off, every decision reads
    /// the whole queue and batch; the records are the same (tested).
    pub fast_path: bool,
    state: RatioState,
}

/// The ratio, computed lazily: `max(anchor - decay * decode_steps, min)`, where
/// `decode_steps` counts decode iterations since the anchor was set (reset, idle, retraction).
#[derive(Clone, Debug, PartialEq, Default)]
struct RatioState {
    anchor: Option<f64>,
    decode_steps: u64,
    last_steps_total: u64,
    last_decays: bool,
    /// Waiting queue in SGLang's order (arrivals and retractions appended).
    queue: std::collections::VecDeque<RequestId>,
    /// Whether the previous plan decoded every decode-ready resident (a decode stretch or a
    /// retraction's decodes).
    last_decoded: bool,
    /// Fast path: the decode-ready residents' remaining `max_new_tokens`, kept incrementally.
    members: Members,
}

/// The decode-ready residents' unclipped remaining `max_new_tokens`, kept incrementally (fast
/// path). Every plan that decodes decodes all of them, so a member's remainder is
/// `key - clock`, with `clock` the decode iterations run and `key` fixed at joining: a multiset
/// of keys with its count and sum answers the reservation sum in `O(1)` and its value after
/// `j` more decode steps by a scan in key order. Keys at or below the clock (remainder 0) are
/// dropped from the multiset (each once: amortised `O(log n)`).
#[derive(Clone, Debug, PartialEq, Default)]
struct Members {
    clock: u64,
    /// Members' keys by id (0 once a member's remainder reached 0).
    key: std::collections::BTreeMap<RequestId, u64>,
    /// Live keys (`> clock`) and their multiplicity.
    live: std::collections::BTreeMap<u64, u64>,
    live_n: u64,
    live_sum: u64,
    /// Prefilled in the previous plan: members from the next decision on if their prompt is
    /// complete by then.
    joining: Vec<RequestId>,
}

impl Members {
    fn add(&mut self, id: RequestId, remaining: u64) {
        let key = self.clock + remaining;
        if remaining > 0 {
            *self.live.entry(key).or_insert(0) += 1;
            self.live_n += 1;
            self.live_sum += key;
        }
        self.key.insert(id, key);
    }

    fn remove(&mut self, id: RequestId) {
        let Some(key) = self.key.remove(&id) else { return };
        if key > self.clock {
            let c = self.live.get_mut(&key).expect("a live key");
            *c -= 1;
            if *c == 0 {
                self.live.remove(&key);
            }
            self.live_n -= 1;
            self.live_sum -= key;
        }
    }

    /// Every member decoded `k` more times.
    fn tick(&mut self, k: u64) {
        self.clock += k;
        while let Some((&key, &c)) = self.live.first_key_value() {
            if key > self.clock {
                break;
            }
            self.live.pop_first();
            self.live_n -= c;
            self.live_sum -= key * c;
        }
    }

    /// The sum of the members' remainders now.
    fn remaining(&self) -> u64 {
        self.live_sum - self.clock * self.live_n
    }
}

impl Default for Sglang {
    fn default() -> Self {
        Sglang {
            max_new_tokens: 2048,
            chunked_prefill_size: 8192,
            max_prefill_tokens: 16384,
            max_running_requests: 4096,
            init_new_token_ratio: 0.7,
            min_new_token_ratio: 0.7 * 0.14,
            new_token_ratio_decay: (0.7 - 0.7 * 0.14) / 600.0,
            clip_max_new_tokens: 4096,
            retract_decode_steps: 20,
            fast_path: true,
            state: RatioState::default(),
        }
    }
}

/// How many scanned steps at most when looking for the end of a decode stretch.
const SCAN_LIMIT: u64 = 4096;

impl Sglang {
    fn ratio_at(&self, extra_decode_steps: u64) -> f64 {
        let anchor = self.state.anchor.unwrap_or(self.init_new_token_ratio);
        let steps = self.state.decode_steps + extra_decode_steps;
        (anchor - self.new_token_ratio_decay * steps as f64).max(self.min_new_token_ratio)
    }

    /// `max_new_tokens` of a request, clamped as SGLang does at request entry.
    fn max_new(&self, view: &View<'_>, prompt: Tokens) -> u64 {
        entry_max_new(self.max_new_tokens, view.capacity().get(), prompt.get())
    }

    /// The clipped remaining `max_new_tokens` of a request that generated `generated`.
    fn remaining_new(&self, view: &View<'_>, prompt: Tokens, generated: u64) -> u64 {
        self.remaining_estimate(self.max_new(view, prompt), generated)
    }

    /// What SGLang's admission counts of a request that may still generate: its remaining
    /// `max_new_tokens`, clipped to `clip_max_new_tokens`.
    pub fn remaining_estimate(&self, max_new: u64, generated: u64) -> u64 {
        max_new.saturating_sub(generated).min(self.clip_max_new_tokens)
    }

    /// Brings the bookkeeping up to date with what happened since the previous decision.
    fn sync(&mut self, view: &View<'_>) {
        let elapsed = view.steps_total() - self.state.last_steps_total;
        if self.state.last_decays {
            self.state.decode_steps += elapsed;
        }
        self.state.queue.extend(view.arrived_since_last());
        if self.fast() {
            self.sync_members(view, elapsed);
        }
        if self.fast_path {
            // Admissions take a prefix of the queue (they stop at the first failure) and
            // retracted requests are waiting again by now, so only the front can have left
            // (resident, or already done).
            let left = |id: &RequestId| view.resident(*id).is_some() || view.request(*id).is_none();
            while self.state.queue.front().is_some_and(left) {
                self.state.queue.pop_front();
            }
        } else {
            self.state
                .queue
                .retain(|id| view.resident(*id).is_none() && view.request(*id).is_some());
        }
    }

    fn finish(&mut self, view: &View<'_>, plan: Plan, decays: bool) -> Plan {
        self.state.last_steps_total = view.steps_total();
        self.state.last_decays = decays;
        self.state.last_decoded =
            plan.decode_all || plan.batch.iter().any(|i| matches!(i, BatchItem::Decode { .. }));
        if self.fast() {
            let m = &mut self.state.members;
            for id in &plan.evict {
                m.remove(*id);
            }
            m.joining = crate::sim::util::prefilled(&plan);
        }
        plan
    }

    /// Whether the incremental reservations apply: the fast path, and `max_new_tokens` within
    /// the clip (so that the clip never binds and a member's remainder is `key - clock`).
    fn fast(&self) -> bool {
        self.fast_path && self.max_new_tokens <= self.clip_max_new_tokens
    }

    /// Brings [`Members`] up to date: the decode iterations run, completions, new members.
    fn sync_members(&mut self, view: &View<'_>, elapsed: u64) {
        let mut m = std::mem::take(&mut self.state.members);
        if self.state.last_decoded {
            m.tick(elapsed);
        }
        for c in view.completed_since_last() {
            m.remove(c.id);
        }
        for id in std::mem::take(&mut m.joining) {
            if let Some(r) = view.resident(id).filter(ResidentView::prefill_done) {
                let max_new = self.max_new(view, r.request().prompt_tokens());
                m.add(id, max_new.saturating_sub(r.generated().get()));
            }
        }
        self.state.members = m;
    }

    /// Reservation of the running requests (decoding ones) at ratio `ratio`, after `j` more
    /// decode steps of all of them: `ratio` times the sum of their clipped remaining
    /// `max_new_tokens` (summed exactly, in integers).
    fn reservation(&self, view: &View<'_>, ratio: f64, j: u64) -> f64 {
        let rem: u64 = view
            .running()
            .filter(|r| r.prefill_done())
            .map(|r| self.remaining_new(view, r.request().prompt_tokens(), r.generated().get() + j))
            .sum();
        rem as f64 * ratio
    }

    /// The decoding requests' unclipped remaining `max_new_tokens`, sorted, with prefix sums:
    /// [`Reservations::at`] is then `O(log n)` for any number of further decode steps.
    fn reservations(&self, view: &View<'_>) -> Reservations {
        let mut rem: Vec<u64> = view
            .running()
            .filter(|r| r.prefill_done())
            .map(|r| {
                self.max_new(view, r.request().prompt_tokens()).saturating_sub(r.generated().get())
            })
            .collect();
        rem.sort_unstable();
        let mut prefix = Vec::with_capacity(rem.len() + 1);
        prefix.push(0u64);
        for r in &rem {
            prefix.push(prefix.last().expect("non-empty") + r);
        }
        Reservations { rem, prefix, clip: self.clip_max_new_tokens }
    }
}

/// The running requests' remaining `max_new_tokens` (`rem`, sorted) and prefix sums.
struct Reservations {
    rem: Vec<u64>,
    prefix: Vec<u64>,
    clip: u64,
}

impl Reservations {
    /// `sum_i min((rem_i - j)^+, clip)`, what [`Sglang::reservation`] sums after `j` steps.
    fn at(&self, j: u64) -> u64 {
        let lo = self.rem.partition_point(|&r| r <= j);
        let hi = self.rem.partition_point(|&r| r <= j.saturating_add(self.clip));
        let middle = self.prefix[hi] - self.prefix[lo] - j * (hi - lo) as u64;
        middle + self.clip * (self.rem.len() - hi) as u64
    }
}

/// SGLang's per-request page of allocation slack at its default `page_size` 1: `add_one_req`
/// asks for `prompt + max_new + page` strictly below what is left and `_update_prefill_budget`
/// reserves `chunk + page` (SGLang 0.5.23, recorded). A prompt of `capacity - 1` tokens or
/// more, which SGLang refuses at entry (`max_req_len = capacity - 1`), goes without it, so
/// that it stays admissible alone (kvsched cannot refuse a request).
pub fn page_overhead(capacity: u64, prompt: u64) -> u64 {
    u64::from(prompt.saturating_add(2) <= capacity)
}

/// `max_new_tokens` after SGLang's request-entry clamp (`Scheduler.init_req_max_new_tokens` and
/// `max_new_tokens_for_memory` at page size 1): at most `capacity - prompt - 2`.
pub fn entry_max_new(requested: u64, capacity: u64, prompt: u64) -> u64 {
    requested.min(capacity.saturating_sub(prompt.saturating_add(2)))
}

/// One prefill pass as [`Sglang::admit`] sees it, in tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct PrefillState {
    /// Free KV tokens.
    pub free: u64,
    /// KV capacity (for [`page_overhead`]).
    pub capacity: u64,
    /// The decoding requests' reservation: `new_token_ratio` times their clipped remaining
    /// `max_new_tokens`.
    pub reserved: f64,
    /// Running requests, the partly prefilled one included.
    pub running: usize,
    /// The partly prefilled request: prompt, tokens prefilled, clipped `max_new_tokens`.
    pub partial: Option<(u64, u64, u64)>,
}

/// What one prefill pass admits.
#[derive(Clone, Debug, PartialEq)]
pub struct Admitted {
    /// The partly prefilled request's next chunk, if it runs.
    pub partial: Option<u64>,
    /// The chunks of the admitted waiting requests, a prefix of the queue.
    pub waiting: Vec<u64>,
}

/// KV growth as the engine counts it (block rounding, the first output token's slot); the
/// admission itself counts tokens.
pub trait PrefillMemory {
    /// Footprint growth of `chunk` more prompt tokens on top of `prefilled` of `prompt`.
    fn growth(&self, prefilled: u64, prompt: u64, chunk: u64) -> u64;
    /// The largest chunk `<= want` whose growth fits in `free` (0 if none).
    fn max_chunk(&self, prefilled: u64, prompt: u64, want: u64, free: u64) -> u64;
}

/// The engine's memory, read from a view.
struct ViewMemory<'v, 'a>(&'v View<'a>);

impl PrefillMemory for ViewMemory<'_, '_> {
    fn growth(&self, prefilled: u64, prompt: u64, chunk: u64) -> u64 {
        mem::chunk_growth(self.0, Tokens(prefilled), Tokens(prompt), chunk).get()
    }
    fn max_chunk(&self, prefilled: u64, prompt: u64, want: u64, free: u64) -> u64 {
        mem::max_chunk(self.0, Tokens(prefilled), Tokens(prompt), want, Tokens(free))
    }
}

impl Scheduler for Sglang {
    fn name(&self) -> String {
        "sglang".into()
    }

    fn information(&self) -> Information {
        Information::Hidden
    }

    fn decide(&mut self, view: &View<'_>) -> Plan {
        self.sync(view);
        let prefill = self.prefill_batch(view);
        if !prefill.is_empty() {
            let plan = Plan {
                evict: vec![],
                batch: prefill,
                repeat: Repeat::Once,
                decode_all: false,
                hold: Vec::new(),
            };
            return self.finish(view, plan, false);
        }
        if self.fast_path {
            return self.decide_decode_fast(view);
        }
        let batch = crate::sim::util::decode_all(view);
        if batch.is_empty() {
            // Idle: SGLang resets the ratio when it has nothing to run.
            self.state.anchor = Some(self.init_new_token_ratio);
            self.state.decode_steps = 0;
            return self.finish(view, Plan::idle(), false);
        }
        let grow = batch.iter().fold(Tokens::ZERO, |acc, i| {
            acc + mem::decode_growth(view, view.resident(i.id()).expect("resident").held())
        });
        if grow > view.kv_free() {
            let plan = self.retract(view, batch);
            return self.finish(view, plan, false);
        }
        let repeat = self.stretch(view, &batch);
        self.finish(
            view,
            Plan {
                evict: vec![],
                batch,
                repeat: Repeat::UpTo(repeat),
                decode_all: false,
                hold: Vec::new(),
            },
            true,
        )
    }
}

impl Sglang {
    /// The decode half of [`Scheduler::decide`] without listing the batch: `decode_all`, the
    /// growth from the engine's aggregate, the stretch scan over [`Reservations`].
    fn decide_decode_fast(&mut self, view: &View<'_>) -> Plan {
        if view.decode_ready_len() == 0 {
            self.state.anchor = Some(self.init_new_token_ratio);
            self.state.decode_steps = 0;
            return self.finish(view, Plan::idle(), false);
        }
        if view.decode_all_growth(1) > view.kv_free() {
            let batch = crate::sim::util::decode_all(view);
            let plan = self.retract(view, batch);
            return self.finish(view, plan, false);
        }
        let repeat = self.stretch_fast(view);
        let plan = Plan {
            evict: vec![],
            batch: vec![],
            repeat: Repeat::UpTo(repeat),
            decode_all: true,
            hold: Vec::new(),
        };
        self.finish(view, plan, true)
    }

    /// [`Sglang::stretch`] for the whole decode group, `O(block + log n)` per scanned step.
    fn stretch_fast(&self, view: &View<'_>) -> u64 {
        let k = view.decode_all_steps_within(view.kv_free(), u64::MAX / 4).max(1);
        if self.state.queue.is_empty() || view.running_len() >= self.max_running_requests {
            return k;
        }
        let Some(&head) = self.state.queue.front() else {
            return k;
        };
        let prompt = view.request(head).expect("waiting").prompt_tokens();
        let new = self.remaining_new(view, prompt, 0);
        let chunk = prompt.get().min(self.chunked_prefill_size);
        let head_growth = mem::chunk_growth(view, Tokens::ZERO, prompt, chunk);
        // The reservation sum after j more steps, for j = 1, 2, ... in turn.
        let mut rem_at: Box<dyn FnMut(u64) -> u64 + '_> = if self.fast() {
            // From the members' keys in increasing order: after step j the sum drops by the
            // members whose remainder was still positive, `#{key > clock + j - 1}`.
            let m = &self.state.members;
            let mut keys = m.live.iter().peekable();
            let (mut n, mut sum) = (m.live_n, m.remaining());
            Box::new(move |j| {
                sum -= n;
                while let Some((_, &c)) = keys.next_if(|(&key, _)| key <= m.clock + j) {
                    n -= c;
                }
                sum
            })
        } else {
            let res = self.reservations(view);
            Box::new(move |j| res.at(j))
        };
        let growth = view.decode_all_growth_table();
        for j in 1..k.min(SCAN_LIMIT + 1) {
            let free = view.kv_free() - growth.at(j);
            let offset = rem_at(j) as f64 * self.ratio_at(j);
            let need = prompt.get() + new + page_overhead(view.capacity().get(), prompt.get());
            if (need as f64) < free.get() as f64 - offset && head_growth <= free {
                return j;
            }
        }
        k.min(SCAN_LIMIT)
    }

    /// The prefill batch (`get_new_batch_prefill`), empty when nothing can be prefilled: the
    /// view's state handed to [`Sglang::admit`].
    fn prefill_batch(&self, view: &View<'_>) -> Vec<BatchItem> {
        // At most one request is mid-prefill; the fast path looks for it only if one exists.
        let any_partial = !self.fast_path || view.decode_ready_len() < view.running_len();
        let partial = any_partial.then(|| view.running().find(|r| !r.prefill_done())).flatten();
        let state = PrefillState {
            free: view.kv_free().get(),
            capacity: view.capacity().get(),
            reserved: if self.fast() {
                self.state.members.remaining() as f64 * self.ratio_at(0)
            } else {
                self.reservation(view, self.ratio_at(0), 0)
            },
            running: view.running_len(),
            partial: partial.as_ref().map(|p| {
                let prompt = p.request().prompt_tokens();
                (prompt.get(), p.prefilled().get(), self.remaining_new(view, prompt, 0))
            }),
        };
        let waiting = self.state.queue.iter().map(|&id| {
            let prompt = view.request(id).expect("waiting").prompt_tokens();
            (prompt.get(), self.remaining_new(view, prompt, 0))
        });
        let admitted = self.admit(&state, waiting, &ViewMemory(view));
        let mut batch = Vec::with_capacity(admitted.waiting.len() + 1);
        if let (Some(p), Some(chunk)) = (partial, admitted.partial) {
            batch.push(BatchItem::Prefill { id: p.id(), tokens: Tokens(chunk) });
        }
        let queue = self.state.queue.iter().zip(admitted.waiting);
        batch.extend(queue.map(|(&id, chunk)| BatchItem::Prefill { id, tokens: Tokens(chunk) }));
        batch
    }

    /// One prefill pass of SGLang's `PrefillAdder` (`add_chunked_req`, then `add_one_req` in
    /// queue order, as `_get_new_batch_prefill_raw` drives them), on plain token counts:
    /// `waiting` yields each queued request's (prompt, clipped `max_new_tokens`) and is read
    /// only as far as admission goes. Held to SGLang 0.5.23's recorded decisions by
    /// `tests/it/engines_sglang.rs`.
    pub fn admit(
        &self,
        s: &PrefillState,
        waiting: impl IntoIterator<Item = (u64, u64)>,
        mem: &impl PrefillMemory,
    ) -> Admitted {
        let mut out = Admitted { partial: None, waiting: Vec::new() };
        let mut offset = s.reserved;
        let mut free = s.free;
        let mut rem_chunk = self.chunked_prefill_size;
        let mut rem_input = self.max_prefill_tokens as i64;
        if let Some((prompt, prefilled, new)) = s.partial {
            // `available_chunk_tokens`: the chunk budget, cut to what the reservations leave
            // (`int()` of a float), or the whole budget if they leave nothing.
            let left = (s.free as f64 - offset) as i64;
            let budget = if left > 0 { rem_chunk.min(left as u64) } else { rem_chunk };
            let want = (prompt - prefilled).min(budget);
            let chunk = mem.max_chunk(prefilled, prompt, want, free);
            if chunk == 0 {
                return out;
            }
            let done = chunk == prompt - prefilled;
            let new = if done { new } else { 0 };
            offset += (chunk + page_overhead(s.capacity, prompt) + new) as f64;
            free -= mem.growth(prefilled, prompt, chunk);
            rem_chunk -= chunk;
            rem_input -= chunk as i64;
            out.partial = Some(chunk);
            if !done {
                return out;
            }
        }
        for (running, (prompt, new)) in (s.running..).zip(waiting) {
            if running >= self.max_running_requests || rem_chunk == 0 || rem_input <= 0 {
                break;
            }
            let page = page_overhead(s.capacity, prompt);
            if (prompt + new + page) as f64 >= s.free as f64 - offset {
                break;
            }
            let chunk = prompt.min(rem_chunk);
            let grow = mem.growth(0, prompt, chunk);
            if grow > free {
                break;
            }
            let full = chunk == prompt;
            offset += (chunk + page + if full { new } else { 0 }) as f64;
            free -= grow;
            rem_chunk -= chunk;
            rem_input -= chunk as i64;
            out.waiting.push(chunk);
            if !full || offset >= s.free as f64 {
                break;
            }
        }
        out
    }

    /// Whether, after `j` decode steps of every running request, the head of the queue would be
    /// admitted (no partial prefill exists during a decode stretch that matters: its chunk did
    /// not fit now and free memory only shrinks).
    fn admissible_after(&self, view: &View<'_>, j: u64, growth: Tokens) -> bool {
        let Some(&head) = self.state.queue.front() else {
            return false;
        };
        let ratio = self.ratio_at(j);
        let offset = self.reservation(view, ratio, j);
        let prompt = view.request(head).expect("waiting").prompt_tokens();
        let new = self.remaining_new(view, prompt, 0);
        let free = view.kv_free() - growth;
        let rem_total = free.get() as f64 - offset;
        let chunk = prompt.get().min(self.chunked_prefill_size);
        let need = prompt.get() + new + page_overhead(view.capacity().get(), prompt.get());
        (need as f64) < rem_total && mem::chunk_growth(view, Tokens::ZERO, prompt, chunk) <= free
    }

    /// How many decode steps the decision stays "decode everything": until memory runs out, or
    /// until the decayed ratio and the shrinking reservations let the head of the queue in.
    fn stretch(&self, view: &View<'_>, batch: &[BatchItem]) -> u64 {
        let ids: Vec<RequestId> = batch.iter().map(BatchItem::id).collect();
        let k = mem::decode_steps_within(view, &ids, view.kv_free(), u64::MAX / 4).max(1);
        if self.state.queue.is_empty() || view.running_len() >= self.max_running_requests {
            return k;
        }
        let held: Vec<Tokens> =
            ids.iter().map(|id| view.resident(*id).expect("resident").held()).collect();
        for j in 1..=k.min(SCAN_LIMIT) {
            let growth = held.iter().fold(Tokens::ZERO, |acc, &h| {
                acc + view.footprint(h + Tokens(j)) - view.footprint(h)
            });
            if j < k && self.admissible_after(view, j, growth) {
                return j;
            }
        }
        k.min(SCAN_LIMIT)
    }

    /// `retract_decode`: evict until the rest can decode with some headroom.
    fn retract(&mut self, view: &View<'_>, mut batch: Vec<BatchItem>) -> Plan {
        let mut order: Vec<ResidentView> =
            batch.iter().map(|i| view.resident(i.id()).expect("resident")).collect();
        if view.config().eviction == EvictionRule::Lifo {
            order.sort_by_key(|r| std::cmp::Reverse(r.admitted_seq()));
        } else {
            order.sort_by_key(|r| {
                (std::cmp::Reverse(r.generated()), r.request().prompt_tokens(), r.admitted_seq())
            });
        }
        let mut free = view.kv_free();
        let mut evict = Vec::new();
        let growth = |b: &[BatchItem]| {
            b.iter().fold(Tokens::ZERO, |acc, i| {
                acc + mem::decode_growth(view, view.resident(i.id()).expect("resident").held())
            })
        };
        while order.len() > 1 {
            let n = order.len() as u64;
            let short = free.get() < n * self.retract_decode_steps || growth(&batch) > free;
            if !evict.is_empty() && !short {
                break;
            }
            let victim = order.pop().expect("non-empty");
            free += view.footprint(victim.held());
            batch.retain(|i| i.id() != victim.id());
            evict.push(victim.id());
            self.state.queue.push_back(victim.id());
        }
        // A partly prefilled request is not in the decode batch, but may hold the memory the
        // last decoder needs (its estimate was too low): retract it too, as a last resort.
        let partial: Vec<ResidentView> = view.running().filter(|r| !r.prefill_done()).collect();
        for p in partial.iter().rev() {
            if growth(&batch) <= free {
                break;
            }
            free += view.footprint(p.held());
            evict.push(p.id());
            self.state.queue.push_back(p.id());
        }
        let generated: u64 = order.iter().map(|r| r.generated().get()).sum();
        let max_new: u64 =
            order.iter().map(|r| self.max_new(view, r.request().prompt_tokens())).sum();
        let n = order.len() as u64;
        let ratio = (generated + self.retract_decode_steps * n) as f64 / (max_new + 1) as f64;
        self.state.anchor = Some(ratio.min(1.0));
        self.state.decode_steps = 0;
        Plan { evict, batch, repeat: Repeat::Once, decode_all: false, hold: Vec::new() }
    }
}
