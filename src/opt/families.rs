//! Instance generators of the round model: the paper's synthetic set, the adversarial
//! `Ω(√n)` family, the heterogeneous-prompt `Ω(√M)` family for MC-SF, and the Yao family for
//! randomized algorithms. Proofs: `spec/MCSF_NOTES.md` §1, §2, §5. Randomness only through
//! `kvsched::prng::stream(seed, Stream::Instances)`.

use super::round_sim::{simulate, RoundPolicy};
use crate::prng::{stream, Stream};
use kvsched_spec::rounds::{RoundInstance, RoundRequest};
use rand::Rng;
use rand_distr::{Distribution, Exp};

fn req(a: u64, s: u64, o: u64) -> RoundRequest {
    RoundRequest { arrival_round: a, prompt_tokens: s, output_tokens: o }
}

/// The paper's synthetic instances (§6, [B:S6,S7]): `M ~ U[30,50]`, `n ~ U[40,60]`,
/// `s ~ U[1,5]`, `o ~ U[1, M − s]` (integer-uniform). `online = false`: all arrive at 0
/// (arrival model 1); `true`: Poisson arrivals of a rate `λ ~ U[0.5, 1.5]` per round, arrival
/// round = floor of the continuous arrival time (arrival model 2).
pub fn synthetic(seed: u64, online: bool) -> RoundInstance {
    synthetic_sized(seed, online, 40, 60)
}

/// [`synthetic`] with `n ~ U[n_lo, n_hi]` instead of `U[40, 60]` (same draws otherwise; with
/// `(40, 60)` it is [`synthetic`]). Small `n` is where the exact optimum can be proven.
pub fn synthetic_sized(seed: u64, online: bool, n_lo: usize, n_hi: usize) -> RoundInstance {
    let mut rng = stream(seed, Stream::Instances);
    let m: u64 = rng.random_range(30..=50);
    let n: usize = rng.random_range(n_lo..=n_hi);
    let rate: f64 = rng.random_range(0.5..=1.5);
    let exp = Exp::new(rate).expect("positive rate");
    let mut clock = 0.0f64;
    let requests = (0..n)
        .map(|_| {
            let s = rng.random_range(1..=5u64);
            let o = rng.random_range(1..=m - s);
            let a = if online {
                clock += exp.sample(&mut rng);
                clock.floor() as u64
            } else {
                0
            };
            req(a, s, o)
        })
        .collect();
    RoundInstance::new(m, requests)
}

/// A random tiny instance (n <= 6, M in 4..=9, prompts and outputs up to 3), all arriving at 0
/// or at rounds 0..=3, drawn from `rng`: the exhaustive-agreement instances (IP, exact DP,
/// branch-and-bound and brute force agree on every one).
pub fn tiny(rng: &mut crate::prng::Prng, all_at_zero: bool) -> RoundInstance {
    let m = rng.random_range(4..=9u64);
    let n = rng.random_range(1..=6usize);
    let requests = (0..n)
        .map(|_| {
            let s = rng.random_range(1..=3u64.min(m - 1));
            let o = rng.random_range(1..=(m - s).min(3));
            let a = if all_at_zero { 0 } else { rng.random_range(0..=3) };
            RoundRequest { arrival_round: a, prompt_tokens: s, output_tokens: o }
        })
        .collect();
    RoundInstance::new(m, requests)
}

/// Identical prompts, all at 0, `o ~ U[1, max_o]`, `M = 2(s + max_o)`: the four conditions of
/// the paper's Theorem 4.3 (with exact predictions, α = 1).
pub fn identical_prompts(seed: u64, n: usize, s: u64, max_o: u64) -> RoundInstance {
    let mut rng = stream(seed, Stream::Instances);
    let requests = (0..n).map(|_| req(0, s, rng.random_range(1..=max_o))).collect();
    RoundInstance::new(2 * (s + max_o), requests)
}

