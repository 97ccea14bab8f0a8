"""Broken: raises (exit status 1, traceback on stderr) once three requests are resident.
Expected: crash."""
import sys
from _base import Fcfs, serve


class Crashes(Fcfs):
    def decide(self, msg):
        if len(msg["running"]) >= 3:
            raise RuntimeError("three residents are too many for me")
        return Fcfs.decide(self, msg)


sys.exit(serve(Crashes()))
