//! The measurement table: one row per timed iteration, as a GPU run writes it and
//! `kvsched-gpu-check analyze --table FILE` reads it (CSV with a header).
//!
//! Columns: `kind` (`decode`, `prefill` or `tokenwise`), `prefill_tokens`, `prefill_attn_token2`,
//! `decode_requests`, `attended_kv_tokens` (the spec's [`BatchShape`]), and `time_s`.

use crate::fit::Sample;
use kvsched_spec::BatchShape;
use serde::{Deserialize, Serialize};

/// One row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    /// What was timed.
    pub kind: String,
    /// Prefill tokens.
    pub prefill_tokens: u64,
    /// Sum of chunk x context.
    pub prefill_attn_token2: u64,
    /// Decode requests.
    pub decode_requests: u64,
    /// Attended KV tokens.
    pub attended_kv_tokens: u64,
    /// Median time of one iteration (seconds).
    pub time_s: f64,
}

impl Row {
    /// A row for `sample`.
    pub fn new(kind: &str, s: &Sample) -> Row {
        Row {
            kind: kind.to_string(),
            prefill_tokens: s.shape.prefill_tokens,
            prefill_attn_token2: s.shape.prefill_attn_token2,
            decode_requests: s.shape.decode_requests,
            attended_kv_tokens: s.shape.attended_kv_tokens,
            time_s: s.time_s,
        }
    }

    /// As a fit sample.
    pub fn sample(&self) -> Sample {
        Sample {
            shape: BatchShape {
                prefill_tokens: self.prefill_tokens,
                prefill_attn_token2: self.prefill_attn_token2,
                decode_requests: self.decode_requests,
                attended_kv_tokens: self.attended_kv_tokens,
            },
            time_s: self.time_s,
        }
    }
}

/// Reads a table; errors name the file and the 1-based line.
pub fn read(file: &str, text: &str) -> Result<Vec<Row>, String> {
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for rec in rdr.deserialize::<Row>() {
        let row = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            format!("{file}:{line}: {e}")
        })?;
        rows.push(row);
    }
    Ok(rows)
}

/// Writes a table.
pub fn write(rows: &[Row]) -> Result<String, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).map_err(|e| e.to_string())?;
    }
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let s = Sample {
            shape: BatchShape { decode_requests: 3, attended_kv_tokens: 300, ..Default::default() },
            time_s: 0.0101,
        };
        let text = write(&[Row::new("decode", &s)]).unwrap();
        let rows = read("t.csv", &text).unwrap();
        assert_eq!(rows[0].sample(), s);
        let bad = text.replace("0.0101", "fast");
        let e = read("t.csv", &bad).unwrap_err();
        assert!(e.starts_with("t.csv:2:"), "{e}");
    }
}
