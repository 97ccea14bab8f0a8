//! MC-SF's per-round admission decision (arXiv 2502.07115 §4, Eq. 5; notes §5.2–5.3, §8), pure.
//!
//! Round convention (the round model of `kvsched_spec::rounds`): a request *started at round
//! `p`* holds `s + j` tokens at round `p + j`, for `j = 1 ..= õ`. At decision time `t`, the
//! caller passes
//! - `active`: every request started at some `p < t` that still holds memory at round `t + 1`
//!   (non-preemptive: all of them continue), with its predicted output `õ`;
//! - `waiting`: every arrived, not yet started request.
//!
//! [`mcsf_admit`] sorts `waiting` by `(õ, arrival, id)` ascending and returns the ids of the
//! **maximal feasible prefix**: candidates are added in that order while the future-memory check
//! passes, stopping at the first failure. A candidate set `U` is feasible iff for every round
//! `t' ∈ [t+1, t + max õ]` the committed memory `Σ (s_j + t' − p_j)·1{p_j < t' ≤ p_j + õ_j}` is
//! at most `M`. It suffices to check the *checkpoints* `t' = p_j + õ_j` (memory grows linearly
//! between completions and drops after them, so each segment peaks at its right end).
//!
//! Cost: the committed set never exceeds `M` requests (each holds at least one token), so there
//! are at most `M` checkpoints. Each candidate inserts at most one checkpoint (its memory is
//! computed from the committed set, `O(M)`) and adds its own memory to each checkpoint up to its
//! end (`O(M)`): `O(M)` per candidate, `O(M²)` per round plus sorting, as in the paper.
//!
//! Paged memory ([`admit_prefix_paged`]): a request holding `h` tokens occupies `⌈h/B⌉·B`. That
//! is still nondecreasing between completions, so the same checkpoints decide exactly, at the
//! same cost; `B = 1` is the paper's token-granular model.
//!
//! Under-estimated predictions: a resident request already older than its prediction
//! (`t − p ≥ õ`) is charged as if it completes at round `t + 1` (`õ_eff = t − p + 1`); the check
//! is then only as good as the predictions (the notes §8 item 3).

/// A request in progress at decision time `t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActiveReq {
    /// Prompt tokens `s`.
    pub prompt_tokens: u64,
    /// Start round `p < t`.
    pub start_round: u64,
    /// Predicted output length `õ` (the true one when known).
    pub predicted_output: u64,
}

/// A request waiting at decision time `t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitingReq {
    /// Caller's identifier (returned in the admitted list; also the last tie-break).
    pub id: u64,
    /// Prompt tokens `s`.
    pub prompt_tokens: u64,
    /// Arrival round (second tie-break).
    pub arrival_round: u64,
    /// Predicted output length `õ ≥ 1` (first sort key).
    pub predicted_output: u64,
}

/// Committed requests and their checkpoints, for incremental checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoints {
    t: u64,
    memory: u64,
    /// Block size `B` in tokens (1: token-granular).
    block: u64,
    /// `(prompt, start, õ)` of every committed request.
    committed: Vec<(u64, u64, u64)>,
    /// Sorted `(round, committed memory at that round)`, rounds `> t`.
    points: Vec<(u64, u64)>,
}

/// Memory held at round `tp` by a request `(prompt, start, õ)`, rounded up to blocks of `b`.
fn held_paged(prompt: u64, start: u64, out: u64, tp: u64, b: u64) -> u64 {
    if tp > start && tp <= start + out {
        (prompt + tp - start).div_ceil(b) * b
    } else {
        0
    }
}

/// The sorted distinct completion rounds `p + õ` of `committed` with the memory committed at
/// each, in `O(n log n + rounds * b)` instead of `O(n * rounds)`: every request has started
/// before the first completion round, so at round `r` the requests still holding memory are
/// those ending at or after `r`, and they hold `sum (s - p + r)` tokens plus, per block
/// residue of `s - p`, the padding up to a whole block.
fn checkpoint_memory(committed: &[(u64, u64, u64)], b: u64) -> Vec<(u64, u64)> {
    let mut by_end: Vec<(u64, i128)> =
        committed.iter().map(|&(s, p, o)| (p + o, i128::from(s) - i128::from(p))).collect();
    by_end.sort_unstable();
    let bi = i128::from(b);
    let mut residues = vec![0u64; b as usize];
    let (mut alive, mut sum_a) = (by_end.len() as u64, 0i128);
    for &(_, a) in &by_end {
        sum_a += a;
        residues[a.rem_euclid(bi) as usize] += 1;
    }
    let mut points = Vec::new();
    let mut next = 0;
    while next < by_end.len() {
        let r = by_end[next].0;
        let tokens = sum_a + i128::from(alive) * i128::from(r);
        let pad: u64 = (0..b)
            .zip(&residues)
            .filter(|&(_, &c)| c > 0)
            .map(|(res, &c)| c * ((b - (res + r % b) % b) % b))
            .sum();
        points.push((r, u64::try_from(tokens).expect("held memory is non-negative") + pad));
        while next < by_end.len() && by_end[next].0 == r {
            let a = by_end[next].1;
            sum_a -= a;
            residues[a.rem_euclid(bi) as usize] -= 1;
            alive -= 1;
            next += 1;
        }
    }
    points
}

