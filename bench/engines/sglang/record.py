"""Records SGLang's real admission decisions (`PrefillAdder`, SGLang 0.5.23) on fixed
scenarios, as JSON fixtures for `tests/it/engines_sglang.rs` (spec/ENGINES.md, "SGLang").

  record.py OUT.json

Run it through `run.sh`, which puts the unpacked SGLang wheel on PYTHONPATH. Every decision is
SGLang's code: `PrefillAdder` itself (`add_chunked_req`, `add_one_req`, `budget_state`), the
`PrefillBudget` that `BaseTokenToKVPoolAllocator.create_prefill_budget` returns, and the
request-entry clamp `Scheduler.init_req_max_new_tokens`. Mocked (and listed in
spec/ENGINES.md): the token-to-KV allocator's free count, the prefix cache (no hits), the
request objects, and the part of `Scheduler._get_new_batch_prefill_raw` that drives the adder
(replayed in `admit` below, admission lines only).
"""

import json
import sys
import time
import types

def import_sglang():
    """Imports the scheduler modules without `sglang/__init__.py` (the frontend language,
    which needs IPython and more) and with a stub `IPython.display` for `sglang.utils`."""
    import importlib.util
    spec = importlib.util.find_spec("sglang")
    if spec is None:
        sys.exit("sglang is not on PYTHONPATH (run bench/engines/sglang/run.sh)")
    pkg = types.ModuleType("sglang")
    pkg.__path__ = list(spec.submodule_search_locations)
    sys.modules["sglang"] = pkg
    # sglang.utils imports IPython.display for notebook helpers the scheduler never calls.
    ipy = types.ModuleType("IPython")
    ipy.__path__ = []
    disp = types.ModuleType("IPython.display")
    disp.HTML = disp.display = lambda *a, **k: None
    ipy.display = disp
    sys.modules.setdefault("IPython", ipy)
    sys.modules.setdefault("IPython.display", disp)
    t = time.time()
    from sglang.srt.managers import schedule_policy as sp
    from sglang.srt.managers.scheduler import Scheduler
    from sglang.srt.mem_cache.allocator.base import BaseTokenToKVPoolAllocator
    from sglang.srt.server_args import ServerArgs, set_global_server_args_for_scheduler
    # As SGLang's own unit tests publish their config (test/kits/unified_radix_cache): a dummy
    # model path, page size 1, every other server argument at its default (FCFS policy).
    set_global_server_args_for_scheduler(ServerArgs(model_path="dummy", page_size=1))
    return sp, Scheduler, BaseTokenToKVPoolAllocator, time.time() - t


sp, Scheduler, BaseAllocator, IMPORT_S = import_sglang()
AddReqResult = sp.AddReqResult


class StubAllocator(BaseAllocator):
    """A token pool of `size` tokens with `free` of them free (page size 1). Only
    `available_size` is ours; `create_prefill_budget`, `request_slot_reserve` and
    `max_new_tokens_for_memory` are the base class's."""

    def __init__(self, size, free):
        self.size = size
        self.page_size = 1
        self._free = free

    def available_size(self):
        return self._free

    def clear(self):
        raise AssertionError("admission must not clear the pool")

    def alloc(self, need_size):
        raise AssertionError("admission must not allocate")

    def free(self, free_index):
        raise AssertionError("admission must not free")


class StubTreeCache:
    """The prefix cache with nothing cached and nothing evictable (`--disable-radix-cache`)."""

    buffer_pipeline = None
    disable = True

    def supports_mamba(self):
        return False

    def supports_prefix_sharing(self):
        return False

    def evictable_size(self):
        return 0

    def full_evictable_size(self):
        return 0

    def lock(self, node):
        return None

    def unlock(self, lock):
        pass

    def discard_storage_prefetch_accounting(self, handle):
        pass

    def finish_storage_prefetch_admission(self, handle, fulfilled_tokens, reason):
        pass


READ = set()


class Sampling:
    def __init__(self, max_new_tokens):
        self.max_new_tokens = max_new_tokens
        self.min_new_tokens = 0
        self.ignore_eos = False


class Kv:
    def __init__(self):
        self.holds_mamba = False
        self.holds_kv = False
        self.req_pool_idx = None
        self.cache_protected_len = 0


