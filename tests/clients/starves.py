"""Broken: never admits request 0 until every request has arrived, and idles rather than run
it. Expected: starvation."""
import sys
from _base import Fcfs, serve


class Starves(Fcfs):
    def decide(self, msg):
        if not msg["arrivals_done"]:
            msg = dict(msg, waiting=[r for r in msg["waiting"] if r["id"] != 0])
        return Fcfs.decide(self, msg)


sys.exit(serve(Starves()))
