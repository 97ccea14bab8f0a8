//! The workload file: the contract of `kvsched fluid` and `kvsched simulate`.
//!
//! ```toml
//! format_version = 1          # optional; 1 is the only version
//! [memory]
//! kv_capacity_tokens = 137000
//! [step_time]      # tau = d0_s + d1_s_per_token * sum over the batch of (prompt + stage)
//! kind = "affine"
//! d0_s = 0.010248
//! d1_s_per_token = 3.8777e-7
//! [[class]]
//! prompt_tokens = 512
//! output_tokens = 20
//! rate_per_s = 22.0
//! ```
//!
//! Unknown keys are errors (`deny_unknown_fields`). [`WorkloadFile::parse`] reports the file, the
//! line and the field of the first problem, and never panics.

use crate::instance::{EvictionRule, FirstToken, ModelConfig, Preemption};
use crate::memory::MemoryConfig;
use crate::request::Information;
use crate::step_time::StepTime;
use crate::units::Tokens;
use serde::{Deserialize, Serialize};

/// The largest `rate_per_s` of a class (and of a class after `--rate-scale`): above it the
/// superposed rate of many classes could overflow to infinity.
pub const MAX_RATE_PER_S: f64 = 1e9;

/// The largest rate scale of an `[arrivals]` process.
pub const MAX_SCALE: f64 = 1e6;
/// The shortest mean holding time of a Markov-modulated process (seconds).
pub const MIN_MEAN_HOLD_S: f64 = 1e-3;
/// The longest mean holding time of a Markov-modulated process (seconds).
pub const MAX_MEAN_HOLD_S: f64 = 1e9;

/// The only workload format version.
pub const WORKLOAD_FORMAT_VERSION: u32 = 1;

fn default_version() -> u32 {
    WORKLOAD_FORMAT_VERSION
}

/// A workload file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadFile {
    /// Format version (1).
    #[serde(default = "default_version")]
    pub format_version: u32,
    /// KV memory.
    pub memory: MemoryConfig,
    /// Step-time model.
    pub step_time: StepTime,
    /// First-token convention (default: the last prefill chunk produces token 1).
    #[serde(default)]
    pub first_token: FirstToken,
    /// Eviction rule (default: any resident request may be evicted).
    #[serde(default)]
    pub eviction: EvictionRule,
    /// What an evicted request keeps (default `restart`, the papers' rule; `keep_generated`
    /// is vLLM's recompute preemption).
    #[serde(default, skip_serializing_if = "Preemption::is_restart")]
    pub preemption: Preemption,
    /// Request classes; each arrives as an independent Poisson process (modulated by
    /// `arrivals`).
    #[serde(rename = "class")]
    pub classes: Vec<ClassSpec>,
    /// How rates vary over time (default: constant).
    #[serde(default)]
    pub arrivals: ArrivalProcess,
}

/// One request class (a "type" in the WAIT paper).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassSpec {
    /// Optional label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Prompt length l_j.
    pub prompt_tokens: u64,
    /// Output length l'_j.
    pub output_tokens: u64,
    /// Arrival rate lambda_j (requests per second).
    pub rate_per_s: f64,
}

/// Time variation of the arrival rates; every class's rate is multiplied by the current scale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ArrivalProcess {
    /// Constant rates.
    #[default]
    Constant,
    /// Piecewise-constant scale, repeating with period equal to the sum of durations.
    Piecewise {
        /// `(duration_s, scale)` pieces.
        pieces: Vec<(f64, f64)>,
    },
    /// A two-state Markov-modulated Poisson process: the scale switches between `low_scale` and
    /// `high_scale`, with exponential holding times of the given means.
    Markov {
        /// Scale in the low state.
        low_scale: f64,
        /// Scale in the high (burst) state.
        high_scale: f64,
        /// Mean time in the low state (seconds).
        mean_low_s: f64,
        /// Mean time in the high state (seconds).
        mean_high_s: f64,
    },
}

/// A workload-file error: where, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadError {
    /// The file (as given).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What went wrong, naming the field.
    pub message: String,
}

impl std::fmt::Display for WorkloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for WorkloadError {}

/// The dotted name (`class[1].rate_per_s`, `memory.kv_capacity_tokens`) of the `key = value`
/// line at `offset`, when the offset falls on one.
fn field_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next()?;
    let key = line.split('=').next()?.trim();
    if key.is_empty() || key.starts_with('[') || !line.contains('=') {
        return None;
    }
    let mut table = String::new();
    let mut class_index = 0usize;
    for l in text[..line_start].lines() {
        let l = l.trim_start();
        if l.starts_with("[[class]]") {
            table = format!("class[{class_index}]");
            class_index += 1;
        } else if let Some(rest) = l.strip_prefix('[') {
            table = rest.split(']').next().unwrap_or("").trim().to_string();
        }
    }
    Some(if table.is_empty() { key.to_string() } else { format!("{table}.{key}") })
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

