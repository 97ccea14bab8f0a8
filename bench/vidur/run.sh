#!/usr/bin/env bash
# Side by side with Vidur (microsoft/vidur, MIT; PyPI `vidur`): the same 4,096-request
# trace-driven vLLM workload through Vidur and through `kvsched simulate`, with wall times and
# the metrics of both. Not part of CI or the test suite. See bench/vidur/README.md.
#
# Usage: bench/vidur/run.sh [--quick | --full-grid] [--md]
#   (default)   Vidur's random-forest grid search cut to one of its 27 points: 250 trees,
#               max depth 16, min samples split 5 (the point it picked for the first model),
#               with its 10-fold cross-validation kept. A few minutes.
#   --quick     10 trees, depth 8, 2 folds: checks the pipeline in about a minute.
#   --full-grid Vidur's own grid (27 points x 10 folds, 250/500/750 trees): hours on 2 cores.
#   --same-step-time  diagnostic: Vidur's scheduler and event loop, but every batch timed by
#               kvsched's calibrated law (vidur_run.py --step-time), so that what differs is
#               the simulators' semantics, not their predictors.
#   --md        print the table as Markdown.
# Environment:
#   VIDUR_VENV    venv to create or reuse      (default /tmp/vidur-venv)
#   VIDUR_DATA    Vidur A100 profiles          (default ../shared/data/vidur-a100 beside the repo)
#   WORK          scratch directory            (default /tmp/kvsched-vidur)
#   RATE          Poisson arrival rate, req/s  (default 8)
#   REQUESTS      requests in the trace        (default 4096)
#   NUM_BLOCKS    KV blocks of 16 tokens       (default 27698 = 443,168 tokens, as workload.toml)
#   VIDUR_EXTRA   more Vidur arguments, e.g.
#                 "--random_forrest_execution_time_predictor_config_use_native_execution_time_predictor"
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/bench/vidur"
VENV="${VIDUR_VENV:-/tmp/vidur-venv}"
DATA="$(cd "${VIDUR_DATA:-$ROOT/../shared/data/vidur-a100}" && pwd)"
WORK="${WORK:-/tmp/kvsched-vidur}"
RATE="${RATE:-8}"
REQUESTS="${REQUESTS:-4096}"
NUM_BLOCKS="${NUM_BLOCKS:-27698}"
GRID_MODE=one
STEP_TIME=()
for a in "$@"; do
  case "$a" in
    --quick) GRID_MODE=quick ;;
    --full-grid) GRID_MODE=full ;;
    --md) ;;
    --same-step-time) STEP_TIME=(--step-time "$ROOT/spec/calibration/a100x2-codellama34b-tp2.toml") ;;
    *) echo "unknown argument $a" >&2; exit 2 ;;
  esac
done

# 1. Vidur in a venv (0.0.26 is the version this was written against).
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import vidur' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q 'vidur==0.0.26'
fi
VIDUR_VERSION="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("vidur"))')"

# 2. Profile directory, built at run time (the data files are not copied into the repository):
#    Vidur's older A100 profiles for n_embd 8192, 64 query / 8 KV heads, MLP 22016, TP 2, which
#    is CodeLlama-34B's geometry, and an all-reduce profile of zeros (see README.md: there is
#    no network profile in ../shared/data, and kvsched's calibration has no communication term).
rm -rf "$WORK" && mkdir -p "$WORK/profiles" "$WORK/vidur"
ln -s "$DATA/h8192-tp2-mlp.csv" "$WORK/profiles/mlp.csv"
ln -s "$DATA/h8192-q64-kv8-tp2-attention.csv" "$WORK/profiles/attention.csv"
{
  echo "num_workers,devices_per_node,collective,size,time_stats.all_reduce.median"
  for k in $(seq 0 12); do echo "2,2,all_reduce,$(( (1 << k) * 8192 * 2 )),0.0"; done
} > "$WORK/profiles/all_reduce.csv"

# 3. The trace (deterministic: Python's random.Random(2026)).
python3 "$HERE/gen_trace.py" --requests "$REQUESTS" --rate "$RATE" --out "$WORK/trace.csv"

# 4. Vidur, cold (fresh predictor cache: its wall time includes training).
RF=--random_forrest_execution_time_predictor_config
case "$GRID_MODE" in
  quick) GRID=("${RF}_num_estimators" 10 "${RF}_max_depth" 8 "${RF}_min_samples_split" 2
               "${RF}_k_fold_cv_splits" 2) ;;
  one) GRID=("${RF}_num_estimators" 250 "${RF}_max_depth" 16 "${RF}_min_samples_split" 5) ;;
  full) GRID=() ;;
