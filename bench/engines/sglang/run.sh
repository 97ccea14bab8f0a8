#!/usr/bin/env bash
# Records SGLang's real admission decisions (spec/ENGINES.md, "SGLang"). Opt-in, not part of
# the tests or CI.
#
#   bench/engines/sglang/run.sh [OUT]   (OUT defaults to /tmp/kvsched-engines-sglang)
#
# 1. Needs a Python 3.11 with torch (SGLang imports it): $SGLANG_PY, default the vLLM bench's
#    venv /work/venvs/vllm-0.33.0/bin/python (bench/engines/vllm/run.sh creates it). It is not
#    modified.
# 2. Downloads the sglang==$SGLANG_VERSION wheel (39 MB) and gguf==$GGUF_VERSION (pure Python,
#    imported by SGLang's quantization registry) with `pip download --no-deps`, and unpacks
#    both into $SGLANG_SITE (default /work/venvs/sglang-$SGLANG_VERSION-site), which goes on
#    PYTHONPATH. SGLang's other dependencies are not installed: the admission code does not
#    need them (IPython, imported by sglang.utils for notebooks, is stubbed in record.py).
# 3. Runs record.py over scenarios.py: one prefill pass of the real PrefillAdder per scenario,
#    written to $OUT/admission.json and, with FIXTURES=1 (the default), to
#    tests/data/engines/sglang-$SGLANG_VERSION/admission.json.
# 4. Runs the CI test that holds the built-in `sglang` to the fixture.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
OUT="${1:-/tmp/kvsched-engines-sglang}"
SGLANG_VERSION="${SGLANG_VERSION:-0.5.23}"
GGUF_VERSION="${GGUF_VERSION:-0.19.0}"
SGLANG_PY="${SGLANG_PY:-/work/venvs/vllm-0.33.0/bin/python}"
SGLANG_SITE="${SGLANG_SITE:-/work/venvs/sglang-$SGLANG_VERSION-site}"
FIXTURES="${FIXTURES:-1}"
mkdir -p "$OUT"

"$SGLANG_PY" -c "import torch" 2>/dev/null \
    || { echo "$SGLANG_PY has no torch; run bench/engines/vllm/run.sh or set SGLANG_PY"; exit 1; }

if [ ! -f "$SGLANG_SITE/sglang-$SGLANG_VERSION.dist-info/METADATA" ] \
    || [ ! -d "$SGLANG_SITE/gguf" ]; then
    echo "== unpacking sglang==$SGLANG_VERSION, gguf==$GGUF_VERSION into $SGLANG_SITE"
    start=$(date +%s)
    rm -rf "$SGLANG_SITE" "$OUT/wheels"
    mkdir -p "$SGLANG_SITE" "$OUT/wheels"
    "$SGLANG_PY" -m pip download -q --no-deps -d "$OUT/wheels" \
        "sglang==$SGLANG_VERSION" "gguf==$GGUF_VERSION"
    for whl in "$OUT"/wheels/*.whl; do
        "$SGLANG_PY" -m zipfile -e "$whl" "$SGLANG_SITE"
    done
    echo "install: $(( $(date +%s) - start )) s, $(du -sh "$SGLANG_SITE" | cut -f1)" \
        | tee "$OUT/install.txt"
fi

echo "== recording PrefillAdder decisions"
PYTHONPATH="$SGLANG_SITE:$HERE" "$SGLANG_PY" "$HERE/record.py" "$OUT/admission.json" \
    2> "$OUT/record.log" || { tail -20 "$OUT/record.log"; exit 1; }
grep "sglang import" "$OUT/record.log"

if [ "$FIXTURES" = 1 ]; then
    mkdir -p "$ROOT/tests/data/engines/sglang-$SGLANG_VERSION"
    cp "$OUT/admission.json" "$ROOT/tests/data/engines/sglang-$SGLANG_VERSION/"
fi

echo "== the built-in sglang against the recorded decisions"
(cd "$ROOT" && cargo test --quiet --test it engines_sglang)
