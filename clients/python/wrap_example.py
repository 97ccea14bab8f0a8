#!/usr/bin/env python3
"""How to wrap an existing Python scheduler for the kvsched wire protocol (spec/PROTOCOL.md).

`ShortestPromptFirst` stands for a scheduler you already have, with its own interface: it is
given the free KV tokens, the queue and the running set, and returns whom to admit and whom to
preempt. `Adapter` translates protocol messages to that interface and its answer back to a
plan, adding what the protocol requires (whole-block footprints, the first token under
`with_prefill`, decodes for the rest). Run it:

    kvsched conform -- python3 clients/python/wrap_example.py
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvsched_client import Scheduler, serve  # noqa: E402


class ShortestPromptFirst:
    """An existing scheduler: admit the shortest prompts that fit; preempt the newest."""

    def schedule(self, free_tokens, queue, running, cost):
        admit = []
        for q in sorted(queue, key=lambda q: (q["prompt_len"], q["rid"])):
            if cost(q) <= free_tokens:
                admit.append(q["rid"])
                free_tokens -= cost(q)
        return admit


class Adapter(Scheduler):
    name = "shortest-prompt-first (wrapped)"

    def __init__(self, inner):
        self.inner = inner

    def decide(self, msg):
        free = msg["kv_capacity"] - msg["kv_used"] - self.watermark
        extra = 1 if self.with_prefill else 0
        queue = [{"rid": r["id"], "prompt_len": r["prompt"]} for r in msg["waiting"]]
        prompts = {r["id"]: r["prompt"] for r in msg["waiting"]}
        admit = self.inner.schedule(
            free, queue, msg["running"], lambda q: self.footprint(q["prompt_len"] + extra))
        if admit:
            return {"batch": [{"prefill": i, "tokens": prompts[i]} for i in admit]}
        # Decode the rest; preempt the newest while one more token does not fit.
        free += self.watermark
        running = [r for r in msg["running"] if r["prefilled"] == r["prompt"]]
        evict = []
        grow = [self.footprint(r["held"] + 1) - self.footprint(r["held"]) for r in running]
        while running and sum(grow) > free:
            victim = running.pop()
            grow.pop()
            evict.append(victim["id"])
            free += self.footprint(victim["held"])
        return {"evict": evict, "batch": [{"decode": r["id"]} for r in running]}


if __name__ == "__main__":
    sys.exit(serve(Adapter(ShortestPromptFirst())))
