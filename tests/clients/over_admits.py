"""Broken: admits every waiting request, ignoring memory. Expected verdict: memory_exceeded."""
import sys
from _base import Fcfs, serve


class OverAdmits(Fcfs):
    def admissions(self, msg, free):
        return [{"prefill": r["id"], "tokens": r["prompt"]} for r in msg["waiting"]]


sys.exit(serve(OverAdmits()))
