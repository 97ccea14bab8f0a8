//! Exact algorithms for the semi-online model (every request present at round 0; the MC-SF
//! paper's v1/v2 claim). Derivations and complexity: `spec/MCSF_NOTES.md` §3.
//!
//! - [`spt_sequential`]: polynomial, `O(n log n)`, exact in the **sequential regime** (the
//!   talk abstract's "all prompts arrive initially and must be processed sequentially"): no two
//!   requests can ever be resident together, `s_i + s_j + 2 > M` for all `i ≠ j`. The problem
//!   is then `1 || Σ C_j` with `p_j = o_j`, solved by shortest-processing-time first (Smith).
//! - [`exact_all_at_zero`]: exact for every all-at-0 instance, exponential: a memoized search
//!   over states (unstarted set, progress of the running requests), `O(2^n)` subsets per
//!   state. No polynomial exact algorithm is known to us for the general all-at-0 case (the
//!   offline problem is reported NP-hard, arXiv 2508.06133); for larger instances the IP
//!   ([`super::ip`]) is the best exact method we have.

use kvsched_spec::rounds::RoundInstance;
use std::collections::BTreeMap;

/// Whether the instance is all-at-0 and in the sequential regime (`s_i + s_j + 2 > M` for all
/// pairs, so no two requests can overlap in any feasible schedule).
pub fn sequential_regime(inst: &RoundInstance) -> bool {
    if !inst.all_at_zero() {
        return false;
    }
    let mut s: Vec<u64> = inst.requests.iter().map(|r| r.prompt_tokens).collect();
    s.sort_unstable();
    s.len() < 2 || s[0] + s[1] + 2 > inst.memory_tokens
}

/// SPT in the sequential regime: `(starts, total latency)`, or `None` outside the regime.
pub fn spt_sequential(inst: &RoundInstance) -> Option<(Vec<u64>, u64)> {
    if !sequential_regime(inst) || !inst.validate().is_empty() {
        return None;
    }
    let mut order: Vec<usize> = (0..inst.len()).collect();
    order.sort_by_key(|&i| (inst.requests[i].output_tokens, i));
    let mut starts = vec![0u64; inst.len()];
    let (mut t, mut total) = (0u64, 0u64);
    for i in order {
        starts[i] = t;
        t += inst.requests[i].output_tokens;
        total += t;
    }
    Some((starts, total))
}

/// Running requests `(index, rounds already run)`, sorted.
type Active = Vec<(u8, u32)>;

struct Dp<'a> {
    inst: &'a RoundInstance,
    memo: BTreeMap<(u32, Active), (u64, u32)>,
}

impl Dp<'_> {
    /// Memory held `j` rounds ahead (j ≥ 1) by the running set.
    fn future(&self, active: &Active) -> Vec<u64> {
        let mut prof = Vec::new();
        for &(i, e) in active {
            let r = self.inst.requests[i as usize];
            for j in 1..=(r.output_tokens - u64::from(e)) {
                if prof.len() < j as usize {
                    prof.resize(j as usize, 0);
                }
                prof[j as usize - 1] += r.prompt_tokens + u64::from(e) + j;
            }
        }
        prof
    }

    fn fits(&self, base: &[u64], subset: u32) -> bool {
        let mut prof = base.to_vec();
        for i in bits(subset) {
            let r = self.inst.requests[i];
            for j in 1..=r.output_tokens as usize {
                if prof.len() < j {
                    prof.resize(j, 0);
                }
                prof[j - 1] += r.prompt_tokens + j as u64;
            }
        }
        prof.iter().all(|&m| m <= self.inst.memory_tokens)
    }

    fn next(&self, active: &Active, subset: u32) -> Active {
        let mut a: Active = active.iter().map(|&(i, e)| (i, e + 1)).collect();
        a.extend(bits(subset).map(|i| (i as u8, 1)));
        a.retain(|&(i, e)| u64::from(e) < self.inst.requests[i as usize].output_tokens);
        a.sort_unstable();
        a
    }

    /// Minimal `Σ` of future start rounds, relative to now, of the `unstarted` requests.
    fn solve(&mut self, unstarted: u32, active: Active) -> u64 {
        if unstarted == 0 {
            return 0;
        }
        if let Some(&(v, _)) = self.memo.get(&(unstarted, active.clone())) {
            return v;
        }
        let base = self.future(&active);
        let mut best = (u64::MAX, 0u32);
        let mut sub = unstarted;
        loop {
            let idle_forbidden = sub == 0 && active.is_empty();
            if !idle_forbidden && self.fits(&base, sub) {
                let rest = unstarted & !sub;
                let cost = u64::from(rest.count_ones()) + self.solve(rest, self.next(&active, sub));
                if cost < best.0 {
                    best = (cost, sub);
                }
            }
            if sub == 0 {
                break;
            }
            sub = (sub - 1) & unstarted;
        }
        self.memo.insert((unstarted, active), best);
        best.0
    }
}

fn bits(mask: u32) -> impl Iterator<Item = usize> {
    (0..32).filter(move |i| mask >> i & 1 == 1)
}

/// Exact optimum of an all-at-0 instance with at most 16 requests: `(starts, total latency)`;
/// `None` when some request arrives later, the instance is invalid or too large.
pub fn exact_all_at_zero(inst: &RoundInstance) -> Option<(Vec<u64>, u64)> {
    if !inst.all_at_zero() || inst.len() > 16 || !inst.validate().is_empty() {
        return None;
    }
    let mut dp = Dp { inst, memo: BTreeMap::new() };
    let all = if inst.is_empty() { 0 } else { (1u32 << inst.len()) - 1 };
    let sum_k = dp.solve(all, Vec::new());
    let (mut unstarted, mut active, mut t) = (all, Active::new(), 0u64);
    let mut starts = vec![0u64; inst.len()];
    while unstarted != 0 {
        let &(_, sub) = dp.memo.get(&(unstarted, active.clone()))?;
        for i in bits(sub) {
            starts[i] = t;
        }
        active = dp.next(&active, sub);
        unstarted &= !sub;
        t += 1;
    }
    let total = sum_k + inst.requests.iter().map(|r| r.output_tokens).sum::<u64>();
    Some((starts, total))
}
