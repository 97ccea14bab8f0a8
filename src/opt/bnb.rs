//! An exact branch-and-bound for the MC-SF paper's round model (arXiv 2502.07115 §2–3, the
//! hindsight optimum of IP (1)–(4)), independent of HiGHS. Derivations and validity proofs of
//! every rule: `spec/MCSF_NOTES.md` §0.1.
//!
//! **Search.** Chronological: at decision round `t` the state is (unstarted set, running
//! requests with their ages, accrued waiting cost `g`). A branch chooses any subset of the
//! arrived, unstarted requests that fits every future round together with the running ones
//! (checked on the whole future profile), each request left waiting pays 1, and the search
//! advances to `t + 1` (or jumps to the next arrival when nothing waits). Depth-first, children
//! in "largest shortest-first subset first" order; the incumbent starts as MC-SF's schedule.
//!
//! **Pruning** (all proved in the notes):
//! - *bound*: `g + Σ o + W(t, U, running)`, where `W` lower-bounds the remaining waiting from
//!   the `k`-th smallest completion: at least the `k`-th smallest `max(t, a_i) + o_i`, and at
//!   least the first round by which the free capacity left by the running requests holds the
//!   `k` smallest volumes, measured with the identity and with dual-feasible functions
//!   `φ_λ` (Fekete–Schepers), which count a holding above `M − λ` as `M` and one below `λ` as 0;
//! - *dominance*: a state (unstarted set, ages of the running requests, and `t` while some
//!   request has not arrived yet) reached again with an accrued cost at least the one stored is
//!   pruned (the cost-to-go depends only on the key);
//! - *no idle round* once every request has arrived (`spec/MCSF_NOTES.md` §0, window 1);
//! - *symmetry*: identical requests (same `a, s, o`) start in index order.
//!
//! **Certificate.** [`BnbSolution::proven_optimal`] is true only when the search finished
//! without hitting a limit; otherwise the result is the bracket `[lower_bound, total_latency]`
//! with `lower_bound` the root bound. [`BnbOptions::interrupt`] is a limit too: a flag raised by
//! another thread (Ctrl-C in `kvsched opt`, `KeyboardInterrupt` in Python) stops the search
//! within one node, with its incumbent. Exponential in the worst case: on the paper's synthetic
//! distribution it proves small instances fast (measurements: `BENCHMARKS.md`), not n 40–60.

use super::round_sim::{simulate, Mcsf};
use kvsched_spec::rounds::{check_schedule, RoundInstance};
// The memo is only probed by key, never iterated, so its hash order cannot change a result.
#[allow(clippy::disallowed_types)]
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The largest instance the search accepts (the unstarted set is a 64-bit mask).
pub const MAX_REQUESTS: usize = 64;

/// Search limits and the starting incumbent.
#[derive(Clone, Debug, Default)]
pub struct BnbOptions {
    /// Wall-clock limit in seconds (`None`: no limit).
    pub time_limit_s: Option<f64>,
    /// Node limit (`None`: no limit).
    pub node_limit: Option<u64>,
    /// A feasible schedule to start from (default: MC-SF's).
    pub warm_start: Option<Vec<u64>>,
    /// Stops the search (as a limit does) once another thread sets it; `None`: never.
    pub interrupt: Option<Arc<AtomicBool>>,
}

/// What the search returned: a proven optimum or a bracket.
#[derive(Clone, Debug)]
pub struct BnbSolution {
    /// Start rounds of the best schedule found (checked feasible).
    pub starts: Vec<u64>,
    /// Its total latency.
    pub total_latency: u64,
    /// Whether the search finished (then `total_latency` is optimal).
    pub proven_optimal: bool,
    /// A proven lower bound on the optimum (`total_latency` when proven, else the root bound).
    pub lower_bound: u64,
    /// The lower bound at the root (before any branching).
    pub root_bound: u64,
    /// Search nodes visited.
    pub nodes: u64,
    /// Wall-clock seconds.
    pub solve_time_s: f64,
}

#[derive(Clone, Copy)]
struct Req {
    a: u64,
    s: u64,
    o: u64,
}

type Key = (u64, Vec<(u8, u32)>, u64);

/// A decision round of the search: what [`Search::branch`] needs to build the children.
struct Node<'a> {
    t: u64,
    running: &'a [(usize, u64)],
    waiting: &'a [usize],
    g: u64,
    unstarted: u64,
}

