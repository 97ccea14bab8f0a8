//! Workload generation: seeded request streams from a workload file, and replay of Vidur-format
//! request traces.
//!
//! - [`generate`]: multi-class Poisson arrivals (the superposition of the classes' processes:
//!   total rate `sum lambda_j`, class `j` with probability `lambda_j / sum lambda`), for a given
//!   number of requests or a time horizon, with the rate scaled over time by the file's
//!   `[arrivals]` process (piecewise or Markov-modulated), sampled by thinning.
//! - [`read_vidur_csv`]: a CSV with columns `num_prefill_tokens`, `num_decode_tokens` and
//!   optionally `arrived_at` (seconds); without arrival times, Poisson arrivals at a given rate.
//!
//! Randomness comes only from [`crate::prng`] streams: arrivals, lengths (class choice) and
//! modulation each have their own stream, so the same seed gives the same requests.

use crate::prng::{stream, Prng, Stream};
use kvsched_spec::{ArrivalProcess, Nanos, Request, RequestId, Tokens, WorkloadFile};
use rand::Rng;
use rand_distr::{Distribution, Exp};

/// How many requests to generate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Amount {
    /// Exactly this many.
    Requests(u64),
    /// Every arrival before this time (seconds).
    HorizonS(f64),
}

/// Time-varying rate scale.
struct Modulation {
    process: ArrivalProcess,
    rng: Prng,
    /// Markov state: (high, time the state ends).
    markov: (bool, f64),
}

impl Modulation {
    fn new(process: &ArrivalProcess, seed: u64) -> Modulation {
        let mut m = Modulation {
            process: process.clone(),
            rng: stream(seed, Stream::Modulation),
            markov: (false, 0.0),
        };
        if let ArrivalProcess::Markov { mean_low_s, .. } = *process {
            m.markov =
                (false, Exp::new(1.0 / mean_low_s).expect("positive mean").sample(&mut m.rng));
        }
        m
    }

    fn max_scale(&self) -> f64 {
        match &self.process {
            ArrivalProcess::Constant => 1.0,
            ArrivalProcess::Piecewise { pieces } => pieces.iter().map(|p| p.1).fold(0.0, f64::max),
            ArrivalProcess::Markov { low_scale, high_scale, .. } => low_scale.max(*high_scale),
        }
    }

    /// The scale at time `t`; `t` must be non-decreasing across calls.
    fn scale_at(&mut self, t: f64) -> f64 {
        match &self.process {
            ArrivalProcess::Constant => 1.0,
            ArrivalProcess::Piecewise { pieces } => {
                let period: f64 = pieces.iter().map(|p| p.0).sum();
                let mut x = t % period;
                for &(d, s) in pieces {
                    if x < d {
                        return s;
                    }
                    x -= d;
                }
                pieces.last().map_or(1.0, |p| p.1)
            }
            &ArrivalProcess::Markov { low_scale, high_scale, mean_low_s, mean_high_s } => {
                while self.markov.1 <= t {
                    let high = !self.markov.0;
                    let mean = if high { mean_high_s } else { mean_low_s };
                    let hold = Exp::new(1.0 / mean).expect("positive mean").sample(&mut self.rng);
                    self.markov = (high, self.markov.1 + hold);
                }
                if self.markov.0 {
                    high_scale
                } else {
                    low_scale
                }
            }
        }
    }
}

/// Generates requests from a workload file with seed `seed`. For built-in workloads: a stream
/// that ends in an error (see [`try_generate`]) panics here.
pub fn generate(workload: &WorkloadFile, amount: Amount, seed: u64) -> Vec<Request> {
    try_generate(workload, amount, seed).unwrap_or_else(|e| panic!("{e}"))
}

/// The most requests one stream may hold: ids are `u32`, and `u32::MAX` is reserved.
pub const MAX_STREAM_REQUESTS: u64 = u32::MAX as u64 - 1;

