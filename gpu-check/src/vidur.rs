//! Vidur's profile schema (github.com/microsoft/vidur, `data/profiling/...`): CSV files with one
//! row per operating point, the geometry columns, and `time_stats.<op>.{min,max,mean,median,std}`
//! in milliseconds per transformer layer. Two kinds are read:
//! - MLP (token-wise) files: `num_tokens`, `num_tensor_parallel_workers`, `n_embd`, `n_head`,
//!   `n_kv_head`, `n_expanded_embd`, and ops `emb`, `input_layernorm`, `attn_pre_proj`,
//!   `attn_rope`, `attn_post_proj`, `post_attention_layernorm`, `mlp_up_proj`, `mlp_act`,
//!   `mlp_down_proj`, `add`.
//! - Attention files: `batch_size`, `kv_cache_size`, `prefill_chunk_size`, `is_prefill`, `n_embd`,
//!   `n_q_head`, `n_kv_head`, `num_tensor_parallel_workers`, and ops `attn_input_reshape`,
//!   `attn_decode` or `attn_prefill`, `attn_output_reshape`.
//!
//! Medians are used. `emb` runs once per forward pass, not per layer, and is kept apart. The MLP
//! ops (`mlp_up_proj`, `mlp_act`, `mlp_down_proj`) are also summed apart, so that a profile of
//! one MLP width can be scaled to another (see `crate::analyze`).

use std::collections::BTreeMap;

/// One row of an MLP profile.
#[derive(Clone, Debug, PartialEq)]
pub struct MlpRow {
    /// Batch tokens.
    pub num_tokens: u64,
    /// Tensor-parallel degree.
    pub tp: u64,
    /// Hidden size.
    pub n_embd: u64,
    /// MLP intermediate size (`n_expanded_embd`, whole model).
    pub n_expanded_embd: u64,
    /// Sum of the per-layer ops' medians, `emb` excluded (ms per layer).
    pub layer_ms: f64,
    /// The part of `layer_ms` that works on the MLP's intermediate width: `mlp_up_proj`,
    /// `mlp_act` and `mlp_down_proj` (ms per layer).
    pub mlp_ms: f64,
    /// The embedding's median (ms, once per pass).
    pub emb_ms: f64,
}

/// One row of an attention profile.
#[derive(Clone, Debug, PartialEq)]
pub struct AttnRow {
    /// Prefill (true) or decode row.
    pub is_prefill: bool,
    /// Decode: requests in the batch.
    pub batch_size: u64,
    /// KV tokens already cached per request (decode), or before the chunk (prefill).
    pub kv_cache_size: u64,
    /// Prefill chunk tokens (0 for decode).
    pub prefill_chunk_size: u64,
    /// Hidden size.
    pub n_embd: u64,
    /// Query heads (whole model).
    pub n_q_head: u64,
    /// KV heads (whole model).
    pub n_kv_head: u64,
    /// Tensor-parallel degree.
    pub tp: u64,
    /// Kernel plus reshapes, medians (ms per layer).
    pub layer_ms: f64,
}

impl AttnRow {
    /// Head dimension.
    pub fn head_dim(&self) -> u64 {
        self.n_embd / self.n_q_head
    }

    /// KV bytes per token per layer on one GPU (fp16).
    pub fn kv_bytes_per_token_per_layer_per_gpu(&self) -> u64 {
        2 * (self.n_kv_head / self.tp) * self.head_dim() * 2
    }

    /// Query heads on one GPU times the head dimension.
    pub fn q_width_per_gpu(&self) -> u64 {
        self.n_q_head / self.tp * self.head_dim()
    }
}

/// A parsed profile.
#[derive(Clone, Debug, PartialEq)]
pub enum Profile {
    /// Token-wise ops.
    Mlp(Vec<MlpRow>),
    /// Attention kernels.
    Attention(Vec<AttnRow>),
}

const MLP_OPS: [&str; 9] = [
    "input_layernorm",
    "attn_pre_proj",
    "attn_rope",
    "attn_post_proj",
    "post_attention_layernorm",
    "mlp_up_proj",
    "mlp_act",
    "mlp_down_proj",
    "add",
];

/// The ops of [`MLP_OPS`] whose work is proportional to the MLP's intermediate width.
const MLP_WIDTH_OPS: [&str; 3] = ["mlp_up_proj", "mlp_act", "mlp_down_proj"];

