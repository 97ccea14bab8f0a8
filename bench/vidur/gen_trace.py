#!/usr/bin/env python3
"""Deterministic lmsys-like request trace for the Vidur side by side (bench/vidur/run.sh).

Poisson arrivals at RATE requests/s; prompt and output lengths log-normal (lmsys-chat-1m-like:
short prompts with a heavy tail, outputs of a few hundred tokens), clipped to [1, MAX] and to
prompt + output <= 4096 (Vidur's max_tokens). One CSV carries both simulators' column names:
  Date, Time, PromptTokenCount, CompletionTokenCount   -- Vidur's trace_replay generator
  arrived_at, num_prefill_tokens, num_decode_tokens    -- kvsched simulate --trace-csv
Python's own Mersenne Twister (random.Random(seed)) only: no numpy, same file on any machine.
"""
import argparse
import random

p = argparse.ArgumentParser()
p.add_argument("--requests", type=int, default=4096)
p.add_argument("--rate", type=float, default=10.0, help="Poisson rate, requests/s")
p.add_argument("--seed", type=int, default=2026)
p.add_argument("--prompt-mu", type=float, default=4.2)
p.add_argument("--prompt-sigma", type=float, default=1.0)
p.add_argument("--output-mu", type=float, default=4.9)
p.add_argument("--output-sigma", type=float, default=0.9)
p.add_argument("--max-prompt", type=int, default=2048)
p.add_argument("--max-output", type=int, default=2048)
p.add_argument("--lmsys-bins", action="store_true",
               help="workloads/lmsys-like.toml instead: prompt 60, outputs 50..500 (ten bins' "
                    "upper edges) in the ratio 23:11:8:7:6:4:3:2:1:1")
p.add_argument("--out", required=True)
a = p.parse_args()

rng = random.Random(a.seed)
t = 0.0
with open(a.out, "w") as f:
    f.write("Date,Time,PromptTokenCount,CompletionTokenCount,"
            "arrived_at,num_prefill_tokens,num_decode_tokens\n")
    for i in range(a.requests):
        if i > 0:
            t += rng.expovariate(a.rate)
        if a.lmsys_bins:
            prompt = 60
            out = rng.choices(range(50, 501, 50), weights=[23, 11, 8, 7, 6, 4, 3, 2, 1, 1])[0]
        else:
            prompt = min(a.max_prompt,
                         max(1, round(rng.lognormvariate(a.prompt_mu, a.prompt_sigma))))
            out = min(a.max_output, max(2, round(rng.lognormvariate(a.output_mu, a.output_sigma))))
        out = min(out, 4096 - prompt)
        ts = f"{t:.6f}"
        f.write(f"2023-08-21,{ts},{prompt},{out},{ts},{prompt},{out}\n")
