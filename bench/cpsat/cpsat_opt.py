#!/usr/bin/env python3
"""Solve one round-model instance (spec/ROUNDS.md) with OR-Tools CP-SAT, as a second exact
method beside kvsched's branch-and-bound (src/opt/bnb.rs) and HiGHS IP (src/opt/ip.rs).

Not part of the tests: it measures whether a clause-learning CP solver reaches the MC-SF
paper's synthetic sizes (n 40-60), where kvsched's exact methods do not prove optimality
(spec/MCSF_NOTES.md section 0.4; results in BENCHMARKS.md).

  pip install ortools==9.15.6755
  python3 bench/cpsat/cpsat_opt.py INSTANCE.toml [--limit-s S] [--workers W] \
      [--warm OPT.json] [--no-pairs]

Model (the IP of arXiv 2502.07115 section 3, as a scheduling model): one integer start k_i per
request, a_i <= k_i <= a_i + U - sum(o) (the latency window of MCSF_NOTES section 0, U the
warm start's total latency) or k_i <= max(a) + sum(o) - o_i without one. The profile
s_i + j at round k_i + j (j = 1..o_i) is a cumulative of capacity M over o_i intervals: one of
height s_i + 1 over rounds k_i+1..k_i+o_i and one of height 1 over k_i+1+l..k_i+o_i for each
l = 1..o_i-1 (their sum at round k_i + j is s_i + j exactly). Redundant rows: for requests
i, j whose peaks exceed M/2, a literal chooses which completes first, and then
c_j - c_i >= min(o_j, P_i + P_j - M) (MCSF_NOTES section 0.1 (c)); identical requests start in
index order. Objective: sum(k_i + o_i - a_i), the total latency.

Prints one JSON line: instance, n, memory_tokens, status (OPTIMAL proves it), total_latency,
lower_bound, warm_total_latency (the hint's cost) and solve_time_s.
"""
import argparse
import json
import sys
import time
import tomllib

from ortools.sat.python import cp_model


def load(path):
    try:
        with open(path, "rb") as f:
            inst = tomllib.load(f)
        reqs = [(int(r["arrival_round"]), int(r["prompt_tokens"]), int(r["output_tokens"]))
                for r in inst["requests"]]
        return int(inst["memory_tokens"]), reqs
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as e:
        sys.exit(f"{path}: not a round-model instance (spec/ROUNDS.md): {e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("instance")
    ap.add_argument("--limit-s", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--warm", help="`kvsched opt --json` output: its schedule is the hint")
    ap.add_argument("--no-pairs", action="store_true")
    args = ap.parse_args()
    m_tokens, reqs = load(args.instance)
    sum_o = sum(o for _, _, o in reqs)
    horizon = max((a for a, _, _ in reqs), default=0) + sum_o
    # Requests with equal (a, s, o) are interchangeable: they start in index order (symmetry
    # rows below), and the hint is permuted to match.
    groups = {}
    for i, r in enumerate(reqs):
        groups.setdefault(r, []).append(i)
    hint, upper = None, None
    if args.warm:
        try:
            with open(args.warm) as f:
                sched = {r["id"]: r["start_round"] for r in json.load(f)["schedule"]}
            hint = [sched[i] for i in range(len(reqs))]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
            sys.exit(f"{args.warm}: expected `kvsched opt --json` output for {args.instance} "
                     f"(a schedule with start_round for every request id): {e!r}")
        # A hint that broke the symmetry rows would be infeasible and silently dropped.
        for ids in groups.values():
            for i, h in zip(ids, sorted(hint[i] for i in ids)):
                hint[i] = h
        upper = sum(k + o - a for k, (a, _, o) in zip(hint, reqs))
    model = cp_model.CpModel()
    starts = []
    for i, (a, s, o) in enumerate(reqs):
        hi = horizon - o if upper is None else min(horizon - o, a + upper - sum_o)
        starts.append(model.new_int_var(a, hi, f"k{i}"))
    intervals, heights = [], []
    for k, (_, s, o) in zip(starts, reqs):
        intervals.append(model.new_fixed_size_interval_var(k + 1, o, ""))
        heights.append(s + 1)
        for lay in range(1, o):
            intervals.append(model.new_fixed_size_interval_var(k + 1 + lay, o - lay, ""))
            heights.append(1)
    model.add_cumulative(intervals, heights, m_tokens)
    if not args.no_pairs:
        big = [i for i, (_, s, o) in enumerate(reqs) if 2 * (s + o) > m_tokens]
        for p, i in enumerate(big):
            for j in big[p + 1:]:
                (_, si, oi), (_, sj, oj) = reqs[i], reqs[j]
                over = si + oi + sj + oj - m_tokens
                i_first = model.new_bool_var("")
                model.add(starts[j] + oj >= starts[i] + oi + min(oj, over)).only_enforce_if(i_first)
                model.add(starts[i] + oi >= starts[j] + oj + min(oi, over)).only_enforce_if(
                    ~i_first)
    for ids in groups.values():
        for i, j in zip(ids, ids[1:]):
            model.add(starts[i] <= starts[j])
    model.minimize(sum(starts) + sum(o - a for a, _, o in reqs))
    if hint:
        for k, h in zip(starts, hint):
            model.add_hint(k, h)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = args.limit_s
    solver.parameters.num_workers = args.workers
    solver.parameters.random_seed = 0
    t0 = time.time()
    status = solver.solve(model)
    found = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    print(json.dumps({
        "instance": args.instance, "n": len(reqs), "memory_tokens": m_tokens,
        "status": solver.status_name(status),
        "total_latency": int(solver.objective_value) if found else None,
        "lower_bound": int(solver.best_objective_bound) if found else None,
        "warm_total_latency": upper, "solve_time_s": round(time.time() - t0, 2),
    }))


if __name__ == "__main__":
    main()
