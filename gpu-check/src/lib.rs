//! # kvsched-gpu-check: measure KV memory and the step-time law, and calibrate the simulator
//!
//! The CPU side, tested without a GPU:
//! - [`geometry`]: model presets, KV bytes per token, weights and the capacity formula.
//! - [`lsq`]: least squares; [`fit`]: the spec's step-time models fitted to measurements.
//! - [`vidur`]: Vidur's A100 profile schema, and the per-iteration composition of its tables.
//! - [`attention`]: the paged-KV decode attention, as a CPU reference and as CUDA source.
//! - [`table`]: the measurement table that a GPU run writes and `analyze --table` reads.
//! - [`analyze`]: fits, regions, verdicts and the calibration file.
//!
//! The GPU side ([`gpu`]) loads the CUDA driver at run time (cudarc's dynamic loading), so the
//! crate builds and runs on machines without CUDA; [`gpu::probe`] finds out whether a driver is
//! there.

pub mod analyze;
pub mod attention;
pub mod fit;
pub mod geometry;
pub mod gpu;
pub mod half;
pub mod lsq;
pub mod rng;
pub mod synth;
pub mod table;
pub mod vidur;