struct Rec<'a> {
    file: &'a str,
    line: u64,
    idx: &'a BTreeMap<String, usize>,
    rec: &'a csv::StringRecord,
}

impl Rec<'_> {
    fn text(&self, col: &str) -> Result<&str, String> {
        let i = self.idx.get(col).ok_or_else(|| format!("{}: missing column {col}", self.file))?;
        Ok(self.rec.get(*i).unwrap_or("").trim())
    }

    fn num(&self, col: &str) -> Result<f64, String> {
        let t = self.text(col)?;
        t.parse::<f64>().map_err(|_| {
            format!("{}:{}: column {col}: expected a number, got {t:?}", self.file, self.line)
        })
    }

    fn int(&self, col: &str) -> Result<u64, String> {
        let v = self.num(col)?;
        if v < 0.0 || v.fract() != 0.0 {
            return Err(format!("{}:{}: column {col}: expected an integer", self.file, self.line));
        }
        Ok(v as u64)
    }

    /// A median in ms; empty cells (ops a row does not run) count as 0.
    fn median(&self, op: &str) -> Result<f64, String> {
        let col = format!("time_stats.{op}.median");
        if self.text(&col)?.is_empty() {
            return Ok(0.0);
        }
        self.num(&col)
    }
}

fn mlp_row(r: &Rec) -> Result<MlpRow, String> {
    let mut layer_ms = 0.0;
    for op in MLP_OPS {
        layer_ms += r.median(op)?;
    }
    let mut mlp_ms = 0.0;
    for op in MLP_WIDTH_OPS {
        mlp_ms += r.median(op)?;
    }
    Ok(MlpRow {
        num_tokens: r.int("num_tokens")?,
        tp: r.int("num_tensor_parallel_workers")?,
        n_embd: r.int("n_embd")?,
        n_expanded_embd: r.int("n_expanded_embd")?,
        layer_ms,
        mlp_ms,
        emb_ms: r.median("emb")?,
    })
}

fn attn_row(r: &Rec) -> Result<AttnRow, String> {
    let is_prefill = match r.text("is_prefill")? {
        "True" | "true" | "1" => true,
        "False" | "false" | "0" => false,
        t => {
            return Err(format!(
                "{}:{}: is_prefill: expected True/False, got {t:?}",
                r.file, r.line
            ))
        }
    };
    let kernel = if is_prefill { "attn_prefill" } else { "attn_decode" };
    let layer_ms =
        r.median("attn_input_reshape")? + r.median(kernel)? + r.median("attn_output_reshape")?;
    Ok(AttnRow {
        is_prefill,
        batch_size: r.int("batch_size")?,
        kv_cache_size: r.int("kv_cache_size")?,
        prefill_chunk_size: r.int("prefill_chunk_size")?,
        n_embd: r.int("n_embd")?,
        n_q_head: r.int("n_q_head")?,
        n_kv_head: r.int("n_kv_head")?,
        tp: r.int("num_tensor_parallel_workers")?,
        layer_ms,
    })
}

/// Parses a Vidur profile, telling MLP from attention files by their columns.
pub fn parse(file: &str, text: &str) -> Result<Profile, String> {
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let headers = rdr.headers().map_err(|e| format!("{file}: {e}"))?.clone();
    let idx: BTreeMap<String, usize> =
        headers.iter().enumerate().map(|(i, h)| (h.trim().to_string(), i)).collect();
    let is_attn = idx.contains_key("time_stats.attn_decode.median");
    if !is_attn && !idx.contains_key("time_stats.mlp_up_proj.median") {
        return Err(format!("{file}: not a Vidur mlp or attention profile (no known op columns)"));
    }
    let (mut mlp, mut attn) = (Vec::new(), Vec::new());
    for rec in rdr.records() {
        let rec = rec.map_err(|e| format!("{file}: {e}"))?;
        let line = rec.position().map_or(0, |p| p.line());
        let r = Rec { file, line, idx: &idx, rec: &rec };
        if is_attn {
            attn.push(attn_row(&r)?);
        } else {
            mlp.push(mlp_row(&r)?);
        }
    }
    Ok(if is_attn { Profile::Attention(attn) } else { Profile::Mlp(mlp) })
}

#[cfg(test)]
pub(crate) mod tests;
