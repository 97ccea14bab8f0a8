"""Shared paths and helpers of the kvsched Python tests."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "clients" / "python"
sys.path.insert(0, str(CLIENTS))

WORKLOAD = ROOT / "workloads" / "p512d20.toml"
INSTANCE = ROOT / "tests" / "data" / "round_example.toml"


def cli_binary():
    """The `kvsched` binary `cargo test` built, if any (its output is the reference)."""
    for profile in ("debug", "release"):
        p = ROOT / "target" / profile / "kvsched"
        if p.exists():
            return p
    return None


@pytest.fixture
def cli():
    """Runs the CLI; returns (exit code, stdout, stderr). Skips when it is not built."""
    binary = os.environ.get("KVSCHED_BIN") or cli_binary()
    if binary is None:
        pytest.skip("no kvsched binary (run `cargo build` first)")

    def run(*args):
        p = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True,
                           cwd=ROOT, timeout=300)
        return p.returncode, p.stdout, p.stderr

    return run


def cli_json(cli, *args):
    code, out, err = cli(*args)
    assert code == 0, err
    return json.loads(out)
