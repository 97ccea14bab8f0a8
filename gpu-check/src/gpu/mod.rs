//! The GPU side: driver probe, KV capacity, and timed iterations of a model's shapes.
//!
//! Everything goes through cudarc with dynamic loading: `libcuda`, `libcublas` and `libnvrtc`
//! are opened at run time, so the crate builds without CUDA. Loading panics when a library is
//! missing; [`probe`] catches that.
//!
//! What one iteration is, for timing (one GPU, `layers` times one layer's work):
//! - token-wise: the layer's four GEMMs (QKV, O, gate+up, down) through cuBLAS `GemmEx`, fp16
//!   in and out, fp32 accumulation, for a batch of `m` tokens;
//! - decode attention: the NVRTC kernel of [`crate::attention`] over a paged fp16 KV cache.
//!
//! Norms, rotary embedding, activation and sampling are not run: they are a few percent of the
//! step at these sizes (Vidur's profiles put them at about 5 %). One layer's weights and KV cache
//! are reused for every layer, which is faithful for GEMMs and attention larger than the L2 cache.

mod capacity;
mod sweep;

pub use capacity::{measure_capacity, CapacityReport};
pub use sweep::{check_attention, sweep, SweepConfig};

use anyhow::{anyhow, Result};
use cudarc::driver::{CudaContext, CudaSlice, CudaStream};
use std::sync::Arc;

/// Looks for a CUDA driver and devices. `Err` explains why there is none (no driver library, or
/// a driver without devices), without panicking.
pub fn probe() -> std::result::Result<usize, String> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let found = std::panic::catch_unwind(CudaContext::device_count);
    std::panic::set_hook(previous);
    match found {
        Err(_) => Err("no CUDA driver found".into()),
        Ok(Err(e)) => Err(format!("CUDA driver error: {e}")),
        Ok(Ok(0)) => Err("CUDA driver found, but no device".into()),
        Ok(Ok(n)) => Ok(n as usize),
    }
}

/// An open device: context and stream.
pub struct Gpu {
    /// The context.
    pub ctx: Arc<CudaContext>,
    /// The stream everything runs on.
    pub stream: Arc<CudaStream>,
}

impl Gpu {
    /// Opens device `ordinal`.
    pub fn open(ordinal: usize) -> Result<Gpu> {
        let ctx = CudaContext::new(ordinal)?;
        let stream = ctx.default_stream();
        Ok(Gpu { ctx, stream })
    }

    /// The device's name.
    pub fn name(&self) -> Result<String> {
        Ok(self.ctx.name()?)
    }

    /// `(free, total)` device memory in bytes.
    pub fn mem_info(&self) -> Result<(u64, u64)> {
        self.ctx.bind_to_thread()?;
        let (free, total) = cudarc::driver::result::mem_get_info()?;
        Ok((free as u64, total as u64))
    }

    /// A device buffer of `n` random fp16 values (uniform in [-1, 1)): a random 16 MiB host
    /// pattern, copied as often as needed.
    pub fn random_halves(&self, n: usize, seed: u64) -> Result<CudaSlice<u16>> {
        let mut r = crate::rng::SplitMix(seed);
        let pattern: Vec<u16> = (0..n.min(1 << 23))
            .map(|_| crate::half::f32_to_f16((r.uniform() * 2.0 - 1.0) as f32))
            .collect();
        let mut buf = self.stream.alloc_zeros::<u16>(n.max(1))?;
        let mut at = 0;
        while at < n {
            let len = pattern.len().min(n - at);
            let mut view = buf.slice_mut(at..at + len);
            self.stream.memcpy_htod(&pattern[..len], &mut view)?;
            at += len;
        }
        Ok(buf)
    }

    /// Median of `reps` timings (ms) of `work`, measured with CUDA events after `warmup` runs.
    pub fn time_ms(
        &self,
        warmup: usize,
        reps: usize,
        mut work: impl FnMut() -> Result<()>,
    ) -> Result<f64> {
        for _ in 0..warmup {
            work()?;
        }
        self.stream.synchronize()?;
        let flags = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
        let mut times = Vec::with_capacity(reps);
        for _ in 0..reps.max(1) {
            let start = self.ctx.new_event(flags)?;
            let end = self.ctx.new_event(flags)?;
            start.record(&self.stream)?;
            work()?;
            end.record(&self.stream)?;
            times.push(start.elapsed_ms(&end)? as f64);
        }
        Ok(median(&mut times))
    }
}

/// Median (mean of the middle two for an even count); NaN for no data.
pub fn median(xs: &mut [f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Maps any error to `anyhow` with context (cudarc's errors are `Error`, but this keeps messages
/// uniform).
pub fn ctx_err<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> anyhow::Error {
    move |e| anyhow!("{what}: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    /// Without a driver the probe returns an error instead of panicking; with one it counts
    /// devices. Either way it must not panic.
    #[test]
    fn probe_never_panics() {
        match probe() {
            Ok(n) => assert!(n > 0),
            Err(e) => assert!(!e.is_empty()),
        }
    }
}
