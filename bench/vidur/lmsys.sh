#!/usr/bin/env bash
# Sarathi on the lmsys-like mix (prompt 60, ten output bins, workloads/lmsys-like.toml) at several
# rates, through Vidur (its random forests on the profiles) and through kvsched (the calibration's
# law), on the same traces and the same profiles: Llama-2-7B on one A100-80GB, 8,531 KV blocks of
# 16 tokens, chunk 512, cap 256 (the WAIT authors' Llama-2 rerun), 1 % watermark. Mean latency
# over the middle 50 % of requests by arrival on both sides. Not part of CI.
#
# Usage: bench/vidur/lmsys.sh [--quick] [CAL.toml ...]
#   CAL.toml  kvsched calibrations to run (default spec/calibration/a100-llama2-7b.toml)
#   --quick   Vidur's forests with 10 trees, depth 8, 2 folds (else 250 / 16 / 5, 10 folds)
# Environment: RATES (default "50 60 70 80"), REQUESTS (default 5000), VIDUR_VENV, VIDUR_DATA,
#   WORK (default /tmp/kvsched-vidur-lmsys), VIDUR_STEP_TIME=CAL.toml (diagnostic: Vidur's
#   scheduler and event loop with every batch timed by that calibration's law, vidur_run.py
#   --step-time, so that what is left of a difference is the simulators' semantics), and with it
#   KVSCHED_VIDUR_LOOKUPS=cap128,round256,overhead (Vidur's decode-attention lookup rules
#   applied to that law; see vidur_run.py).
# The Llama-2-7B attention data is derived as in probe.sh (derive_attention.py).
set -euo pipefail

source "$(dirname "$0")/common.sh"
WORK="${WORK:-/tmp/kvsched-vidur-lmsys}"
RATES="${RATES:-50 60 70 80}"
REQUESTS="${REQUESTS:-5000}"
CALS=()
for a in "$@"; do
  case "$a" in
    --quick) GRID=("${GRID_QUICK[@]}") ;;
    -*) echo "unknown argument $a" >&2; exit 2 ;;
    *) CALS+=("$(cd "$(dirname "$a")" && pwd)/$(basename "$a")") ;;
  esac
done
[[ ${#CALS[@]} -gt 0 ]] || CALS=("$ROOT/spec/calibration/a100-llama2-7b.toml")
ensure_vidur
mkdir -p "$WORK/vidur"
llama2_7b_profiles "$WORK/profiles" 2>/dev/null
cargo build --release -q --manifest-path "$ROOT/Cargo.toml" --example sarathi_trace
KS="$ROOT/target/release/examples/sarathi_trace"

printf '%-6s %-26s %10s %10s %8s\n' rate simulator "mean (s)" "p50 (s)" done
for rate in $RATES; do
  trace="$WORK/trace-$rate.csv"
  python3 "$HERE/gen_trace.py" --lmsys-bins --requests "$REQUESTS" --rate "$rate" --out "$trace"
  out="$WORK/vidur/out-$rate"
  rm -rf "$out"
  ( cd "$WORK/vidur" && HF_HUB_OFFLINE=1 WANDB_MODE=disabled "$VENV/bin/python" \
      "$HERE/vidur_run.py" "$WORK/profiles" ${VIDUR_STEP_TIME:+--step-time "$VIDUR_STEP_TIME"} -- \
      --seed 42 \
      --replica_config_model_name meta-llama/Llama-2-7b-hf \
      --replica_config_device a100 --replica_config_network_device a100_pairwise_nvlink \
      --replica_config_tensor_parallel_size 1 --replica_config_num_pipeline_stages 1 \
      --cache_config_block_size 16 --cache_config_num_blocks 8531 \
      --cache_config_watermark_blocks_fraction 0.01 \
      --global_scheduler_config_type round_robin \
      --replica_scheduler_config_type sarathi \
      --sarathi_scheduler_config_chunk_size 512 --sarathi_scheduler_config_batch_size_cap 256 \
      --request_generator_config_type trace_replay \
      --trace_request_generator_config_trace_file "$trace" \
      --trace_request_generator_config_date 2023-08-21 \
      --trace_request_generator_config_prefill_scale_factor 1 \
      --trace_request_generator_config_decode_scale_factor 1 \
      --trace_request_generator_config_time_scale_factor 1 \
      --trace_request_generator_config_max_tokens 4096 \
      --execution_time_predictor_config_type random_forrest \
      "${RF}_prediction_max_tokens_per_request" 4096 \
      "${RF}_prediction_max_batch_size" 256 \
      "${RF}_nccl_cpu_launch_overhead_ms" 0 \
      "${RF}_cache_dir" "$WORK/vidur/cache" \
      "${GRID[@]}" \
      --metrics_config_output_dir "$out" \
      --no-metrics_config_store_plots --no-metrics_config_enable_chrome_trace
  ) > "$WORK/vidur-$rate.log" 2>&1 || { tail -30 "$WORK/vidur-$rate.log"; exit 1; }
  metrics="$(ls "$out"/*/request_metrics.csv | head -1)"
  "$VENV/bin/python" - "$trace" "$metrics" "$rate" "${VIDUR_STEP_TIME:-}" <<'EOF'
import csv, os, sys
trace, metrics, rate = sys.argv[1:4]
n = sum(1 for _ in open(trace)) - 1
rows = list(csv.DictReader(open(metrics)))
k = n // 4  # the middle 50 % by arrival (trace order = request id), as kvsched's window 0.5
mid = sorted(float(r["request_e2e_time"]) for r in rows
             if k <= int(float(r["Request Id"])) < n - k)
label = "vidur 0.0.26" + (" + kvsched law" if len(sys.argv) > 4 and sys.argv[4] else "")
label += " " + os.environ.get("KVSCHED_VIDUR_LOOKUPS", "") if len(sys.argv) > 4 else ""
print(f"{rate:<6} {label:<26} {sum(mid) / len(mid):>10.3f} {mid[len(mid) // 2]:>10.3f}"
      f" {len(rows) / n:>8.3f}")
EOF
  for cal in "${CALS[@]}"; do
    line="$("$KS" "$ROOT/bench/vidur/lmsys-7b.toml" "$trace" "$cal" 512 256)"
    python3 - "$rate" "$(basename "$cal" .toml)" "$line" <<'EOF'
import sys
rate, name, line = sys.argv[1:4]
kv = dict(x.split("=") for x in line.split())
print(f"{rate:<6} {'kvsched ' + name:<26} {float(kv['latency_mean_s']):>10.3f}"
      f" {float(kv['latency_p50_s']):>10.3f} {float(kv['completion_rate']):>8.3f}")
EOF
  done
done