/// [`generate`] for a workload from the user: an arrival past the end of simulated time
/// (2^62 ns), or more than [`MAX_STREAM_REQUESTS`] (or `max_requests`) before a horizon, is an
/// error naming the cause, never a panic.
pub fn try_generate(
    workload: &WorkloadFile,
    amount: Amount,
    seed: u64,
) -> Result<Vec<Request>, String> {
    let mut g = Generator::new(workload, amount, seed);
    let requests: Vec<Request> = g.by_ref().collect();
    match g.error() {
        Some(e) => Err(e.to_string()),
        None => Ok(requests),
    }
}

/// The requests of [`generate`], one at a time: a run can stream its arrivals instead of
/// holding every request in memory (`kvsched simulate --stream`). Same seed, same requests.
pub struct Generator<'a> {
    workload: &'a WorkloadFile,
    amount: Amount,
    modulation: Modulation,
    arrivals: Prng,
    lengths: Prng,
    gap: Option<Exp<f64>>,
    total_rate: f64,
    t: f64,
    emitted: u64,
    max_requests: u64,
    error: Option<String>,
}

impl<'a> Generator<'a> {
    /// The generator of `workload` for `amount` and `seed`.
    pub fn new(workload: &'a WorkloadFile, amount: Amount, seed: u64) -> Generator<'a> {
        let total_rate = workload.total_rate_per_s();
        let modulation = Modulation::new(&workload.arrivals, seed);
        let peak_rate = total_rate * modulation.max_scale();
        Generator {
            workload,
            amount,
            modulation,
            arrivals: stream(seed, Stream::Arrivals),
            lengths: stream(seed, Stream::Lengths),
            gap: (peak_rate > 0.0).then(|| Exp::new(peak_rate).ok()).flatten(),
            total_rate,
            t: 0.0,
            emitted: 0,
            max_requests: MAX_STREAM_REQUESTS,
            error: None,
        }
    }

    /// Caps the number of requests (for `--horizon-s`, whose count is not known in advance):
    /// the stream ends with an [`Generator::error`] when it would emit more.
    pub fn with_max_requests(mut self, max: u64) -> Self {
        self.max_requests = max.min(MAX_STREAM_REQUESTS);
        self
    }

    /// Why the stream ended early, if it did: an arrival past 2^62 ns, or too many requests.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    fn fail(&mut self, message: String) -> Option<Request> {
        self.error = Some(message);
        self.gap = None;
        None
    }
}

impl Iterator for Generator<'_> {
    type Item = Request;

    fn next(&mut self) -> Option<Request> {
        let gap = self.gap?;
        loop {
            if let Amount::Requests(n) = self.amount {
                if self.emitted >= n {
                    return None;
                }
            }
            self.t += gap.sample(&mut self.arrivals);
            if let Amount::HorizonS(h) = self.amount {
                if self.t >= h {
                    self.gap = None;
                    return None;
                }
            }
            // Thinning: accept with probability scale(t) / max scale.
            let accept: f64 = self.arrivals.random();
            if accept * self.modulation.max_scale() >= self.modulation.scale_at(self.t) {
                continue;
            }
            let Some(arrival_ns) = Nanos::from_secs_f64(self.t) else {
                return self.fail(format!(
                    "request {} would arrive at {:e} s, past the end of simulated time (2^62 ns, \
                     about 146 years): the rates (rate_per_s times --rate-scale) are too small \
                     for this many requests",
                    self.emitted, self.t
                ));
            };
            if self.emitted >= self.max_requests {
                return self.fail(format!(
                    "more than {} requests before the horizon: give a shorter --horizon-s or \
                     smaller rates",
                    self.max_requests
                ));
            }
            let class = pick_class(self.workload, self.total_rate, &mut self.lengths);
            let c = &self.workload.classes[class];
            let id = RequestId(self.emitted as u32);
            self.emitted += 1;
            return Some(Request {
                id,
                arrival_ns,
                prompt_tokens: Tokens(c.prompt_tokens),
                output_tokens: Tokens(c.output_tokens),
                predicted_output_tokens: None,
                class: class as u32,
            });
        }
    }
}

