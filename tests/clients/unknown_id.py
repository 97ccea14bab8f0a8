"""Broken: after the first completion, decodes a request that does not exist.
Expected: unknown_request."""
import sys
from _base import Fcfs, serve


class Unknown(Fcfs):
    seen_completion = False

    def decide(self, msg):
        self.seen_completion |= bool(msg["completed"])
        plan = Fcfs.decide(self, msg)
        if self.seen_completion:
            plan["batch"].append({"decode": 1000000})
        return plan


sys.exit(serve(Unknown()))
