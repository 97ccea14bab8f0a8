//! KV capacity on the device: allocate the weights' worth of memory, then a paged KV pool in
//! blocks until only the margin is left; count the tokens and the bytes each took.

use super::Gpu;
use crate::geometry::Geometry;
use anyhow::Result;
use cudarc::driver::CudaSlice;
use serde::Serialize;

/// What [`measure_capacity`] found.
#[derive(Clone, Debug, Serialize)]
pub struct CapacityReport {
    /// Device memory (bytes) as the driver reports it.
    pub total_bytes: u64,
    /// Free memory before anything was allocated.
    pub free_before: u64,
    /// Weight bytes allocated (the geometry's, per GPU).
    pub weight_bytes: u64,
    /// Margin kept free (fraction of total).
    pub margin: f64,
    /// KV blocks allocated.
    pub blocks: u64,
    /// KV tokens that fit (`blocks * block_size`).
    pub tokens: u64,
    /// Bytes per token by the formula (per GPU).
    pub formula_bytes_per_token: u64,
    /// Bytes per token measured: drop in free memory over the pool, per token.
    pub measured_bytes_per_token: f64,
    /// Capacity by the formula on the reported total (see [`Geometry::kv_capacity_tokens`]).
    pub formula_tokens: u64,
}

/// Allocates weights and a KV pool of `block_size`-token blocks, in chunks of up to 1 GiB, until
/// less than `margin * total` would stay free.
pub fn measure_capacity(
    gpu: &Gpu,
    geo: &Geometry,
    margin: f64,
    block_size: u64,
) -> Result<CapacityReport> {
    let (free_before, total) = gpu.mem_info()?;
    let weight_bytes = geo.weight_bytes_per_gpu();
    // SAFETY: the buffer is only held to occupy memory; it is never read.
    let weights: CudaSlice<u8> = unsafe { gpu.stream.alloc::<u8>(weight_bytes as usize) }?;
    gpu.stream.synchronize()?;
    let (free_pool_start, _) = gpu.mem_info()?;
    let block_bytes = block_size * geo.kv_bytes_per_token_per_gpu();
    let keep = (margin * total as f64) as u64;
    let chunk_blocks = ((1u64 << 30) / block_bytes).max(1);
    let mut pool: Vec<CudaSlice<u8>> = Vec::new();
    let mut blocks = 0u64;
    loop {
        let (free, _) = gpu.mem_info()?;
        let room = free.saturating_sub(keep) / block_bytes;
        let n = room.min(chunk_blocks);
        if n == 0 {
            break;
        }
        // SAFETY: as above, the pool is only held, never read.
        match unsafe { gpu.stream.alloc::<u8>((n * block_bytes) as usize) } {
            Ok(buf) => pool.push(buf),
            Err(_) => break,
        }
        blocks += n;
    }
    gpu.stream.synchronize()?;
    let (free_after, _) = gpu.mem_info()?;
    let tokens = blocks * block_size;
    let used = free_pool_start.saturating_sub(free_after) as f64;
    drop(pool);
    drop(weights);
    Ok(CapacityReport {
        total_bytes: total,
        free_before,
        weight_bytes,
        margin,
        blocks,
        tokens,
        formula_bytes_per_token: geo.kv_bytes_per_token_per_gpu(),
        measured_bytes_per_token: if tokens > 0 { used / tokens as f64 } else { f64::NAN },
        formula_tokens: geo.kv_capacity_tokens(total, margin),
    })
}
