"""Hostile: at its first decision it starts a grandchild in a new session (setsid) that keeps
stdout open, writes the grandchild's pid to $ESCAPES_PID_FILE, and hangs. Expected: timeout, on
time, with the grandchild killed."""
import os
import subprocess
import sys
import time
from _base import Fcfs, serve


class Escapes(Fcfs):
    def decide(self, msg):
        child = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(300)"],
            start_new_session=True,
        )
        path = os.environ.get("ESCAPES_PID_FILE")
        if path:
            with open(path, "w") as f:
                f.write(str(child.pid))
        time.sleep(3600)
        return Fcfs.decide(self, msg)


sys.exit(serve(Escapes()))
