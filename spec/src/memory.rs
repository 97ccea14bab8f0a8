//! KV-cache memory: capacity, paging and the watermark.
//!
//! A resident request holding `h` tokens of KV occupies `footprint(h)`: `h` itself when memory
//! is token-granular (`block_size_tokens = 1`), or `h` rounded up to a whole number of blocks
//! when it is paged. The hard constraint of the model (WAIT paper Eq. 2; MC-SF paper's memory
//! constraint) is that the footprints of all resident requests sum to at most
//! `kv_capacity_tokens` after every step.
//!
//! The watermark is advisory: it is a fraction of capacity that admission policies such as
//! vLLM's keep free, and the spec does not enforce it.

use crate::units::{KvBlocks, Tokens};
use serde::{Deserialize, Serialize};

/// Memory configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// KV capacity C in tokens.
    pub kv_capacity_tokens: u64,
    /// Paging granularity; 1 means token-granular memory (the papers' model).
    #[serde(default = "default_block_size")]
    pub block_size_tokens: u64,
    /// Fraction of capacity that admission keeps free (vLLM's `watermark`, default 0.01 there).
    /// Advisory; not part of the hard constraint.
    #[serde(default)]
    pub watermark_fraction: f64,
}

fn default_block_size() -> u64 {
    1
}

impl MemoryConfig {
    /// Token-granular memory of the given capacity, with no watermark.
    pub fn tokens(kv_capacity_tokens: u64) -> MemoryConfig {
        MemoryConfig { kv_capacity_tokens, block_size_tokens: 1, watermark_fraction: 0.0 }
    }

    /// Capacity as a [`Tokens`] value, rounded down to whole blocks.
    pub fn capacity(&self) -> Tokens {
        let blocks = KvBlocks::from_tokens_div_floor(
            Tokens(self.kv_capacity_tokens),
            self.block_size_tokens,
        );
        blocks.to_tokens(self.block_size_tokens)
    }

    /// Memory held by a request with `held` KV tokens: rounded up to whole blocks.
    #[inline]
    pub fn footprint(&self, held: Tokens) -> Tokens {
        KvBlocks::from_tokens_div_ceil(held, self.block_size_tokens)
            .to_tokens(self.block_size_tokens)
    }

    /// Tokens the watermark keeps free, rounded up to whole blocks.
    pub fn watermark(&self) -> Tokens {
        let raw = (self.kv_capacity_tokens as f64 * self.watermark_fraction).ceil() as u64;
        self.footprint(Tokens(raw))
    }

    /// Checks the configuration; returns a message naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.kv_capacity_tokens == 0 {
            return Err("memory.kv_capacity_tokens: expected a positive integer".into());
        }
        if self.block_size_tokens == 0 {
            return Err("memory.block_size_tokens: expected a positive integer".into());
        }
        if self.block_size_tokens > self.kv_capacity_tokens {
            return Err("memory.block_size_tokens: expected at most kv_capacity_tokens".into());
        }
        if !(0.0..1.0).contains(&self.watermark_fraction) {
            return Err("memory.watermark_fraction: expected a number in [0, 1)".into());
        }
        Ok(())
    }
}
