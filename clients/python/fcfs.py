#!/usr/bin/env python3
"""A correct FCFS scheduler for the kvsched wire protocol (spec/PROTOCOL.md), stdlib only.

Policy (vLLM v0 without batch budgets): if the oldest waiting requests fit (whole prompt, plus
the first token under `with_prefill`, above the watermark), prefill them in one batch, in
arrival order, stopping at the first that does not fit. Otherwise decode every resident
request; when one more token does not fit, evict the most recently admitted first.

Run it:  kvsched conform -- python3 clients/python/fcfs.py
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvsched_client import Scheduler, serve  # noqa: E402


class Fcfs(Scheduler):
    name = "fcfs"

    def admissions(self, msg, free):
        batch = []
        extra = 1 if self.with_prefill else 0
        for r in msg["waiting"]:
            need = self.footprint(r["prompt"] + extra)
            if need + self.watermark > free:
                break
            batch.append({"prefill": r["id"], "tokens": r["prompt"]})
            free -= need
        return batch

    def decide(self, msg):
        free = msg["kv_capacity"] - msg["kv_used"]
        batch = self.admissions(msg, free)
        if batch:
            return {"batch": batch}
        decoding = [r for r in msg["running"] if r["prefilled"] == r["prompt"]]
        evict = []

        def growth(rs):
            return sum(self.footprint(r["held"] + 1) - self.footprint(r["held"]) for r in rs)

        while decoding and growth(decoding) > free:
            victim = decoding.pop()  # the most recently admitted
            evict.append(victim["id"])
            free += self.footprint(victim["held"])
        return {"evict": evict, "batch": [{"decode": r["id"]} for r in decoding]}


if __name__ == "__main__":
    sys.exit(serve(Fcfs()))
