"""kvsched's rich step-time law (spec/src/step_time.rs) in Python, for the Vidur scripts
(vidur_run.py --step-time, probe_table.py), with Vidur 0.0.26's decode-attention lookup rules as
an option (a diagnostic; sklearn_execution_time_predictor.py, `_get_attention_decode_
execution_time`):
  cap128    the decode batch counts as at most 128 in attention, the largest profiled batch (a
            random forest is flat beyond its training data);
  round256  the batch's mean decode KV is rounded up to 256 (kv_cache_prediction_granularity);
  overhead  x 1.1 for a decode batch of more than one (attention_decode_batching_overhead).
Standard library only.
"""
import tomllib

RULES = ("cap128", "round256", "overhead")


def law(path, rules=()):
    """`step_s(prefills, decodes)`: seconds for a batch of prefill chunks `(chunk, cached before)`
    and decodes (each its context including the token computed, Vidur's `num_kv_tokens`)."""
    unknown = set(rules) - set(RULES)
    assert not unknown, f"unknown rules {unknown}; expected some of {RULES}"
    st = tomllib.load(open(path, "rb"))["step_time"]
    assert st["kind"] == "rich", f"{path}: expected a rich step time"
    tw = st.get("tokenwise", [])
    g = st.get

    def tokenwise(x):  # flat before the first point, linear after, never negative
        if not tw:
            return 0.0
        if x <= tw[0][0] or len(tw) == 1:
            return tw[0][1]
        for (x0, y0), (x1, y1) in zip(tw, tw[1:]):
            if x <= x1:
                break
        return max(0.0, y0 + (y1 - y0) * (x - x0) / (x1 - x0))

    def step_s(prefills, decodes):
        p = sum(c for c, _ in prefills)
        d, kv_dec = len(decodes), sum(decodes)
        d_attn, kv_attn, over = d, kv_dec, 1.0
        if d and "round256" in rules:
            kv_attn = d * ((int(kv_dec / d) + 255) // 256 * 256)
        if d > 128 and "cap128" in rules:
            d_attn, kv_attn = 128, kv_attn * 128 / d
        if d > 1 and "overhead" in rules:
            over = 1.1
        return (g("base_s", 0.0) + g("prefill_s_per_token", 0.0) * p
                + g("prefill_attn_s_per_token2", 0.0) * sum(c * (k + c) for c, k in prefills)
                + g("kv_s_per_token", 0.0) * sum(k + c for c, k in prefills)
                + over * (g("decode_s_per_request", 0.0) * d_attn
                          + g("kv_s_per_token", 0.0) * kv_attn)
                + tokenwise(p + d))

    return step_s
