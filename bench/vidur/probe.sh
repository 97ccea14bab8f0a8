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

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/bench/vidur"
VENV="${VIDUR_VENV:-/tmp/vidur-venv}"
DATA="$(cd "${VIDUR_DATA:-$ROOT/../shared/data/vidur-a100}" && pwd)"
WORK="${WORK:-/tmp/kvsched-vidur-probe}"
OUT="$ROOT/tests/data/vidur-probe-llama2-7b.csv"
RF=--random_forrest_execution_time_predictor_config
GRID=("${RF}_num_estimators" 250 "${RF}_max_depth" 16 "${RF}_min_samples_split" 5)
for a in "$@"; do
  case "$a" in
    --quick) GRID=("${RF}_num_estimators" 10 "${RF}_max_depth" 8 "${RF}_min_samples_split" 2
                   "${RF}_k_fold_cv_splits" 2) ;;
    -*) echo "unknown argument $a" >&2; exit 2 ;;
    *) OUT="$(cd "$(dirname "$a")" && pwd)/$(basename "$a")" ;;
  esac
done

if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import vidur' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q 'vidur==0.0.26'
fi

rm -rf "$WORK" && mkdir -p "$WORK/profiles" "$WORK/vidur"
ln -s "$DATA/llama-2-7b-mlp.csv" "$WORK/profiles/mlp.csv"
"$VENV/bin/python" "$HERE/derive_attention.py" "$DATA/h8192-q64-kv8-tp2-attention.csv" \
  "$WORK/profiles/attention.csv" 4096 32 32 1
{
  echo "num_workers,devices_per_node,collective,size,time_stats.all_reduce.median"
  for n in 1 2; do for k in $(seq 0 12); do echo "$n,$n,all_reduce,$(( (1 << k) * 4096 * 2 )),0.0"; done; done
} > "$WORK/profiles/all_reduce.csv"

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
