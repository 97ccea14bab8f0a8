//! Decode attention over a paged KV cache: the CPU reference and the CUDA kernel source.
//!
//! Layout (vLLM's, one layer): `k_cache` and `v_cache` are `[blocks][block_size][kv_heads]
//! [head_dim]` fp16; `block_table` is `[batch][max_blocks]` block indices; `context_lens[b]` is the
//! number of KV tokens sequence `b` attends; `q` is `[batch][heads][head_dim]` fp16; the output is
//! `[batch][heads][head_dim]` f32. Query head `h` reads KV head `h / (heads / kv_heads)`.

use crate::half::{f16_to_f32, f32_to_f16};
use crate::rng::SplitMix;

/// A paged KV cache of one layer, plus the queries of one decode step.
#[derive(Clone, Debug)]
pub struct PagedDecode {
    /// Query heads.
    pub heads: usize,
    /// KV heads.
    pub kv_heads: usize,
    /// Head dimension.
    pub head_dim: usize,
    /// Tokens per block.
    pub block_size: usize,
    /// Columns of the block table.
    pub max_blocks: usize,
    /// Queries, fp16 bits.
    pub q: Vec<u16>,
    /// Keys, fp16 bits.
    pub k_cache: Vec<u16>,
    /// Values, fp16 bits.
    pub v_cache: Vec<u16>,
    /// Block table (row per sequence).
    pub block_table: Vec<i32>,
    /// KV tokens per sequence.
    pub context_lens: Vec<i32>,
}

fn random_halves(n: usize, r: &mut SplitMix) -> Vec<u16> {
    (0..n).map(|_| f32_to_f16((r.uniform() * 2.0 - 1.0) as f32)).collect()
}

impl PagedDecode {
    /// Random data (uniform in [-1, 1)) for sequences of lengths `lens`, with the blocks of all
    /// sequences assigned in a shuffled order, so that paging is exercised.
    pub fn random(
        lens: &[usize],
        heads: usize,
        kv_heads: usize,
        head_dim: usize,
        block_size: usize,
        seed: u64,
    ) -> PagedDecode {
        let mut p = PagedDecode::layout(lens, heads, kv_heads, head_dim, block_size, seed);
        let mut r = SplitMix(seed ^ 0x5eed);
        p.q = random_halves(lens.len() * heads * head_dim, &mut r);
        p.k_cache = random_halves(p.cache_len(), &mut r);
        p.v_cache = random_halves(p.cache_len(), &mut r);
        p
    }

    /// The shuffled block table and lengths only; `q`, `k_cache` and `v_cache` are left empty
    /// (the GPU sweep fills them on the device).
    pub fn layout(
        lens: &[usize],
        heads: usize,
        kv_heads: usize,
        head_dim: usize,
        block_size: usize,
        seed: u64,
    ) -> PagedDecode {
        let mut r = SplitMix(seed);
        let max_blocks = lens.iter().map(|l| l.div_ceil(block_size)).max().unwrap_or(0).max(1);
        let total: usize = lens.iter().map(|l| l.div_ceil(block_size)).sum();
        let mut order: Vec<i32> = (0..total as i32).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, r.range(0, i as u64) as usize);
        }
        let mut block_table = vec![0i32; lens.len() * max_blocks];
        let mut next = order.into_iter();
        for (b, l) in lens.iter().enumerate() {
            for j in 0..l.div_ceil(block_size) {
                block_table[b * max_blocks + j] = next.next().unwrap_or(0);
            }
        }
        PagedDecode {
            heads,
            kv_heads,
            head_dim,
            block_size,
            max_blocks,
            q: Vec::new(),
            k_cache: Vec::new(),
            v_cache: Vec::new(),
            block_table,
            context_lens: lens.iter().map(|&l| l as i32).collect(),
        }
    }

    /// Elements of each cache: all blocks the sequences use (at least one).
    pub fn cache_len(&self) -> usize {
        let blocks: usize =
            self.context_lens.iter().map(|&l| (l as usize).div_ceil(self.block_size)).sum();
        blocks.max(1) * self.block_size * self.kv_heads * self.head_dim
    }

    /// Number of sequences.
    pub fn batch(&self) -> usize {
        self.context_lens.len()
    }

    /// Offset of token `t` of sequence `b`, KV head `kvh`, in the caches.
    pub fn kv_offset(&self, b: usize, t: usize, kvh: usize) -> usize {
        let blk = self.block_table[b * self.max_blocks + t / self.block_size] as usize;
        ((blk * self.block_size + t % self.block_size) * self.kv_heads + kvh) * self.head_dim
    }
}

