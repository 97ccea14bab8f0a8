"""Broken: stops answering once two requests wait at the same time. Expected: timeout."""
import sys
import time
from _base import Fcfs, serve


class Hangs(Fcfs):
    def decide(self, msg):
        if len(msg["waiting"]) >= 2:
            time.sleep(3600)
        return Fcfs.decide(self, msg)


sys.exit(serve(Hangs()))
