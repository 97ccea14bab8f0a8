//! The WAIT paper's fluid benchmark (arXiv 2504.11320 §4, `fluid.tex`): pure `f64` closed forms.
//!
//! Notation (WAIT paper §1–§4; the summary in `shared/papers/wait-nested-wait.md` §2):
//! - class `j` has prompt `l_j`, output `l'_j`, Poisson rate `lambda_j`;
//! - per-iteration time is affine, `tau = d0 + d1 * (KV tokens attended by the batch)` (Eq. 1);
//! - the KV mass of one request over its life is
//!   `S_j = sum_{s=0}^{l'_j} (l_j + s) = (l'_j + 1)(l_j + l'_j/2)` ([`kv_mass`]);
//! - the load is `A = sum_j lambda_j S_j` (KV token-iterations offered per second).
//!
//! The multi-type equilibrium (WAIT paper §4, multi-type; single type is the case `m = 1`):
//! - iteration time `dT* = d0 / (1 - d1 A)`;
//! - per-stage population `n_j* = dT* lambda_j` (the same at each of the `l'_j + 1` stages);
//! - memory `M* = sum_j n_j* S_j = d0 A / (1 - d1 A)`;
//! - throughput benchmark `sum_j lambda_j l'_j` decode tokens per second (final version; v1
//!   wrote `sum (1 + l'_j) lambda_j`).
//!
//! Instability cut (Proposition 1): if `d1 A >= 1` (in particular if some
//! `lambda_j d1 S_j >= 1`) the fluid has no equilibrium and every policy's latency is
//! `Omega(T)`. The fluid stability region for capacity `C` is `{d1 A < 1 and M* <= C}`.
//!
//! For a fixed mix `p_j = lambda_j / Lambda` with per-arrival mass `a = sum_j p_j S_j`:
//! - `M*(Lambda) = d0 Lambda a / (1 - d1 Lambda a)` is increasing in `Lambda`;
//! - `M*(Lambda) = C` iff `Lambda a (d0 + d1 C) = C`, so `lambda_max = C / (a (d0 + d1 C))`
//!   (derivation: `d0 A = C (1 - d1 A)  <=>  A (d0 + d1 C) = C`; note `lambda_max < pole`);
//! - the pole (where `d1 A = 1`) is `1 / (d1 a)`, infinite when `d1 = 0`.
//!
//! Nothing here is NaN or infinite: unbounded quantities are `None` and the regime is a
//! [`Regime`]. Model conventions:
//! - The paper's stage convention (`SeparateDecode`: a prefill iteration then `l'` decode
//!   iterations) is used whatever the workload's `first_token` says; under `WithPrefill` the
//!   exact mass would be `l'(l + (l'-1)/2)`, slightly smaller.
//! - Step-time models: `Affine {d0, d1}` is used as is; `UnitRounds` is `d0 = 1 s` (one round),
//!   `d1 = 0`; `Rich` is rejected ([`FluidError::UnsupportedStepTime`]): the fluid model is
//!   defined for the affine law, and any reduction of the richer terms (per-prefill-token,
//!   token-wise GEMM) to a `(d0, d1)` pair depends on the batch mix. Fit an affine law and use
//!   [`FluidInputs::new`] instead.
//!
//! Submodules: [`nested`] (Nested WAIT segments, drift conditions, `theta_k`, `M_req`) and
//! [`design`] (threshold design for WAIT / Nested WAIT schedulers).

pub mod design;
pub mod nested;

use crate::step_time::StepTime;
use crate::workload::WorkloadFile;
use serde::Serialize;

/// Why a fluid computation could not be set up.
#[derive(Clone, Debug, PartialEq)]
pub enum FluidError {
    /// The step-time model is not affine (`Rich`); the message says what to do.
    UnsupportedStepTime(String),
    /// An input is out of range (negative rate, no class, non-finite coefficient, ...).
    BadInput(String),
}

impl std::fmt::Display for FluidError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FluidError::UnsupportedStepTime(m) | FluidError::BadInput(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for FluidError {}

/// One class as the fluid model sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FluidClass {
    /// Optional label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Prompt length `l_j` (tokens).
    pub prompt_tokens: u64,
    /// Output length `l'_j` (decode iterations).
    pub output_tokens: u64,
    /// Arrival rate `lambda_j` (requests per second).
    pub rate_per_s: f64,
}