/// The line of `key` inside `[[class]]` number `index` (0-based), or of the table header when
/// the key is not written there, for semantic errors.
fn class_line(text: &str, index: usize, key: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let header = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("[[class]]"))
        .nth(index)
        .map(|(i, _)| i)?;
    let body = lines[header + 1..].iter().take_while(|l| !l.trim_start().starts_with('['));
    let found = body.enumerate().find(|(_, l)| {
        let l = l.trim_start();
        l.starts_with(key) && l[key.len()..].trim_start().starts_with('=')
    });
    Some(found.map_or(header, |(i, _)| header + 1 + i) + 1)
}

fn table_line(text: &str, table: &str) -> Option<usize> {
    let header = format!("[{table}]");
    text.lines().position(|l| l.trim_start().starts_with(&header)).map(|i| i + 1)
}

impl WorkloadFile {
    /// Parses and validates `text`, read from `file` (used in messages only).
    pub fn parse(file: &str, text: &str) -> Result<WorkloadFile, WorkloadError> {
        let parsed: WorkloadFile = toml::from_str(text).map_err(|e| {
            let message = e.message().trim().to_string();
            let field = e.span().and_then(|s| field_at(text, s.start));
            WorkloadError {
                file: file.to_string(),
                line: e.span().map(|s| line_of(text, s.start)),
                message: match field {
                    Some(f) if !message.contains(&f) => format!("{f}: {message}"),
                    _ => message,
                },
            }
        })?;
        parsed.validate().map_err(|(message, line)| WorkloadError {
            file: file.to_string(),
            line: line.and_then(|l| match l {
                Where::Class(i, key) => class_line(text, i, key),
                Where::Table(t) => table_line(text, t),
            }),
            message,
        })?;
        Ok(parsed)
    }

    /// Validates a workload built or changed in memory (`--rate-scale`, `--calibration`): the
    /// same checks as [`WorkloadFile::parse`], reported against `file` without a line.
    pub fn check(&self, file: &str) -> Result<(), WorkloadError> {
        self.validate().map_err(|(message, _)| WorkloadError {
            file: file.to_string(),
            line: None,
            message,
        })
    }

    fn validate(&self) -> Result<(), (String, Option<Where>)> {
        if self.format_version != WORKLOAD_FORMAT_VERSION {
            let msg = format!(
                "format_version: expected {WORKLOAD_FORMAT_VERSION}, got {}",
                self.format_version
            );
            return Err((msg, None));
        }
        self.memory.validate().map_err(|m| (m, Some(Where::Table("memory"))))?;
        self.step_time.compile().map_err(|m| (m, Some(Where::Table("step_time"))))?;
        if self.classes.is_empty() {
            return Err(("class: expected at least one [[class]] table".into(), None));
        }
        for (i, c) in self.classes.iter().enumerate() {
            if c.prompt_tokens == 0 {
                let msg = format!("class[{i}].prompt_tokens: expected at least 1");
                return Err((msg, Some(Where::Class(i, "prompt_tokens"))));
            }
            if c.output_tokens == 0 {
                let msg = format!("class[{i}].output_tokens: expected at least 1");
                return Err((msg, Some(Where::Class(i, "output_tokens"))));
            }
            if !c.rate_per_s.is_finite() || c.rate_per_s < 0.0 || c.rate_per_s > MAX_RATE_PER_S {
                let msg = format!(
                    "class[{i}].rate_per_s: expected a rate in [0, {MAX_RATE_PER_S:e}], got {}",
                    c.rate_per_s
                );
                return Err((msg, Some(Where::Class(i, "rate_per_s"))));
            }
            // A request that cannot fit alone in an empty cache can never complete: every
            // policy would stall or livelock on it, so the file is refused here.
            let peak =
                self.memory.footprint(Tokens(c.prompt_tokens.saturating_add(c.output_tokens)));
            if peak > self.memory.capacity() {
                let msg = format!(
                    "class[{i}].output_tokens: prompt_tokens + output_tokens = {} ({peak} in \
                     whole blocks) can never fit in memory.kv_capacity_tokens (usable {})",
                    c.prompt_tokens.saturating_add(c.output_tokens),
                    self.memory.capacity()
                );
                return Err((msg, Some(Where::Class(i, "output_tokens"))));
            }
        }
        if self.classes.iter().all(|c| c.rate_per_s == 0.0) {
            return Err(("class: expected at least one positive rate_per_s".into(), None));
        }
        self.arrivals.validate().map_err(|m| (m, Some(Where::Table("arrivals"))))
    }

    /// The model configuration this workload describes, under `information`.
    pub fn model_config(&self, information: Information) -> ModelConfig {
        ModelConfig {
            memory: self.memory.clone(),
            step_time: self.step_time.clone(),
            first_token: self.first_token,
            eviction: self.eviction,
            preemption: self.preemption,
            information,
        }
    }

    /// Total arrival rate (requests per second, at scale 1).
    pub fn total_rate_per_s(&self) -> f64 {
        self.classes.iter().map(|c| c.rate_per_s).sum()
    }
}