/// Stochastic arrivals for the regret experiment: Poisson(`rate`) arrivals per round over
/// rounds `0..horizon`, `s ~ U[1,4]`, `o ~ U[1, max_o]`, memory `m`.
pub fn stochastic(seed: u64, horizon: u64, rate: f64, m: u64, max_o: u64) -> RoundInstance {
    let mut rng = stream(seed, Stream::Instances);
    let exp = Exp::new(rate).expect("positive rate");
    let mut clock = exp.sample(&mut rng);
    let mut requests = Vec::new();
    while clock < horizon as f64 {
        requests.push(req(
            clock.floor() as u64,
            rng.random_range(1..=4),
            rng.random_range(1..=max_o),
        ));
        clock += exp.sample(&mut rng);
    }
    RoundInstance::new(m, requests)
}

/// An adversarial instance with a feasible schedule that upper-bounds OPT.
#[derive(Clone, Debug)]
pub struct Adversarial {
    /// The instance the adversary produced against the policy.
    pub instance: RoundInstance,
    /// A feasible schedule (so `OPT ≤` its total).
    pub opt_upper: Vec<u64>,
    /// The round at which the policy started the long request, if it did by the threshold.
    pub tau: Option<u64>,
}

/// The `Ω(√n)` adversary against a deterministic online `policy` (`spec/MCSF_NOTES.md` §1).
/// `M = 2L²`; at round 0 a long request `A = (s = M − L, o = L)` arrives. If the policy has not
/// started `A` by round `L²`, nothing else arrives. If it starts `A` at `τ ≤ L²`, `K = L²`
/// requests `(s = 1, o = 1)` arrive at `τ + 1`. `n ≤ L² + 1`.
pub fn sqrt_n_adversary(l: u64, policy: &mut dyn RoundPolicy) -> Adversarial {
    let m = 2 * l * l;
    let alone = RoundInstance::new(m, vec![req(0, m - l, l)]);
    let tau = simulate(&alone, policy).ok().map(|s| s[0]).filter(|&t| t <= l * l);
    let Some(tau) = tau else {
        return Adversarial { instance: alone, opt_upper: vec![0], tau: None };
    };
    let mut requests = vec![req(0, m - l, l)];
    requests.extend((0..l * l).map(|_| req(tau + 1, 1, 1)));
    let mut opt_upper = vec![tau + 2];
    opt_upper.extend((0..l * l).map(|_| tau + 1));
    Adversarial { instance: RoundInstance::new(m, requests), opt_upper, tau: Some(tau) }
}

/// Heterogeneous prompts on which MC-SF is `Ω(√M)` worse than OPT (`spec/MCSF_NOTES.md` §2):
/// `m = ⌊M/3⌋` thin requests `(s = 1, o = 2)` and `k = ⌈√m⌉` fat ones `(s = M − 1, o = 1)`,
/// all at 0. Shortest-first starts the fat ones first, one per round (each fills memory),
/// and the thin ones wait `k` rounds; OPT runs all thin ones at once first. Returns the
/// instance and a feasible schedule (thin at 0, fat at 2, 3, ...).
pub fn hetero_sqrt_m(memory: u64) -> (RoundInstance, Vec<u64>) {
    let m = memory / 3;
    let k = (m as f64).sqrt().ceil() as u64;
    let mut requests: Vec<RoundRequest> = (0..k).map(|_| req(0, memory - 1, 1)).collect();
    requests.extend((0..m).map(|_| req(0, 1, 2)));
    let mut upper: Vec<u64> = (0..k).map(|j| 2 + j).collect();
    upper.extend((0..m).map(|_| 0));
    (RoundInstance::new(memory, requests), upper)
}

/// The Yao family (`spec/MCSF_NOTES.md` §5): `L`, `K = L` wide requests `(s = L, o = 1)` arriving
/// together at a uniformly random round `r ∈ [1, R]`, `R = ⌈L^{3/2}⌉`, after a long request
/// `A = (0, L², L)`; `M = L(L + 1)`.
pub fn yao_instance(l: u64, r: u64) -> RoundInstance {
    let mut requests = vec![req(0, l * l, l)];
    requests.extend((0..l).map(|_| req(r, l, 1)));
    RoundInstance::new(l * (l + 1), requests)
}