impl Checkpoints {
    /// The first decision round at which these checkpoints no longer describe their active set
    /// (`u64::MAX` for none): the earliest predicted end `p + õ`. Before it, no active request
    /// has outlived its prediction, and every checkpoint is a round in absolute terms, so the
    /// same checkpoints serve later decisions ([`Checkpoints::advance_to`]) until the active set
    /// changes.
    pub fn valid_until(&self) -> u64 {
        self.committed.iter().map(|&(_, p, o)| p + o).min().unwrap_or(u64::MAX)
    }

    /// Moves the decision round to `t`, forgetting the checkpoints and requests that ended at
    /// or before it (they hold nothing after `t`). Exact as long as every request committed
    /// here ends exactly at its committed end `p + õ` (the caller checks that).
    pub fn advance_to(&mut self, t: u64) {
        let past = self.points.partition_point(|&(r, _)| r <= t);
        self.points.drain(..past);
        self.committed.retain(|&(_, p, o)| p + o > t);
        self.t = t;
    }

    /// Whether nothing is committed.
    pub fn is_empty(&self) -> bool {
        self.committed.is_empty()
    }

    /// The checkpoints of the `active` set at decision time `t`.
    pub fn new(t: u64, active: &[ActiveReq], memory_tokens: u64) -> Checkpoints {
        Checkpoints::paged(t, active, memory_tokens, 1)
    }

    /// The checkpoints with paged memory: blocks of `block_tokens >= 1` tokens.
    pub fn paged(
        t: u64,
        active: &[ActiveReq],
        memory_tokens: u64,
        block_tokens: u64,
    ) -> Checkpoints {
        let b = block_tokens.max(1);
        let committed: Vec<(u64, u64, u64)> = active
            .iter()
            .map(|a| {
                let o = a.predicted_output.max(t.saturating_sub(a.start_round) + 1);
                (a.prompt_tokens, a.start_round, o)
            })
            .collect();
        let points = checkpoint_memory(&committed, b);
        Checkpoints { t, memory: memory_tokens, block: b, committed, points }
    }

    /// Tries to start a request `(prompt, õ)` at `t`; commits it and returns true iff every
    /// checkpoint stays within memory. `O(M)`.
    pub fn try_add(&mut self, prompt: u64, out: u64) -> bool {
        let (t, b) = (self.t, self.block);
        let mine = |r: u64| held_paged(prompt, t, out, r, b);
        let end = self.t + out;
        let pos = self.points.partition_point(|&(r, _)| r < end);
        let exists = self.points.get(pos).is_some_and(|&(r, _)| r == end);
        let base_end = if exists {
            self.points[pos].1
        } else {
            self.committed.iter().map(|&(s, p, o)| held_paged(s, p, o, end, b)).sum()
        };
        if base_end + mine(end) > self.memory {
            return false;
        }
        for &(r, m) in &self.points[..pos] {
            if m + mine(r) > self.memory {
                return false;
            }
        }
        for pt in &mut self.points[..pos] {
            pt.1 += mine(pt.0);
        }
        if exists {
            self.points[pos].1 += mine(end);
        } else {
            self.points.insert(pos, (end, base_end + mine(end)));
        }
        self.committed.push((prompt, self.t, out));
        true
    }
}

/// Maximal feasible prefix of `ordered` (already in priority order) at round `t`.
pub fn admit_prefix(
    t: u64,
    active: &[ActiveReq],
    ordered: &[WaitingReq],
    memory_tokens: u64,
) -> Vec<u64> {
    admit_prefix_paged(t, active, ordered, memory_tokens, 1)
}

/// [`admit_prefix`] with paged memory (blocks of `block_tokens`), exact for block rounding.
pub fn admit_prefix_paged(
    t: u64,
    active: &[ActiveReq],
    ordered: &[WaitingReq],
    memory_tokens: u64,
    block_tokens: u64,
) -> Vec<u64> {
    admit_prefix_paged_iter(t, active, ordered.iter().copied(), memory_tokens, block_tokens)
}

/// [`admit_prefix_paged`] over candidates produced in priority order, read lazily: only the
/// admitted ones and the first that fails are drawn from `ordered`.
pub fn admit_prefix_paged_iter(
    t: u64,
    active: &[ActiveReq],
    ordered: impl IntoIterator<Item = WaitingReq>,
    memory_tokens: u64,
    block_tokens: u64,
) -> Vec<u64> {
    let mut cp = Checkpoints::paged(t, active, memory_tokens, block_tokens);
    admit_prefix_with(&mut cp, ordered)
}

/// [`admit_prefix_paged_iter`] against checkpoints built already (and kept by the caller while
/// the active set stays the same; see [`Checkpoints::valid_until`]). Commits what it admits.
pub fn admit_prefix_with(
    cp: &mut Checkpoints,
    ordered: impl IntoIterator<Item = WaitingReq>,
) -> Vec<u64> {
    let mut admitted = Vec::new();
    for w in ordered {
        if !cp.try_add(w.prompt_tokens, w.predicted_output.max(1)) {
            break;
        }
        admitted.push(w.id);
    }
    admitted
}