fn pick_class(workload: &WorkloadFile, total_rate: f64, rng: &mut Prng) -> usize {
    let mut u: f64 = rng.random::<f64>() * total_rate;
    for (j, c) in workload.classes.iter().enumerate() {
        if u < c.rate_per_s {
            return j;
        }
        u -= c.rate_per_s;
    }
    workload.classes.iter().rposition(|c| c.rate_per_s > 0.0).expect("a positive rate")
}

/// Multiplies each request's true output length by a log-normal-free, uniform multiplicative
/// noise factor in `[1 - eps, 1 + eps]` to form a prediction (at least 1 token), from the
/// `Predictions` stream of `seed`.
pub fn add_predictions(requests: &mut [Request], eps: f64, seed: u64) {
    let mut rng = prediction_stream(seed);
    for r in requests {
        add_prediction(r, eps, &mut rng);
    }
}

/// The default a run gives a policy that reads predictions ([`Information::Predicted`], MC-SF
/// and MC-Benchmark) when it names no prediction noise: exact predictions (the true output
/// length) for every request that has none. Other information sets are left alone. The engine
/// rejects a request without a prediction under `Predicted`
/// ([`crate::sim::SimErrorKind::MissingPrediction`]); it never charges a worst case.
pub fn default_predictions(information: kvsched_spec::Information, requests: &mut [Request]) {
    if information == kvsched_spec::Information::Predicted {
        for r in requests.iter_mut().filter(|r| r.predicted_output_tokens.is_none()) {
            r.predicted_output_tokens = Some(r.output_tokens);
        }
    }
}

/// The random stream of [`add_predictions`], for adding predictions one request at a time.
pub fn prediction_stream(seed: u64) -> Prng {
    stream(seed, Stream::Predictions)
}

/// One request's prediction (the next draw of `rng`), as [`add_predictions`] makes it.
pub fn add_prediction(r: &mut Request, eps: f64, rng: &mut Prng) {
    let f: f64 = 1.0 + eps * (2.0 * rng.random::<f64>() - 1.0);
    let p = (r.output_tokens.get() as f64 * f).round().max(1.0) as u64;
    r.predicted_output_tokens = Some(Tokens(p));
}

/// The end of simulated time in seconds (2^62 ns).
const MAX_TIME_S: f64 = kvsched_spec::units::MAX_TIME_NS as f64 / 1e9;

/// A Vidur-format trace error, naming the file and line.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct TraceCsvError {
    /// File.
    pub file: String,
    /// 1-based line (0 when unknown).
    pub line: u64,
    /// What was expected.
    pub message: String,
}

