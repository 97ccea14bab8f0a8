//! Synthetic Vidur-schema profiles with known coefficients, for tests and for the fixtures in
//! `gpu-check/tests/fixtures/` (which were written by [`mlp_csv`] and [`attention_csv`]).
//!
//! Per-layer milliseconds, before noise:
//! - token-wise: `MLP_FLAT_MS + MLP_SLOPE_MS * max(0, tokens - MLP_KNEE)`, plus `emb` 0.003 ms;
//! - decode attention (70B geometry, TP 2): `ATT_C + ATT_B * batch + ATT_KV * batch * kv`;
//! - prefill attention: `PRE_C + PRE_A2 * chunk * (kv + chunk)`.

use crate::rng::SplitMix;

/// Token-wise ms per layer in the flat region.
pub const MLP_FLAT_MS: f64 = 0.29;
/// Token-wise ms per layer per token above the knee.
pub const MLP_SLOPE_MS: f64 = 0.0019;
/// The knee (tokens).
pub const MLP_KNEE: u64 = 96;
/// Decode attention constant (ms per layer).
pub const ATT_C: f64 = 0.012;
/// Decode attention per request (ms per layer).
pub const ATT_B: f64 = 5e-5;
/// Decode attention per KV token (ms per layer, at 2,048 KV bytes per token per layer).
pub const ATT_KV: f64 = 1.3e-6;
/// Prefill attention constant (ms per layer).
pub const PRE_C: f64 = 0.015;
/// Prefill attention per chunk x context pair (ms per layer).
pub const PRE_A2: f64 = 1.4e-7;

fn stats(name: &str) -> String {
    ["min", "max", "mean", "median", "std"].map(|s| format!("time_stats.{name}.{s}")).join(",")
}

fn vals(ms: f64) -> String {
    format!("{ms},{ms},{ms},{ms},0.0")
}

const MLP_OPS: [&str; 10] = [
    "emb",
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

/// An MLP profile of Llama-2-7B at TP 1 for the given token counts, with relative noise `sd`.
pub fn mlp_csv(tokens: &[u64], sd: f64, seed: u64) -> String {
    let mut r = SplitMix(seed);
    let mut head: Vec<String> = MLP_OPS.iter().map(|o| stats(o)).collect();
    head.push("n_head,n_kv_head,n_embd,n_expanded_embd,vocab_size,use_gated_mlp".into());
    head.push("num_tokens,num_tensor_parallel_workers".into());
    let mut out = head.join(",") + "\n";
    for &n in tokens {
        let total = MLP_FLAT_MS + MLP_SLOPE_MS * n.saturating_sub(MLP_KNEE) as f64;
        let total = total * (1.0 + sd * r.normal());
        // Split the layer's time over the 9 per-layer ops: 1/9 each.
        let mut cells: Vec<String> = vec![vals(0.003)];
        cells.extend((0..9).map(|_| vals(total / 9.0)));
        cells.push(format!("32,32,4096,11008,32768,True,{n},1"));
        out += &(cells.join(",") + "\n");
    }
    out
}

/// An attention profile in the 70B / TP 2 geometry: decode rows for every `(batch, kv)` pair and
/// prefill rows for every `(chunk, kv)` pair, with relative noise `sd`.
pub fn attention_csv(decode: &[(u64, u64)], prefill: &[(u64, u64)], sd: f64, seed: u64) -> String {
    let mut r = SplitMix(seed);
    let ops = ["attn_input_reshape", "attn_decode", "attn_output_reshape", "attn_prefill"];
    let mut out = ops.map(stats).join(",");
    out += ",n_embd,n_q_head,n_kv_head,block_size,num_tensor_parallel_workers,max_model_len,\
            batch_size,prefill_chunk_size,kv_cache_size,is_prefill,attention_backend,\
            profile_method\n";
    let tail = "AttentionBackend.FLASH_ATTENTION,ProfileMethod.KINETO";
    for &(b, kv) in decode {
        let t = (ATT_C + ATT_B * b as f64 + ATT_KV * (b * kv) as f64) * (1.0 + sd * r.normal());
        let empty = ",,,,";
        out += &format!(
            "{},{},{},{empty},8192,64,8,16,2,4096,{b},0,{kv},False,{tail}\n",
            vals(0.0),
            vals(t),
            vals(0.0)
        );
    }
    for &(c, kv) in prefill {
        let t = (PRE_C + PRE_A2 * (c * (kv + c)) as f64) * (1.0 + sd * r.normal());
        out += &format!(
            "{},,,,,,{},{},8192,64,8,16,2,4096,1,{c},{kv},True,{tail}\n",
            vals(0.0),
            vals(0.0),
            vals(t)
        );
    }
    out
}
