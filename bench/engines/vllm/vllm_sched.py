"""Builds vLLM's real v1 scheduler offline, on CPU, and steps it (spec/ENGINES.md).

Built the way vLLM's own unit tests build it (tests/v1/core/utils.py, create_scheduler): a
VllmConfig from a local model config (model/config.json, a small OPT-125m-like model: the hub
is unreachable and no weights are needed), a KVCacheConfig with one full-attention group of
`num_blocks`, and `Scheduler(...)` itself. The model runner is replaced by a fake output that
samples one token for every scheduled request whose step reaches the end of its known tokens,
which is what the GPU worker reports to the scheduler.

Shims (each because of an API drift or a missing GPU, never to change a decision):
- the device is named "cpu" (automatic detection fails without a GPU);
- optional keyword arguments are passed only when the installed version has them;
- `sampled_slot`: see `Driver.__init__`.
"""

import inspect
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_DIR = os.path.join(HERE, "model")
EOS = 2  # OPT's eos_token_id (model/config.json)

os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
os.environ.setdefault("VLLM_ALLOW_LONG_MAX_MODEL_LEN", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")

_t0 = time.time()
import torch  # noqa: E402
from vllm.config import (  # noqa: E402
    CacheConfig,
    DeviceConfig,
    ModelConfig,
    SchedulerConfig,
    VllmConfig,
)
from vllm.sampling_params import SamplingParams  # noqa: E402
from vllm.v1.core.sched.scheduler import Scheduler  # noqa: E402
from vllm.v1.kv_cache_interface import (  # noqa: E402
    FullAttentionSpec,
    KVCacheConfig,
    KVCacheGroupSpec,
)
from vllm.v1.outputs import ModelRunnerOutput  # noqa: E402
from vllm.v1.request import Request  # noqa: E402
from vllm.v1.structured_output import StructuredOutputManager  # noqa: E402

IMPORT_S = time.time() - _t0
MAX_MODEL_LEN = 1 << 20


def _kwargs(fn, **kw):
    """The keyword arguments that `fn` accepts (API drift between minor versions)."""
    params = inspect.signature(fn).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return kw
    return {k: v for k, v in kw.items() if k in params}


def build_scheduler(capacity_tokens, block_size, max_num_batched_tokens=2048,
                    max_num_seqs=256, reserve_full_isl=True):
    """The real Scheduler over `capacity_tokens` of KV in blocks of `block_size`."""
    sched_cfg = SchedulerConfig(**_kwargs(
        SchedulerConfig,
        max_num_seqs=max_num_seqs,
        max_num_batched_tokens=max_num_batched_tokens,
        max_model_len=MAX_MODEL_LEN,
        enable_chunked_prefill=True,
        long_prefill_token_threshold=0,
        scheduler_reserve_full_isl=reserve_full_isl,
        is_encoder_decoder=False,
    ))
    model_cfg = ModelConfig(**_kwargs(
        ModelConfig,
        model=MODEL_DIR,
        tokenizer=MODEL_DIR,
        skip_tokenizer_init=True,
        dtype="float16",
        seed=0,
        max_model_len=MAX_MODEL_LEN,
    ))
    cache_cfg = CacheConfig(**_kwargs(
        CacheConfig, block_size=block_size, gpu_memory_utilization=0.9,
        enable_prefix_caching=False, cache_dtype="auto"))
    vllm_cfg = VllmConfig(**_kwargs(
        VllmConfig, scheduler_config=sched_cfg, model_config=model_cfg,
        cache_config=cache_cfg, device_config=DeviceConfig(device="cpu")))
    # The block pool keeps one null block: give it one more than the capacity.
    num_blocks = capacity_tokens // block_size + 1
    spec = FullAttentionSpec(**_kwargs(
        FullAttentionSpec, block_size=block_size, num_kv_heads=1, head_size=1,
        dtype=torch.float32))
    kv_cfg = KVCacheConfig(num_blocks=num_blocks, kv_cache_tensors=[],
                           kv_cache_groups=[KVCacheGroupSpec(["layer"], spec)])
    cache_cfg.num_gpu_blocks = num_blocks
    return Scheduler(**_kwargs(
        Scheduler, vllm_config=vllm_cfg, kv_cache_config=kv_cfg,
        structured_output_manager=StructuredOutputManager(vllm_cfg),
        block_size=block_size, log_stats=False))


class Driver:
    """One real scheduler, stepped one `schedule()` at a time.

    `sampled_slot` (the harness's `with_prefill` rule): kvsched counts the token a step samples
    as held at the end of that step, vLLM writes its KV in the next step. With it on, every
    `allocate_slots` call of a step that samples asks for one more slot (vLLM's own lookahead
    argument, used by speculative decoding), so both count the same memory. Off for
    `separate_decode`, whose count is vLLM's.

    `restart` (kvsched's eviction: progress is lost): a preempted request's sampled tokens are
    dropped (private fields `_output_token_ids`, `_all_token_ids`), so it re-prefills its prompt
    alone. Off, vLLM re-prefills prompt plus generated tokens, as it does in production.
    """

    def __init__(self, capacity_tokens, block_size, reserve_full_isl=True,
                 sampled_slot=False, restart=True, **kw):
        self.block = block_size
        self.capacity_blocks = capacity_tokens // block_size
        self.sched = build_scheduler(capacity_tokens, block_size,
                                     reserve_full_isl=reserve_full_isl, **kw)
        self.restart = restart
        self.params = SamplingParams(**_kwargs(
            SamplingParams, max_tokens=MAX_MODEL_LEN // 2, ignore_eos=False,
            stop_token_ids=[EOS]))
        self.reqs = {}
        self.seen = set()
        self.last = None  # (SchedulerOutput, sampling req ids) of the previous step
        if sampled_slot:
            self._shim_sampled_slot()

    def _shim_sampled_slot(self):
        mgr = self.sched.kv_cache_manager
        orig = mgr.allocate_slots

        def allocate_slots(request, num_new_tokens, *a, **kw):
            computed = request.num_computed_tokens + kw.get("num_new_computed_tokens", 0)
            if computed + num_new_tokens >= request.num_tokens:
                kw["num_lookahead_tokens"] = kw.get("num_lookahead_tokens", 0) + 1
            return orig(request, num_new_tokens, *a, **kw)

        mgr.allocate_slots = allocate_slots

    def add(self, req_id, prompt_len):
        req = Request(**_kwargs(
            Request, request_id=str(req_id), prompt_token_ids=[7] * prompt_len,
            sampling_params=self.params, pooling_params=None, eos_token_id=EOS,
            arrival_time=float(len(self.reqs))))
        self.reqs[str(req_id)] = req
        self.sched.add_request(req)

    def finish_step(self, finished_ids):
        """Reports the previous step's model output: one token per sampling request, EOS for
        those in `finished_ids` (their last token)."""
        if self.last is None:
            return
        so, sampling = self.last
        self.last = None
        ids = list(so.num_scheduled_tokens)
        tokens = [[EOS if i in finished_ids else 0] if i in sampling else [] for i in ids]
        out = ModelRunnerOutput(**_kwargs(
            ModelRunnerOutput, req_ids=ids, req_id_to_index={i: k for k, i in enumerate(ids)},
            sampled_token_ids=tokens, logprobs=None, prompt_logprobs_dict={},
            pooler_output=[]))
        self.sched.update_from_output(so, out)

    def used_blocks(self):
        return self.capacity_blocks - (self.sched.kv_cache_manager.block_pool
                                       .get_num_free_blocks())

    def schedule(self):
        """One `schedule()`: returns a dict with the step's facts (engine-log fields) and
        the preempted ids in preemption order."""
        running_before = [r.request_id for r in self.sched.running]
        waiting_before = [r.request_id for r in self.sched.waiting]
        before = {i: (r.num_computed_tokens, r.num_tokens) for i, r in self.reqs.items()}
        so = self.sched.schedule()
        preempted_set = set(so.preempted_req_ids or ())
        # Preempt-last pops from the tail of the running list.
        preempted = [i for i in reversed(running_before) if i in preempted_set]
        items, sampling = [], set()
        for rid, n in so.num_scheduled_tokens.items():
            computed, num_tokens = before[rid]
            if rid in preempted_set:
                computed, num_tokens = 0, self.reqs[rid].num_tokens
            items.append((rid, n, computed, num_tokens))
            if computed + n >= num_tokens:
                sampling.add(rid)
        if self.restart:
            for rid in preempted:
                r = self.reqs[rid]
                del r._output_token_ids[:]
                del r._all_token_ids[r.num_prompt_tokens:]
        new = [rid for rid, _, _, _ in items if rid not in self.seen]
        self.seen.update(new)
        self.last = (so, sampling)
        return {
            "items": items,
            "new": new,
            "preempted": preempted,
            "used_blocks": self.used_blocks(),
            "running": running_before,
            "waiting": waiting_before,
        }


def log_header(capacity_tokens, block_size, exact_usage, policy="vllm-v1"):
    import vllm

    return {"k": "engine_header", "format_version": 1, "engine": "vllm", "policy": policy,
            "kv_capacity_tokens": capacity_tokens, "block_size_tokens": block_size,
            "exact_usage": exact_usage, "model": f"vllm {vllm.__version__} Scheduler (CPU)"}


def log_step(step, facts, prompt_of, finished):
    """One `engine_step` record (integer ids; the optional `t` and `waiting` are left out to
    keep the committed fixtures small)."""
    return {
        "k": "engine_step", "step": step,
        "new_reqs": [{"req_id": int(i), "prompt_len": prompt_of[i]} for i in facts["new"]],
        "scheduled": [{"req_id": int(i), "num_scheduled_tokens": n, "num_computed_tokens": c}
                      for i, n, c, _ in facts["items"]],
        "preempted_req_ids": [int(i) for i in facts["preempted"]],
        "finished_req_ids": sorted(int(i) for i in finished),
        "num_used_blocks": facts["used_blocks"],
        "running": [int(i) for i in facts["running"]],
    }


if __name__ == "__main__":
    d = Driver(64, 4)
    print(f"import {IMPORT_S:.1f} s; scheduler built; {d.capacity_blocks} blocks",
          file=sys.stderr)
