//! The MC-SF paper's α-protection φ-clearing baseline: α-protection admission (see
//! [`super::alpha_protect`]), but on overflow only a fraction φ of the running requests is
//! cleared, most recently admitted first, repeatedly until the rest fit.
//!
//! Models the "α-protection φ-clearing" benchmark of Jaillet et al., arXiv 2502.07115 (v4/v5,
//! real-trace experiments; `shared/papers/mcsf.md` §7.2). Our reading ([C] in the notes): at an
//! overflow, `ceil(φ·n)` of the `n` running requests (at least one) are evicted, most recent
//! first, and this repeats until the remaining requests' next token fits in `M`. Evicted
//! requests restart from scratch (recompute) and rejoin the waiting queue in arrival order.
//! Most-recent-first clearing also satisfies the spec's LIFO eviction rule.
//!
//! Defaults: `α = 0.21` (the paper's tuned high-demand value), `φ = 0.2` (the paper lists φ in
//! {0.2, 0.1}; the exact grid is ambiguous).

use super::alpha_protect::{decide_alpha, Clearing};
use crate::sim::{Plan, Scheduler, View};
use kvsched_spec::Information;

/// α-protection φ-clearing parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct AlphaClear {
    /// Protected fraction of memory.
    pub alpha: f64,
    /// Fraction of running requests cleared per overflow round.
    pub phi: f64,
    /// The fast path of [`super::alpha_protect::AlphaProtect::fast_path`] (default on).
    pub fast_path: bool,
}

impl Default for AlphaClear {
    fn default() -> Self {
        AlphaClear { alpha: 0.21, phi: 0.2, fast_path: true }
    }
}

impl Scheduler for AlphaClear {
    fn name(&self) -> String {
        "alpha-clear".into()
    }

    fn information(&self) -> Information {
        Information::Hidden
    }

    fn decide(&mut self, view: &View<'_>) -> Plan {
        decide_alpha(view, self.alpha, Clearing::Fraction(self.phi), self.fast_path)
    }
}
