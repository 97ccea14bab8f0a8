//! Model geometry: the presets, KV bytes per token and the KV capacity formula.
//!
//! KV bytes per token (whole model) = `2 * layers * kv_heads * head_dim * bytes_per_element`
//! (a K and a V vector per layer and KV head). At tensor-parallel degree `tp` each GPU holds
//! `kv_heads / tp` of the heads, so its share is `1 / tp` of that.
//!
//! The capacity formula is the one vLLM applies: `C = floor((M * (1 - margin) - W) / b)` for
//! device memory `M`, weights `W` (per GPU) and KV bytes per token `b` (per GPU). Activation
//! workspace is not subtracted; it is what the margin is for.

use serde::{Deserialize, Serialize};

/// The shape of a decoder-only transformer, enough to size its weights, GEMMs and KV cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Geometry {
    /// Display name.
    pub name: String,
    /// Transformer layers.
    pub layers: u64,
    /// Hidden size (n_embd).
    pub hidden: u64,
    /// Query heads.
    pub heads: u64,
    /// KV heads (grouped-query attention when fewer than `heads`).
    pub kv_heads: u64,
    /// Per-head dimension.
    pub head_dim: u64,
    /// MLP intermediate size (gated MLP: gate, up and down projections).
    pub intermediate: u64,
    /// Vocabulary size.
    pub vocab: u64,
    /// Bytes per element of weights and KV (2 for fp16/bf16).
    pub bytes_per_element: u64,
    /// Tensor-parallel degree.
    pub tp: u64,
}

/// The names [`Geometry::preset`] accepts.
pub const PRESETS: [&str; 4] = ["llama-2-7b", "llama-3-8b", "llama-2-70b", "codellama-34b"];

impl Geometry {
    /// A preset by name (`llama-2-7b`, `llama-3-8b`, `llama-2-70b`, `codellama-34b`) at
    /// tensor-parallel degree `tp`, fp16. Fails when the name is unknown or `tp` does not divide
    /// the heads.
    pub fn preset(name: &str, tp: u64) -> Result<Geometry, String> {
        let g = |name: &str, layers, hidden, heads, kv_heads, intermediate, vocab| Geometry {
            name: name.to_string(),
            layers,
            hidden,
            heads,
            kv_heads,
            head_dim: hidden / heads,
            intermediate,
            vocab,
            bytes_per_element: 2,
            tp,
        };
        let geo = match name.to_ascii_lowercase().as_str() {
            "llama-2-7b" => g("Llama-2-7B", 32, 4096, 32, 32, 11008, 32000),
            "llama-3-8b" => g("Llama-3-8B", 32, 4096, 32, 8, 14336, 128256),
            "llama-2-70b" => g("Llama-2-70B", 80, 8192, 64, 8, 28672, 32000),
            "codellama-34b" => g("CodeLlama-34B", 48, 8192, 64, 8, 22016, 32000),
            _ => return Err(format!("unknown preset {name:?}; expected one of {PRESETS:?}")),
        };
        geo.check()?;
        Ok(geo)
    }

    /// Checks that the tensor-parallel degree divides the heads and the MLP.
    pub fn check(&self) -> Result<(), String> {
        let ok = self.tp >= 1
            && self.heads % self.tp == 0
            && self.kv_heads % self.tp == 0
            && self.intermediate % self.tp == 0;
        if !ok || self.heads == 0 || self.kv_heads == 0 || self.layers == 0 {
            return Err(format!(
                "{}: tensor-parallel degree {} must divide heads {}, kv_heads {} and \
                 intermediate {}",
                self.name, self.tp, self.heads, self.kv_heads, self.intermediate
            ));
        }
        Ok(())
    }

    /// KV heads on one GPU.
    pub fn kv_heads_per_gpu(&self) -> u64 {
        self.kv_heads / self.tp
    }

    /// Query heads on one GPU.
    pub fn heads_per_gpu(&self) -> u64 {
        self.heads / self.tp
    }

    /// KV bytes per token for the whole model: `2 * layers * kv_heads * head_dim * bytes`.
    pub fn kv_bytes_per_token(&self) -> u64 {
        2 * self.layers * self.kv_heads * self.head_dim * self.bytes_per_element
    }

    /// KV bytes per token held by one GPU (all layers).
    pub fn kv_bytes_per_token_per_gpu(&self) -> u64 {
        self.kv_bytes_per_token() / self.tp
    }

    /// KV bytes per token per layer held by one GPU.
    pub fn kv_bytes_per_token_per_layer_per_gpu(&self) -> u64 {
        2 * self.kv_heads_per_gpu() * self.head_dim * self.bytes_per_element
    }

