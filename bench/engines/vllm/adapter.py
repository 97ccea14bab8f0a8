"""vLLM's real v1 scheduler behind the kvsched protocol (spec/PROTOCOL.md, spec/ENGINES.md).

Modes:
  adapter.py stdio [--no-reserve]            speak the protocol on stdin/stdout (imports vLLM:
                                             tens of seconds; use --handshake-timeout-ms)
  adapter.py server SOCKET                   import vLLM once, then fork one adapter per
                                             connection (a conform battery starts ~70 runs)
  adapter.py connect SOCKET [--no-reserve]   what `kvsched conform` runs: pipes stdin/stdout
                                             to a forked adapter; imports nothing heavy
  adapter.py record INSTANCES OUTDIR [--no-reserve]
                                             steps the real scheduler, unfaked, over recorded
                                             instances and writes spec/TRACE.md engine logs
"""

import json
import os
import socket
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))

from kvsched_client import Scheduler, serve  # noqa: E402


class VllmAdapter(Scheduler):
    """Each `decide`: report the previous step's output to vLLM (EOS for the requests the
    harness says completed), add the arrivals, call `schedule()` and translate it."""

    views = "delta"

    def __init__(self, reserve):
        self.reserve = reserve
        self.name = "vllm-0.33-real" + ("" if reserve else "-no-reserve")
        self.steps = 0

    def hello(self, msg):
        import vllm_sched

        Scheduler.hello(self, msg)
        # KVSCHED_VLLM_NO_SAMPLED_SLOT=1 turns the shim off (to measure what it changes).
        slot = self.with_prefill and not os.environ.get("KVSCHED_VLLM_NO_SAMPLED_SLOT")
        # Under the harness's `keep_generated` preemption vLLM runs unfaked (a preempted
        # request re-prefills prompt plus generated tokens); under `restart`, the papers'
        # rule and the default, the restart shim drops its generated tokens.
        keep = msg["config"].get("preemption", "restart") == "keep_generated"
        self.driver = vllm_sched.Driver(self.capacity, self.block, reserve_full_isl=self.reserve,
                                        sampled_slot=slot, restart=not keep)
        # Tokens a request's prefill covers: its prompt, or after a preemption what vLLM
        # re-prefills (`num_tokens`: prompt plus generated, or the prompt alone under the shim).
        self.target = {}

    def decide(self, msg):
        d = self.driver
        d.finish_step({str(c["id"]) for c in msg["completed"]})
        for a in msg["arrived"]:
            d.add(a["id"], a["prompt"])
        evict, facts = [], None
        # A step that preempted and scheduled nothing is followed at once by the next one in
        # vLLM's engine loop; the plan carries both (no simulated time passes between them).
        for _ in range(3):
            facts = d.schedule()
            self.steps += 1
            evict += [int(i) for i in facts["preempted"]]
            for rid in facts["preempted"]:
                self.target[rid] = d.reqs[rid].num_tokens
            if facts["items"] or not (d.sched.waiting or d.sched.running):
                break
            d.finish_step(set())
        batch = []
        for rid, n, computed, _ in facts["items"]:
            if computed < self.target.get(rid, d.reqs[rid].num_prompt_tokens):
                batch.append({"prefill": int(rid), "tokens": n})
            elif n == 1:
                batch.append({"decode": int(rid)})
            else:
                raise RuntimeError(f"request {rid}: {n} tokens after its prompt")
        plan = {"batch": batch}
        if evict:
            plan["evict"] = evict
        if os.environ.get("KVSCHED_ADAPTER_DEBUG"):
            print(json.dumps({"seq": msg["seq"], "arr": [a["id"] for a in msg["arrived"]],
                              "done": [c["id"] for c in msg["completed"]], "plan": plan,
                              "items": facts["items"]}), file=sys.stderr, flush=True)
        return plan


def _with_no_reserve(args):
    return "--no-reserve" not in args


def run_stdio(args):
    sys.path.insert(0, HERE)
    return serve(VllmAdapter(_with_no_reserve(args)))


