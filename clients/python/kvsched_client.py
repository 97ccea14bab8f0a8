"""Client side of the kvsched scheduler wire protocol, version 1 (spec/PROTOCOL.md).

Standard library only. Subclass `Scheduler`, implement `decide(msg) -> dict`, and call
`serve(MyScheduler())`. `decide` receives the `decide` message as a dict and returns the plan's
fields: {"evict": [ids], "batch": [{"prefill": id, "tokens": n} | {"decode": id}],
"repeat": k}; `serve` adds "type" and "seq".
"""

import json
import sys

PROTOCOL_VERSION = 1


class Scheduler:
    """Base class: memory arithmetic from the handshake, and the protocol's defaults."""

    name = "python-scheduler"
    views = "full"  # or "delta": then only arrivals, completions and `ran` are sent
    information = None  # None: take what the harness offers

    def hello(self, msg):
        """Called once with the `hello` message."""
        mem = msg["config"]["memory"]
        self.capacity = msg["capacity_tokens"]
        self.block = mem.get("block_size_tokens", 1)
        self.watermark = msg["watermark_tokens"]
        self.with_prefill = msg["config"].get("first_token", "with_prefill") == "with_prefill"
        self.lifo = msg["config"].get("eviction", "any") == "lifo"

    def footprint(self, held):
        """KV footprint of a request holding `held` tokens (whole blocks)."""
        return -(-held // self.block) * self.block

    def decide(self, msg):
        raise NotImplementedError


def _write(out, obj):
    out.write(json.dumps(obj, separators=(",", ":")) + "\n")
    out.flush()


def serve(sched, inp=None, out=None):
    """Runs the protocol loop on stdin/stdout; returns the process exit code."""
    inp = inp or sys.stdin
    out = out or sys.stdout
    for line in inp:
        if not line.strip():
            continue
        msg = json.loads(line)
        kind = msg.get("type")
        if kind == "hello":
            sched.hello(msg)
            ready = {"type": "ready", "version": PROTOCOL_VERSION, "name": sched.name,
                     "views": sched.views}
            if sched.information:
                ready["information"] = sched.information
            _write(out, ready)
        elif kind == "decide":
            plan = dict(sched.decide(msg))
            plan["type"] = "plan"
            plan["seq"] = msg["seq"]
            _write(out, plan)
        elif kind == "end":
            return 0
        elif kind == "error":
            print(f"harness error {msg.get('code')}: {msg.get('message')}", file=sys.stderr)
            return 1
        else:
            _write(out, {"type": "error", "code": "bad_message", "message": f"type {kind!r}"})
            return 1
    return 0
