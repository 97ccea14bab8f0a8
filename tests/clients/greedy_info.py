"""Broken: asks for the true output lengths when the harness offers none.
Expected: information_denied."""
import sys
from _base import Fcfs, serve


class Greedy(Fcfs):
    information = "known"


sys.exit(serve(Greedy()))