struct Search {
    m: u64,
    reqs: Vec<Req>,
    max_a: u64,
    sum_o: u64,
    /// `λ` of each dual-feasible function used by the bound (0: the identity).
    lambdas: Vec<u64>,
    /// `vol[d][i]`: request `i`'s volume under function `d`.
    vol: Vec<Vec<u64>>,
    starts: Vec<u64>,
    best: u64,
    best_starts: Vec<u64>,
    #[allow(clippy::disallowed_types)]
    memo: HashMap<Key, u64>,
    nodes: u64,
    stopped: bool,
    deadline: Option<Instant>,
    node_limit: u64,
    interrupt: Option<Arc<AtomicBool>>,
}

/// `φ_λ(h)` for capacity `m` (`λ = 0`: identity). Valid for `λ ≤ m/2`: if holdings sum to at
/// most `m`, at most one exceeds `m − λ` and then every other one is below `λ`.
fn phi(m: u64, lambda: u64, h: u64) -> u64 {
    if lambda == 0 || (lambda..=m - lambda).contains(&h) {
        h
    } else if h > m - lambda {
        m
    } else {
        0
    }
}

impl Search {
    #[allow(clippy::disallowed_types)]
    fn new(inst: &RoundInstance) -> Search {
        let m = inst.memory_tokens;
        let reqs: Vec<Req> = inst
            .requests
            .iter()
            .map(|r| Req { a: r.arrival_round, s: r.prompt_tokens, o: r.output_tokens })
            .collect();
        let mut s = Search {
            m,
            max_a: reqs.iter().map(|r| r.a).max().unwrap_or(0),
            sum_o: reqs.iter().map(|r| r.o).sum(),
            reqs,
            lambdas: vec![0],
            vol: Vec::new(),
            starts: vec![0; inst.len()],
            best: u64::MAX,
            best_starts: Vec::new(),
            memo: HashMap::default(),
            nodes: 0,
            stopped: false,
            deadline: None,
            node_limit: u64::MAX,
            interrupt: None,
        };
        s.choose_lambdas();
        s
    }

    fn volumes(&self, lambda: u64) -> Vec<u64> {
        let m = self.m;
        self.reqs.iter().map(|r| (1..=r.o).map(|j| phi(m, lambda, r.s + j)).sum()).collect()
    }

    /// Keeps the identity and the (up to) four `λ` whose root bound is largest.
    fn choose_lambdas(&mut self) {
        let all = (1u64 << self.reqs.len().min(63)) - 1;
        let mut scored: Vec<(u64, u64)> = (1..=self.m / 2)
            .map(|l| {
                self.lambdas = vec![l];
                self.vol = vec![self.volumes(l)];
                (self.wait_lb(0, all, &[]), l)
            })
            .collect();
        scored.sort_unstable_by(|x, y| y.cmp(x));
        self.lambdas = std::iter::once(0).chain(scored.iter().take(4).map(|x| x.1)).collect();
        self.vol = self.lambdas.iter().map(|&l| self.volumes(l)).collect();
    }

    /// Lower bound on the waiting still to come, `Σ_{i ∈ U} (k_i − max(t, a_i))`.
    fn wait_lb(&self, t: u64, unstarted: u64, running: &[(usize, u64)]) -> u64 {
        let idx: Vec<usize> = bits(unstarted).collect();
        let mut rel: Vec<u64> =
            idx.iter().map(|&i| t.max(self.reqs[i].a) + self.reqs[i].o).collect();
        let base: u64 = rel.iter().sum();
        rel.sort_unstable();
        let mut c = rel; // c[k]: lower bound on the (k+1)-th smallest completion
        let horizon = running.iter().map(|&(i, k)| k + self.reqs[i].o).max().unwrap_or(t);
        let len = horizon.saturating_sub(t) as usize;
        for (d, &lambda) in self.lambdas.iter().enumerate() {
            // cum[j]: φ-capacity left in rounds t+1 ..= t+j.
            let mut cum = vec![0u64; len + 1];
            for j in 1..=len {
                let tau = t + j as u64;
                let used: u64 = running
                    .iter()
                    .map(|&(i, k)| {
                        let r = self.reqs[i];
                        if tau <= k + r.o {
                            phi(self.m, lambda, r.s + tau - k)
                        } else {
                            0
                        }
                    })
                    .sum();
                cum[j] = cum[j - 1] + self.m.saturating_sub(used);
            }
            let mut v: Vec<u64> = idx.iter().map(|&i| self.vol[d][i]).collect();
            v.sort_unstable();
            let (mut acc, mut j) = (0u64, 0usize);
            for (k, vk) in v.iter().enumerate() {
                acc += vk;
                let need = if acc <= cum[len] {
                    while cum[j] < acc {
                        j += 1;
                    }
                    j as u64
                } else {
                    len as u64 + (acc - cum[len]).div_ceil(self.m)
                };
                c[k] = c[k].max(t + need);
            }
        }
        let vol_total = c.iter().sum::<u64>();
        vol_total.max(self.chain_total(t, &idx)).saturating_sub(base)
    }

