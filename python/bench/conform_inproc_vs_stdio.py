#!/usr/bin/env python3
"""Benchmark: the conformance battery on the FCFS reference scheduler (clients/python/fcfs.py),
in-process (`kvsched.conform(Fcfs)`) against the stdio protocol (`kvsched.conform([python3,
fcfs.py])`, exactly what `kvsched conform -- python3 fcfs.py` runs), same harness, same
scenarios; then the shrinking of a broken scheduler (over-admission), both ways.

    python3 python/bench/conform_inproc_vs_stdio.py [REPEATS]

Per mode it prints the battery's wall time and CPU time (this process's threads, plus the
scheduler processes for stdio: on a shared machine wall time follows the load), the exchange
time per decision (`wire_s`: building
the message, handing it over, the scheduler's decide(), reading the plan back), the time inside
decide() itself (measured in the scheduler), and their difference: the transport's overhead.
Modes alternate and each figure is the median of REPEATS (default 3)."""

import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
import kvsched  # noqa: E402
from fcfs import Fcfs  # noqa: E402

BATTERY = dict(requests=200, seeds=[1], baselines=False)


class Timed(Fcfs):
    spent = [0.0, 0]

    def decide(self, msg):
        t = time.perf_counter()
        plan = super().decide(msg)
        Timed.spent[0] += time.perf_counter() - t
        Timed.spent[1] += 1
        return plan


class OverAdmits(Fcfs):
    def admissions(self, msg, free):
        return [{"prefill": r["id"], "tokens": r["prompt"]} for r in msg["waiting"]]


def cpu():
    """CPU seconds of this process (every thread) and of its waited-for children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def battery(mode):
    if mode == "in-process":
        Timed.spent = [0.0, 0]
        c, t = cpu(), time.perf_counter()
        r = kvsched.conform(Timed, **BATTERY)
        wall, cpu_s = time.perf_counter() - t, cpu() - c
        decide_s, calls = Timed.spent
    else:
        log = tempfile.NamedTemporaryFile(delete=False).name
        cmd = [sys.executable, os.path.join(HERE, "fcfs_timed.py"), log]
        c, t = cpu(), time.perf_counter()
        r = kvsched.conform(cmd, **BATTERY)
        wall, cpu_s = time.perf_counter() - t, cpu() - c
        rows = [line.split() for line in open(log).read().splitlines()]
        os.unlink(log)
        decide_s, calls = sum(float(a) for a, _ in rows), sum(int(b) for _, b in rows)
    assert r["conforms"], r["subject"]
    decisions = sum(s["decisions"] for s in r["scenarios"])
    assert decisions == calls, (decisions, calls)
    wire = sum(s["wire_s"] for s in r["scenarios"])
    return dict(wall=wall, cpu=cpu_s, decisions=decisions, wire_us=wire / decisions * 1e6,
                decide_us=decide_s / calls * 1e6,
                overhead_us=(wire - decide_s) / decisions * 1e6)


def shrink(mode):
    target = OverAdmits if mode == "in-process" else [
        sys.executable, os.path.join(ROOT, "tests", "clients", "over_admits.py")]
    t = time.perf_counter()
    r = kvsched.conform(target, requests=200, scenarios=["tiny"], baselines=False,
                        shrink_runs=400, shrink_time_s=600)
    wall = time.perf_counter() - t
    sh = r["shrunk"]
    return dict(wall=wall, runs=sh["runs"], to=len(sh["replay"]["instance"]["requests"]))


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    modes = ["in-process", "stdio"]
    res = {m: [] for m in modes}
    shr = {m: [] for m in modes}
    for _ in range(repeats):
        for m in modes:
            res[m].append(battery(m))
            shr[m].append(shrink(m))
    med = {m: {k: statistics.median(x[k] for x in res[m]) for k in res[m][0]} for m in modes}
    smed = {m: {k: statistics.median(x[k] for x in shr[m]) for k in shr[m][0]} for m in modes}
    print(f"battery: 7 scenarios x 200 requests, seed 1, no baselines; median of {repeats}")
    print("| mode | wall (s) | CPU (s) | decisions | exchange/decision (us) | decide() (us) | "
          "overhead/decision (us) |")
    print("|---|---|---|---|---|---|---|")
    for m in modes:
        x = med[m]
        print(f"| {m} | {x['wall']:.2f} | {x['cpu']:.2f} | {x['decisions']:.0f} | "
              f"{x['wire_us']:.1f} | {x['decide_us']:.1f} | {x['overhead_us']:.1f} |")
    a, b = med["in-process"], med["stdio"]
    print(f"ratio stdio / in-process: wall {b['wall'] / a['wall']:.2f}x, "
          f"CPU {b['cpu'] / a['cpu']:.2f}x, exchange "
          f"{b['wire_us'] / a['wire_us']:.2f}x, overhead {b['overhead_us'] / a['overhead_us']:.2f}x")
    print()
    print("shrinking a broken scheduler (over-admission, tiny, 200 requests, up to 400 runs)")
    print("| mode | wall (s) | runs | shrunk to (requests) |")
    print("|---|---|---|---|")
    for m in modes:
        x = smed[m]
        print(f"| {m} | {x['wall']:.2f} | {x['runs']:.0f} | {x['to']:.0f} |")
    print(f"ratio stdio / in-process: {smed['stdio']['wall'] / smed['in-process']['wall']:.2f}x")


if __name__ == "__main__":
    main()
