"""The fixed admission scenarios `record.py` puts to SGLang's `PrefillAdder`.

Each scenario is one prefill pass: a KV pool of `capacity` tokens (page size 1); running
requests, each with its prompt, its output so far and its `max_new_tokens` (they hold prompt +
output tokens); optionally the chunked request, `prefilled` of its prompt done (it holds those);
the waiting queue in FCFS order, each with its prompt and `max_new_tokens`; the current
`new_token_ratio`; `chunked_prefill_size`, `max_prefill_tokens`, `max_running_requests`.
"""

INIT = 0.7
MIN = 0.7 * 0.14


def sc(name, note, capacity, waiting, running=(), chunked=None, ratio=INIT, chunk=2048,
       max_prefill=16384, max_running=4096):
    return {
        "name": name,
        "note": note,
        "capacity": capacity,
        "ratio": ratio,
        "chunked_prefill_size": chunk,
        "max_prefill_tokens": max_prefill,
        "max_running_requests": max_running,
        "running": [{"prompt": p, "output": o, "max_new": m} for p, o, m in running],
        "chunked": (None if chunked is None
                    else {"prompt": chunked[0], "prefilled": chunked[1],
                          "max_new": chunked[2]}),
        "waiting": [{"prompt": p, "max_new": m} for p, m in waiting],
    }


def w(n, prompt, max_new):
    return [(prompt, max_new)] * n


def r(n, prompt, output, max_new):
    return [(prompt, output, max_new)] * n


