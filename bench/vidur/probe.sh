#!/usr/bin/env bash
# Step-time fidelity against Vidur: Vidur's own predictor (random forests trained on the
# profiles) on fixed probe batches of Llama-2-7B on one A100, written as the fixture
# tests/data/vidur-probe-llama2-7b.csv; the test `step_time_vidur_probe_errors_by_batch_shape`
# (tests/it/step_time_vidur.rs) puts kvsched's calibration next to it. Not part of CI.
#
# Usage: bench/vidur/probe.sh [--quick] [OUT.csv]     (default OUT: the fixture)
#   --quick   10 trees, depth 8, 2 folds (about a minute), instead of run.sh's default grid
#             point (250 trees, depth 16, min split 5, 10 folds).
# Environment: VIDUR_VENV, VIDUR_DATA, WORK (default /tmp/kvsched-vidur-probe) as in run.sh.
#
# The profiles: Vidur's Llama-2-7B token-wise profile (llama-2-7b-mlp.csv) as it is, and the
# only A100 attention profile there is (8192 wide, 64 / 8 heads, TP 2) relabelled for
# Llama-2-7B by derive_attention.py exactly as kvsched-gpu-check composes it (decode attention's
# per-KV-token slope x 8, the KV bytes ratio). So both sides see the same data, and what differs
# is the predictor: Vidur's forests and lookups against kvsched's fitted law.
set -euo pipefail

source "$(dirname "$0")/common.sh"
WORK="${WORK:-/tmp/kvsched-vidur-probe}"
OUT="$ROOT/tests/data/vidur-probe-llama2-7b.csv"
for a in "$@"; do
  case "$a" in
    --quick) GRID=("${GRID_QUICK[@]}") ;;
    -*) echo "unknown argument $a" >&2; exit 2 ;;
    *) OUT="$(cd "$(dirname "$a")" && pwd)/$(basename "$a")" ;;
  esac
done

ensure_vidur
rm -rf "$WORK" && mkdir -p "$WORK/vidur"
llama2_7b_profiles "$WORK/profiles"

( cd "$WORK/vidur" && HF_HUB_OFFLINE=1 WANDB_MODE=disabled "$VENV/bin/python" "$HERE/vidur_run.py" \
    "$WORK/profiles" --probe "$OUT" -- \
    --seed 42 \
    --replica_config_model_name meta-llama/Llama-2-7b-hf \
    --replica_config_device a100 --replica_config_network_device a100_pairwise_nvlink \
    --replica_config_tensor_parallel_size 1 --replica_config_num_pipeline_stages 1 \
    --cache_config_block_size 16 \
    --replica_scheduler_config_type sarathi \
    --execution_time_predictor_config_type random_forrest \
    "${RF}_prediction_max_tokens_per_request" 4096 \
    "${RF}_prediction_max_batch_size" 256 \
    "${RF}_cache_dir" "$WORK/vidur/cache" \
    "${GRID[@]}" \
    --metrics_config_output_dir "$WORK/vidur/out" \
    --no-metrics_config_store_plots --no-metrics_config_enable_chrome_trace
) > "$WORK/vidur.log" 2>&1 || { tail -30 "$WORK/vidur.log"; exit 1; }
echo "wrote $OUT ($(($(wc -l < "$OUT") - 1)) probe batches)"
