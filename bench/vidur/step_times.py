#!/usr/bin/env python3
"""Which step-time predictor is nearer the profiles, on the iterations this workload runs?

Replays a kvsched JSON-lines trace (`kvsched simulate ... --trace FILE`), rebuilds every
iteration's batch (prefill chunks; decode requests with their context), and times each iteration
three ways:
  data    the profile medians themselves, composed as kvsched-gpu-check composes them (token-wise
          ops x layers + emb once, interpolated in batch tokens; attention kernel + reshapes x
          layers, interpolated in KV per request (decode) or chunk (prefill));
  kvsched the calibration's rich law;
  vidur   Vidur's prediction tables (its random forests evaluated on its grid), looked up as
          Vidur 0.0.26 looks them up: batch tokens rounded up to 8, decode KV averaged and rounded
          up to 256 and x 1.1 for a batch of more than one (attention_decode_batching_overhead),
          prefill per request with KV (which, in Vidur, includes the chunk) rounded up to 256
          and the chunk up to 32.
Meant for runs without evictions (the main run of run.sh); evicted requests are not tracked.
Prints the sum over iterations of each, split into prefill and decode iterations.

Usage: step_times.py TRACE.jsonl CALIBRATION.toml PROFILE_DIR VIDUR_PREDICTIONS_DIR [LAYERS]
(VIDUR_PREDICTIONS_DIR: Vidur's cache_dir/predictions/<hash>/ holding attn_decode.csv.xz etc.)
"""
import bisect
import csv
import json
import lzma
import sys
import tomllib

trace, cal_path, prof, vpred = sys.argv[1:5]
LAYERS = int(sys.argv[5]) if len(sys.argv) > 5 else 48
OPS = ["input_layernorm", "attn_pre_proj", "attn_rope", "attn_post_proj",
       "post_attention_layernorm", "mlp_up_proj", "mlp_act", "mlp_down_proj", "add"]


def med(r, op):
    v = r.get(f"time_stats.{op}.median", "")
    return float(v) if v not in ("", None) else 0.0


def interp(xs, ys, x):
    i = bisect.bisect_left(xs, x)
    if i <= 0:
        return ys[0]
    if i >= len(xs):
        i = len(xs) - 1
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


# data: token-wise (ms per pass) by batch tokens
tok = {}
for r in csv.DictReader(open(f"{prof}/mlp.csv")):
    n = int(r["num_tokens"])
    tok.setdefault(n, []).append(LAYERS * sum(med(r, o) for o in OPS) + med(r, "emb"))
tok_x = sorted(tok)
tok_y = [sum(tok[x]) / len(tok[x]) for x in tok_x]
# data: attention (ms per layer), kernel + reshapes
dec, pre = {}, {}
for r in csv.DictReader(open(f"{prof}/attention.csv")):
    t = med(r, "attn_input_reshape") + med(r, "attn_output_reshape")
    if r["is_prefill"] == "True":
        if int(r["kv_cache_size"]) == 0:
            pre[int(r["prefill_chunk_size"])] = t + med(r, "attn_prefill")
    else:
        dec.setdefault(int(r["batch_size"]), {})[int(r["kv_cache_size"])] = t + med(r, "attn_decode")
pre_x = sorted(pre)
pre_y = [pre[x] for x in pre_x]
dec_xy = {b: (sorted(d), [d[k] for k in sorted(d)]) for b, d in dec.items()}


def data_ms(prefills, decodes):
    n = sum(prefills) + len(decodes)
    t = interp(tok_x, tok_y, n)
    for c in prefills:
        t += LAYERS * interp(pre_x, pre_y, c)
    if decodes:
        b = len(decodes)
        xs, ys = dec_xy[min(b, max(dec_xy))]
        t += LAYERS * interp(xs, ys, sum(decodes) / b) * (b / min(b, max(dec_xy)))
    return t


st = tomllib.load(open(cal_path, "rb"))["step_time"]
tw = st["tokenwise"]


