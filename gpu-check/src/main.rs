//! `kvsched-gpu-check`: measure KV capacity and step times on a GPU, or fit published profiles,
//! and write a calibration file for `kvsched simulate --calibration`.
//!
//! - `probe`: is there a CUDA driver and device? (`SKIP: no CUDA driver found`, exit 0, if not)
//! - `kv-bytes --preset P --tp N`: the KV bytes per token and capacity formulas (no GPU).
//! - `measure --preset P --tp N --out DIR`: capacity, kernel check, timed sweep, fits, and the
//!   calibration file (needs a GPU; skips with exit 0 without one).
//! - `analyze --vidur-profile CSV ... | --table CSV`: fits and the calibration file (no GPU).

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use kvsched_gpu_check::analyze::{self, analyze_vidur, calibration, report};
use kvsched_gpu_check::geometry::Geometry;
use kvsched_gpu_check::{gpu, table, vidur};
use kvsched_spec::calibration::{AffineFit, Calibration, CALIBRATION_FORMAT_VERSION};
use std::path::PathBuf;

#[derive(Parser)]
#[command(version, about = "Measure KV memory and the step-time law; fit and calibrate")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct Model {
    /// Model preset: llama-2-7b, llama-3-8b, llama-2-70b or codellama-34b.
    #[arg(long, default_value = "llama-2-7b")]
    preset: String,
    /// Tensor-parallel degree (the run measures one GPU's share).
    #[arg(long, default_value_t = 1)]
    tp: u64,
}

#[derive(Subcommand)]
enum Cmd {
    /// Look for a CUDA driver and devices.
    Probe,
    /// KV bytes per token and the capacity formula.
    KvBytes {
        #[command(flatten)]
        model: Model,
        /// Device memory in GiB.
        #[arg(long, default_value_t = 80.0)]
        memory_gib: f64,
        /// Fraction of memory kept free.
        #[arg(long, default_value_t = 0.01)]
        margin: f64,
    },
    /// Measure on the GPU and write table.csv, capacity.json, report.txt, calibration.toml.
    Measure {
        #[command(flatten)]
        model: Model,
        /// Output directory.
        #[arg(long, default_value = "gpu-check-out")]
        out: PathBuf,
        /// Fraction of memory kept free in the capacity test.
        #[arg(long, default_value_t = 0.01)]
        margin: f64,
        /// A shorter sweep.
        #[arg(long)]
        quick: bool,
    },
    /// Fit step-time models to Vidur profiles or to a measurement table.
    Analyze {
        #[command(flatten)]
        model: Model,
        /// Vidur profile CSVs (an MLP file and an attention file).
        #[arg(long = "vidur-profile")]
        vidur_profile: Vec<PathBuf>,
        /// A measurement table written by `measure`.
        #[arg(long, conflicts_with = "vidur_profile")]
        table: Option<PathBuf>,
        /// Hardware name for the calibration file.
        #[arg(long, default_value = "NVIDIA A100-SXM4-80GB")]
        hardware: String,
        /// Where to write the calibration file (stdout if absent).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Probe => match gpu::probe() {
            Ok(n) => println!("found {n} CUDA device(s)"),
            Err(why) => println!("SKIP: {why}"),
        },
        Cmd::KvBytes { model, memory_gib, margin } => {
            let g = Geometry::preset(&model.preset, model.tp).map_err(|e| anyhow!(e))?;
            let bytes = (memory_gib * (1u64 << 30) as f64) as u64;
            println!("{}: TP {}", g.name, g.tp);
            println!("  KV bytes per token (model)   {}", g.kv_bytes_per_token());
            println!("  KV bytes per token (per GPU) {}", g.kv_bytes_per_token_per_gpu());
            println!("  weights per GPU              {} bytes", g.weight_bytes_per_gpu());
            println!(
                "  capacity C ({memory_gib} GiB, margin {margin}) {} tokens",
                g.kv_capacity_tokens(bytes, margin)
            );
        }
        Cmd::Measure { model, out, margin, quick } => measure(&model, &out, margin, quick)?,
        Cmd::Analyze { model, vidur_profile, table, hardware, out } => {
            let g = Geometry::preset(&model.preset, model.tp).map_err(|e| anyhow!(e))?;
            let cal = match table {
                Some(t) => analyze_table(&t, &g, &hardware)?,
                None => analyze_profiles(&vidur_profile, &g, &hardware)?,
            };
            let text = cal.to_toml().map_err(|e| anyhow!(e))?;
            Calibration::parse("generated", &text).map_err(|e| anyhow!("{e}"))?;
            match out {
                Some(p) => std::fs::write(&p, text).with_context(|| format!("{}", p.display()))?,
                None => print!("{text}"),
            }
        }
    }
    Ok(())
}

