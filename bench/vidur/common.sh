# Shared by bench/vidur/probe.sh and lmsys.sh (sourced): paths, Vidur's venv, and the Llama-2-7B
# profile directory both simulators are given.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/bench/vidur"
VENV="${VIDUR_VENV:-/tmp/vidur-venv}"
DATA="$(cd "${VIDUR_DATA:-$ROOT/../shared/data/vidur-a100}" && pwd)"
RF=--random_forrest_execution_time_predictor_config
# Vidur's random-forest grid: run.sh's one grid point (250 trees, depth 16, min split 5, its
# 10-fold CV), or --quick (10 trees, depth 8, 2 folds).
GRID=("${RF}_num_estimators" 250 "${RF}_max_depth" 16 "${RF}_min_samples_split" 5)
GRID_QUICK=("${RF}_num_estimators" 10 "${RF}_max_depth" 8 "${RF}_min_samples_split" 2
            "${RF}_k_fold_cv_splits" 2)

# Vidur 0.0.26 in $VENV (created on first use; PyPI).
ensure_vidur() {
  if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import vidur' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q 'vidur==0.0.26'
  fi
}

# llama2_7b_profiles DIR: Vidur's Llama-2-7B token-wise profile as it is, the 8192-wide attention
# profile relabelled for Llama-2-7B as kvsched-gpu-check composes it (derive_attention.py), and
# an all-reduce profile of zeros (TP 1 needs none; Vidur reads the file).
llama2_7b_profiles() {
  mkdir -p "$1"
  ln -sf "$DATA/llama-2-7b-mlp.csv" "$1/mlp.csv"
  "$VENV/bin/python" "$HERE/derive_attention.py" "$DATA/h8192-q64-kv8-tp2-attention.csv" \
    "$1/attention.csv" 4096 32 32 1
  {
    echo "num_workers,devices_per_node,collective,size,time_stats.all_reduce.median"
    for n in 1 2; do for k in $(seq 0 12); do
      echo "$n,$n,all_reduce,$(( (1 << k) * 4096 * 2 )),0.0"
    done; done
  } > "$1/all_reduce.csv"
}
