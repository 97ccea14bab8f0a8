//! The decode group: the resident requests whose prompt is complete, advanced together by a
//! `decode_all` plan in `O(block + log n)` per stretch instead of `O(members)`.
//!
//! Lazy progress: a member's output is `generated_base + clock - clock_base` (invariant 12 of
//! ARCHITECTURE.md); the group keeps the sum of held tokens, a histogram of held
//! tokens modulo the block size (so the footprint growth of `k` whole-group iterations has a
//! closed form) and a heap of completion clocks. `Core` (`super::core`) owns one and keeps it
//! in step with its slots.

use kvsched_spec::RequestId;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The decode group's aggregates.
#[derive(Clone, Debug)]
pub(super) struct DecodeGroup {
    /// Block size in tokens.
    pub(super) block: u64,
    /// Iterations that decoded the whole group.
    pub(super) clock: u64,
    /// Members.
    pub(super) n: u64,
    /// Sum of the members' held tokens.
    pub(super) held_sum: u64,
    /// Members by `(held - clock) mod block`.
    pub(super) hist: Vec<u64>,
    /// `(clock at completion, id)`; entries of former members or moved members are stale and
    /// skipped (see `Core::completion_clock`).
    pub(super) heap: BinaryHeap<Reverse<(u64, RequestId)>>,
    /// Whether every member has an up-to-date heap entry.
    pub(super) heap_valid: bool,
    /// Members that had no output token when they joined.
    pub(super) fresh: Vec<RequestId>,
}

impl DecodeGroup {
    pub(super) fn new(block: u64) -> DecodeGroup {
        let block = block.max(1);
        DecodeGroup {
            block,
            clock: 0,
            n: 0,
            held_sum: 0,
            hist: vec![0; block as usize],
            heap: BinaryHeap::new(),
            heap_valid: true,
            fresh: Vec::new(),
        }
    }

    fn bucket(&self, held: u64) -> usize {
        ((held % self.block + self.block - self.clock % self.block) % self.block) as usize
    }

    pub(super) fn add(&mut self, held: u64, count: u64) {
        self.n += count;
        self.held_sum += held * count;
        let b = self.bucket(held);
        self.hist[b] += count;
    }

    pub(super) fn remove(&mut self, held: u64) {
        self.n -= 1;
        self.held_sum -= held;
        let b = self.bucket(held);
        self.hist[b] -= 1;
    }

    /// A member holding `held` advanced `by` tokens on its own.
    pub(super) fn shift(&mut self, held: u64, by: u64) {
        self.remove(held);
        self.add(held + by, 1);
        self.heap_valid = false;
    }

    pub(super) fn tick(&mut self, k: u64) {
        self.clock += k;
        self.held_sum += self.n * k;
    }

    /// Members by free tokens in their last block: `by_free[f]` members have `f` free.
    pub(super) fn by_free(&self) -> Vec<u64> {
        let b = self.block;
        let mut out = vec![0; b as usize];
        let shift = self.clock % b;
        for (c, &count) in self.hist.iter().enumerate() {
            let residue = (c as u64 + shift) % b;
            out[((b - residue) % b) as usize] += count;
        }
        out
    }

    /// Footprint growth of `k` whole-group iterations. A member with `f < B` free tokens in its
    /// last block grows by `B ceil((k - f)^+ / B)`; with `k = qB + r` that is `B (q + [f < r])`,
    /// so the group grows by `B (n q + #{f < r})`.
    pub(super) fn growth(&self, k: u64) -> u64 {
        let b = self.block;
        let (q, r) = (k / b, k % b);
        let shift = self.clock % b;
        let below: u64 = (0..b)
            .zip(&self.hist)
            .filter(|&(c, _)| (b - (c + shift) % b) % b < r)
            .map(|(_, &count)| count)
            .sum();
        b * (self.n * q + below)
    }

    /// The largest `k <= limit` whose [`DecodeGroup::growth`] is at most `room` (0 when even
    /// one iteration does not fit; `limit` for an empty group). `O(B)`, from the closed form.
    pub(super) fn steps_within(&self, room: u64, limit: u64) -> u64 {
        super::policy::util::steps_within_by_free(&self.by_free(), self.block, room, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::DecodeGroup;

    /// The closed forms against the per-member definition, over many groups and clocks.
    #[test]
    fn group_growth_and_steps_match_the_definition() {
        for b in [1u64, 2, 3, 16] {
            for clock in [0u64, 1, 5, 17] {
                for seed in 0..30u64 {
                    let mut g = DecodeGroup::new(b);
                    g.clock = clock;
                    let helds: Vec<u64> =
                        (0..seed % 7).map(|i| 1 + (seed * 7 + i * 13) % 50).collect();
                    for &h in &helds {
                        g.add(h, 1);
                    }
                    let naive = |k: u64| -> u64 {
                        helds.iter().map(|&h| (h + k).div_ceil(b) * b - h.div_ceil(b) * b).sum()
                    };
                    for k in 0..60 {
                        assert_eq!(g.growth(k), naive(k), "b={b} clock={clock} {helds:?} k={k}");
                    }
                    for room in 0..200 {
                        let want = if helds.is_empty() {
                            40
                        } else {
                            (0..=40).rev().find(|&k| naive(k) <= room).unwrap_or(0)
                        };
                        assert_eq!(g.steps_within(room, 40), want, "b={b} {helds:?} room={room}");
                    }
                }
            }
        }
    }
}
