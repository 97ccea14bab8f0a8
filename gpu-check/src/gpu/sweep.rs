//! Timed iterations: token-wise GEMMs through cuBLAS and the paged decode attention kernel,
//! swept over batch size, KV length and prefill chunk size.

use super::Gpu;
use crate::attention::{
    decode_attention_ref, PagedDecode, KERNEL_NAME, KERNEL_SRC, KERNEL_THREADS,
};
use crate::fit::Sample;
use crate::geometry::Geometry;
use crate::table::Row;
use anyhow::{bail, Result};
use cudarc::cublas::sys::{cublasComputeType_t, cublasGemmAlgo_t, cublasOperation_t, cudaDataType};
use cudarc::cublas::CudaBlas;
use cudarc::driver::{
    CudaFunction, CudaSlice, DevicePtr, DevicePtrMut, LaunchConfig, PushKernelArg,
};
use kvsched_spec::BatchShape;
use std::ffi::c_void;

/// What to sweep.
#[derive(Clone, Debug)]
pub struct SweepConfig {
    /// Decode batch sizes.
    pub batches: Vec<u64>,
    /// KV tokens per request for decode.
    pub kv_lens: Vec<u64>,
    /// Prefill chunk sizes (token-wise work only).
    pub chunks: Vec<u64>,
    /// Paging block size (tokens).
    pub block_size: u64,
    /// Warm-up runs and timed repetitions per point.
    pub warmup: usize,
    /// Timed repetitions per point (the median is kept).
    pub reps: usize,
    /// Largest KV cache of one layer to allocate (bytes).
    pub max_kv_bytes: u64,
}

impl Default for SweepConfig {
    fn default() -> SweepConfig {
        SweepConfig {
            batches: vec![1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 192, 256],
            kv_lens: vec![128, 256, 512, 1024, 2048, 4096],
            chunks: vec![16, 32, 64, 128, 256, 512, 1024, 2048, 4096],
            block_size: 16,
            warmup: 3,
            reps: 9,
            max_kv_bytes: 16 << 30,
        }
    }
}

/// The decode attention kernel, compiled with NVRTC.
fn load_kernel(gpu: &Gpu) -> Result<CudaFunction> {
    let ptx = cudarc::nvrtc::compile_ptx(KERNEL_SRC)?;
    Ok(gpu.ctx.load_module(ptx)?.load_function(KERNEL_NAME)?)
}

/// A paged decode step on the device.
struct DeviceDecode {
    host: PagedDecode,
    q: CudaSlice<u16>,
    k: CudaSlice<u16>,
    v: CudaSlice<u16>,
    table: CudaSlice<i32>,
    lens: CudaSlice<i32>,
    scratch: CudaSlice<f32>,
    out: CudaSlice<f32>,
}

impl DeviceDecode {
    fn upload(gpu: &Gpu, host: PagedDecode) -> Result<DeviceDecode> {
        let s = &gpu.stream;
        let max_ctx = host.context_lens.iter().copied().max().unwrap_or(1).max(1) as usize;
        let n_out = host.batch() * host.heads * host.head_dim;
        let fill = |v: &Vec<u16>, len: usize, seed: u64| {
            if v.is_empty() {
                gpu.random_halves(len, seed)
            } else {
                Ok(s.memcpy_stod(v)?)
            }
        };
        let cache = host.cache_len();
        Ok(DeviceDecode {
            q: fill(&host.q, n_out, 1)?,
            k: fill(&host.k_cache, cache, 2)?,
            v: fill(&host.v_cache, cache, 3)?,
            table: s.memcpy_stod(&host.block_table)?,
            lens: s.memcpy_stod(&host.context_lens)?,
            scratch: s.alloc_zeros::<f32>(host.batch() * host.heads * max_ctx)?,
            out: s.alloc_zeros::<f32>(n_out)?,
            host,
        })
    }

