"""Broken: decodes the oldest request twice in one batch. Expected: duplicate_in_batch."""
import sys
from _base import Fcfs, serve


class Twice(Fcfs):
    def decide(self, msg):
        plan = Fcfs.decide(self, msg)
        decodes = [i for i in plan["batch"] if "decode" in i]
        if decodes:
            plan["batch"].append(dict(decodes[0]))
        return plan


sys.exit(serve(Twice()))
