#!/usr/bin/env bash
# Exact methods side by side on the MC-SF paper's synthetic distribution at fixed n: kvsched's
# branch-and-bound (`kvsched opt`, default method) and OR-Tools CP-SAT (cpsat_opt.py, warm-
# started with the branch-and-bound's best schedule), each with the same wall-clock limit.
#   bench/cpsat/run.sh "10 12 14 16" TRIALS LIMIT_S [zero|online]
# One JSON line per solver and instance on stdout; instances go to $OUT_DIR (default a temp dir).
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes=${1:-"10 12 14 16"}; trials=${2:-3}; limit=${3:-60}; arrivals=${4:-zero}
out=${OUT_DIR:-$(mktemp -d)}
python3 -c "import ortools" 2>/dev/null || { echo "needs: pip install ortools==9.15.6755" >&2; exit 2; }
cargo build --release -q --example round_instance
cargo build --release -q
for n in $sizes; do
  for ((i = 0; i < trials; i++)); do
    f="$out/synth_${arrivals}_n${n}_t${i}.toml"
    ./target/release/examples/round_instance "trial:$i" "$arrivals" "$n" "$n" > "$f"
    ./target/release/kvsched opt "$f" --time-limit-s "$limit" --json > "$f.bnb.json"
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps({'instance': sys.argv[2], 'n': d['n'], 'solver': 'bnb', 'proven_optimal': d['proven_optimal'], 'total_latency': d['total_latency'], 'lower_bound': d['lower_bound'], 'mcsf_total_latency': d['mcsf_total_latency'], 'solve_time_s': round(d['solve_time_s'], 2)}))" "$f.bnb.json" "$f"
    python3 bench/cpsat/cpsat_opt.py "$f" --limit-s "$limit" --workers 2 --warm "$f.bnb.json"
  done
done
