#!/usr/bin/env python3
"""The FCFS reference client (idle under delta views), recording every message it receives:
over stdio (run as a script: `recorder.py LOG INFORMATION VIEWS`, one JSON line per message
appended to LOG), or in-process (`Recorder(log=list)`)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))
from fcfs import Fcfs  # noqa: E402
from kvsched_client import serve  # noqa: E402


class Recorder(Fcfs):
    name = "recorder"

    def __init__(self, log, information=None, views="full"):
        self.log = log
        self.information = information
        self.views = views

    def hello(self, msg):
        self.log.append(msg)
        super().hello(msg)

    def decide(self, msg):
        self.log.append(msg)
        if self.views == "delta":
            return {}  # idle: delta views carry no queues for FCFS to read
        return super().decide(msg)


class LineLog:
    def __init__(self, path):
        self.f = open(path, "a")

    def append(self, msg):
        self.f.write(json.dumps(msg) + "\n")
        self.f.flush()


if __name__ == "__main__":
    log, information, views = sys.argv[1:4]
    sys.exit(serve(Recorder(LineLog(log), information, views)))
