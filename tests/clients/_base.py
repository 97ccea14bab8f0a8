"""Shared by the broken test clients: imports the reference FCFS client (clients/python)."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "clients", "python"))

from fcfs import Fcfs  # noqa: E402,F401
from kvsched_client import serve  # noqa: E402,F401