/// CPU reference: softmax(q k^T / sqrt(d)) v per sequence and head, in f32.
pub fn decode_attention_ref(p: &PagedDecode) -> Vec<f32> {
    let (hd, group) = (p.head_dim, p.heads / p.kv_heads);
    let scale = 1.0 / (hd as f32).sqrt();
    let mut out = vec![0f32; p.batch() * p.heads * hd];
    for b in 0..p.batch() {
        let len = p.context_lens[b] as usize;
        for h in 0..p.heads {
            let qo = (b * p.heads + h) * hd;
            let q: Vec<f32> = p.q[qo..qo + hd].iter().map(|&x| f16_to_f32(x)).collect();
            let scores: Vec<f32> = (0..len)
                .map(|t| {
                    let ko = p.kv_offset(b, t, h / group);
                    let k = &p.k_cache[ko..ko + hd];
                    q.iter().zip(k).map(|(a, &c)| a * f16_to_f32(c)).sum::<f32>() * scale
                })
                .collect();
            let mx = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let w: Vec<f32> = scores.iter().map(|s| (s - mx).exp()).collect();
            let sum: f32 = w.iter().sum();
            for (t, wt) in w.iter().enumerate() {
                let vo = p.kv_offset(b, t, h / group);
                for d in 0..hd {
                    out[qo + d] += wt / sum * f16_to_f32(p.v_cache[vo + d]);
                }
            }
        }
    }
    out
}

/// Name of the kernel in [`KERNEL_SRC`].
pub const KERNEL_NAME: &str = "paged_decode_attention";

/// Threads per block of the kernel (one block per sequence and query head).
pub const KERNEL_THREADS: u32 = 128;

