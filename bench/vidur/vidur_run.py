#!/usr/bin/env python3
"""Run Vidur (PyPI `vidur`, microsoft/vidur) from local profile CSVs, and time it.

Vidur 0.0.26 fetches its profiles from Hugging Face datasets (`snapshot_download` of
`model_profiling_dataset` / `network_profiling_dataset`) and first tries to download ready-made
predictions from Hugging Face. Neither is reachable here, and the profiles we have are files. This
wrapper changes exactly two methods of `SklearnExecutionTimePredictor`, and nothing of the
simulation:
  - `_load_predictions_from_hf` raises at once (Vidur catches it and trains its models, which is
    its documented fallback), instead of trying the network;
  - `_get_input_files` returns PROFILE_DIR/{mlp,attention,all_reduce,send_recv}.csv instead of
    the Hugging Face snapshot paths.
and fixes one bug of Vidur 0.0.26 that only a preemption reaches:
  - `Request.restart` (vLLM's preemption by recompute) resets the request's token counters but
    not the per-pipeline-stage ones (`_num_stage_processed_tokens`,
    `_is_prefill_stage_complete`), so the restarted request's next prefill overruns them and
    `on_batch_stage_end` fails `assert self._num_stage_processed_tokens <= self.total_tokens`.
    The wrapper resets them too, as `restart` does for the others.
Everything else is `python -m vidur.main` with the arguments after `--`.

It also times the predictor's construction (training + prediction tables: "predictor") apart
from the event loop ("simulate") and metric writing ("write"), and prints them as one JSON
line prefixed with `VIDUR_TIMES ` on stdout.

With `--step-time CAL.toml` (a kvsched calibration file with a `rich` step time), every batch's
execution time is kvsched's law for that batch instead of the random forests' prediction: a
diagnostic that runs Vidur's scheduler and event loop on kvsched's step times, so that what is
left of a difference is the simulators' semantics, not their predictors.

With `--probe OUT.csv`, no simulation runs: after Vidur has built its predictor (training), every
probe batch of `probe_batches()` (short-prompt decode batches, long-context decodes, mixed
prefill/decode batches as Sarathi forms them, short and long prefills) is timed by Vidur's own
`get_execution_time`, and OUT.csv gets one row per batch: `class,name,decodes,decode_kv,prefills,
vidur_s`. `decode_kv` is each decode's context including the token being computed (Vidur's
`num_kv_tokens`); `prefills` lists `chunk@before` (chunk tokens after `before` cached ones).
`bench/vidur/probe.sh` writes `tests/data/vidur-probe-llama2-7b.csv` this way, and the test
`step_time_vidur_probe_errors_by_batch_shape` puts kvsched's law next to it.

Usage: vidur_run.py PROFILE_DIR [--step-time CAL.toml] [--probe OUT.csv] -- VIDUR_ARGS...
"""
import json
import os
import sys
import time

T0 = time.perf_counter()

USAGE = "usage: vidur_run.py PROFILE_DIR [--step-time CAL.toml] -- VIDUR_ARGS..."
profile_dir = os.path.abspath(sys.argv[1])
rest = sys.argv[2:]
step_time_toml = None
if rest[:1] == ["--step-time"]:
    step_time_toml, rest = rest[1], rest[2:]
probe_out = None
if rest[:1] == ["--probe"]:
    probe_out, rest = rest[1], rest[2:]
assert rest[:1] == ["--"], USAGE
sys.argv = [sys.argv[0]] + rest[1:]

from vidur.execution_time_predictor import sklearn_execution_time_predictor as skl  # noqa: E402
from vidur import simulator as vsim  # noqa: E402
from vidur.config import SimulationConfig  # noqa: E402
from vidur.utils.random import set_seeds  # noqa: E402

T_IMPORT = time.perf_counter()
times = {"import_s": T_IMPORT - T0, "predictor_s": 0.0}


def _no_hf(self):
    raise RuntimeError("Hugging Face not used: training from local profiles")


def _local_files(self):
    return tuple(
        os.path.join(profile_dir, f)
        for f in ("mlp.csv", "attention.csv", "all_reduce.csv", "send_recv.csv")
    )


from vidur.entities import request as vreq  # noqa: E402

_orig_restart = vreq.Request.restart


def _restart(self):
    _orig_restart(self)
    self._num_stage_processed_tokens = 0
    self._is_prefill_stage_complete = False


vreq.Request.restart = _restart

skl.SklearnExecutionTimePredictor._load_predictions_from_hf = _no_hf
skl.SklearnExecutionTimePredictor._get_input_files = _local_files

_orig_init = skl.SklearnExecutionTimePredictor.__init__


PREDICTORS = []


def _timed_init(self, *a, **k):
    t = time.perf_counter()
    _orig_init(self, *a, **k)
    times["predictor_s"] += time.perf_counter() - t
    PREDICTORS.append(self)


