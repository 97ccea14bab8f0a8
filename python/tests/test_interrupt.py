"""Long calls release the GIL and stop on Ctrl-C (SIGINT) with KeyboardInterrupt."""

import os
import signal
import threading
import time

import kvsched
import pytest
from conftest import INSTANCE, ROOT, WORKLOAD
from fcfs import Fcfs

LONG = dict(requests=50_000_000, stream=True)  # minutes: never finishes within these tests


@pytest.fixture(autouse=True)
def sigint_raises():
    """Python raises KeyboardInterrupt on SIGINT only if SIGINT was not ignored when it started,
    and a shell that runs a command in the background without job control (`.ci/run &`)
    ignores it: install the default handler for these tests, whatever the parent did."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def sigint_after(seconds):
    t = threading.Timer(seconds, lambda: os.kill(os.getpid(), signal.SIGINT))
    t.start()
    return t


def test_ctrl_c_interrupts_simulate():
    sigint_after(0.5)
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        kvsched.simulate(WORKLOAD, **LONG)
    assert time.monotonic() - t0 < 5


def test_ctrl_c_interrupts_in_process_conformance():
    class Slow(Fcfs):
        def decide(self, msg):
            time.sleep(0.001)
            return super().decide(msg)

    sigint_after(0.5)
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        kvsched.conform(Slow, requests=5000, baselines=False)
    assert time.monotonic() - t0 < 5
    # The module is usable afterwards.
    assert kvsched.conform(Fcfs, requests=20, scenarios=["tiny"], baselines=False)["conforms"]


def test_simulate_releases_the_gil():
    done = []
    worker = threading.Thread(
        target=lambda: done.append(kvsched.simulate(WORKLOAD, requests=200_000, stream=True)))
    worker.start()
    ticks = 0
    while worker.is_alive():
        ticks += 1
        time.sleep(0.001)
    worker.join()
    assert done and done[0]["completed"] == 200_000
    # Holding the GIL for the whole run would leave this thread no turn before the end.
    assert ticks > 20, ticks


def test_ctrl_c_interrupts_opt():
    # A paper-size instance without a time limit: the branch-and-bound would run for hours.
    inst = str(ROOT / "tests" / "data" / "round_synthetic_0.toml")
    sigint_after(0.5)
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        kvsched.opt(inst)
    assert time.monotonic() - t0 < 5
    # The call waits up to 5 s for its worker to stop before raising anyway, so this also
    # shows that the solve itself stopped. The module is usable afterwards.
    assert kvsched.opt(str(INSTANCE))["proven_optimal"]