    /// Parameters of one layer: Q, K, V, O projections, gated MLP, two norms.
    pub fn params_per_layer(&self) -> u64 {
        let kv_dim = self.kv_heads * self.head_dim;
        let attn = self.hidden * self.hidden * 2 + self.hidden * kv_dim * 2;
        let mlp = 3 * self.hidden * self.intermediate;
        attn + mlp + 2 * self.hidden
    }

    /// Total parameters: layers, input embedding, untied LM head and the final norm.
    pub fn params(&self) -> u64 {
        self.layers * self.params_per_layer() + 2 * self.vocab * self.hidden + self.hidden
    }

    /// Weight bytes on one GPU (everything sharded evenly).
    pub fn weight_bytes_per_gpu(&self) -> u64 {
        self.params() * self.bytes_per_element / self.tp
    }

    /// KV capacity in tokens of one GPU with `device_bytes` of memory after the weights and a
    /// `margin` fraction kept free: `floor((M * (1 - margin) - W) / b)`, 0 when nothing fits.
    pub fn kv_capacity_tokens(&self, device_bytes: u64, margin: f64) -> u64 {
        let usable = device_bytes as f64 * (1.0 - margin) - self.weight_bytes_per_gpu() as f64;
        if usable <= 0.0 {
            return 0;
        }
        (usable / self.kv_bytes_per_token_per_gpu() as f64).floor() as u64
    }

    /// Columns of the token-wise GEMMs of one layer on one GPU, as `(name, k, n)`: the GEMM of
    /// a batch of `m` tokens is `[m x k] * [k x n]`.
    pub fn layer_gemms(&self) -> Vec<(&'static str, u64, u64)> {
        let h = self.hidden;
        let q = self.heads_per_gpu() * self.head_dim;
        let kv = self.kv_heads_per_gpu() * self.head_dim;
        let inter = self.intermediate / self.tp;
        vec![("qkv", h, q + 2 * kv), ("o", q, h), ("gate_up", h, 2 * inter), ("down", inter, h)]
    }
}

/// Device memory of an A100-80GB in bytes (80 GiB), as `cudaMemGetInfo` reports its total up to
/// the driver's reservation.
pub const A100_80GB_BYTES: u64 = 80 * (1 << 30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama2_7b_kv_bytes_match_formula() {
        let g = Geometry::preset("llama-2-7b", 1).unwrap();
        assert_eq!(g.head_dim, 128);
        assert_eq!(g.kv_bytes_per_token(), 524_288);
        assert_eq!(g.kv_bytes_per_token_per_layer_per_gpu(), 16_384);
    }

    #[test]
    fn parameter_counts_match_published_models() {
        // Hugging Face parameter counts of the released checkpoints.
        assert_eq!(Geometry::preset("llama-2-7b", 1).unwrap().params(), 6_738_415_616);
        assert_eq!(Geometry::preset("llama-3-8b", 1).unwrap().params(), 8_030_261_248);
        assert_eq!(Geometry::preset("llama-2-70b", 1).unwrap().params(), 68_976_648_192);
        assert_eq!(Geometry::preset("codellama-34b", 1).unwrap().params(), 33_743_970_304);
    }

    #[test]
    fn tensor_parallel_shares_kv_and_weights() {
        let g = Geometry::preset("llama-2-70b", 2).unwrap();
        assert_eq!(g.kv_heads_per_gpu(), 4);
        assert_eq!(g.kv_bytes_per_token(), 327_680);
        assert_eq!(g.kv_bytes_per_token_per_gpu(), 163_840);
        assert_eq!(g.kv_bytes_per_token_per_layer_per_gpu(), 2_048);
        assert!(Geometry::preset("llama-2-70b", 3).is_err());
        assert!(Geometry::preset("gpt-5", 1).is_err());
    }

    #[test]
    fn capacity_formula() {
        let g = Geometry::preset("llama-2-7b", 1).unwrap();
        let c = g.kv_capacity_tokens(A100_80GB_BYTES, 0.01);
        // (0.99 * 80 GiB - 13,476,831,232 B) / 524,288 B.
        assert_eq!(c, 136_496);
        assert_eq!(g.kv_capacity_tokens(1 << 30, 0.01), 0);
    }

    #[test]
    fn gemm_shapes() {
        let g = Geometry::preset("llama-3-8b", 1).unwrap();
        let s = g.layer_gemms();
        assert_eq!(s[0], ("qkv", 4096, 4096 + 2 * 1024));
        assert_eq!(s[2], ("gate_up", 4096, 2 * 14336));
        let total: u64 = s.iter().map(|(_, k, n)| k * n).sum();
        assert_eq!(total + 2 * 4096, g.params_per_layer());
    }
}