esac
VIDUR_ARGV=(
    "$WORK/profiles" "${STEP_TIME[@]}" -- \
    --seed 42 \
    --replica_config_model_name codellama/CodeLlama-34b-Instruct-hf \
    --replica_config_device a100 --replica_config_network_device a100_pairwise_nvlink \
    --replica_config_tensor_parallel_size 2 --replica_config_num_pipeline_stages 1 \
    --cache_config_block_size 16 --cache_config_num_blocks "$NUM_BLOCKS" \
    --cache_config_watermark_blocks_fraction 0.01 \
    --global_scheduler_config_type round_robin \
    --replica_scheduler_config_type vllm \
    --vllm_scheduler_config_batch_size_cap 128 --vllm_scheduler_config_max_tokens_in_batch 4096 \
    --request_generator_config_type trace_replay \
    --trace_request_generator_config_trace_file "$WORK/trace.csv" \
    --trace_request_generator_config_date 2023-08-21 \
    --trace_request_generator_config_prefill_scale_factor 1 \
    --trace_request_generator_config_decode_scale_factor 1 \
    --trace_request_generator_config_time_scale_factor 1 \
    --trace_request_generator_config_max_tokens 4096 \
    --execution_time_predictor_config_type random_forrest \
    "${RF}_prediction_max_tokens_per_request" 4096 \
    "${RF}_nccl_cpu_launch_overhead_ms" 0 \
    "${RF}_cache_dir" "$WORK/vidur/cache" \
    "${GRID[@]}" ${VIDUR_EXTRA:-} \
    --metrics_config_output_dir "$WORK/vidur/out" \
    --no-metrics_config_store_plots --no-metrics_config_enable_chrome_trace
)
( cd "$WORK/vidur" && HF_HUB_OFFLINE=1 WANDB_MODE=disabled "$VENV/bin/python" "$HERE/vidur_run.py" \
    "${VIDUR_ARGV[@]}" ) > "$WORK/vidur.log" 2>&1 || { tail -30 "$WORK/vidur.log"; exit 1; }
grep '^VIDUR_TIMES ' "$WORK/vidur.log" | sed 's/^VIDUR_TIMES //' > "$WORK/vidur_times.json"
VOUT="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["output_dir"])' "$WORK/vidur_times.json")"
# Warm: the same run again; Vidur finds its trained models and prediction tables in cache_dir.
( cd "$WORK/vidur" && HF_HUB_OFFLINE=1 WANDB_MODE=disabled "$VENV/bin/python" "$HERE/vidur_run.py" \
    "${VIDUR_ARGV[@]}" ) > "$WORK/vidur-warm.log" 2>&1 || { tail -30 "$WORK/vidur-warm.log"; exit 1; }
grep '^VIDUR_TIMES ' "$WORK/vidur-warm.log" | sed 's/^VIDUR_TIMES //' > "$WORK/vidur_times_warm.json"

# 5. kvsched on the same trace, same capacity, block size and watermark; step time fitted to
#    the same two profile files (spec/calibration/a100x2-codellama34b-tp2.toml).
cargo build --release -q --manifest-path "$ROOT/Cargo.toml" -p kvsched
KS="$ROOT/target/release/kvsched"
# workload.toml with the capacity of NUM_BLOCKS (the same file when NUM_BLOCKS is the default).
sed "s/^kv_capacity_tokens = .*/kv_capacity_tokens = $(( NUM_BLOCKS * 16 ))/" \
  "$HERE/workload.toml" > "$WORK/workload.toml"
KSARGS=(simulate "$WORK/workload.toml" --scheduler vllm-v0 --trace-csv "$WORK/trace.csv"
        --calibration "$ROOT/spec/calibration/a100x2-codellama34b-tp2.toml" --window 1.0)
"$KS" "${KSARGS[@]}" --json > "$WORK/kvsched.json"   # warm-up: page cache, not timed
T0=$(date +%s.%N)
"$KS" "${KSARGS[@]}" --json > "$WORK/kvsched.json"
T1=$(date +%s.%N)
KWALL=$(python3 -c "print($T1 - $T0)")

# 6. Side by side.
echo "Vidur $VIDUR_VERSION (random-forest grid: $GRID_MODE$([[ ${#STEP_TIME[@]} -gt 0 ]] \
  && echo "; step times: kvsched's law")); $("$KS" --version)"
echo "trace: $REQUESTS requests, Poisson $RATE req/s, $WORK/trace.csv"
python3 "$HERE/compare.py" "$WORK/trace.csv" "$VOUT" "$WORK/vidur_times.json" \
  "$WORK/kvsched.json" "$KWALL" --warm "$WORK/vidur_times_warm.json" "$@"
echo "(Vidur output: $VOUT; side_by_side.json there)"

# 7. The step-time predictors on the iterations kvsched ran (runs without evictions only).
if [[ ${#STEP_TIME[@]} -eq 0 ]] && python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["evictions"] > 0)' "$WORK/kvsched.json"; then
  "$KS" "${KSARGS[@]}" --trace "$WORK/kvsched-trace.jsonl" > /dev/null
  PRED="$(dirname "$(ls "$WORK"/vidur/cache/predictions/*/attn_decode.csv.xz | head -1)")"
  echo
  python3 "$HERE/step_times.py" "$WORK/kvsched-trace.jsonl" \
    "$ROOT/spec/calibration/a100x2-codellama34b-tp2.toml" "$WORK/profiles" "$PRED"
fi
