#!/usr/bin/env python3
"""Error of kvsched's step time against Vidur's predictor by batch shape, as a Markdown table.

Reads the probe fixture (bench/vidur/probe.sh: Vidur's own prediction per probe batch) and one or
more kvsched calibrations (rich step time), and prints per shape class the mean and the largest
absolute relative error `(kvsched - vidur) / vidur` of each calibration, and of the first one
with Vidur 0.0.26's three lookup rules applied to its decode-attention part (what Vidur's
`_get_attention_decode_execution_time` does, sklearn_execution_time_predictor.py):
  - the decode batch counts as at most 128, the largest profiled batch: a random forest is flat
    beyond its training data (Vidur's table is built up to prediction_max_batch_size, 256 here);
  - the decode KV per request is the batch mean rounded UP to 256 (kv_cache_prediction_granularity);
  - x 1.1 for a batch of more than one (attention_decode_batching_overhead_fraction).
Standard library only.

Usage: probe_table.py FIXTURE.csv CAL.toml [CAL2.toml ...]
"""
import csv
import sys
import tomllib
from collections import defaultdict


def law(path, vidur_rules=False):
    st = tomllib.load(open(path, "rb"))["step_time"]
    tw = st.get("tokenwise", [])

    def tokenwise(x):  # spec/src/step_time.rs: flat before the first point, linear after
        if not tw:
            return 0.0
        if x <= tw[0][0] or len(tw) == 1:
            return tw[0][1]
        for (x0, y0), (x1, y1) in zip(tw, tw[1:]):
            if x <= x1:
                break
        return max(0.0, y0 + (y1 - y0) * (x - x0) / (x1 - x0))

    def step_s(b, kv, pre):
        p = sum(c for c, _ in pre)
        b_attn, kv_attn, over = b, kv, 1.0
        if vidur_rules and b > 0:
            b_attn, kv_attn, over = min(b, 128), (kv + 255) // 256 * 256, 1.1 if b > 1 else 1.0
        decode = over * b_attn * (st.get("decode_s_per_request", 0.0)
                                  + st.get("kv_s_per_token", 0.0) * kv_attn)
        return (st["base_s"] + st.get("prefill_s_per_token", 0.0) * p
                + st.get("prefill_attn_s_per_token2", 0.0) * sum(c * (k + c) for c, k in pre)
                + st.get("kv_s_per_token", 0.0) * sum(k + c for c, k in pre)
                + decode + tokenwise(p + b))

    return step_s


fixture, cals = sys.argv[1], sys.argv[2:]
laws = [(c, law(c)) for c in cals] + [(cals[0] + " with Vidur's lookups", law(cals[0], True))]
errs = defaultdict(lambda: defaultdict(list))
classes = []
for r in csv.DictReader(open(fixture)):
    pre = [tuple(int(v) for v in x.split("@")) for x in r["prefills"].split(";") if x]
    b, kv, v = int(r["decodes"]), int(r["decode_kv"]), float(r["vidur_s"])
    if r["class"] not in classes:
        classes.append(r["class"])
    for name, f in laws:
        errs[r["class"]][name].append((f(b, kv, pre) - v) / v)
print("| batch shape | probes | " + " | ".join(n for n, _ in laws) + " |")
print("| --- | ---: |" + " ---: |" * len(laws))
for c in classes:
    cells = []
    for name, _ in laws:
        e = errs[c][name]
        cells.append(f"{100 * sum(e) / len(e):+.1f} / {100 * max(abs(x) for x in e):.1f} %")
    print(f"| {c} | {len(errs[c][laws[0][0]])} | " + " | ".join(cells) + " |")