/// CUDA source of the decode attention kernel (compiled with NVRTC). Three passes per
/// (sequence, head): scores into `scratch` with a block-wide max, exponentials with a block-wide
/// sum, then each thread accumulates one output dimension. `head_dim` must be at most 256.
pub const KERNEL_SRC: &str = r#"
__device__ __forceinline__ float h2f(unsigned short h) {
    float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f;
}
__device__ float block_reduce(float v, bool is_max, float* red) {
    for (int o = 16; o > 0; o /= 2) {
        float w = __shfl_xor_sync(0xffffffff, v, o);
        v = is_max ? fmaxf(v, w) : v + w;
    }
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = (blockDim.x + 31) / 32;
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = red[0];
    for (int i = 1; i < nw; ++i) v = is_max ? fmaxf(v, red[i]) : v + red[i];
    return v;
}
extern "C" __global__ void paged_decode_attention(
    const unsigned short* q, const unsigned short* k_cache, const unsigned short* v_cache,
    const int* block_table, const int* context_lens, float* scratch, float* out,
    int heads, int kv_heads, int head_dim, int block_size, int max_blocks, int max_ctx,
    float scale)
{
    __shared__ float qs[256];
    __shared__ float red[32];
    int seq = blockIdx.x / heads, h = blockIdx.x % heads;
    int kvh = h / (heads / kv_heads);
    int len = context_lens[seq];
    const int* table = block_table + (size_t)seq * max_blocks;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x)
        qs[d] = h2f(q[((size_t)seq * heads + h) * head_dim + d]);
    __syncthreads();
    float* sc = scratch + (size_t)blockIdx.x * max_ctx;
    float mx = -3.0e38f;
    for (int t = threadIdx.x; t < len; t += blockDim.x) {
        size_t row = (size_t)table[t / block_size] * block_size + t % block_size;
        const unsigned short* kp = k_cache + (row * kv_heads + kvh) * head_dim;
        float s = 0.0f;
        for (int d = 0; d < head_dim; ++d) s += qs[d] * h2f(kp[d]);
        s *= scale;
        sc[t] = s;
        mx = fmaxf(mx, s);
    }
    mx = block_reduce(mx, true, red);
    float sum = 0.0f;
    for (int t = threadIdx.x; t < len; t += blockDim.x) {
        float p = expf(sc[t] - mx);
        sc[t] = p;
        sum += p;
    }
    sum = block_reduce(sum, false, red);
    __syncthreads();
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float acc = 0.0f;
        for (int t = 0; t < len; ++t) {
            size_t row = (size_t)table[t / block_size] * block_size + t % block_size;
            acc += sc[t] * h2f(v_cache[(row * kv_heads + kvh) * head_dim + d]);
        }
        out[((size_t)seq * heads + h) * head_dim + d] = acc / sum;
    }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    /// The paged reference equals attention over the logically contiguous sequences (f64).
    #[test]
    fn paged_reference_matches_contiguous_attention() {
        let lens = [1usize, 17, 40, 5];
        let p = PagedDecode::random(&lens, 4, 2, 8, 16, 11);
        let out = decode_attention_ref(&p);
        let hd = p.head_dim;
        let row = |cache: &[u16], b, t, kvh| -> Vec<f64> {
            let o = p.kv_offset(b, t, kvh);
            cache[o..o + hd].iter().map(|&x| f16_to_f32(x) as f64).collect()
        };
        for (b, &len) in lens.iter().enumerate() {
            for h in 0..p.heads {
                let qo = (b * p.heads + h) * hd;
                let q: Vec<f64> = p.q[qo..qo + hd].iter().map(|&x| f16_to_f32(x) as f64).collect();
                let s: Vec<f64> = (0..len)
                    .map(|t| {
                        let k = row(&p.k_cache, b, t, h / 2);
                        q.iter().zip(&k).map(|(a, c)| a * c).sum::<f64>() / (hd as f64).sqrt()
                    })
                    .collect();
                let z: f64 = s.iter().map(|x| x.exp()).sum();
                for d in 0..hd {
                    let want: f64 =
                        (0..len).map(|t| s[t].exp() / z * row(&p.v_cache, b, t, h / 2)[d]).sum();
                    assert!((out[qo + d] as f64 - want).abs() < 1e-5, "b{b} h{h} d{d}");
                }
            }
        }
    }

    /// Attending a single repeated value vector returns that vector whatever the scores.
    #[test]
    fn uniform_values_give_that_value() {
        let mut p = PagedDecode::random(&[33, 70], 2, 1, 16, 16, 3);
        let v: Vec<u16> = (0..16).map(|d| f32_to_f16(d as f32 / 16.0 - 0.5)).collect();
        for chunk in p.v_cache.chunks_mut(16) {
            chunk.copy_from_slice(&v);
        }
        let out = decode_attention_ref(&p);
        for row in out.chunks(16) {
            for (d, x) in row.iter().enumerate() {
                assert!((x - (d as f32 / 16.0 - 0.5)).abs() < 1e-5, "{x}");
            }
        }
    }

    #[test]
    fn blocks_are_a_permutation() {
        let p = PagedDecode::random(&[16, 33, 1], 1, 1, 4, 16, 5);
        let mut used: Vec<i32> = vec![];
        for (b, l) in [16usize, 33, 1].iter().enumerate() {
            used.extend(&p.block_table[b * p.max_blocks..b * p.max_blocks + l.div_ceil(16)]);
        }
        used.sort_unstable();
        assert_eq!(used, (0..5).collect::<Vec<i32>>());
    }
}
