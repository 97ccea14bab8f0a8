#!/usr/bin/env bash
# Judges vLLM's real v1 scheduler (spec/ENGINES.md). Opt-in, not part of the tests or CI.
#
#   bench/engines/vllm/run.sh [OUT]     (OUT defaults to /tmp/kvsched-engines-vllm)
#
# 1. Creates a pinned venv outside the repository ($VLLM_VENV, default
#    /work/venvs/vllm-0.33.0) and installs vllm==$VLLM_VERSION into it (about 4.9 GB of
#    downloads, 9.5 GB on disk), unless it is already there.
# 2. Starts the adapter server (imports vLLM once), then runs `kvsched conform` on the real
#    scheduler: every scenario, seeds $SEEDS, with reserve_full_isl on and off.
# 3. Records the instances ($LOG_PLAN requests, seeds $LOG_SEEDS) and steps the real
#    scheduler over them unfaked, writing one engine log per run (spec/TRACE.md; a
#    no-reserve log only where it differs from the reserve one), and checks every log with
#    `kvsched check-trace`.
# 3b. Runs the battery once more under `--preemption keep-generated` (seeds $KG_SEEDS): the
#    adapter then drops its restart shim and vLLM preempts and resumes unfaked.
# 4. Compares the real results with the built-in vllm-v1 / vllm-v1-no-reserve, scenario by
#    scenario, and writes the fixtures under tests/data/engines/vllm-$VLLM_VERSION/
#    ($FIXTURES=0 to leave them alone).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
OUT="${1:-/tmp/kvsched-engines-vllm}"
VLLM_VERSION="${VLLM_VERSION:-0.33.0}"
VLLM_VENV="${VLLM_VENV:-/work/venvs/vllm-$VLLM_VERSION}"
SEEDS="${SEEDS:-1,2,3,4,5}"
REQUESTS="${REQUESTS:-200}"
LOG_SEEDS="${LOG_SEEDS:-1,2}"
KG_SEEDS="${KG_SEEDS:-1,2}"
# Requests per scenario in the engine logs: small, since the logs are committed fixtures.
LOG_PLAN="${LOG_PLAN:-tiny:60 adversarial:5 long-decode:2 light:4 boundary:4 overload:4 bursts:4}"
FIXTURES="${FIXTURES:-1}"
mkdir -p "$OUT"
PY="$VLLM_VENV/bin/python"

if ! "$PY" -c "import vllm, sys; sys.exit(vllm.__version__ != '$VLLM_VERSION')" 2>/dev/null; then
    echo "== installing vllm==$VLLM_VERSION into $VLLM_VENV (minutes; ~4.9 GB download)"
    start=$(date +%s)
    python3 -m venv "$VLLM_VENV"
    "$VLLM_VENV/bin/pip" install -q "vllm==$VLLM_VERSION"
    echo "install: $(( $(date +%s) - start )) s, $(du -sh "$VLLM_VENV" | cut -f1)" \
        | tee "$OUT/install.txt"
fi

echo "== building kvsched (release)"
(cd "$ROOT" && cargo build --release --quiet)
KV="$ROOT/target/release/kvsched"

SOCK="$OUT/adapter.sock"
rm -f "$SOCK"
"$PY" "$HERE/adapter.py" server "$SOCK" 2> "$OUT/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do [ -S "$SOCK" ] && break; sleep 1; done
[ -S "$SOCK" ] || { echo "adapter server did not start; see $OUT/server.log"; exit 1; }
grep -o "vLLM import [0-9.]* s" "$OUT/server.log" | tee "$OUT/import.txt"

status=0
for mode in reserve no-reserve; do
    flag=""; [ "$mode" = no-reserve ] && flag="--no-reserve"
    echo "== conform, real vLLM $VLLM_VERSION, $mode, seeds $SEEDS, $REQUESTS requests"
    "$KV" conform --handshake-timeout-ms 600000 --seeds "$SEEDS" --requests "$REQUESTS" \
        --report "$OUT/conform-$mode.json" --replay-out "$OUT/replay-$mode.json" \
        --stderr-log "$OUT/adapter-$mode.log" \
        -- python3 "$HERE/adapter.py" connect "$SOCK" $flag | tee "$OUT/conform-$mode.txt" \
        || status=1
done

echo "== conform, real vLLM $VLLM_VERSION, keep_generated preemption (unfaked), seeds $KG_SEEDS"
"$KV" conform --handshake-timeout-ms 600000 --seeds "$KG_SEEDS" --requests "$REQUESTS" \
    --preemption keep-generated --report "$OUT/conform-keep-generated.json" \
    --replay-out "$OUT/replay-keep-generated.json" --stderr-log "$OUT/adapter-kg.log" \
    -- python3 "$HERE/adapter.py" connect "$SOCK" | tee "$OUT/conform-keep-generated.txt" || true

echo "== engine logs: $LOG_PLAN (scenario:requests), seeds $LOG_SEEDS"
rm -f "$OUT/instances.jsonl"
for entry in $LOG_PLAN; do
    "$KV" conform --information known --seeds "$LOG_SEEDS" --requests "${entry#*:}" \
        --scenario "${entry%%:*}" --no-baselines --no-shrink \
        -- python3 "$HERE/dump.py" "$OUT/instances.jsonl" > /dev/null
done
rm -rf "$OUT/logs"
"$PY" "$HERE/adapter.py" record "$OUT/instances.jsonl" "$OUT/logs" 2>> "$OUT/server.log"
"$PY" "$HERE/adapter.py" record "$OUT/instances.jsonl" "$OUT/logs" --no-reserve \
    2>> "$OUT/server.log"
for f in "$OUT"/logs/*.jsonl; do
    "$KV" check-trace "$f" > "$f.check" || { echo "check-trace rejects $f"; status=1; }
done
echo "check-trace: $(ls "$OUT"/logs/*.jsonl | wc -l) logs judged"

echo "== differential against the built-in"
ARGS=("$OUT/conform-reserve.json" "$OUT/conform-no-reserve.json" --out "$OUT")
[ "$FIXTURES" = 1 ] && ARGS+=(--fixtures "$ROOT/tests/data/engines/vllm-$VLLM_VERSION" \
    --logs "$OUT/logs" --keep-generated "$OUT/conform-keep-generated.json")
python3 "$HERE/compare.py" "${ARGS[@]}" | tee "$OUT/differential.md"
if [ "$FIXTURES" = 1 ]; then
    cp "$OUT/conform-reserve.txt" "$OUT/conform-no-reserve.txt" "$OUT/differential.md" \
        "$OUT/conform-keep-generated.txt" \
        "$ROOT/tests/data/engines/vllm-$VLLM_VERSION/"
fi
exit $status
