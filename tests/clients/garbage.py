"""Broken: answers a decision that reports a completion with prose. Expected: garbage."""
import sys
from _base import Fcfs, serve


class Garbage(Fcfs):
    def decide(self, msg):
        if msg["completed"]:
            sys.stdout.write("I think we should decode everything\n")
            sys.stdout.flush()
        return Fcfs.decide(self, msg)


sys.exit(serve(Garbage()))