    /// Lower bound on `Σ_{i ∈ U} c_i` from the completion separations of the requests whose
    /// peak exceeds `M/2` (the set `B`; notes §0.1): if `i` completes before `j`, then
    /// `c_j − c_i ≥ min(o_j, P_i + P_j − M)`. Requests outside `B` count `max(t, a_i) + o_i`.
    fn chain_total(&self, t: u64, idx: &[usize]) -> u64 {
        let m = self.m as i64;
        let rel = |i: usize| t.max(self.reqs[i].a) + self.reqs[i].o;
        let big: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|&i| 2 * (self.reqs[i].s + self.reqs[i].o) > self.m)
            .collect();
        let mut total: u64 = idx.iter().filter(|i| !big.contains(i)).map(|&i| rel(i)).sum();
        if big.is_empty() {
            return total;
        }
        // Doubled: 2e_v = 2P_v − M > 0, 2ē_v = min(2e_v, M − 2 max s).
        let max_s = big.iter().map(|&i| self.reqs[i].s as i64).max().unwrap_or(0);
        let e2: Vec<i64> =
            big.iter().map(|&i| 2 * (self.reqs[i].s + self.reqs[i].o) as i64 - m).collect();
        let eb2: Vec<i64> = e2.iter().map(|&e| e.min(m - 2 * max_s)).collect();
        let mut w2: Vec<i64> = e2.iter().zip(&eb2).map(|(a, b)| a + b).collect();
        w2.sort_unstable();
        let ends2 = e2.iter().min().unwrap() + eb2.iter().min().unwrap();
        let mut rels: Vec<u64> = big.iter().map(|&i| rel(i)).collect();
        rels.sort_unstable();
        let first = rels[0];
        let mut acc2 = 0i64;
        for k in 0..big.len() {
            // C_(k+1) ≥ C_(1) + (k−1 smallest w) + min e + min ē, for k ≥ 1.
            let gap2 = if k == 0 {
                0
            } else {
                if k >= 2 {
                    acc2 += w2[k - 2];
                }
                acc2 + ends2
            };
            let gap = if gap2 <= 0 { 0 } else { (gap2 as u64).div_ceil(2) };
            total += rels[k].max(first + gap);
        }
        total
    }

    fn out_of_budget(&mut self) -> bool {
        if self.stopped {
            return true;
        }
        self.nodes += 1;
        if self.nodes >= self.node_limit
            || self.interrupt.as_ref().is_some_and(|f| f.load(Ordering::Relaxed))
        {
            self.stopped = true;
        } else if self.nodes.is_multiple_of(1024) {
            self.stopped = self.deadline.is_some_and(|d| Instant::now() >= d);
        }
        self.stopped
    }

    fn go(&mut self, t: u64, unstarted: u64, running: Vec<(usize, u64)>, g: u64) {
        if self.out_of_budget() {
            return;
        }
        if unstarted == 0 {
            if g + self.sum_o < self.best {
                self.best = g + self.sum_o;
                self.best_starts = self.starts.clone();
            }
            return;
        }
        if g + self.sum_o + self.wait_lb(t, unstarted, &running) >= self.best {
            return;
        }
        let mut ages: Vec<(u8, u32)> =
            running.iter().map(|&(i, k)| (i as u8, (t - k) as u32)).collect();
        ages.sort_unstable();
        let key = (unstarted, ages, if t >= self.max_a { u64::MAX } else { t });
        match self.memo.get(&key) {
            Some(&g0) if g0 <= g => return,
            _ => {
                self.memo.insert(key, g);
            }
        }
        let mut waiting: Vec<usize> = bits(unstarted).filter(|&i| self.reqs[i].a <= t).collect();
        if waiting.is_empty() {
            let next = bits(unstarted).map(|i| self.reqs[i].a).min().expect("unstarted");
            let run = running.into_iter().filter(|&(i, k)| k + self.reqs[i].o > next).collect();
            self.go(next, unstarted, run, g);
            return;
        }
        waiting.sort_by_key(|&i| {
            let r = self.reqs[i];
            (r.o, r.s, r.a, i)
        });
        // Free memory at rounds t+1.. given the running requests.
        let horizon = running.iter().map(|&(i, k)| k + self.reqs[i].o).max().unwrap_or(t);
        let mut prof = vec![0u64; (horizon - t) as usize + 1];
        for &(i, k) in &running {
            let r = self.reqs[i];
            for tau in t + 1..=k + r.o {
                prof[(tau - t) as usize] += r.s + tau - k;
            }
        }
        let ctx = Node { t, running: &running, waiting: &waiting, g, unstarted };
        self.branch(&ctx, 0, &mut prof, 0);
    }

    /// Enumerates (depth-first, include-first, so larger shortest-first subsets come first)
    /// every subset of `waiting[pos..]` that fits on top of `prof` (holdings at rounds `t + j`)
    /// and searches each child. Identical requests (adjacent in `waiting`) are only taken as a
    /// prefix of their group.
    fn branch(&mut self, n: &Node, pos: usize, prof: &mut Vec<u64>, chosen: u64) {
        if self.out_of_budget() {
            return;
        }
        let w = n.waiting;
        if pos == w.len() {
            self.child(n, chosen);
            return;
        }
        let r = self.reqs[w[pos]];
        let m = self.m;
        let fits = (1..=r.o).all(|j| prof.get(j as usize).copied().unwrap_or(0) + r.s + j <= m);
        if fits {
            if prof.len() <= r.o as usize {
                prof.resize(r.o as usize + 1, 0);
            }
            for j in 1..=r.o {
                prof[j as usize] += r.s + j;
            }
            self.branch(n, pos + 1, prof, chosen | 1 << w[pos]);
            for j in 1..=r.o {
                prof[j as usize] -= r.s + j;
            }
        }
        // Excluding w[pos] excludes the identical requests after it.
        let mut next = pos + 1;
        while next < w.len() && self.same(w[next], w[pos]) {
            next += 1;
        }
        self.branch(n, next, prof, chosen);
    }

    /// Starts `sub` at `n.t` and searches from round `t + 1`.
    fn child(&mut self, n: &Node, sub: u64) {
        let t = n.t;
        if sub == 0 && n.running.is_empty() && t >= self.max_a {
            return; // an idle round with every request arrived is never optimal
        }
        let mut run: Vec<(usize, u64)> =
            n.running.iter().copied().filter(|&(i, k)| k + self.reqs[i].o > t + 1).collect();
        for i in bits(sub) {
            self.starts[i] = t;
            if self.reqs[i].o > 1 {
                run.push((i, t));
            }
        }
        let waited = n.waiting.len() as u64 - u64::from(sub.count_ones());
        self.go(t + 1, n.unstarted & !sub, run, n.g + waited);
    }

    fn same(&self, i: usize, j: usize) -> bool {
        let (x, y) = (self.reqs[i], self.reqs[j]);
        (x.a, x.s, x.o) == (y.a, y.s, y.o)
    }
}