/// MC-SF's decision at round `t`: the ids to start now, in admission order. Sort key
/// `(õ, arrival, id)`; maximal feasible prefix (stops at the first failure).
pub fn mcsf_admit(
    t: u64,
    active: &[ActiveReq],
    waiting: &[WaitingReq],
    memory_tokens: u64,
) -> Vec<u64> {
    let mut order = waiting.to_vec();
    order.sort_by_key(|w| (w.predicted_output, w.arrival_round, w.id));
    admit_prefix(t, active, &order, memory_tokens)
}

/// The MC-Benchmark / memory-checked FCFS decision: the same check, order `(arrival, id)`.
pub fn fcfs_admit(
    t: u64,
    active: &[ActiveReq],
    waiting: &[WaitingReq],
    memory_tokens: u64,
) -> Vec<u64> {
    let mut order = waiting.to_vec();
    order.sort_by_key(|w| (w.arrival_round, w.id));
    admit_prefix(t, active, &order, memory_tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Naive check: every round, not just checkpoints.
    fn naive_ok(t: u64, committed: &[(u64, u64, u64)], m: u64) -> bool {
        let end = committed.iter().map(|&(_, p, o)| p + o).max().unwrap_or(t);
        (t + 1..=end).all(|tp| {
            committed.iter().map(|&(s, p, o)| held_paged(s, p, o, tp, 1)).sum::<u64>() <= m
        })
    }

    /// The sweep of `checkpoint_memory` against the direct sum at every completion round.
    #[test]
    fn checkpoint_memory_matches_the_direct_sum() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for b in [1u64, 2, 3, 16] {
            for _ in 0..300 {
                let t = 20 + next(30);
                let n = next(12);
                let active: Vec<ActiveReq> = (0..n)
                    .map(|_| ActiveReq {
                        prompt_tokens: 1 + next(40),
                        start_round: next(t + 1),
                        predicted_output: 1 + next(40),
                    })
                    .collect();
                let cp = Checkpoints::paged(t, &active, 1000, b);
                let mut rounds: Vec<u64> = cp.committed.iter().map(|&(_, p, o)| p + o).collect();
                rounds.sort_unstable();
                rounds.dedup();
                let want: Vec<(u64, u64)> = rounds
                    .into_iter()
                    .map(|r| {
                        (r, cp.committed.iter().map(|&(s, p, o)| held_paged(s, p, o, r, b)).sum())
                    })
                    .collect();
                assert_eq!(cp.points, want, "b={b} t={t} {active:?}");
            }
        }
    }

    #[test]
    fn checkpoints_match_naive() {
        let active = [
            ActiveReq { prompt_tokens: 2, start_round: 3, predicted_output: 4 },
            ActiveReq { prompt_tokens: 1, start_round: 4, predicted_output: 6 },
        ];
        for m in 8..20 {
            for s in 1..4 {
                for o in 1..8 {
                    let mut cp = Checkpoints::new(5, &active, m);
                    let mut all: Vec<_> = cp.committed.clone();
                    all.push((s, 5, o));
                    assert_eq!(cp.try_add(s, o), naive_ok(5, &all, m), "m={m} s={s} o={o}");
                }
            }
        }
    }

    #[test]
    fn paged_checkpoints_match_naive() {
        let active = [
            ActiveReq { prompt_tokens: 5, start_round: 3, predicted_output: 4 },
            ActiveReq { prompt_tokens: 2, start_round: 4, predicted_output: 9 },
        ];
        for b in [1, 2, 4, 16] {
            for m in (8..48).step_by(3) {
                for s in 1..7 {
                    for o in 1..10 {
                        let mut cp = Checkpoints::paged(5, &active, m, b);
                        let naive = |set: &[(u64, u64, u64)]| {
                            let end = set.iter().map(|&(_, p, o)| p + o).max().unwrap_or(5);
                            (6..=end).all(|tp| {
                                let h = |&(s, p, o): &(u64, u64, u64)| held_paged(s, p, o, tp, b);
                                set.iter().map(h).sum::<u64>() <= m
                            })
                        };
                        // The check judges a candidate against a feasible committed set.
                        if !naive(&cp.committed) {
                            continue;
                        }
                        let mut all: Vec<_> = cp.committed.clone();
                        all.push((s, 5, o));
                        let naive = naive(&all);
                        assert_eq!(cp.try_add(s, o), naive, "b={b} m={m} s={s} o={o}");
                    }
                }
            }
        }
    }

    #[test]
    fn prefix_stops_at_first_failure() {
        let w =
            |id, s, o| WaitingReq { id, prompt_tokens: s, arrival_round: 0, predicted_output: o };
        // 5+2 fits, then 8+3 fails, so 1+4 is not tried.
        let got = mcsf_admit(0, &[], &[w(0, 1, 4), w(1, 5, 2), w(2, 8, 3)], 10);
        assert_eq!(got, vec![1]);
    }
}