/// The exact optimum of [`yao_instance`]`(l, r)` (closed form, checked against the IP).
pub fn yao_opt(l: u64, r: u64) -> u64 {
    let k = l;
    (l + k * (l + 1).saturating_sub(r).max(1)).min(k + r + 1 + l)
}

/// A lower bound on the cost of any algorithm that starts `A` at `tau` unless the burst has
/// arrived by then (`None`: waits for the burst), on [`yao_instance`]`(l, r)`.
pub fn yao_alg_lower(l: u64, tau: Option<u64>, r: u64) -> u64 {
    let k = l;
    match tau {
        Some(t) if t < r && r < t + l => t + l + k * (t + l + 1 - r),
        Some(t) if t < r => t + l + k,
        _ => k + r + 1 + l,
    }
}

/// Yao bound for one `L`: `min over deterministic τ of E[ALG_τ] / E[OPT]`, `r ~ U[1, R]`.
#[derive(Clone, Copy, Debug)]
pub struct YaoPoint {
    /// Parameter `L` (`n = L + 1`).
    pub l: u64,
    /// The best deterministic threshold (`None`: wait for the burst).
    pub best_tau: Option<u64>,
    /// `E[ALG]` of the best deterministic algorithm (a lower bound on every one).
    pub e_alg: f64,
    /// `E[OPT]`.
    pub e_opt: f64,
}

impl YaoPoint {
    /// The lower bound on every randomized algorithm's competitive ratio.
    pub fn ratio(&self) -> f64 {
        self.e_alg / self.e_opt
    }
}

/// Computes the Yao bound for `L` exactly (sums over `r`, minimum over `τ ∈ [0, R] ∪ {∞}`).
pub fn yao_point(l: u64) -> YaoPoint {
    let big_r = ((l as f64).powf(1.5)).ceil() as u64;
    let rs = 1..=big_r;
    let e_opt = rs.clone().map(|r| yao_opt(l, r)).sum::<u64>() as f64 / big_r as f64;
    let taus = (0..=big_r).map(Some).chain(std::iter::once(None));
    let (best_tau, e_alg) = taus
        .map(|tau| {
            let e = rs.clone().map(|r| yao_alg_lower(l, tau, r)).sum::<u64>() as f64 / big_r as f64;
            (tau, e)
        })
        .fold((None, f64::INFINITY), |b, x| if x.1 < b.1 { x } else { b });
    YaoPoint { l, best_tau, e_alg, e_opt }
}

/// Least-squares slope of `ln y` against `ln x`.
pub fn loglog_slope(xs: &[f64], ys: &[f64]) -> f64 {
    let lx: Vec<f64> = xs.iter().map(|x| x.ln()).collect();
    let ly: Vec<f64> = ys.iter().map(|y| y.ln()).collect();
    let n = lx.len() as f64;
    let (mx, my) = (lx.iter().sum::<f64>() / n, ly.iter().sum::<f64>() / n);
    let cov: f64 = lx.iter().zip(&ly).map(|(x, y)| (x - mx) * (y - my)).sum();
    let var: f64 = lx.iter().map(|x| (x - mx) * (x - mx)).sum();
    cov / var
}

/// `inst` in the round-model TOML format of `spec/ROUNDS.md`, one request per line (what
/// `kvsched opt` reads back unchanged).
pub fn to_toml(inst: &RoundInstance) -> String {
    let mut out = format!(
        "format_version = {}\nmemory_tokens = {}\nrequests = [\n",
        inst.format_version, inst.memory_tokens
    );
    for r in &inst.requests {
        out.push_str(&format!(
            "  {{ arrival_round = {}, prompt_tokens = {}, output_tokens = {} }},\n",
            r.arrival_round, r.prompt_tokens, r.output_tokens
        ));
    }
    out.push_str("]\n");
    out
}
