"""FCFS client that appends each run's instance (arrivals with their known output lengths)
to the file named by its argument, one JSON line per run, for `adapter.py record`."""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "clients", "python"))

from fcfs import Fcfs  # noqa: E402
from kvsched_client import serve  # noqa: E402


class Dump(Fcfs):
    def hello(self, msg):
        Fcfs.hello(self, msg)
        self.inst = {"label": msg["scenario"], "config": msg["config"],
                     "capacity_tokens": msg["capacity_tokens"], "requests": []}

    def decide(self, msg):
        self.inst["requests"] += msg["arrived"]
        return Fcfs.decide(self, msg)


d = Dump()
code = serve(d)
with open(sys.argv[1], "a", encoding="utf-8") as f:
    f.write(json.dumps(d.inst, separators=(",", ":")) + "\n")
sys.exit(code)