impl FluidClass {
    /// `S_j` of this class ([`kv_mass`]).
    pub fn mass(&self) -> f64 {
        kv_mass(self.prompt_tokens, self.output_tokens)
    }
}

/// The inputs of the fluid model: classes, the affine step time and the KV capacity.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FluidInputs {
    /// The classes.
    pub classes: Vec<FluidClass>,
    /// Per-iteration overhead `d0` (seconds).
    pub d0_s: f64,
    /// Per-KV-token iteration time `d1` (seconds per token).
    pub d1_s_per_token: f64,
    /// KV capacity `C` (tokens).
    pub capacity_tokens: f64,
}

/// `S = (l' + 1)(l + l'/2)`: KV token-iterations one request holds over its `l' + 1` stages
/// (WAIT paper §4, `S_j := sum_{s=0}^{l'_j} (l_j + s)`).
pub fn kv_mass(prompt_tokens: u64, output_tokens: u64) -> f64 {
    (output_tokens as f64 + 1.0) * (prompt_tokens as f64 + output_tokens as f64 / 2.0)
}

/// `M* = d0 A / (1 - d1 A)` (WAIT paper §4), `None` beyond the cut `d1 A >= 1`.
pub fn m_star(d0_s: f64, d1_s_per_token: f64, load: f64) -> Option<f64> {
    iteration_time(d0_s, d1_s_per_token, load).map(|dt| dt * load)
}

/// `dT* = d0 / (1 - d1 A)` (WAIT paper §4), `None` beyond the cut `d1 A >= 1`.
pub fn iteration_time(d0_s: f64, d1_s_per_token: f64, load: f64) -> Option<f64> {
    let slack = 1.0 - d1_s_per_token * load;
    (slack > 0.0).then(|| d0_s / slack)
}

/// The maximal total rate of a fixed mix with per-arrival mass `a`: `C / (a (d0 + d1 C))`,
/// the root of `M*(Lambda) = C` (module docs).
pub fn lambda_max(d0_s: f64, d1_s_per_token: f64, capacity_tokens: f64, a: f64) -> f64 {
    capacity_tokens / (a * (d0_s + d1_s_per_token * capacity_tokens))
}

/// The pole `1 / (d1 a)` of `M*(Lambda)` for a fixed mix (Proposition 1's cut); `None` if
/// `d1 = 0`.
pub fn lambda_pole(d1_s_per_token: f64, a: f64) -> Option<f64> {
    (d1_s_per_token > 0.0).then(|| 1.0 / (d1_s_per_token * a))
}

fn check(what: &str, x: f64, positive: bool) -> Result<(), FluidError> {
    if !x.is_finite() || x < 0.0 || (positive && x == 0.0) {
        let need = if positive { "> 0" } else { ">= 0" };
        return Err(FluidError::BadInput(format!(
            "{what}: expected a finite number {need}, got {x}"
        )));
    }
    Ok(())
}

impl FluidInputs {
    /// Validated inputs: at least one class, finite rates `>= 0` not all zero, outputs `>= 1`,
    /// `d0 > 0`, `d1 >= 0`, `C > 0`.
    pub fn new(
        classes: Vec<FluidClass>,
        d0_s: f64,
        d1_s_per_token: f64,
        capacity_tokens: f64,
    ) -> Result<FluidInputs, FluidError> {
        check("d0_s", d0_s, true)?;
        check("d1_s_per_token", d1_s_per_token, false)?;
        check("capacity_tokens", capacity_tokens, true)?;
        if classes.is_empty() {
            return Err(FluidError::BadInput("classes: expected at least one class".into()));
        }
        for (i, c) in classes.iter().enumerate() {
            check(&format!("class[{i}].rate_per_s"), c.rate_per_s, false)?;
            if c.output_tokens == 0 {
                let m = format!("class[{i}].output_tokens: expected at least 1");
                return Err(FluidError::BadInput(m));
            }
        }
        if classes.iter().all(|c| c.rate_per_s == 0.0) {
            return Err(FluidError::BadInput("classes: expected a positive rate".into()));
        }
        Ok(FluidInputs { classes, d0_s, d1_s_per_token, capacity_tokens })
    }

