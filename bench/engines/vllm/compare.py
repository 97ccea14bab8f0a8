"""Differential comparison: the real vLLM scheduler's conform results against the built-in
emulation run by the same battery (`vllm-v1` with reserve_full_isl, `vllm-v1-no-reserve`
without), scenario by scenario. Optionally writes the CI fixtures.

  compare.py CONFORM-RESERVE.json CONFORM-NO-RESERVE.json --out DIR
             [--fixtures DIR --logs LOGDIR [--keep-generated CONFORM-KG.json]]

With --keep-generated, also writes the fixture keep-generated.json: the real scheduler's runs
under `--preemption keep-generated` (held by tests/it/engines.rs against the built-in).
"""

import argparse
import json
import os
import shutil

METRICS = ["mean_latency_s", "mean_ttft_s", "throughput_tokens_per_s", "evictions", "steps",
           "makespan_s"]


def rel(a, b):
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def runs(report, reserve):
    builtin = "vllm-v1" if reserve else "vllm-v1-no-reserve"
    out = []
    for s in report["scenarios"]:
        base = next((b for b in s["baselines"] if b["scheduler"] == builtin), None)
        out.append({
            "reserve": reserve,
            "scenario": s["scenario"],
            "seed": s["seed"],
            "requests": s["requests"],
            "verdict": s["verdict"]["code"],
            "metrics": s["metrics"],
            "builtin": builtin,
            "builtin_verdict": base and base["verdict"],
            "builtin_metrics": base and base["metrics"],
        })
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("reserve")
    ap.add_argument("no_reserve")
    ap.add_argument("--out", required=True)
    ap.add_argument("--fixtures")
    ap.add_argument("--logs")
    ap.add_argument("--keep-generated")
    a = ap.parse_args()
    reports = [json.load(open(a.reserve)), json.load(open(a.no_reserve))]
    rows = runs(reports[0], True) + runs(reports[1], False)
    print("| reserve | scenario | seed | real verdict | real evictions | built-in evictions "
          "| real steps | built-in steps | mean latency rel. diff | identical |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    identical = 0
    worst = 0.0
    for r in rows:
        m, b = r["metrics"], r["builtin_metrics"]
        same = m is not None and b is not None and all(m[k] == b[k] for k in METRICS)
        identical += same
        d = rel(m["mean_latency_s"], b["mean_latency_s"]) if m and b else float("nan")
        worst = max(worst, d) if d == d else worst
        print(f"| {'on' if r['reserve'] else 'off'} | {r['scenario']} | {r['seed']} | "
              f"{r['verdict']} | {m and m['evictions']} | {b and b['evictions']} | "
              f"{m and m['steps']} | {b and b['steps']} | {d:.2e} | {'yes' if same else 'no'} |")
    conforms = all(r["verdict"] == "pass" for r in rows)
    print(f"\n{identical} of {len(rows)} runs identical in every metric; largest relative "
          f"difference of mean latency {worst:.2e}; real scheduler conforms: {conforms}")
    for rep, mode in zip(reports, ["reserve", "no-reserve"]):
        wall = sum(s["wall_s"] for s in rep["scenarios"])
        decisions = sum(s["decisions"] for s in rep["scenarios"])
        print(f"{mode}: {decisions} decisions, {rep['decisions_per_s']:.0f} decisions/s "
              f"through the adapter (engine and checks included), "
              f"{rep['wire_decisions_per_s']:.0f}/s protocol round trips alone, "
              f"{wall:.1f} s of runs")
    if a.fixtures and a.keep_generated:
        kg = json.load(open(a.keep_generated))
        fixture = {
            "engine": "vllm",
            "version": os.path.basename(os.path.normpath(a.fixtures)).removeprefix("vllm-"),
            "preemption": "keep_generated",
            "reserve": True,
            "information": "hidden",
            "runs": [{k: r[k] for k in ["scenario", "seed", "requests", "verdict", "metrics"]}
                     for r in runs(kg, True)],
        }
        with open(os.path.join(a.fixtures, "keep-generated.json"), "w") as f:
            json.dump(fixture, f, indent=1)
            f.write("\n")
    if a.fixtures:
        os.makedirs(a.fixtures, exist_ok=True)
        cfg = reports[0]["config"]
        fixture = {
            "engine": "vllm",
            "version": reports[0]["subject"],
            "information": cfg["information"],
            "requests": cfg["requests"],
            "seeds": cfg["seeds"],
            "runs": [{k: r[k] for k in ["reserve", "scenario", "seed", "requests", "verdict",
                                        "metrics"]} for r in rows],
        }
        with open(os.path.join(a.fixtures, "results.json"), "w") as f:
            f.write("{\n")
            head = {k: v for k, v in fixture.items() if k != "runs"}
            for k, v in head.items():
                f.write(f"  {json.dumps(k)}: {json.dumps(v)},\n")
            f.write('  "runs": [\n')
            f.write(",\n".join("    " + json.dumps(r, separators=(",", ":"))
                               for r in fixture["runs"]))
            f.write("\n  ]\n}\n")
        if a.logs:
            dst = os.path.join(a.fixtures, "logs")
            shutil.rmtree(dst, ignore_errors=True)
            os.makedirs(dst)
            for name in sorted(os.listdir(a.logs)):
                if name.endswith(".jsonl"):
                    shutil.copy(os.path.join(a.logs, name), dst)


if __name__ == "__main__":
    main()