class StubReq:
    """A request as the adder reads it: `prompt` input tokens, `output` generated, `prefix`
    already prefilled (a chunked request's earlier chunks), no cache hits, no host tier, no
    retraction history. Any attribute not set here raises, so the list in spec/ENGINES.md is
    complete; `READ` collects the names the adder read."""

    _FIELDS = {
        "rid", "sampling_params", "origin_input_ids", "output_ids",
        "full_untruncated_fill_ids", "prefix_len", "extend_end", "last_node",
        "best_match_node", "host_hit_length", "swa_host_hit_length",
        "auxiliary_swa_host_hit_length", "mamba_host_hit_length", "host_loaded_length",
        "storage_hit_length", "storage_hit_start", "host_hit_is_storage", "retracted_stain",
        "cache_request_handle", "kv", "lock", "token_indices_to_pool", "beam_group",
        "finished_reason",
    }

    def __init__(self, rid, prompt, max_new, output=0, prefix=0):
        d = self.__dict__
        d["rid"] = rid
        d["sampling_params"] = Sampling(max_new)
        d["origin_input_ids"] = list(range(prompt))
        d["output_ids"] = list(range(output))
        d["full_untruncated_fill_ids"] = d["origin_input_ids"] + d["output_ids"]
        d["prefix_len"] = prefix
        d["extend_end"] = prefix
        d["last_node"] = d["best_match_node"] = None
        for k in ("host_hit_length", "swa_host_hit_length", "auxiliary_swa_host_hit_length",
                  "mamba_host_hit_length", "host_loaded_length", "storage_hit_length",
                  "storage_hit_start"):
            d[k] = 0
        d["host_hit_is_storage"] = False
        d["retracted_stain"] = False
        d["cache_request_handle"] = None
        d["kv"] = Kv()
        d["lock"] = None
        d["token_indices_to_pool"] = None
        d["beam_group"] = None
        d["finished_reason"] = None

    def __getattribute__(self, name):
        if not name.startswith("_"):
            READ.add(name)
        return object.__getattribute__(self, name)

    def __getattr__(self, name):
        raise AttributeError(f"StubReq has no {name!r}: SGLang reads an unmocked attribute")

    def __setattr__(self, name, value):
        if name not in self._FIELDS:
            raise AttributeError(f"SGLang writes unmocked attribute {name!r}")
        self.__dict__[name] = value

    @property
    def extend_len(self):
        return self.extend_end - self.prefix_len

    def needs_host_load_back(self):
        return False

    def materialized_host_hit_len(self):
        return 0

    def fulfilled_storage_hit_len(self, prefix_len):
        return 0

    def set_finish_with_abort(self, msg):
        self.finished_reason = msg


class RunningBatch:
    def __init__(self, reqs):
        self.reqs = reqs

    def batch_size(self):
        return len(self.reqs)

    def is_empty(self):
        return not self.reqs


def clamp_max_new(capacity, prompt, max_new):
    """`Scheduler.init_req_max_new_tokens` on a stub scheduler: the request-entry clamp."""
    me = types.SimpleNamespace(
        max_new_tokens_limit=None,
        # tp_worker: min(context_len - 1, max_total_num_tokens - 1), the context taken long.
        max_req_len=capacity - 1,
        max_total_num_tokens=capacity,
        kv_shard_widening=1,
        page_size=1,
        token_to_kv_pool_allocator=StubAllocator(capacity, capacity),
        sliding_window_size=None,
        chunked_prefill_size=None,
    )
    req = StubReq("clamp", prompt, max_new)
    Scheduler.init_req_max_new_tokens(me, req)
    return req.sampling_params.max_new_tokens


