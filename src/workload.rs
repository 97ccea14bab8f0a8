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
            m.markov = (
                false,
                Exp::new(1.0 / mean_low_s)
                    .expect("positive mean")
                    .sample(&mut m.rng),
            );
        }
        m
    }

    fn max_scale(&self) -> f64 {
        match &self.process {
            ArrivalProcess::Constant => 1.0,
            ArrivalProcess::Piecewise { pieces } => pieces.iter().map(|p| p.1).fold(0.0, f64::max),
            ArrivalProcess::Markov {
                low_scale,
                high_scale,
                ..
            } => low_scale.max(*high_scale),
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
            &ArrivalProcess::Markov {
                low_scale,
                high_scale,
                mean_low_s,
                mean_high_s,
            } => {
                while self.markov.1 <= t {
                    let high = !self.markov.0;
                    let mean = if high { mean_high_s } else { mean_low_s };
                    let hold = Exp::new(1.0 / mean)
                        .expect("positive mean")
                        .sample(&mut self.rng);
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

/// Generates requests from a workload file with seed `seed`.
pub fn generate(workload: &WorkloadFile, amount: Amount, seed: u64) -> Vec<Request> {
    let total_rate = workload.total_rate_per_s();
    let mut modulation = Modulation::new(&workload.arrivals, seed);
    let peak_rate = total_rate * modulation.max_scale();
    let mut out = Vec::new();
    if peak_rate <= 0.0 {
        return out;
    }
    let mut arrivals = stream(seed, Stream::Arrivals);
    let mut lengths = stream(seed, Stream::Lengths);
    let gap = Exp::new(peak_rate).expect("positive rate");
    let mut t = 0.0f64;
    loop {
        if let Amount::Requests(n) = amount {
            if out.len() as u64 >= n {
                break;
            }
        }
        t += gap.sample(&mut arrivals);
        if let Amount::HorizonS(h) = amount {
            if t >= h {
                break;
            }
        }
        // Thinning: accept with probability scale(t) / max scale.
        let accept: f64 = arrivals.random();
        if accept * modulation.max_scale() >= modulation.scale_at(t) {
            continue;
        }
        let class = pick_class(workload, total_rate, &mut lengths);
        let c = &workload.classes[class];
        out.push(Request {
            id: RequestId(out.len() as u32),
            arrival_ns: Nanos::from_secs_f64(t).expect("finite arrival"),
            prompt_tokens: Tokens(c.prompt_tokens),
            output_tokens: Tokens(c.output_tokens),
            predicted_output_tokens: None,
            class: class as u32,
        });
    }
    out
}

fn pick_class(workload: &WorkloadFile, total_rate: f64, rng: &mut Prng) -> usize {
    let mut u: f64 = rng.random::<f64>() * total_rate;
    for (j, c) in workload.classes.iter().enumerate() {
        if u < c.rate_per_s {
            return j;
        }
        u -= c.rate_per_s;
    }
    workload
        .classes
        .iter()
        .rposition(|c| c.rate_per_s > 0.0)
        .expect("a positive rate")
}

/// Multiplies each request's true output length by a log-normal-free, uniform multiplicative
/// noise factor in `[1 - eps, 1 + eps]` to form a prediction (at least 1 token), from the
/// `Predictions` stream of `seed`.
pub fn add_predictions(requests: &mut [Request], eps: f64, seed: u64) {
    let mut rng = stream(seed, Stream::Predictions);
    for r in requests {
        let f: f64 = 1.0 + eps * (2.0 * rng.random::<f64>() - 1.0);
        let p = (r.output_tokens.get() as f64 * f).round().max(1.0) as u64;
        r.predicted_output_tokens = Some(Tokens(p));
    }
}

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
/// `num_decode_tokens`; other columns are ignored). Without `arrived_at`, arrivals are Poisson at
/// `rate_per_s` (seeded). Rows are sorted by arrival; ids follow that order.
pub fn read_vidur_csv(
    file: &str,
    text: &str,
    rate_per_s: Option<f64>,
    seed: u64,
) -> Result<Vec<Request>, TraceCsvError> {
    let err = |line: u64, message: String| TraceCsvError {
        file: file.to_string(),
        line,
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| err(1, format!("bad header: {e}")))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let prefill = col("num_prefill_tokens")
        .ok_or_else(|| err(1, "expected a num_prefill_tokens column".into()))?;
    let decode = col("num_decode_tokens")
        .ok_or_else(|| err(1, "expected a num_decode_tokens column".into()))?;
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
                return Err(err(
                    line,
                    format!("{name}: expected a positive integer, got {raw:?}"),
                ));
            }
            Ok(v as u64)
        };
        let p = field(prefill, "num_prefill_tokens")?;
        let d = field(decode, "num_decode_tokens")?;
        let at = match arrived {
            Some(c) => {
                let raw = record.get(c).unwrap_or("");
                let v: f64 = raw
                    .parse()
                    .map_err(|_| err(line, format!("arrived_at: expected seconds, got {raw:?}")))?;
                if !(v.is_finite() && v >= 0.0) {
                    return Err(err(
                        line,
                        format!("arrived_at: expected seconds >= 0, got {raw:?}"),
                    ));
                }
                v
            }
            None => {
                t += Exp::new(rate_per_s.expect("checked"))
                    .expect("positive")
                    .sample(&mut rng);
                t
            }
        };
        rows.push((at, p, d));
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(rows
        .into_iter()
        .enumerate()
        .map(|(i, (at, p, d))| Request {
            id: RequestId(i as u32),
            arrival_ns: Nanos::from_secs_f64(at).expect("validated"),
            prompt_tokens: Tokens(p),
            output_tokens: Tokens(d),
            predicted_output_tokens: None,
            class: 0,
        })
        .collect())
}
