#!/usr/bin/env bash
# One-shot GPU check: builds kvsched-gpu-check, measures KV capacity and step times on GPU 0 for a
# model preset, fits the step-time models, and writes a report and a calibration file.
#   gpu-check/run.sh [preset] [tp] [out-dir] [--quick]
# Exits 0 with "SKIP: no CUDA driver found" on a machine without CUDA.
set -euo pipefail
preset=${1:-llama-2-7b}
tp=${2:-1}
out=${3:-gpu-check-out}
shift $(( $# < 3 ? $# : 3 )) || true
cd "$(dirname "$0")/.."
cargo build --release -p kvsched-gpu-check
bin=target/release/kvsched-gpu-check
"$bin" probe | tee /dev/stderr | grep -q '^SKIP' && exit 0
"$bin" kv-bytes --preset "$preset" --tp "$tp"
"$bin" measure --preset "$preset" --tp "$tp" --out "$out" "$@"
echo "report:      $out/report.txt"
echo "calibration: $out/calibration.toml  (kvsched simulate --calibration $out/calibration.toml)"