SCENARIOS = [
    # Plenty of memory.
    sc("plenty-empty", "everything fits, nothing running", 100_000, w(4, 100, 200)),
    sc("plenty-running", "everything fits beside running requests", 100_000, w(5, 100, 200),
       running=r(3, 100, 50, 200)),
    sc("empty-queue", "nothing waiting", 10_000, [], running=r(2, 100, 5, 100)),
    # Memory-bound admission.
    sc("memory-bound", "nine of ten fit", 2_000, w(10, 100, 100)),
    sc("memory-boundary-401", "free 401: is prompt+new strictly below what is left", 401,
       w(3, 100, 100)),
    sc("memory-boundary-402", "one more free token than memory-boundary-401", 402,
       w(3, 100, 100)),
    sc("memory-boundary-403", "two more free tokens than memory-boundary-401", 403,
       w(3, 100, 100)),
    sc("memory-exact-alone", "a request alone: prompt + new + overhead against the pool", 201,
       w(1, 100, 100)),
    sc("memory-head-blocks", "FCFS: a head that does not fit stops smaller ones behind it",
       1_000, [(900, 200), (10, 10), (10, 10)]),
    sc("memory-no-chunk-when-whole-does-not-fit",
       "a long prompt is refused whole, not chunked into what memory has", 4_000,
       [(3_000, 600)], running=[(500, 0, 1)], chunk=1_000),
    sc("memory-chunk-when-whole-fits", "memory-no-chunk-when-whole-does-not-fit, more memory",
       5_000, [(3_000, 600)], running=[(500, 0, 1)], chunk=1_000),
    # The reservation of new_token_ratio x remaining max_new_tokens for running requests.
    sc("reserve-running-init", "running requests reserve 0.7 x remaining", 1_500,
       w(3, 100, 200), running=r(2, 100, 10, 500)),
    sc("reserve-running-min", "the same at the minimum ratio", 1_500, w(3, 100, 200),
       running=r(2, 100, 10, 500), ratio=MIN),
    sc("reserve-running-one", "the same at ratio 1", 1_500, w(3, 100, 200),
       running=r(2, 100, 10, 500), ratio=1.0),
    sc("reserve-running-mid", "a decayed ratio", 1_500, w(3, 100, 200),
       running=r(2, 100, 10, 500), ratio=0.4),
    sc("reserve-boundary-701", "memory-boundary-401 behind a reservation of 0.5 x 200", 701,
       w(3, 100, 100), running=[(100, 100, 300)], ratio=0.5),
    sc("reserve-boundary-702", "reserve-boundary-701 with one more token", 702,
       w(3, 100, 100), running=[(100, 100, 300)], ratio=0.5),
    sc("reserve-boundary-703", "reserve-boundary-701 with two more tokens", 703,
       w(3, 100, 100), running=[(100, 100, 300)], ratio=0.5),
    sc("reserve-clip", "running max_new beyond the 4096 clip reserves the clip", 40_000,
       w(6, 1_000, 4_000), running=r(3, 100, 100, 9_000)),
    sc("reserve-done", "a running request at its max_new reserves nothing", 1_000,
       w(3, 100, 200), running=[(100, 300, 300)]),
    sc("reserve-many", "fifty running requests, fractional reservations", 30_000,
       w(20, 200, 300), running=r(50, 50, 37, 411), ratio=0.333),
    sc("reserve-blocks-all", "the reservation alone exceeds free memory", 3_000,
       w(2, 10, 10), running=r(2, 100, 0, 2_000)),
    # Chunked prefill of a long prompt.
    sc("chunk-long-prompt", "a prompt longer than chunked_prefill_size is chunked", 20_000,
       [(5_000, 100), (10, 10)]),
    sc("chunk-after-small", "the rest of the chunk budget goes to the next, chunked", 20_000,
       [(1_000, 100), (3_000, 100), (50, 10)]),
    sc("chunk-exact", "a prompt exactly the chunk budget is not chunked", 20_000,
       [(2_048, 100), (10, 10)]),
    sc("chunk-exact-plus-one", "one token over the chunk budget is chunked", 20_000,
       [(2_049, 100), (10, 10)]),
    sc("chunk-fill-by-small", "small prompts use up the chunk budget exactly", 20_000,
       w(6, 512, 10)),
    sc("chunk-continue", "the chunked request continues with a full chunk", 20_000,
       w(2, 10, 10), chunked=(5_000, 2_048, 100)),
    sc("chunk-continue-finishes", "the chunked request's last chunk, then admissions",
       20_000, w(4, 300, 50), chunked=(5_000, 4_096, 100)),
    sc("chunk-continue-memory", "the continuing chunk is cut to what the reservations leave",
       3_000, w(1, 10, 10), running=[(100, 10, 500)], chunked=(5_000, 2_048, 100)),
    sc("chunk-continue-no-memory", "the continuing chunk when reservations exceed free memory",
       3_000, w(1, 10, 10), running=[(100, 10, 2_000)], chunked=(5_000, 2_048, 100)),
    sc("chunk-continue-min-ratio", "chunk-continue-memory at the minimum ratio", 3_000,
       w(1, 10, 10), running=[(100, 10, 500)], chunked=(5_000, 2_048, 100), ratio=MIN),
    # max_prefill_tokens.
    sc("max-prefill", "max_prefill_tokens 1000, prompts of 400", 100_000, w(5, 400, 10),
       chunk=8_192, max_prefill=1_000),
    sc("max-prefill-exact", "max_prefill_tokens 800, prompts of 400", 100_000, w(5, 400, 10),
       chunk=8_192, max_prefill=800),
    sc("max-prefill-first-over", "a first prompt above max_prefill_tokens", 100_000,
       [(3_000, 10), (10, 10)], chunk=8_192, max_prefill=1_000),
    # Running-request cap.
    sc("cap-running", "max_running_requests 4 with 2 running", 100_000, w(5, 10, 10),
       running=r(2, 10, 1, 10), max_running=4),
    sc("cap-running-chunked", "the chunked request holds a row", 100_000, w(5, 10, 10),
       running=r(2, 10, 1, 10), chunked=(3_000, 2_048, 10), max_running=4),
    sc("cap-full", "max_running_requests reached", 100_000, w(2, 10, 10),
       running=r(2, 10, 1, 10), max_running=2),
    # The request-entry clamp of max_new_tokens.
    sc("clamp-max-new", "max_new clamped to what the pool holds beside the prompt", 1_000,
       [(900, 2_000)]),
    sc("clamp-max-new-two", "two clamped requests: only the first fits", 1_000,
       [(500, 2_000), (100, 2_000)]),
]
