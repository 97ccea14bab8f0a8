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
Everything else is `python -m vidur.main` with the arguments after `--`.

It also times the predictor's construction (training + prediction tables: "predictor") apart
from the event loop ("simulate") and metric writing ("write"), and prints them as one JSON
line prefixed with `VIDUR_TIMES ` on stdout.

Usage: vidur_run.py PROFILE_DIR -- VIDUR_ARGS...
"""
import json
import os
import sys
import time

T0 = time.perf_counter()

profile_dir = os.path.abspath(sys.argv[1])
assert sys.argv[2] == "--", "usage: vidur_run.py PROFILE_DIR -- VIDUR_ARGS..."
sys.argv = [sys.argv[0]] + sys.argv[3:]

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