enum Where {
    Class(usize, &'static str),
    Table(&'static str),
}

impl ArrivalProcess {
    fn validate(&self) -> Result<(), String> {
        let ok = |x: f64| x.is_finite() && x >= 0.0;
        match self {
            ArrivalProcess::Constant => Ok(()),
            ArrivalProcess::Piecewise { pieces } => {
                if pieces.is_empty() {
                    return Err("arrivals.pieces: expected at least one (duration_s, scale)".into());
                }
                for (i, &(d, s)) in pieces.iter().enumerate() {
                    if !(ok(d) && d > 0.0 && ok(s) && s <= MAX_SCALE) {
                        return Err(format!(
                            "arrivals.pieces[{i}]: expected duration_s > 0 and scale in \
                             [0, {MAX_SCALE:e}]"
                        ));
                    }
                }
                if !pieces.iter().any(|p| p.1 > 0.0) {
                    return Err("arrivals.pieces: expected at least one positive scale".into());
                }
                Ok(())
            }
            ArrivalProcess::Markov { low_scale, high_scale, mean_low_s, mean_high_s } => {
                let scale_ok = |x: f64| ok(x) && x <= MAX_SCALE;
                if !(scale_ok(*low_scale) && scale_ok(*high_scale)) {
                    return Err(format!(
                        "arrivals.low_scale/high_scale: expected scales in [0, {MAX_SCALE:e}]"
                    ));
                }
                if *low_scale == 0.0 && *high_scale == 0.0 {
                    return Err("arrivals.low_scale/high_scale: expected one positive scale".into());
                }
                // Shorter holding times would not move a clock of 2^62 ns forward.
                let mean_ok = |x: f64| ok(x) && (MIN_MEAN_HOLD_S..=MAX_MEAN_HOLD_S).contains(&x);
                if !(mean_ok(*mean_low_s) && mean_ok(*mean_high_s)) {
                    return Err(format!(
                        "arrivals.mean_low_s/mean_high_s: expected means in \
                         [{MIN_MEAN_HOLD_S:e}, {MAX_MEAN_HOLD_S:e}] seconds"
                    ));
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[memory]
kv_capacity_tokens = 137000
[step_time]          # tau = d0_s + d1_s_per_token * sum over the batch of (prompt + stage)
kind = "affine"
d0_s = 0.010248
d1_s_per_token = 3.8777e-7
[[class]]
prompt_tokens = 512
output_tokens = 20
rate_per_s = 22.0
"#;

    #[test]
    fn the_contract_example_parses() {
        let w = WorkloadFile::parse("example.toml", EXAMPLE).unwrap();
        assert_eq!(w.memory.kv_capacity_tokens, 137_000);
        assert_eq!(w.classes.len(), 1);
        assert_eq!(w.classes[0].output_tokens, 20);
        assert_eq!(w.step_time, StepTime::Affine { d0_s: 0.010248, d1_s_per_token: 3.8777e-7 });
    }

    #[test]
    fn unknown_field_names_file_line_and_field() {
        let bad = EXAMPLE.replace("rate_per_s = 22.0", "rate_per_s = 22.0\nrate = 3");
        let e = WorkloadFile::parse("w.toml", &bad).unwrap_err();
        assert_eq!(e.file, "w.toml");
        assert_eq!(e.line, Some(12));
        assert!(e.message.contains("rate"), "{e}");
    }

    #[test]
    fn semantic_error_names_class_line() {
        let bad = EXAMPLE.replace("output_tokens = 20", "output_tokens = 0");
        let e = WorkloadFile::parse("w.toml", &bad).unwrap_err();
        assert_eq!(e.line, Some(10));
        assert!(e.message.contains("class[0].output_tokens"), "{e}");
    }

    /// `preemption` defaults to `restart` and is then not written back; `keep_generated` is
    /// read, reaches the model config and is written back; a misspelt rule names its line.
    #[test]
    fn preemption_defaults_to_restart_and_round_trips() {
        let w = WorkloadFile::parse("w.toml", EXAMPLE).unwrap();
        assert_eq!(w.preemption, Preemption::Restart);
        assert!(!toml::to_string(&w).unwrap().contains("preemption"));
        let keep = format!("preemption = \"keep_generated\"\n{EXAMPLE}");
        let w = WorkloadFile::parse("w.toml", &keep).unwrap();
        assert_eq!(w.model_config(Information::Hidden).preemption, Preemption::KeepGenerated);
        assert!(toml::to_string(&w).unwrap().contains("preemption = \"keep_generated\""));
        let bad = format!("preemption = \"keep\"\n{EXAMPLE}");
        let e = WorkloadFile::parse("w.toml", &bad).unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
        assert!(e.message.contains("preemption"), "{e}");
    }

    #[test]
    fn wrong_type_is_reported() {
        let bad = EXAMPLE.replace("kv_capacity_tokens = 137000", "kv_capacity_tokens = \"big\"");
        let e = WorkloadFile::parse("w.toml", &bad).unwrap_err();
        assert_eq!(e.line, Some(3));
    }
}
