"""Round trips through every entry point, against the CLI's own output where it is built."""

import kvsched
import pytest
from conftest import INSTANCE, ROOT, WORKLOAD, cli_json

try:
    import tomllib  # Python 3.11+: the dict forms are tested by parsing the example files
except ImportError:
    tomllib = None
needs_tomllib = pytest.mark.skipif(tomllib is None, reason="tomllib needs Python 3.11")


def test_schedulers_is_the_registry(cli):
    names = [e["name"] for e in kvsched.schedulers()]
    assert "vllm-v0" in names and "wait" in names
    assert kvsched.schedulers() == cli_json(cli, "schedulers", "--json")


def test_simulate_matches_cli_json(cli):
    r = kvsched.simulate(WORKLOAD, scheduler="sarathi", requests=400, seed=3)
    records = r.pop("records")
    want = cli_json(cli, "simulate", WORKLOAD, "--scheduler", "sarathi", "--requests", 400,
                    "--seed", 3, "--json")
    assert r == want


def test_simulate_records_are_columns():
    r = kvsched.simulate(str(WORKLOAD), requests=300, seed=2)
    rec = r["records"]
    n = len(rec["id"])
    assert n == r["requests"] == 300
    assert all(len(col) == n for col in rec.values()), {k: len(v) for k, v in rec.items()}
    assert rec["id"] == list(range(n))
    done = [x for x in rec["finish_s"] if x is not None]
    assert len(done) == r["completed"]
    lat = [f - a for f, a in zip(rec["finish_s"], rec["arrival_s"]) if f is not None]
    lat_col = [x for x in rec["latency_s"] if x is not None]
    assert max(abs(a - b) for a, b in zip(lat, lat_col)) < 1e-9
    # A DataFrame takes the columns as they are (pandas is optional here).
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(rec)
    assert df.shape == (n, len(rec))


@needs_tomllib
def test_simulate_workload_dict_equals_file():
    d = tomllib.loads(WORKLOAD.read_text())
    a = kvsched.simulate(d, requests=200, seed=5)
    b = kvsched.simulate(WORKLOAD, requests=200, seed=5)
    assert a == b


def test_simulate_stream_has_no_records():
    r = kvsched.simulate(WORKLOAD, requests=500, stream=True)
    assert r["completed"] == 500 and r["records"]["id"] == []


@needs_tomllib
def test_fluid_matches_cli_and_takes_a_dict(cli):
    want = cli_json(cli, "fluid", WORKLOAD, "--json")
    assert kvsched.fluid(WORKLOAD) == want
    assert kvsched.fluid(tomllib.loads(WORKLOAD.read_text())) == want


@needs_tomllib
def test_opt_matches_cli_and_takes_a_dict(cli):
    want = cli_json(cli, "opt", INSTANCE, "--json")
    got = kvsched.opt(INSTANCE)
    # Solve times differ run to run; everything else is deterministic.
    for r in (want, got):
        r.pop("solve_time_s")
    assert got == want
    assert got["proven_optimal"]
    d = kvsched.opt(tomllib.loads(INSTANCE.read_text()))
    d.pop("solve_time_s")
    assert d == got


def test_reproduce_one_claim(tmp_path):
    r = kvsched.reproduce(claims=["W-FLUID-SINGLE"], out=tmp_path)
    assert [c["id"] for c in r["claims"]] == ["W-FLUID-SINGLE"]
    assert r["claims"][0]["verdict"] in ("supported", "not_supported", "not_reproducible")
    assert (tmp_path / "results.json").exists() and (tmp_path / "index.md").exists()


# Bad input: a KvschedError (a ValueError) with the CLI's message, never a crash.
BAD = [
    (lambda: kvsched.simulate(ROOT / "nope.toml"), ["simulate", ROOT / "nope.toml"]),
    (lambda: kvsched.simulate(WORKLOAD, scheduler="nope"), ["simulate", WORKLOAD, "--scheduler",
                                                            "nope"]),
    (lambda: kvsched.simulate(WORKLOAD, rate_scale=-1), ["simulate", WORKLOAD, "--rate-scale=-1"]),
    (lambda: kvsched.simulate(WORKLOAD, stream=True, check=True),
     ["simulate", WORKLOAD, "--stream", "--check"]),
    (lambda: kvsched.fluid(ROOT / "Cargo.toml"), ["fluid", ROOT / "Cargo.toml"]),
    (lambda: kvsched.opt(WORKLOAD), ["opt", WORKLOAD]),
    (lambda: kvsched.opt(INSTANCE, time_limit_s=-1), ["opt", INSTANCE, "--time-limit-s=-1"]),
    (lambda: kvsched.reproduce(claims=["NOPE"]), ["reproduce", "--claim", "NOPE"]),
]


@pytest.mark.parametrize("call,argv", BAD, ids=[" ".join(map(str, a[1][:1] + a[1][2:]))
                                                 for a in BAD])
def test_bad_input_raises_the_cli_message(cli, call, argv):
    with pytest.raises(kvsched.KvschedError) as e:
        call()
    assert isinstance(e.value, ValueError)
    code, _, err = cli(*argv)
    assert code == 2
    assert err.strip() == f"error: {e.value}".strip()


@needs_tomllib
def test_bad_dict_names_the_field():
    d = tomllib.loads(WORKLOAD.read_text())
    d["class"][0]["rate_per_s"] = -3.0
    with pytest.raises(kvsched.KvschedError, match=r"<workload dict>: .*rate_per_s"):
        kvsched.simulate(d)
    del d["memory"]
    with pytest.raises(kvsched.KvschedError, match="memory"):
        kvsched.fluid(d)
    with pytest.raises(kvsched.KvschedError, match="expected a path or a dict"):
        kvsched.simulate(42)
    with pytest.raises(kvsched.KvschedError, match="<instance dict>"):
        kvsched.opt({"memory_tokens": 10})