    fn launch(&mut self, gpu: &Gpu, f: &CudaFunction) -> Result<()> {
        let h = &self.host;
        if h.head_dim > 256 || h.heads % h.kv_heads != 0 {
            bail!("attention kernel: head_dim must be <= 256 and kv_heads divide heads");
        }
        let max_ctx = h.context_lens.iter().copied().max().unwrap_or(1).max(1);
        let ints = [h.heads, h.kv_heads, h.head_dim, h.block_size, h.max_blocks].map(|v| v as i32);
        let scale = 1.0f32 / (h.head_dim as f32).sqrt();
        let cfg = LaunchConfig {
            grid_dim: ((h.batch() * h.heads) as u32, 1, 1),
            block_dim: (KERNEL_THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut b = gpu.stream.launch_builder(f);
        b.arg(&self.q).arg(&self.k).arg(&self.v).arg(&self.table).arg(&self.lens);
        b.arg(&mut self.scratch).arg(&mut self.out);
        b.arg(&ints[0]).arg(&ints[1]).arg(&ints[2]).arg(&ints[3]).arg(&ints[4]);
        b.arg(&max_ctx).arg(&scale);
        // SAFETY: the argument list matches the kernel's signature in KERNEL_SRC (7 pointers,
        // 6 ints, 1 float); buffers are sized from `host`, whose block table indexes only
        // allocated blocks and whose lengths bound the scratch rows.
        unsafe { b.launch(cfg) }?;
        Ok(())
    }
}

/// Runs the kernel on small random problems and compares with the CPU reference; returns the
/// largest absolute difference, failing above 2e-3.
pub fn check_attention(gpu: &Gpu) -> Result<f32> {
    let f = load_kernel(gpu)?;
    let mut worst = 0f32;
    for (lens, heads, kv_heads, hd) in [(vec![1, 17, 300], 4, 4, 64), (vec![33, 130], 8, 2, 128)] {
        let host = PagedDecode::random(&lens, heads, kv_heads, hd, 16, 42);
        let want = decode_attention_ref(&host);
        let mut dev = DeviceDecode::upload(gpu, host)?;
        dev.launch(gpu, &f)?;
        let got = gpu.stream.memcpy_dtov(&dev.out)?;
        for (a, b) in got.iter().zip(&want) {
            worst = worst.max((a - b).abs());
        }
    }
    if worst.is_nan() || worst > 2e-3 {
        bail!("attention kernel differs from the CPU reference by {worst}");
    }
    Ok(worst)
}

/// One layer's GEMM weights and activation buffers, sized for `max_tokens`.
struct Gemms {
    shapes: Vec<(&'static str, u64, u64)>,
    weights: Vec<CudaSlice<u16>>,
    x: CudaSlice<u16>,
    y: CudaSlice<u16>,
}

impl Gemms {
    fn new(gpu: &Gpu, geo: &Geometry, max_tokens: u64) -> Result<Gemms> {
        let shapes = geo.layer_gemms();
        let weights = shapes
            .iter()
            .enumerate()
            .map(|(i, (_, k, n))| gpu.random_halves((k * n) as usize, 100 + i as u64))
            .collect::<Result<Vec<_>>>()?;
        let widest = shapes.iter().map(|s| s.1.max(s.2)).max().unwrap_or(1);
        let x = gpu.random_halves((max_tokens * widest) as usize, 7)?;
        let y = gpu.stream.alloc_zeros::<u16>((max_tokens * widest) as usize)?;
        Ok(Gemms { shapes, weights, x, y })
    }

    /// The layer's GEMMs for `m` tokens: row-major `Y[m x n] = X[m x k] W[k x n]`, which is
    /// column-major `Y^T = W^T X^T`.
    fn run(&mut self, gpu: &Gpu, blas: &CudaBlas, m: u64) -> Result<()> {
        let (alpha, beta) = (1.0f32, 0.0f32);
        for (i, &(_, k, n)) in self.shapes.iter().enumerate() {
            let (w, _rw) = self.weights[i].device_ptr(&gpu.stream);
            let (x, _rx) = self.x.device_ptr(&gpu.stream);
            let (y, _ry) = self.y.device_ptr_mut(&gpu.stream);
            // SAFETY: W holds k*n, X at least m*k and Y at least m*n fp16 values (sized from the
            // widest GEMM and max_tokens); alpha and beta are f32 as COMPUTE_32F requires.
            unsafe {
                cudarc::cublas::result::gemm_ex(
                    *blas.handle(),
                    cublasOperation_t::CUBLAS_OP_N,
                    cublasOperation_t::CUBLAS_OP_N,
                    n as i32,
                    m as i32,
                    k as i32,
                    (&alpha) as *const f32 as *const c_void,
                    w as *const c_void,
                    cudaDataType::CUDA_R_16F,
                    n as i32,
                    x as *const c_void,
                    cudaDataType::CUDA_R_16F,
                    k as i32,
                    (&beta) as *const f32 as *const c_void,
                    y as *mut c_void,
                    cudaDataType::CUDA_R_16F,
                    n as i32,
                    cublasComputeType_t::CUBLAS_COMPUTE_32F,
                    cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
                )
            }?;
        }
        Ok(())
    }
}

fn decode_problem(geo: &Geometry, b: u64, kv: u64, block: u64) -> PagedDecode {
    let lens = vec![kv as usize; b as usize];
    let (h, kvh, hd) = (geo.heads_per_gpu(), geo.kv_heads_per_gpu(), geo.head_dim);
    PagedDecode::layout(&lens, h as usize, kvh as usize, hd as usize, block as usize, b ^ kv)
}

/// Times whole iterations (`layers` x one layer) of the model's shapes; returns the table.
pub fn sweep(gpu: &Gpu, geo: &Geometry, cfg: &SweepConfig) -> Result<Vec<Row>> {
    let blas = CudaBlas::new(gpu.stream.clone())?;
    let f = load_kernel(gpu)?;
    let max_tokens = cfg.chunks.iter().chain(&cfg.batches).copied().max().unwrap_or(1);
    let mut gemms = Gemms::new(gpu, geo, max_tokens)?;
    let layers = geo.layers as usize;
    let mut rows = Vec::new();
    for &c in &cfg.chunks {
        let ms = gpu.time_ms(cfg.warmup, cfg.reps, || {
            (0..layers).try_for_each(|_| gemms.run(gpu, &blas, c))
        })?;
        let shape = BatchShape { prefill_tokens: c, ..BatchShape::default() };
        rows.push(Row::new("tokenwise", &Sample { shape, time_s: ms / 1e3 }));
        eprintln!("tokenwise {c:>5} tokens: {ms:.3} ms");
    }
    for &b in &cfg.batches {
        for &kv in &cfg.kv_lens {
            if b * kv * geo.kv_bytes_per_token_per_layer_per_gpu() > cfg.max_kv_bytes {
                continue;
            }
            let mut dev = DeviceDecode::upload(gpu, decode_problem(geo, b, kv, cfg.block_size))?;
            let ms = gpu.time_ms(cfg.warmup, cfg.reps, || {
                (0..layers).try_for_each(|_| {
                    gemms.run(gpu, &blas, b)?;
                    dev.launch(gpu, &f)
                })
            })?;
            let shape = BatchShape {
                decode_requests: b,
                attended_kv_tokens: b * kv,
                ..BatchShape::default()
            };
            rows.push(Row::new("decode", &Sample { shape, time_s: ms / 1e3 }));
            eprintln!("decode batch {b:>4} x {kv:>5} KV: {ms:.3} ms");
        }
    }
    Ok(rows)
}