def ks_ms(prefills, decodes):
    p, d = sum(prefills), len(decodes)
    if p + d <= tw[0][0]:
        w = tw[0][1]
    else:
        w = interp([x for x, _ in tw], [y for _, y in tw], p + d)
    s = (st["base_s"] + st.get("prefill_s_per_token", 0) * p
         + st.get("prefill_attn_s_per_token2", 0) * sum(c * c for c in prefills)
         + st.get("decode_s_per_request", 0) * d
         + st.get("kv_s_per_token", 0) * (sum(prefills) + sum(decodes)) + max(w, 0.0))
    return s * 1e3


def load(name):
    rd = csv.reader(lzma.open(f"{vpred}/{name}.csv.xz", "rt"))
    next(rd)
    return {tuple(int(float(x)) for x in row[:-1]): float(row[-1]) for row in rd}


V = {o: load(o) for o in OPS + ["attn_kv_cache_save", "attn_decode", "attn_prefill"]}


def vidur_ms(prefills, decodes, overhead=0.1, prefill_kv_includes_chunk=True):
    n = sum(prefills) + len(decodes)
    t = sum(V[o][((n + 7) // 8 * 8,)] for o in OPS) + V["attn_kv_cache_save"][(n,)]
    if decodes:
        b = len(decodes)
        k = (int(sum(k + 1 for k in decodes) / b) + 255) // 256 * 256  # num_kv_tokens = held + 1
        t += V["attn_decode"][(b, k)] * (1 + overhead * (b > 1))
    for c in prefills:
        # Vidur passes the request's num_kv_tokens, which counts the chunk itself, as the
        # profile's kv_cache_size (the KV *before* the chunk): a whole prompt of c tokens is
        # looked up as a chunk of c after c cached tokens.
        kv = (c + 255) // 256 * 256 if prefill_kv_includes_chunk else 0
        t += V["attn_prefill"][(kv, (c + 31) // 32 * 32)]
    return LAYERS * t


VARIANTS = {
    "vidur": lambda p, d: vidur_ms(p, d),
    "  without 10% overhead": lambda p, d: vidur_ms(p, d, overhead=0.0),
    "  and prefill KV 0": lambda p, d: vidur_ms(p, d, 0.0, False),
}


held = {}
tot = {k: {"prefill": 0.0, "decode": 0.0} for k in ["data", "kvsched", *VARIANTS, "trace"]}
iters = {"prefill": 0, "decode": 0}
for line in open(trace):
    ev = json.loads(line)
    if ev.get("k") == "evict":
        for i in ev.get("ids", [ev.get("id")]):
            held.pop(i, None)
        continue
    if ev.get("k") != "step":
        continue
    for i in ev.get("evict", []):
        held.pop(i, None)
    items = ev["items"]
    prefills = [it["prefill"]["tokens"] for it in items if "prefill" in it]
    ids = [it["decode"]["id"] for it in items if "decode" in it]
    kind = "prefill" if prefills else "decode"
    for r in range(ev.get("repeat", 1)):
        decodes = [held[i] for i in ids]
        tot["data"][kind] += data_ms(prefills, decodes)
        tot["kvsched"][kind] += ks_ms(prefills, decodes)
        for name, f in VARIANTS.items():
            tot[name][kind] += f(prefills, decodes)
        iters[kind] += 1
        for i in ids:
            held[i] += 1
    tot["trace"][kind] += ev["dur"] / 1e6
    for it in items:
        if "prefill" in it:
            held[it["prefill"]["id"]] = held.get(it["prefill"]["id"], 0) + it["prefill"]["tokens"] + 1
    for i in ev.get("done", []):
        held.pop(i, None)

print(f"iterations: {iters['prefill']} prefill, {iters['decode']} decode")
print(f"{'sum of step times (s)':<24}{'prefill':>10}{'decode':>10}{'all':>10}{'vs data':>10}")
d_all = sum(tot["data"].values())
for k in tot:
    a = sum(tot[k].values())
    print(f"{k:<24}{tot[k]['prefill'] / 1e3:>10.2f}{tot[k]['decode'] / 1e3:>10.2f}"
          f"{a / 1e3:>10.2f}{100 * (a - d_all) / d_all:>+9.1f}%")