/// Reads a Vidur-format request trace (`arrived_at` optional, `num_prefill_tokens`,
/// `num_decode_tokens`; other columns are ignored). A missing length column yields 0-token
/// lengths, to be drawn from a distribution with [`fill_lengths`]. Without `arrived_at`,
/// arrivals are Poisson at `rate_per_s` (seeded). Rows are sorted by arrival; ids follow that
/// order.
pub fn read_vidur_csv(
    file: &str,
    text: &str,
    rate_per_s: Option<f64>,
    seed: u64,
) -> Result<Vec<Request>, TraceCsvError> {
    let err = |line: u64, message: String| TraceCsvError { file: file.to_string(), line, message };
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| err(1, format!("bad header: {e}")))?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    // A missing length column gives 0 tokens, filled later by `fill_lengths`.
    let prefill = col("num_prefill_tokens");
    let decode = col("num_decode_tokens");
    if prefill.is_none() && decode.is_none() {
        return Err(err(1, "expected a num_prefill_tokens or num_decode_tokens column".into()));
    }
    let arrived = col("arrived_at");
    if arrived.is_none() && rate_per_s.is_none_or(|r| !(r > 0.0 && r.is_finite())) {
        return Err(err(
            1,
            "no arrived_at column: give a positive --rate for Poisson arrivals".into(),
        ));
    }
    let mut rows: Vec<(f64, u64, u64)> = Vec::new();
    let mut rng = stream(seed, Stream::Arrivals);
    let mut t = 0.0;
    for (i, record) in reader.records().enumerate() {
        let line = i as u64 + 2;
        let record = record.map_err(|e| err(line, format!("bad row: {e}")))?;
        let field = |c: usize, name: &str| -> Result<u64, TraceCsvError> {
            let raw = record.get(c).unwrap_or("");
            let v: f64 = raw
                .parse()
                .map_err(|_| err(line, format!("{name}: expected a number, got {raw:?}")))?;
            if !(v >= 1.0 && v.fract() == 0.0 && v < 1e12) {
                return Err(err(line, format!("{name}: expected a positive integer, got {raw:?}")));
            }
            Ok(v as u64)
        };
        let p = prefill.map(|c| field(c, "num_prefill_tokens")).transpose()?.unwrap_or(0);
        let d = decode.map(|c| field(c, "num_decode_tokens")).transpose()?.unwrap_or(0);
        let at = match arrived {
            Some(c) => parse_arrival(record.get(c).unwrap_or("")).map_err(|m| err(line, m))?,
            None => {
                let rate = rate_per_s.unwrap_or(1.0);
                t += Exp::new(rate).map_or(f64::INFINITY, |e| e.sample(&mut rng));
                if Nanos::from_secs_f64(t).is_none() {
                    return Err(err(
                        line,
                        "--rate: too small, arrivals pass the end of simulated time (2^62 ns)"
                            .into(),
                    ));
                }
                t
            }
        };
        if rows.len() as u64 >= MAX_STREAM_REQUESTS {
            return Err(err(line, format!("more than {MAX_STREAM_REQUESTS} rows")));
        }
        rows.push((at, p, d));
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(rows
        .into_iter()
        .enumerate()
        .map(|(i, (at, p, d))| Request {
            id: RequestId(i as u32),
            arrival_ns: Nanos::from_secs_f64(at).unwrap_or(Nanos(kvsched_spec::units::MAX_TIME_NS)),
            prompt_tokens: Tokens(p),
            output_tokens: Tokens(d),
            predicted_output_tokens: None,
            class: 0,
        })
        .collect())
}

/// An `arrived_at` cell: seconds in `[0, 2^62 ns]`.
fn parse_arrival(raw: &str) -> Result<f64, String> {
    let v: f64 = raw.parse().map_err(|_| format!("arrived_at: expected seconds, got {raw:?}"))?;
    if !(v.is_finite() && v >= 0.0 && Nanos::from_secs_f64(v).is_some()) {
        return Err(format!(
            "arrived_at: expected seconds in [0, {MAX_TIME_S:e}] (2^62 ns), got {raw:?}"
        ));
    }
    Ok(v)
}

/// A length distribution for traces that lack a length column.
#[derive(Clone, Debug, PartialEq)]
pub enum LengthDist {
    /// An empirical table of `(tokens, weight)`.
    Empirical(Vec<(u64, f64)>),
    /// A log-normal fitted to a trace (`ln tokens ~ N(mu, sigma^2)`), rounded and clamped to
    /// `[1, max]`; sampled by inverting statrs' CDF with a `Lengths`-stream uniform.
    LogNormal {
        /// Mean of `ln tokens`.
        mu: f64,
        /// Standard deviation of `ln tokens`.
        sigma: f64,
        /// Largest length.
        max: u64,
    },
}