fn bits(mask: u64) -> impl Iterator<Item = usize> {
    (0..64).filter(move |i| mask >> i & 1 == 1)
}

/// Solves the instance exactly (or returns a bracket when a limit hits). Errors on an invalid
/// instance, more than [`MAX_REQUESTS`] requests or an infeasible warm start.
pub fn solve_bnb(inst: &RoundInstance, opts: &BnbOptions) -> Result<BnbSolution, String> {
    let started = Instant::now();
    let problems = inst.validate();
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    if inst.len() > MAX_REQUESTS {
        return Err(format!("branch-and-bound takes at most {MAX_REQUESTS} requests"));
    }
    let warm = match &opts.warm_start {
        Some(w) => w.clone(),
        None => simulate(inst, &mut Mcsf)?,
    };
    let warm_total = check_schedule(inst, &warm)?;
    let inst = inst.clone();
    let (time_limit, node_limit) = (opts.time_limit_s, opts.node_limit);
    let interrupt = opts.interrupt.clone();
    // The recursion is one frame per round: run it on a thread with a large stack.
    let worker = std::thread::Builder::new().stack_size(256 << 20).spawn(move || {
        let mut s = Search::new(&inst);
        s.best = warm_total;
        s.best_starts = warm;
        s.deadline = time_limit.map(|l| started + std::time::Duration::from_secs_f64(l));
        s.node_limit = node_limit.unwrap_or(u64::MAX);
        s.interrupt = interrupt;
        let all = if inst.is_empty() { 0 } else { u64::MAX >> (64 - inst.len()) };
        let root = s.sum_o + s.wait_lb(0, all, &[]);
        s.go(0, all, Vec::new(), 0);
        (s.best, s.best_starts, !s.stopped, root.min(s.best), s.nodes)
    });
    let (best, starts, proven, root, nodes) =
        worker.map_err(|e| e.to_string())?.join().map_err(|_| "search panicked".to_string())?;
    Ok(BnbSolution {
        total_latency: best,
        proven_optimal: proven,
        lower_bound: if proven { best } else { root },
        root_bound: root,
        starts,
        nodes,
        solve_time_s: started.elapsed().as_secs_f64(),
    })
}
