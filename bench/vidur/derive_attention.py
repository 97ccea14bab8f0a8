#!/usr/bin/env python3
"""Write Vidur's 8192-wide A100 attention profile relabelled for another geometry, composed
exactly as `kvsched-gpu-check analyze` composes it (gpu-check/src/analyze.rs), so that Vidur and
kvsched see the same attention data.

The only A100 attention profile in ../shared/data is n_embd 8192, 64 query / 8 KV heads, TP 2
(32 query heads and 2,048 KV bytes per token per layer per GPU). For a target with KV bytes ratio
`r_kv` (target / profiled, per layer per GPU) and query width ratio 1:
  - decode rows: `attn_decode` (median and mean) gains `(r_kv - 1) * s * batch * kv_cache_size`
    ms, where `s` is the least-squares per-KV-token slope of the profiled decode kernels plus
    reshapes against `[1, batch, batch * kv]` (kvsched's `fit_attention`);
  - prefill rows: unchanged (query width ratio 1);
  - the geometry columns are relabelled so that Vidur's row filter accepts them.
This is kvsched's modelling assumption (memory-bound decode attention), not a measurement; it is
written under $WORK at run time and never committed.

Usage: derive_attention.py IN.csv OUT.csv N_EMBD N_Q_HEAD N_KV_HEAD TP
"""
import csv
import sys

import numpy as np

src, dst = sys.argv[1:3]
n_embd, n_q, n_kv, tp = (int(x) for x in sys.argv[3:7])
rows = list(csv.DictReader(open(src)))
head_dim = n_embd // n_q


def med(r, op):
    v = r.get(f"time_stats.{op}.median", "")
    return float(v) if v not in ("", None) else 0.0


dec = [r for r in rows if r["is_prefill"] == "False"]
b = np.array([float(r["batch_size"]) for r in dec])
kv = np.array([float(r["kv_cache_size"]) for r in dec])
y = np.array([med(r, "attn_input_reshape") + med(r, "attn_decode") + med(r, "attn_output_reshape")
              for r in dec])
coef, *_ = np.linalg.lstsq(np.stack([np.ones_like(b), b, b * kv], axis=1), y, rcond=None)
slope = coef[2]
r0 = rows[0]
prof_kv_bytes = 2 * (int(r0["n_kv_head"]) // int(r0["num_tensor_parallel_workers"])) * (
    int(r0["n_embd"]) // int(r0["n_q_head"])) * 2
prof_q = int(r0["n_q_head"]) // int(r0["num_tensor_parallel_workers"]) * (
    int(r0["n_embd"]) // int(r0["n_q_head"]))
r_kv = (2 * (n_kv // tp) * head_dim * 2) / prof_kv_bytes
r_q = (n_q // tp) * head_dim / prof_q
if abs(r_q - 1.0) > 1e-12:
    sys.exit(f"derive_attention: query width ratio {r_q} != 1 is not supported")
print(f"derive_attention: decode slope {slope:.4e} ms per KV token per layer, r_kv {r_kv:g}",
      file=sys.stderr)
with open(dst, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(r0.keys()))
    w.writeheader()
    for r in rows:
        r = dict(r)
        r.update(n_embd=n_embd, n_q_head=n_q, n_kv_head=n_kv, num_tensor_parallel_workers=tp)
        if r["is_prefill"] == "False":
            extra = (r_kv - 1.0) * slope * float(r["batch_size"]) * float(r["kv_cache_size"])
            for stat in ("median", "mean"):
                k = f"time_stats.attn_decode.{stat}"
                if r.get(k, "") not in ("", None):
                    r[k] = float(r[k]) + extra
        w.writerow(r)
