#!/usr/bin/env python3
"""clients/python/fcfs.py over stdio, adding the time spent in decide() to the file named by
argv[1] (seconds and decisions, one line per run): the benchmark's scheduler-only cost."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "clients", "python"))
from fcfs import Fcfs  # noqa: E402
from kvsched_client import serve  # noqa: E402


class Timed(Fcfs):
    spent = 0.0
    calls = 0

    def decide(self, msg):
        t = time.perf_counter()
        plan = super().decide(msg)
        self.spent += time.perf_counter() - t
        self.calls += 1
        return plan


if __name__ == "__main__":
    s = Timed()
    code = serve(s)
    with open(sys.argv[1], "a") as f:
        f.write(f"{s.spent} {s.calls}\n")
    sys.exit(code)