impl LengthDist {
    /// Parses `lognormal:MU,SIGMA,MAX` or `empirical:TOKENS:WEIGHT,TOKENS:WEIGHT,...`.
    pub fn parse(spec: &str) -> Result<LengthDist, String> {
        let bad = |what: &str| format!("{spec:?}: {what}");
        if let Some(rest) = spec.strip_prefix("lognormal:") {
            let v: Vec<f64> = rest
                .split(',')
                .map(|x| x.trim().parse::<f64>().map_err(|_| bad("expected numbers MU,SIGMA,MAX")))
                .collect::<Result<_, _>>()?;
            let [mu, sigma, max] = v[..] else { return Err(bad("expected MU,SIGMA,MAX")) };
            if !(mu.is_finite() && sigma.is_finite() && sigma > 0.0 && max >= 1.0) {
                return Err(bad("expected finite MU, SIGMA > 0 and MAX >= 1"));
            }
            return Ok(LengthDist::LogNormal { mu, sigma, max: max as u64 });
        }
        if let Some(rest) = spec.strip_prefix("empirical:") {
            let mut table = Vec::new();
            for pair in rest.split(',') {
                let (t, w) = pair.split_once(':').ok_or_else(|| bad("expected TOKENS:WEIGHT"))?;
                let t: u64 = t.trim().parse().map_err(|_| bad("expected integer tokens"))?;
                let w: f64 = w.trim().parse().map_err(|_| bad("expected a weight"))?;
                if t == 0 || !(w.is_finite() && w >= 0.0) {
                    return Err(bad("expected tokens >= 1 and weights >= 0"));
                }
                table.push((t, w));
            }
            if table.iter().map(|x| x.1).sum::<f64>() <= 0.0 {
                return Err(bad("expected a positive total weight"));
            }
            return Ok(LengthDist::Empirical(table));
        }
        Err(bad("expected lognormal:MU,SIGMA,MAX or empirical:TOKENS:WEIGHT,..."))
    }

    /// One draw.
    pub fn sample(&self, rng: &mut Prng) -> u64 {
        let u: f64 = rng.random();
        match self {
            LengthDist::Empirical(table) => {
                let total: f64 = table.iter().map(|x| x.1).sum();
                let mut x = u * total;
                for &(t, w) in table {
                    if x < w {
                        return t;
                    }
                    x -= w;
                }
                table.last().map_or(1, |x| x.0)
            }
            &LengthDist::LogNormal { mu, sigma, max } => {
                use statrs::distribution::{ContinuousCDF, LogNormal};
                let d = LogNormal::new(mu, sigma).expect("validated parameters");
                let x = d.inverse_cdf(u.clamp(1e-12, 1.0 - 1e-12));
                (x.round() as u64).clamp(1, max)
            }
        }
    }
}

/// Fills the lengths a trace did not give: `prompt`/`decode` are used for requests whose
/// corresponding length is 0 (the CSV reader writes 0 for a missing column).
pub fn fill_lengths(
    requests: &mut [Request],
    prompt: Option<&LengthDist>,
    decode: Option<&LengthDist>,
    seed: u64,
) {
    let mut rng = stream(seed, Stream::Lengths);
    for r in requests {
        if r.prompt_tokens == Tokens::ZERO {
            r.prompt_tokens = Tokens(prompt.map_or(1, |d| d.sample(&mut rng)));
        }
        if r.output_tokens == Tokens::ZERO {
            r.output_tokens = Tokens(decode.map_or(1, |d| d.sample(&mut rng)));
        }
    }
}

/// Reads a file to a string, with an error naming the file.
pub fn read_file(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))
}

/// The most requests a command holds in memory at once (`simulate` without `--stream`,
/// `--horizon-s`): each costs a few hundred bytes in the engine and its records, so this caps a
/// run at a few GB. `simulate --stream` holds only the requests in flight and takes up to
/// [`crate::workload::MAX_STREAM_REQUESTS`].
pub const MAX_HELD_REQUESTS: u64 = 10_000_000;
