"""Broken: uses information it does not have, prefilling the next request id before its arrival
was delivered (ids are dense). Expected: not_arrived."""
import sys
from _base import Fcfs, serve


class Peeks(Fcfs):
    top = -1

    def decide(self, msg):
        for r in msg["arrived"]:
            self.top = max(self.top, r["id"])
        plan = Fcfs.decide(self, msg)
        if not msg["arrivals_done"] and msg["kv_used"] == 0 and self.top >= 1:
            plan["batch"] = plan.get("batch", []) + [{"prefill": self.top + 1, "tokens": 1}]
        return plan


sys.exit(serve(Peeks()))
