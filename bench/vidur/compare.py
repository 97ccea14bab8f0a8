#!/usr/bin/env python3
"""Side-by-side table of a Vidur run and a kvsched run on the same trace (bench/vidur/run.sh).

Vidur's per-request metrics (request_metrics.csv) are reduced with kvsched's own definitions
(src/sim/metrics.rs), over all requests (kvsched is run with --window 1.0):
  latency = arrival -> last token        (Vidur: request_e2e_time)
  TTFT    = arrival -> first output token (Vidur: prefill_e2e_time; the first prefill, kept
            across restarts, as kvsched keeps the first token across evictions)
  TBT     = (last token - first token) / (output - 1), requests with output > 1; output is the
            trace's, since Vidur rewrites num_decode_tokens on a restart
  throughput = output tokens of completed requests / time of the last completion
Percentiles are nearest-rank, as in kvsched. Standard library only.

Usage: compare.py TRACE.csv VIDUR_OUTPUT_DIR VIDUR_TIMES.json KVSCHED.json KVSCHED_WALL_S
                  [--warm VIDUR_TIMES_WARM.json] [--md]
"""
import csv
import json
import math
import sys


def dist(values):
    v = sorted(values)
    n = len(v)

    def pct(p):
        return v[min(max(math.ceil(p * n), 1), n) - 1]

    return {"n": n, "mean": sum(v) / n, "p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99)}


def main():
    trace, vdir, vtimes, kjson, kwall = sys.argv[1:6]
    md = "--md" in sys.argv
    warm = None
    if "--warm" in sys.argv:
        warm = json.load(open(sys.argv[sys.argv.index("--warm") + 1]))
    rows = list(csv.DictReader(open(trace)))
    arrival = [float(r["arrived_at"]) for r in rows]
    output = [int(r["num_decode_tokens"]) for r in rows]
    vt = json.load(open(vtimes))
    lat, ttft, tbt, restarts, last, tokens = [], [], [], 0, 0.0, 0
    for r in csv.DictReader(open(f"{vdir}/request_metrics.csv")):
        i = int(float(r["Request Id"]))
        e2e, pre = float(r["request_e2e_time"]), float(r["prefill_e2e_time"])
        lat.append(e2e)
        ttft.append(pre)
        if output[i] > 1:
            tbt.append((e2e - pre) / (output[i] - 1))
        restarts += int(float(r["request_num_restarts"] or 0))
        last = max(last, arrival[i] + e2e)
        tokens += output[i]
    v = {
        "completed": len(lat),
        "latency_s": dist(lat),
        "ttft_s": dist(ttft),
        "tbt_s": dist(tbt),
        "throughput_tokens_per_s": tokens / last,
        "completions_per_s": len(lat) / last,
        "simulated_time_s": last,
        "restarts": restarts,
    }
    k = json.load(open(kjson))
    kv = {
        "completed": k["completed"],
        "latency_s": k["latency_s"],
        "ttft_s": k["ttft_s"],
        "tbt_s": k["tpot_s"],
        "throughput_tokens_per_s": k["throughput_tokens_per_s"],
        "completions_per_s": k["completions_per_s"],
        "simulated_time_s": k["simulated_time_s"],
        "restarts": k["evictions"],
    }
    lines = []
    sep = " | " if md else "  "

    def row(name, a, b, fmt="{:.4f}"):
        d = f"{(b - a) / a * 100:>+8.1f}%" if a else ("     same" if a == b else "      n/a")
        cells = [f"{name:<26}", f"{fmt.format(a):>12}", f"{fmt.format(b):>12}", d]
        lines.append(("| " if md else "") + sep.join(cells) + (" |" if md else ""))

    head = [f"{'metric':<26}", f"{'Vidur':>12}", f"{'kvsched':>12}", f"{'diff':>9}"]
    lines.append(("| " if md else "") + sep.join(head) + (" |" if md else ""))
    if md:
        lines.append("| --- | ---: | ---: | ---: |")
    row("wall time, cold (s)", vt["total_s"], float(kwall), "{:.2f}")
    row("  predictor training (s)", vt["predictor_s"], 0.0, "{:.2f}")
    row("  event loop (s)", vt["simulate_s"], float(kwall), "{:.2f}")
    if warm:
        row("wall time, warm (s)", warm["total_s"], float(kwall), "{:.2f}")
        row("  predictor from cache (s)", warm["predictor_s"], 0.0, "{:.2f}")
        row("  event loop (s)", warm["simulate_s"], float(kwall), "{:.2f}")
    for key, label in [("latency_s", "latency"), ("ttft_s", "TTFT"), ("tbt_s", "TBT")]:
        for q in ["mean", "p50", "p90", "p99"]:
            row(f"{label} {q} (s)", v[key][q], kv[key][q])
    row("throughput (out tok/s)", v["throughput_tokens_per_s"], kv["throughput_tokens_per_s"],
        "{:.1f}")
    row("completions/s", v["completions_per_s"], kv["completions_per_s"], "{:.3f}")
    row("simulated time (s)", v["simulated_time_s"], kv["simulated_time_s"], "{:.1f}")
    row("completed", v["completed"], kv["completed"], "{:.0f}")
    row("restarts / evictions", v["restarts"], kv["restarts"], "{:.0f}")
    print("\n".join(lines))
    json.dump({"vidur": v, "vidur_times": vt, "vidur_times_warm": warm, "kvsched": kv,
               "kvsched_wall_s": float(kwall)},
              open(f"{vdir}/side_by_side.json", "w"), indent=2)


if __name__ == "__main__":
    main()