def admit(sc):
    """One prefill pass: the admission lines of `Scheduler._get_new_batch_prefill_raw` (FCFS,
    no LoRA, no priority preemption, no hierarchical cache, no mixed chunk, no delayer)."""
    cap = sc["capacity"]
    running = [StubReq(f"r{i}", r["prompt"], clamp_max_new(cap, r["prompt"], r["max_new"]),
                       output=r["output"], prefix=r["prompt"] + r["output"])
               for i, r in enumerate(sc["running"])]
    chunked = None
    if sc.get("chunked"):
        c = sc["chunked"]
        chunked = StubReq("c", c["prompt"], clamp_max_new(cap, c["prompt"], c["max_new"]),
                          prefix=c["prefilled"])
        chunked.kv.holds_kv = True
    waiting = [StubReq(f"w{i}", w["prompt"], clamp_max_new(cap, w["prompt"], w["max_new"]))
               for i, w in enumerate(sc["waiting"])]
    held = sum(r["prompt"] + r["output"] for r in sc["running"])
    held += sc["chunked"]["prefilled"] if sc.get("chunked") else 0
    free = cap - held
    assert free >= 0, sc["name"]
    out = {
        "free_tokens": free,
        "running_max_new": [r.sampling_params.max_new_tokens for r in running],
        "waiting_max_new": [w.sampling_params.max_new_tokens for w in waiting],
        "chunked_max_new": chunked.sampling_params.max_new_tokens if chunked else None,
        "chunked_extend": None,
        "chunked_done": None,
        "results": [],
        "admitted": [],
        "new_chunked": None,
        "stop": None,
    }
    max_running = sc["max_running_requests"]
    running_bs = len(running)
    # req_to_token_pool: max_running_requests rows, one held by each running request and one
    # by the chunked request (`kv.holds_kv`).
    rows_free = max_running - running_bs - (1 if chunked else 0)

    def allocatable(held_rows):
        # Scheduler.get_num_allocatable_reqs, pp_max_micro_batch_size = max_running_requests.
        return min(max_running - running_bs, max(rows_free + held_rows, 0))

    if not waiting and chunked is None:
        out["stop"] = "empty"
        return out
    if allocatable(0) <= 0 and chunked is None:
        out["stop"] = "batch_full"
        return out
    batch = RunningBatch(running)
    adder = sp.PrefillAdder(
        1, StubTreeCache(), StubAllocator(cap, free), batch, sc["ratio"],
        sc["max_prefill_tokens"], sc["chunked_prefill_size"], 0, 0,
        max_prefill_bs=0, max_running_requests=max_running, prefill_max_requests=None,
        prefill_delayer_single_pass=None, dllm_config=None, waiting_queue_len=len(waiting),
    )
    if chunked is not None:
        left = adder.add_chunked_req(chunked)
        if adder.can_run_list:
            out["chunked_extend"] = chunked.extend_len
            out["chunked_done"] = left is None
        chunked = left
    for i, req in enumerate(waiting):
        if adder.budget_state() == AddReqResult.OTHER:
            out["stop"] = "budget_other"
            break
        held_rows = sum(r.kv.holds_kv for r in adder.can_run_list)
        if len(adder.can_run_list) >= allocatable(held_rows):
            out["stop"] = "batch_full"
            break
        res = adder.add_one_req(req, has_chunked_req=chunked is not None,
                                truncation_align_size=None)
        out["results"].append(res.name)
        if req in adder.can_run_list:
            out["admitted"].append({"index": i, "extend": req.extend_len})
        if res != AddReqResult.CONTINUE:
            out["stop"] = "result_" + res.name
            break
    else:
        out["stop"] = "queue_end"
    if adder.new_chunked_req is not None:
        out["new_chunked"] = int(adder.new_chunked_req.rid[1:])
    out["rem_total_tokens"] = adder.rem_total_tokens
    out["rem_input_tokens"] = adder.rem_input_tokens
    out["rem_chunk_tokens"] = adder.rem_chunk_tokens
    return out


def main():
    import scenarios
    out_path = sys.argv[1]
    recs = []
    for sc in scenarios.SCENARIOS:
        recs.append({"scenario": sc, "sglang": admit(sc)})
    ratio = {
        "init": sp.envs.SGLANG_INIT_NEW_TOKEN_RATIO.get(),
        "min_factor": sp.envs.SGLANG_MIN_NEW_TOKEN_RATIO_FACTOR.get(),
        "decay_steps": sp.envs.SGLANG_NEW_TOKEN_RATIO_DECAY_STEPS.get(),
    }
    doc = {
        "engine": "sglang",
        "version": __import__("importlib.metadata").metadata.version("sglang"),
        "source": "bench/engines/sglang/record.py (PrefillAdder, page_size 1)",
        "clip_max_new_tokens": sp.CLIP_MAX_NEW_TOKENS,
        "new_token_ratio": ratio,
        "request_attributes_read": sorted(READ),
        "scenarios": recs,
    }
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"sglang import {IMPORT_S:.1f} s; {len(recs)} scenarios -> {out_path}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
