"""In-process conformance of Python schedulers: the reference FCFS conforms, a broken one is
caught and shrunk, and the messages a Python object receives are the wire protocol's."""

import json
import sys

import kvsched
import pytest
from conftest import CLIENTS, ROOT
from fcfs import Fcfs
from recorder import Recorder

SMALL = dict(requests=30, baselines=False)


def test_fcfs_conforms_in_process():
    r = kvsched.conform(Fcfs, **SMALL)
    assert r["conforms"], [s["verdict"] for s in r["scenarios"]]
    assert r["subject"] == "Fcfs (in-process Python)"
    assert len(r["scenarios"]) == 7 and all(s["decisions"] > 0 for s in r["scenarios"])
    # An instance works too (re-initialised by hello() before every run).
    assert kvsched.conform(Fcfs(), scenarios=["light"], **SMALL)["conforms"]


class OverAdmits(Fcfs):
    """Broken: admits every waiting request, ignoring memory."""

    def admissions(self, msg, free):
        return [{"prefill": r["id"], "tokens": r["prompt"]} for r in msg["waiting"]]


def test_broken_scheduler_is_caught_shrunk_and_replayed(tmp_path):
    out = tmp_path / "replay.json"
    r = kvsched.conform(OverAdmits, requests=20, scenarios=["tiny"], baselines=False,
                        shrink_runs=60, replay_out=out)
    assert not r["conforms"]
    assert r["scenarios"][0]["verdict"]["code"] == "memory_exceeded"
    shrunk = r["shrunk"]
    n = len(shrunk["replay"]["instance"]["requests"])
    assert n <= 6 and n < shrunk["original_requests"], shrunk
    # The replay reproduces the failure, from the dict and from the file written.
    for replay in (shrunk["replay"], out):
        again = kvsched.conform(OverAdmits, replay=replay)
        assert again["scenarios"][0]["verdict"]["code"] == "memory_exceeded"
    # ... and the correct scheduler passes it.
    assert kvsched.conform(Fcfs, replay=out)["conforms"]


def test_exceptions_and_malformed_plans_are_verdicts():
    class Raises(Fcfs):
        def decide(self, msg):
            if msg["seq"] == 3:
                raise RuntimeError("boom")
            return super().decide(msg)

    class Garbage(Fcfs):
        def decide(self, msg):
            return {"batch": [{"decode": 0, "oops": 1}]}

    r = kvsched.conform(Raises, scenarios=["light"], shrink=False, **SMALL)
    v = r["scenarios"][0]["verdict"]
    assert v["code"] == "crash" and "RuntimeError: boom" in v["message"], v
    assert "Traceback" in v["message"] or "line" in v["message"]
    r = kvsched.conform(Garbage, scenarios=["light"], shrink=False, **SMALL)
    assert r["scenarios"][0]["verdict"]["code"] == "garbage"
    with pytest.raises(kvsched.KvschedError, match="unknown scenario"):
        kvsched.conform(Fcfs, scenarios=["nope"])
    with pytest.raises(kvsched.KvschedError, match="--information"):
        kvsched.conform(Fcfs, information="everything")


def test_stdio_command_through_the_same_battery():
    r = kvsched.conform([sys.executable, str(CLIENTS / "fcfs.py")], scenarios=["light"], **SMALL)
    assert r["conforms"] and r["subject"].endswith("fcfs.py")


