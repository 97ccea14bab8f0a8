"""kvsched from Python: the simulator, the fluid benchmark, the round-model optimum, the claim
experiments and in-process scheduler conformance, backed by the same Rust library as the
`kvsched` command-line tool (each function is one subcommand with `--json`).

    import kvsched
    r = kvsched.simulate("workloads/a100-llama2-7b.toml", scheduler="vllm-v0", requests=2000)
    r["p99_latency_s"], pandas.DataFrame(r["records"])

Bad input raises `KvschedError` (a `ValueError`) with the CLI's message. Long calls release the
GIL and stop on Ctrl-C (`KeyboardInterrupt`). `conform(obj)` hands a Python scheduler the wire
protocol's `decide` messages as dicts whose `waiting` and `running` are `Requests`: list-like
sequences that build a request's dict when it is first read.
"""

from ._kvsched import (  # noqa: F401
    PROTOCOL_VERSION,
    KvschedError,
    Requests,
    conform,
    fluid,
    opt,
    reproduce,
    schedulers,
    simulate,
)

__all__ = [
    "PROTOCOL_VERSION",
    "KvschedError",
    "Requests",
    "conform",
    "fluid",
    "opt",
    "reproduce",
    "schedulers",
    "simulate",
]