    /// Reads classes, step time and capacity from a workload file (rates at scale 1; the
    /// `arrivals` modulation is ignored). See the module docs for the step-time reduction.
    pub fn from_workload(w: &WorkloadFile) -> Result<FluidInputs, FluidError> {
        let (d0, d1) = match &w.step_time {
            StepTime::Affine { d0_s, d1_s_per_token } => (*d0_s, *d1_s_per_token),
            StepTime::UnitRounds => (1.0, 0.0),
            StepTime::Rich { .. } => {
                return Err(FluidError::UnsupportedStepTime(
                    "step_time: the fluid model is defined for the affine law \
                     tau = d0 + d1 * KV tokens (WAIT paper Eq. 1); kind = \"rich\" is not \
                     supported: fit an affine law (kind = \"affine\") for the fluid benchmark"
                        .into(),
                ))
            }
        };
        let classes = w
            .classes
            .iter()
            .map(|c| FluidClass {
                name: c.name.clone(),
                prompt_tokens: c.prompt_tokens,
                output_tokens: c.output_tokens,
                rate_per_s: c.rate_per_s,
            })
            .collect();
        FluidInputs::new(classes, d0, d1, w.memory.capacity().get() as f64)
    }

    /// The load `A = sum_j lambda_j S_j` (KV token-iterations per second).
    pub fn load(&self) -> f64 {
        self.classes.iter().map(|c| c.rate_per_s * c.mass()).sum()
    }

    /// Total rate `Lambda = sum_j lambda_j`.
    pub fn total_rate(&self) -> f64 {
        self.classes.iter().map(|c| c.rate_per_s).sum()
    }

    /// Per-arrival mass of the mix, `a = A / Lambda = sum_j p_j S_j`.
    pub fn mean_mass(&self) -> f64 {
        self.load() / self.total_rate()
    }

    /// The same workload with every rate multiplied by `scale`.
    pub fn scaled(&self, scale: f64) -> FluidInputs {
        let mut out = self.clone();
        out.classes.iter_mut().for_each(|c| c.rate_per_s *= scale);
        out
    }
}

/// Where a workload sits relative to the fluid stability region.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    /// `d1 A < 1` and `M* <= C`.
    Stable,
    /// `d1 A < 1` but `M* > C`: the equilibrium exists but does not fit in memory.
    MemoryBound,
    /// `d1 A >= 1`: beyond Proposition 1's cut; no equilibrium, `M* = infinity`.
    Unbounded,
}

/// One class's equilibrium.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassSolution {
    /// The class.
    #[serde(flatten)]
    pub class: FluidClass,
    /// `S_j` (tokens x iterations).
    pub mass_tokens: f64,
    /// `lambda_j d1 S_j`, the class's own Proposition 1 quantity (`>= 1` is unstable alone).
    pub cut: f64,
    /// `n_j* = dT* lambda_j`; `None` beyond the cut.
    pub n_per_stage: Option<f64>,
    /// `n_j* S_j`; `None` beyond the cut.
    pub memory_tokens: Option<f64>,
    /// `lambda_j l'_j` decode tokens per second.
    pub throughput_tokens_per_s: f64,
}

/// The fluid benchmark of one workload. Serializes with `null` for unbounded quantities.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FluidSolution {
    /// `d1 A < 1 && M* <= C`.
    pub stable: bool,
    /// The regime.
    pub regime: Regime,
    /// The load `A = sum_j lambda_j S_j` (token-iterations per second).
    pub load_tokens_per_s: f64,
    /// Proposition 1's quantity `d1 A`; the fluid is unbounded when it is `>= 1`.
    pub instability_cut: f64,
    /// `dT*` (seconds).
    pub iteration_time_s: Option<f64>,
    /// `M*` (tokens).
    pub memory_tokens: Option<f64>,
    /// `M* / C`.
    pub memory_over_capacity: Option<f64>,
    /// KV capacity `C` (tokens).
    pub capacity_tokens: f64,
    /// `d0` (seconds).
    pub d0_s: f64,
    /// `d1` (seconds per token).
    pub d1_s_per_token: f64,
    /// Throughput benchmark `sum_j lambda_j l'_j` (decode tokens per second; Proposition 2's
    /// upper bound when `C >= M*`).
    pub throughput_tokens_per_s: f64,
    /// `Lambda = sum_j lambda_j`.
    pub total_rate_per_s: f64,
    /// Per-arrival mass `a`.
    pub mean_mass_tokens: f64,
    /// Largest total rate of this mix with `M* <= C`.
    pub lambda_max_per_s: f64,
    /// The pole `1 / (d1 a)`; `None` when `d1 = 0`.
    pub lambda_pole_per_s: Option<f64>,
    /// `lambda_max / Lambda`: how far the rates can be scaled.
    pub max_scale: f64,
    /// Per class.
    pub classes: Vec<ClassSolution>,
}