skl.SklearnExecutionTimePredictor.__init__ = _timed_init

_orig_write = vsim.Simulator._write_output


def _timed_write(self):
    t = time.perf_counter()
    _orig_write(self)
    times["write_s"] = time.perf_counter() - t
    times["output_dir"] = self._config.metrics_config.output_dir


vsim.Simulator._write_output = _timed_write

if step_time_toml:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from kvsched_law import law  # noqa: E402

    from vidur._native.entities import ExecutionTime as ExecutionTimeC
    from vidur.execution_time_predictor import base_execution_time_predictor as base

    # KVSCHED_VIDUR_LOOKUPS=cap128[,round256][,overhead]: Vidur's decode-attention lookup rules
    # applied to the law's decode part (a diagnostic for bench/vidur/lmsys.sh; kvsched_law.py).
    rules = tuple(filter(None, os.environ.get("KVSCHED_VIDUR_LOOKUPS", "").split(",")))
    if rules:
        times["vidur_lookups"] = sorted(rules)
    step = law(step_time_toml, rules)

    def kvsched_step_s(batch):
        # Vidur's own rule: one query token is a decode; num_kv_tokens is the context after this
        # iteration's tokens.
        pairs = list(zip(batch.num_q_tokens, batch.num_kv_tokens))
        return step([(q, k - q) for q, k in pairs if q != 1], [k for q, k in pairs if q == 1])

    def _kvsched_execution_time(self, batch, pipeline_stage):
        ms = kvsched_step_s(batch) * 1e3
        n = self._num_layers_per_pipeline_stage
        # All of it on one op: total_time = num_layers * (sum of per-layer ops) / 1e3.
        return ExecutionTimeC(n, 0, 0, 0, 0, 0, 0, ms / n, 0, 0, 0, 0, 0, 0, 0)

    base.BaseExecutionTimePredictor.get_execution_time = _kvsched_execution_time
    times["step_time"] = os.path.abspath(step_time_toml)



def probe_batches():
    """(class, name, decodes, decode_kv, prefills) of every probe batch; see the module doc."""
    out = []
    for b in (16, 64, 128, 192, 256):
        for kv in (64, 160, 320):
            out.append(("decode short-prompt", f"{b} decodes at kv {kv}", b, kv, []))
    for b in (8, 32, 128):
        for kv in (1024, 2048, 4000):
            out.append(("decode long-context", f"{b} decodes at kv {kv}", b, kv, []))
    for b in (32, 128, 200, 256):  # Sarathi, chunk 512: decodes first, then short prompts
        left, pre = 512 - b, []
        while left > 0:
            pre.append((min(60, left), 0))
            left -= pre[-1][0]
        out.append(("mixed short-prompt", f"{b} decodes at kv 160 + {len(pre)} prompts",
                    b, 160, pre))
    for b in (32, 128):
        out.append(("mixed long-chunk", f"{b} decodes at kv 1024 + chunk {512 - b}@1024",
                    b, 1024, [(512 - b, 1024)]))
    for n in (2, 8):
        out.append(("prefill short-prompt", f"{n} prompts of 60", 0, 0, [(60, 0)] * n))
    for c, k in ((512, 0), (1024, 0), (2048, 0), (4096, 0), (512, 1024), (512, 3072)):
        out.append(("prefill long", f"chunk {c}@{k}", 0, 0, [(c, k)]))
    return out


def run_probe(path):
    from vidur.entities import Batch
    from vidur.types import ReplicaId  # noqa: F401 (the replica id is only carried)

    pred = PREDICTORS[0]
    with open(path, "w") as f:
        f.write("class,name,decodes,decode_kv,prefills,vidur_s\n")
        for cls, name, b, kv, pre in probe_batches():
            q = [c for c, _ in pre] + [1] * b
            kvs = [k + c for c, k in pre] + [kv] * b
            batch = Batch(0, [None] * len(q), q, kvs)
            t = pred.get_execution_time(batch, 0).total_time
            pres = ";".join(f"{c}@{k}" for c, k in pre)
            f.write(f"{cls},{name},{b},{kv},{pres},{t:.9f}\n")


config = SimulationConfig.create_from_cli_args()
set_seeds(config.seed)
t = time.perf_counter()
sim = vsim.Simulator(config)  # builds the replicas' schedulers and the predictor (training)
times["construct_s"] = time.perf_counter() - t
if probe_out:
    run_probe(probe_out)
    print("VIDUR_TIMES " + json.dumps(times), flush=True)
    sys.exit(0)
t = time.perf_counter()
sim.run()  # event loop, then _write_output
times["run_s"] = time.perf_counter() - t
times["simulate_s"] = times["run_s"] - times.get("write_s", 0.0)
times["total_s"] = time.perf_counter() - T0
print("VIDUR_TIMES " + json.dumps(times), flush=True)
