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

Usage: vidur_run.py PROFILE_DIR [--step-time CAL.toml] -- VIDUR_ARGS...
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


def _timed_init(self, *a, **k):
    t = time.perf_counter()
    _orig_init(self, *a, **k)
    times["predictor_s"] += time.perf_counter() - t


skl.SklearnExecutionTimePredictor.__init__ = _timed_init

_orig_write = vsim.Simulator._write_output


def _timed_write(self):
    t = time.perf_counter()
    _orig_write(self)
    times["write_s"] = time.perf_counter() - t
    times["output_dir"] = self._config.metrics_config.output_dir


vsim.Simulator._write_output = _timed_write

if step_time_toml:
    import tomllib

    from vidur._native.entities import ExecutionTime as ExecutionTimeC
    from vidur.execution_time_predictor import base_execution_time_predictor as base

    st = tomllib.load(open(step_time_toml, "rb"))["step_time"]
    assert st["kind"] == "rich", "--step-time: expected a rich step time"
    tw = st.get("tokenwise", [])

    def tokenwise(x):  # spec/src/step_time.rs: flat before the first point, linear after
        if not tw:
            return 0.0
        if x <= tw[0][0] or len(tw) == 1:
            return tw[0][1]
        for (x0, y0), (x1, y1) in zip(tw, tw[1:]):
            if x <= x1:
                break
        return max(0.0, y0 + (y1 - y0) * (x - x0) / (x1 - x0))

    def kvsched_step_s(batch):
        p = d = attn2 = kv = 0
        for q, k in zip(batch.num_q_tokens, batch.num_kv_tokens):
            kv += k  # Vidur's num_kv_tokens: context after this iteration's tokens
            if q == 1:  # Vidur's own rule: one query token is a decode
                d += 1
            else:
                p += q
                attn2 += q * k
        return (st["base_s"] + st.get("prefill_s_per_token", 0.0) * p
                + st.get("prefill_attn_s_per_token2", 0.0) * attn2
                + st.get("decode_s_per_request", 0.0) * d
                + st.get("kv_s_per_token", 0.0) * kv + tokenwise(p + d))

    def _kvsched_execution_time(self, batch, pipeline_stage):
        ms = kvsched_step_s(batch) * 1e3
        n = self._num_layers_per_pipeline_stage
        # All of it on one op: total_time = num_layers * (sum of per-layer ops) / 1e3.
        return ExecutionTimeC(n, 0, 0, 0, 0, 0, 0, ms / n, 0, 0, 0, 0, 0, 0, 0)

    base.BaseExecutionTimePredictor.get_execution_time = _kvsched_execution_time
    times["step_time"] = os.path.abspath(step_time_toml)

config = SimulationConfig.create_from_cli_args()
set_seeds(config.seed)
t = time.perf_counter()
sim = vsim.Simulator(config)  # builds the replicas' schedulers and the predictor (training)
times["construct_s"] = time.perf_counter() - t
t = time.perf_counter()
sim.run()  # event loop, then _write_output
times["run_s"] = time.perf_counter() - t
times["simulate_s"] = times["run_s"] - times.get("write_s", 0.0)
times["total_s"] = time.perf_counter() - T0
print("VIDUR_TIMES " + json.dumps(times), flush=True)