impl FluidSolution {
    /// Solves a workload file (see [`FluidInputs::from_workload`]).
    pub fn from_workload(w: &WorkloadFile) -> Result<FluidSolution, FluidError> {
        Ok(FluidSolution::solve(&FluidInputs::from_workload(w)?))
    }

    /// Solves validated inputs with the closed forms of the module docs.
    pub fn solve(inp: &FluidInputs) -> FluidSolution {
        let (d0, d1, cap) = (inp.d0_s, inp.d1_s_per_token, inp.capacity_tokens);
        let load = inp.load();
        let dt = iteration_time(d0, d1, load);
        let m = m_star(d0, d1, load);
        let regime = match m {
            None => Regime::Unbounded,
            Some(m) if m <= cap => Regime::Stable,
            Some(_) => Regime::MemoryBound,
        };
        let a = inp.mean_mass();
        let lmax = lambda_max(d0, d1, cap, a);
        let classes = inp
            .classes
            .iter()
            .map(|c| ClassSolution {
                class: c.clone(),
                mass_tokens: c.mass(),
                cut: c.rate_per_s * d1 * c.mass(),
                n_per_stage: dt.map(|t| t * c.rate_per_s),
                memory_tokens: dt.map(|t| t * c.rate_per_s * c.mass()),
                throughput_tokens_per_s: c.rate_per_s * c.output_tokens as f64,
            })
            .collect();
        FluidSolution {
            stable: regime == Regime::Stable,
            regime,
            load_tokens_per_s: load,
            instability_cut: d1 * load,
            iteration_time_s: dt,
            memory_tokens: m,
            memory_over_capacity: m.map(|m| m / cap),
            capacity_tokens: cap,
            d0_s: d0,
            d1_s_per_token: d1,
            throughput_tokens_per_s: inp
                .classes
                .iter()
                .map(|c| c.rate_per_s * c.output_tokens as f64)
                .sum(),
            total_rate_per_s: inp.total_rate(),
            mean_mass_tokens: a,
            lambda_max_per_s: lmax,
            lambda_pole_per_s: lambda_pole(d1, a),
            max_scale: lmax / inp.total_rate(),
            classes,
        }
    }

    /// `M*` with every rate multiplied by `scale` (`None` beyond the cut).
    pub fn m_star_at_scale(&self, scale: f64) -> Option<f64> {
        m_star(self.d0_s, self.d1_s_per_token, scale * self.load_tokens_per_s)
    }
}

/// One point of the `M*(Lambda)` curve of a fixed mix.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CurvePoint {
    /// Total rate `Lambda` (requests per second).
    pub total_rate_per_s: f64,
    /// `M*` (tokens), `None` beyond the pole.
    pub memory_tokens: Option<f64>,
    /// `M* / C`.
    pub memory_over_capacity: Option<f64>,
    /// The regime at this rate.
    pub regime: Regime,
}

/// `M*(Lambda)` at the given total rates, keeping the mix of `inputs` (for reports, e.g. the
/// WAIT paper's Table 2).
pub fn m_star_curve(inputs: &FluidInputs, total_rates: &[f64]) -> Vec<CurvePoint> {
    let base = inputs.total_rate();
    total_rates
        .iter()
        .map(|&r| {
            let s = FluidSolution::solve(&inputs.scaled(r / base));
            CurvePoint {
                total_rate_per_s: r,
                memory_tokens: s.memory_tokens,
                memory_over_capacity: s.memory_over_capacity,
                regime: s.regime,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