@pytest.mark.parametrize("information", ["hidden", "predicted", "known"])
@pytest.mark.parametrize("views", ["full", "delta"])
def test_in_process_messages_equal_the_wire_messages(tmp_path, information, views):
    """The object sees exactly what a stdio client parses from its lines, message for
    message, for every information set and both view modes."""
    opts = dict(requests=25, scenarios=["light", "overload"], seeds=[2], baselines=False,
                information=information, shrink=False)
    inproc = []
    a = kvsched.conform(lambda: Recorder(inproc, information, views), **opts)
    log = tmp_path / "wire.jsonl"
    b = kvsched.conform([sys.executable, str(ROOT / "python/tests/recorder.py"), str(log),
                         information, views], **opts)
    wire = [json.loads(line) for line in log.read_text().splitlines()]
    verdicts = [[s["verdict"]["code"] for s in r["scenarios"]] for r in (a, b)]
    assert verdicts[0] == verdicts[1]
    assert a["conforms"] == (views == "full")
    assert len(inproc) == len(wire) > 50
    for i, (x, y) in enumerate(zip(inproc, wire)):
        assert x == y, f"message {i} differs"
    # The information set shows: output lengths appear exactly when offered.
    reqs = [r for m in inproc if m["type"] == "decide" for r in m["arrived"]]
    assert reqs
    assert all(("known" in r) == (information == "known") for r in reqs)
    assert all(("predicted" in r) == (information == "predicted") for r in reqs)
    decides = [m for m in inproc if m["type"] == "decide"]
    assert all(("waiting" in m) == (views == "full") for m in decides)


def test_a_scheduler_may_mutate_its_messages():
    """Request dicts are built once per run and copied into each message: what a scheduler
    writes into one message never shows in the next (as with messages parsed from JSON)."""

    class Scribbles(Fcfs):
        leaked = 0

        def decide(self, msg):
            for r in msg["waiting"] + msg["running"]:
                Scribbles.leaked += "mark" in r
                r["mark"] = True
            return super().decide(msg)

    r = kvsched.conform(Scribbles, **SMALL)
    assert r["conforms"], [s["verdict"] for s in r["scenarios"]]
    assert Scribbles.leaked == 0


def test_waiting_and_running_behave_as_lists():
    """`msg["waiting"]` and `msg["running"]` are lazy sequences (a request's dict is built when
    first read); everything a scheduler does with a list works, and gives what the list
    parsed from JSON would."""
    import copy
    import pickle

    seen = []

    class Probes(Fcfs):
        def decide(self, msg):
            w, r = msg["waiting"], msg["running"]
            if len(w) >= 3 and len(r) >= 2 and len(seen) < 5:
                assert isinstance(w, kvsched.Requests) and isinstance(r, kvsched.Requests)
                plain = json.loads(json.dumps(msg, default=list))
                assert w == plain["waiting"] and plain["waiting"] == w and r == plain["running"]
                assert w != plain["waiting"][1:] and not (w == 3)
                assert len(w) == len(plain["waiting"]) and bool(w)
                assert w[0] == plain["waiting"][0] and w[-1] == plain["waiting"][-1]
                assert w[0] is w[0], "an entry is built once and kept"
                assert w[1:3] == plain["waiting"][1:3] and isinstance(w[1:3], list)
                assert list(reversed(r)) == plain["running"][::-1]
                assert plain["waiting"][2] in w and {"id": -1} not in w
                both = w + r
                assert isinstance(both, list) and both == plain["waiting"] + plain["running"]
                assert [1] + r == [1] + plain["running"]
                assert copy.deepcopy(w) == plain["waiting"] and pickle.loads(pickle.dumps(r)) == r
                assert isinstance(w.copy(), list) and w.index(w[1]) == 1
                assert repr(w) == repr(plain["waiting"])
                with pytest.raises(IndexError):
                    w[len(w)]
                with pytest.raises(TypeError):
                    w["id"]
                w[0]["mark"] = 1
                assert w[0]["mark"] == 1, "writes into an entry stay within the message"
                # A list method acts on the sequence's own list, which later reads see.
                r.sort(key=lambda x: -x["id"])
                assert [x["id"] for x in r] == sorted((x["id"] for x in plain["running"]),
                                                     reverse=True)
                r.pop()
                assert len(r) == len(plain["running"]) - 1
                seen.append(msg["seq"])
                msg = plain  # decide on the untouched copy
            return super().decide(msg)

    r = kvsched.conform(Probes, scenarios=["overload"], requests=100, baselines=False)
    assert r["conforms"], [s["verdict"] for s in r["scenarios"]]
    assert len(seen) == 5