fn analyze_profiles(files: &[PathBuf], g: &Geometry, hardware: &str) -> Result<Calibration> {
    let (mut mlp, mut attn, mut names) = (Vec::new(), Vec::new(), Vec::new());
    for f in files {
        let text = std::fs::read_to_string(f).with_context(|| format!("{}", f.display()))?;
        let name = f.display().to_string();
        match vidur::parse(&name, &text).map_err(|e| anyhow!(e))? {
            vidur::Profile::Mlp(rows) => mlp.extend(rows),
            vidur::Profile::Attention(rows) => attn.extend(rows),
        }
        let base = f.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or(name);
        names.push(base);
    }
    if mlp.is_empty() || attn.is_empty() {
        bail!("analyze: expected an MLP profile and an attention profile");
    }
    let a = analyze_vidur(&mlp, &attn, g).map_err(|e| anyhow!(e))?;
    eprint!("{}", report(&a.affine, &a.rich));
    let source = format!(
        "kvsched-gpu-check analyze --preset {} --tp {} on Vidur profiles {} (A100-80GB, \
         github.com/microsoft/vidur, MIT)",
        g.name.to_lowercase(),
        g.tp,
        names.join(" + ")
    );
    Ok(calibration(&a, hardware, g, &source))
}

fn analyze_table(path: &PathBuf, g: &Geometry, hardware: &str) -> Result<Calibration> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let rows = table::read(&path.display().to_string(), &text).map_err(|e| anyhow!(e))?;
    let samples: Vec<(String, _)> = rows.iter().map(|r| (r.kind.clone(), r.sample())).collect();
    let (affine, rich, _) = analyze::analyze_rows(&samples).map_err(|e| anyhow!(e))?;
    eprint!("{}", report(&affine, &rich));
    let (d0_s, d1_s_per_token) = match affine.step_time {
        kvsched_spec::StepTime::Affine { d0_s, d1_s_per_token } => (d0_s, d1_s_per_token),
        _ => (0.0, 0.0),
    };
    Ok(Calibration {
        format_version: CALIBRATION_FORMAT_VERSION,
        hardware: hardware.to_string(),
        model: format!("{} fp16, TP {}", g.name, g.tp),
        source: format!("kvsched-gpu-check measure, table {}", path.display()),
        kv_bytes_per_token: Some(g.kv_bytes_per_token()),
        kv_capacity_tokens: None,
        step_time: rich.step_time.clone(),
        fit: rich.quality.clone(),
        affine: Some(AffineFit { d0_s, d1_s_per_token, fit: affine.quality.clone() }),
    })
}

fn measure(model: &Model, out: &PathBuf, margin: f64, quick: bool) -> Result<()> {
    if let Err(why) = gpu::probe() {
        println!("SKIP: {why}");
        return Ok(());
    }
    let g = Geometry::preset(&model.preset, model.tp).map_err(|e| anyhow!(e))?;
    std::fs::create_dir_all(out)?;
    let dev = gpu::Gpu::open(0)?;
    let name = dev.name()?;
    println!("device: {name}");
    let err = gpu::check_attention(&dev)?;
    println!("attention kernel vs CPU reference: max abs difference {err:.2e}");
    let cap = gpu::measure_capacity(&dev, &g, margin, 16)?;
    println!(
        "capacity: {} tokens fit ({} by the formula); {:.0} bytes/token measured, {} formula",
        cap.tokens, cap.formula_tokens, cap.measured_bytes_per_token, cap.formula_bytes_per_token
    );
    std::fs::write(out.join("capacity.json"), serde_json::to_string_pretty(&cap)?)?;
    let mut cfg = gpu::SweepConfig::default();
    if quick {
        cfg.batches = vec![1, 8, 32, 64, 128];
        cfg.kv_lens = vec![256, 1024, 4096];
        cfg.chunks = vec![16, 64, 256, 1024, 4096];
    }
    let rows = gpu::sweep(&dev, &g, &cfg)?;
    let table_path = out.join("table.csv");
    std::fs::write(&table_path, table::write(&rows).map_err(|e| anyhow!(e))?)?;
    let mut cal = analyze_table(&table_path, &g, &name)?;
    cal.kv_capacity_tokens = Some(cap.tokens);
    let samples: Vec<(String, _)> = rows.iter().map(|r| (r.kind.clone(), r.sample())).collect();
    let (affine, rich, _) = analyze::analyze_rows(&samples).map_err(|e| anyhow!(e))?;
    std::fs::write(out.join("report.txt"), report(&affine, &rich))?;
    std::fs::write(out.join("calibration.toml"), cal.to_toml().map_err(|e| anyhow!(e))?)?;
    println!("wrote {}", out.display());
    Ok(())
}
