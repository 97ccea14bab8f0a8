//! The calibration file: a step-time model fitted to measurements, with its provenance and fit
//! quality. Written by `kvsched-gpu-check` (from a GPU run or from published profiles) and read
//! by `kvsched simulate --calibration FILE`.
//!
//! ```toml
//! format_version = 1
//! hardware = "NVIDIA A100-SXM4-80GB"
//! model = "Llama-2-7B fp16, TP 1"
//! source = "vidur profiles llama-2-7b-mlp.csv + h8192-q64-kv8-tp2-attention.csv"
//! kv_bytes_per_token = 524288       # optional
//! kv_capacity_tokens = 136496       # optional
//! [step_time]                       # the same table as in a workload file
//! kind = "affine"
//! d0_s = 0.0100
//! d1_s_per_token = 3.3e-7
//! [fit]
//! r2 = 0.99
//! mape = 0.02
//! points = 10112
//! range = "decode batches 1..128, 32..4032 KV tokens per request"
//! [[fit.region]]                    # optional, any number
//! name = "batch <= 64"
//! range = "decode_requests 1..64"
//! points = 5000
//! r2 = 0.99
//! mape = 0.01
//! [affine]                          # optional: the WAIT paper's law fitted to the same data
//! d0_s = 0.0100
//! d1_s_per_token = 3.3e-7
//! [affine.fit]
//! r2 = 0.98
//! mape = 0.03
//! points = 10112
//! range = "decode batches 1..128"
//! ```
//!
//! Unknown keys are errors. [`Calibration::parse`] reports the file, the line and the field of
//! the first problem, and never panics.

use crate::step_time::StepTime;
use crate::workload::WorkloadError;
use serde::{Deserialize, Serialize};

/// The only calibration format version.
pub const CALIBRATION_FORMAT_VERSION: u32 = 1;

/// A calibration: the step-time model for one (hardware, model) pair and where it came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// Format version (1).
    pub format_version: u32,
    /// The GPU (as reported by the driver, or as named by the data's source).
    pub hardware: String,
    /// The model geometry and precision (and tensor-parallel degree).
    pub model: String,
    /// Provenance: the files or run the fit came from, and how they were combined.
    pub source: String,
    /// Measured or computed KV bytes per token, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_bytes_per_token: Option<u64>,
    /// KV capacity C in tokens, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_capacity_tokens: Option<u64>,
    /// The fitted step-time model the simulator uses.
    pub step_time: StepTime,
    /// How well `step_time` fits the data.
    pub fit: FitQuality,
    /// The WAIT paper's affine law fitted to the same data, for comparison.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affine: Option<AffineFit>,
}

/// Fit quality of a model over a set of measurements.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitQuality {
    /// Coefficient of determination.
    pub r2: f64,
    /// Mean absolute percentage error (a fraction: 0.02 is 2 %).
    pub mape: f64,
    /// Number of measurements.
    pub points: u64,
    /// Largest relative error `|predicted - measured| / measured` over the measurements (a
    /// fraction), when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rel_err: Option<f64>,
    /// Median relative error over the measurements (a fraction), when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median_rel_err: Option<f64>,
    /// The range of operating points the fit covers (in words).
    pub range: String,
    /// Free-form notes (assumptions, where the model does not hold).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
    /// Fit quality per region of the operating range.
    #[serde(default, rename = "region", skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<RegionFit>,
}

/// Fit quality over one region of the operating range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionFit {
    /// Short name.
    pub name: String,
    /// The region (in words).
    pub range: String,
    /// Number of measurements in the region.
    pub points: u64,
    /// Coefficient of determination within the region (can be negative).
    pub r2: f64,
    /// Mean absolute percentage error within the region (a fraction).
    pub mape: f64,
}

/// The affine law `tau = d0 + d1 * attended KV tokens`, fitted for comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AffineFit {
    /// Fixed per-iteration time d0 (seconds).
    pub d0_s: f64,
    /// Time per attended KV token d1 (seconds per token).
    pub d1_s_per_token: f64,
    /// How well it fits.
    pub fit: FitQuality,
}