def run_server(path):
    sys.path.insert(0, HERE)
    import vllm_sched

    vllm_sched.Driver(64, 4)  # warm every lazy import before forking
    if os.path.exists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(8)
    print(f"adapter server on {path} (vLLM import {vllm_sched.IMPORT_S:.1f} s)",
          file=sys.stderr, flush=True)
    while True:
        conn, _ = srv.accept()
        if os.fork() == 0:
            srv.close()
            rf = conn.makefile("r", encoding="utf-8")
            wf = conn.makefile("w", encoding="utf-8")
            options = json.loads(rf.readline())
            code = 1
            try:
                code = serve(VllmAdapter(options["reserve"]), rf, wf)
            except Exception as e:  # noqa: BLE001 - reported to the harness as an error
                try:
                    wf.write(json.dumps({"type": "error", "code": "adapter",
                                         "message": repr(e)}) + "\n")
                    wf.flush()
                except OSError:
                    pass
                print(f"adapter error: {e!r}", file=sys.stderr, flush=True)
            os._exit(code)
        conn.close()
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass


def run_connect(path, args):
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    conn.sendall((json.dumps({"reserve": _with_no_reserve(args)}) + "\n").encode())

    def upstream():
        fd = sys.stdin.fileno()
        while True:
            data = os.read(fd, 1 << 16)
            if not data:
                break
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)

    threading.Thread(target=upstream, daemon=True).start()
    out = sys.stdout.fileno()
    while True:
        data = conn.recv(1 << 16)
        if not data:
            return 0
        os.write(out, data)


def run_record(instances, outdir, args):
    """Real vLLM semantics (preempted requests keep their tokens), one engine log per
    instance: `instances` holds `{"label", "config", "capacity_tokens", "requests"}` lines."""
    sys.path.insert(0, HERE)
    import vllm_sched

    reserve = _with_no_reserve(args)
    os.makedirs(outdir, exist_ok=True)
    for line in open(instances, encoding="utf-8"):
        inst = json.loads(line)
        mem = inst["config"]["memory"]
        block = mem.get("block_size_tokens", 1)
        cap = inst["capacity_tokens"]
        st = inst["config"]["step_time"]
        d0, d1 = (st.get("d0_s", 0.01), st.get("d1_s_per_token", 0.0))
        d = vllm_sched.Driver(cap, block, reserve_full_isl=reserve, sampled_slot=False,
                              restart=False)
        reqs = sorted(inst["requests"], key=lambda r: (r["arrival"], r["id"]))
        output = {str(r["id"]): r["known"] for r in reqs}
        prompt = {str(r["id"]): r["prompt"] for r in reqs}
        name = inst["label"].replace("/", "-") + ("" if reserve else "-no-reserve")
        t, nxt, step, done, pending = 0.0, 0, 0, set(), None
        lines = [vllm_sched.log_header(cap, block, exact_usage=True)]
        while len(done) < len(reqs) and step < 200_000:
            while nxt < len(reqs) and reqs[nxt]["arrival"] <= t * 1e9 + 1e-3:
                d.add(reqs[nxt]["id"], reqs[nxt]["prompt"])
                nxt += 1
            if not (d.sched.waiting or d.sched.running):
                t = reqs[nxt]["arrival"] / 1e9
                continue
            facts = d.schedule()
            finished = set()
            for rid, n, c, num_tokens in facts["items"]:
                if c + n >= num_tokens and d.reqs[rid].num_output_tokens + 1 >= output[rid]:
                    finished.add(rid)
            lines.append(vllm_sched.log_step(step, facts, prompt, finished))
            d.finish_step(finished)
            done |= finished
            work = sum(c + n for _, n, c, _ in facts["items"])
            t += d0 + d1 * work if facts["items"] else 0.0
            step += 1
        text = "".join(json.dumps(rec, separators=(",", ":")) + "\n" for rec in lines)
        path = os.path.join(outdir, f"{name}.jsonl")
        same = os.path.join(outdir, inst["label"].replace("/", "-") + ".jsonl")
        if not reserve and os.path.exists(same) and open(same, encoding="utf-8").read() == text:
            print(f"{path}: identical to {same}, not written", file=sys.stderr)
            continue
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"{path}: {step} steps, {len(done)}/{len(reqs)} finished", file=sys.stderr)
    return 0


def main(argv):
    if len(argv) >= 1 and argv[0] == "stdio":
        return run_stdio(argv[1:])
    if len(argv) >= 2 and argv[0] == "server":
        return run_server(argv[1])
    if len(argv) >= 2 and argv[0] == "connect":
        return run_connect(argv[1], argv[2:])
    if len(argv) >= 3 and argv[0] == "record":
        return run_record(argv[1], argv[2], argv[3:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
