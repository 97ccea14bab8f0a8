#!/usr/bin/env python3
"""Error of kvsched's step time against Vidur's predictor by batch shape, as a Markdown table.

Reads the probe fixture (bench/vidur/probe.sh: Vidur's own prediction per probe batch) and one or
more kvsched calibrations (rich step time), and prints per shape class the mean and the largest
absolute relative error `(kvsched - vidur) / vidur` of each calibration, and of the first one
with Vidur 0.0.26's three decode-attention lookup rules applied (kvsched_law.py: the batch
counted as at most 128, the mean KV rounded up to 256, x 1.1 for a batch of more than one).
Standard library only.

Usage: probe_table.py FIXTURE.csv CAL.toml [CAL2.toml ...]
"""
import csv
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvsched_law import RULES, law  # noqa: E402

fixture, cals = sys.argv[1], sys.argv[2:]
laws = [(c, law(c)) for c in cals] + [(cals[0] + " with Vidur's lookups", law(cals[0], RULES))]
errs = defaultdict(lambda: defaultdict(list))
classes = []
for r in csv.DictReader(open(fixture)):
    pre = [tuple(int(v) for v in x.split("@")) for x in r["prefills"].split(";") if x]
    b, kv, v = int(r["decodes"]), int(r["decode_kv"]), float(r["vidur_s"])
    if r["class"] not in classes:
        classes.append(r["class"])
    for name, f in laws:
        errs[r["class"]][name].append((f(pre, [kv] * b) - v) / v)
print("| batch shape | probes | " + " | ".join(n for n, _ in laws) + " |")
print("| --- | ---: |" + " ---: |" * len(laws))
for c in classes:
    cells = []
    for name, _ in laws:
        e = errs[c][name]
        cells.append(f"{100 * sum(e) / len(e):+.1f} / {100 * max(abs(x) for x in e):.1f} %")
    print(f"| {c} | {len(errs[c][laws[0][0]])} | " + " | ".join(cells) + " |")