impl AffineFit {
    /// As a step-time model.
    pub fn step_time(&self) -> StepTime {
        StepTime::Affine { d0_s: self.d0_s, d1_s_per_token: self.d1_s_per_token }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

fn table_line(text: &str, table: &str) -> Option<usize> {
    let header = format!("[{table}]");
    text.lines().position(|l| l.trim_start().starts_with(&header)).map(|i| i + 1)
}

fn check_quality(field: &str, q: &FitQuality) -> Result<(), String> {
    if !q.r2.is_finite() || q.r2 > 1.0 + 1e-9 {
        return Err(format!("{field}.r2: expected a finite number <= 1, got {}", q.r2));
    }
    if !q.mape.is_finite() || q.mape < 0.0 {
        return Err(format!("{field}.mape: expected a finite fraction >= 0, got {}", q.mape));
    }
    for (name, v) in [("max_rel_err", q.max_rel_err), ("median_rel_err", q.median_rel_err)] {
        if let Some(v) = v {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{field}.{name}: expected a finite fraction >= 0, got {v}"));
            }
        }
    }
    for (i, r) in q.regions.iter().enumerate() {
        if !r.r2.is_finite() || r.r2 > 1.0 + 1e-9 || !r.mape.is_finite() || r.mape < 0.0 {
            return Err(format!("{field}.region[{i}]: expected r2 <= 1 and mape >= 0"));
        }
    }
    Ok(())
}

impl Calibration {
    /// Parses and validates `text`, read from `file` (used in messages only).
    pub fn parse(file: &str, text: &str) -> Result<Calibration, WorkloadError> {
        let parsed: Calibration = toml::from_str(text).map_err(|e| WorkloadError {
            file: file.to_string(),
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().trim().to_string(),
        })?;
        parsed.validate().map_err(|(message, table)| WorkloadError {
            file: file.to_string(),
            line: table.and_then(|t| table_line(text, t)),
            message,
        })?;
        Ok(parsed)
    }

    fn validate(&self) -> Result<(), (String, Option<&'static str>)> {
        if self.format_version != CALIBRATION_FORMAT_VERSION {
            let msg = format!(
                "format_version: expected {CALIBRATION_FORMAT_VERSION}, got {}",
                self.format_version
            );
            return Err((msg, None));
        }
        if self.kv_capacity_tokens == Some(0) {
            return Err(("kv_capacity_tokens: expected at least 1".into(), None));
        }
        self.step_time.compile().map_err(|m| (m, Some("step_time")))?;
        check_quality("fit", &self.fit).map_err(|m| (m, Some("fit")))?;
        if let Some(a) = &self.affine {
            a.step_time().compile().map_err(|m| (format!("affine: {m}"), Some("affine")))?;
            check_quality("affine.fit", &a.fit).map_err(|m| (m, Some("affine.fit")))?;
        }
        Ok(())
    }

    /// Serializes to TOML (the inverse of [`Calibration::parse`]).
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
format_version = 1
hardware = "A100"
model = "Llama-2-7B"
source = "synthetic"
[step_time]
kind = "rich"
base_s = 0.009
kv_s_per_token = 3.3e-7
tokenwise = [[1, 0.0], [100, 0.0005], [4096, 0.25]]
[fit]
r2 = 0.99
mape = 0.01
points = 100
range = "all"
[[fit.region]]
name = "small"
range = "tokens <= 96"
points = 10
r2 = 0.5
mape = 0.02
[affine]
d0_s = 0.01
d1_s_per_token = 3.5e-7
[affine.fit]
r2 = 0.9
mape = 0.05
points = 100
range = "all"
"#;

    #[test]
    fn example_parses_and_round_trips() {
        let c = Calibration::parse("c.toml", EXAMPLE).unwrap();
        assert_eq!(c.fit.regions.len(), 1);
        assert_eq!(c.affine.as_ref().unwrap().d0_s, 0.01);
        let again = Calibration::parse("again.toml", &c.to_toml().unwrap()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn unknown_field_names_file_line_and_field() {
        let bad = EXAMPLE.replace("mape = 0.01\n", "mape = 0.01\nmapee = 3\n");
        let e = Calibration::parse("c.toml", &bad).unwrap_err();
        assert_eq!(e.file, "c.toml");
        assert_eq!(e.line, Some(14));
        assert!(e.message.contains("mapee"), "{e}");
    }

    #[test]
    fn bad_step_time_names_table() {
        let bad = EXAMPLE.replace("base_s = 0.009", "base_s = -0.009");
        let e = Calibration::parse("c.toml", &bad).unwrap_err();
        assert_eq!(e.line, Some(6));
        assert!(e.message.contains("step_time.base_s"), "{e}");
        let bad = EXAMPLE.replace("r2 = 0.9\n", "r2 = 1.5\n");
        let e = Calibration::parse("c.toml", &bad).unwrap_err();
        assert!(e.message.contains("affine.fit.r2"), "{e}");
    }

    /// The project's recorded A100 calibration parses and is a rich model with an affine fit.
    #[test]
    fn recorded_a100_calibration_parses() {
        let text = include_str!("../calibration/a100-llama2-7b.toml");
        let c = Calibration::parse("spec/calibration/a100-llama2-7b.toml", text).unwrap();
        assert!(matches!(c.step_time, StepTime::Rich { .. }));
        assert!(c.affine.is_some());
        assert_eq!(c.kv_bytes_per_token, Some(524_288));
    }
}
