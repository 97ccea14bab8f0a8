//! Exhaustive enumeration of start rounds, for tiny instances (independent of the IP code).
//!
//! Depth-first over requests in index order; request `i` tries every start in
//! `[a_i, H − o_i]` with `H = max a + Σ o` (the safe horizon), keeping an incremental memory
//! profile, and prunes a branch when its cost so far plus `Σ o` of the rest reaches the best
//! total found. Exponential: meant for `n ≤ 6` and small lengths.

use kvsched_spec::rounds::RoundInstance;

/// An optimal schedule `(starts, total latency)`; `None` for an invalid instance.
pub fn brute_force(inst: &RoundInstance) -> Option<(Vec<u64>, u64)> {
    if !inst.validate().is_empty() {
        return None;
    }
    let h = inst.safe_horizon();
    let mut s = Search {
        inst,
        h,
        profile: vec![0; h as usize + 2],
        starts: vec![0; inst.len()],
        best: None,
        rest_floor: suffix_floor(inst),
    };
    s.go(0, 0);
    s.best
}

fn suffix_floor(inst: &RoundInstance) -> Vec<u64> {
    let mut v = vec![0u64; inst.len() + 1];
    for i in (0..inst.len()).rev() {
        v[i] = v[i + 1] + inst.requests[i].output_tokens;
    }
    v
}

struct Search<'a> {
    inst: &'a RoundInstance,
    h: u64,
    profile: Vec<u64>,
    starts: Vec<u64>,
    best: Option<(Vec<u64>, u64)>,
    rest_floor: Vec<u64>,
}

impl Search<'_> {
    fn go(&mut self, i: usize, cost: u64) {
        if let Some((_, b)) = &self.best {
            if cost + self.rest_floor[i] >= *b {
                return;
            }
        }
        if i == self.inst.len() {
            self.best = Some((self.starts.clone(), cost));
            return;
        }
        let r = self.inst.requests[i];
        for k in r.arrival_round..=self.h - r.output_tokens {
            let fits = (1..=r.output_tokens).all(|j| {
                self.profile[(k + j) as usize] + r.prompt_tokens + j <= self.inst.memory_tokens
            });
            if !fits {
                continue;
            }
            for j in 1..=r.output_tokens {
                self.profile[(k + j) as usize] += r.prompt_tokens + j;
            }
            self.starts[i] = k;
            self.go(i + 1, cost + k + r.output_tokens - r.arrival_round);
            for j in 1..=r.output_tokens {
                self.profile[(k + j) as usize] -= r.prompt_tokens + j;
            }
        }
    }
}
