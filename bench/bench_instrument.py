"""Overhead of provider instrumentation per ``chat.completions.create``, next to peers.

Each configuration runs in fresh subprocesses, three by default (patches never leak
between them): the plain openai SDK (baseline), the same again in other processes (the
noise floor), dexcost initialised without patching (a
control for what merely running dexcost costs), dexcost's patch on calls an outer
layer owns (the wrapper alone), dexcost instrumenting openai, and, when installed,
OpenInference's and OpenLLMetry's OpenAI instrumentors exporting to in-memory span
exporters. Every call goes to the same fake transport (``httpx.MockTransport`` with a
canned gpt-4o-mini answer: JSON, or 52 SSE chunks ending in a usage chunk), so no
request leaves the process.

The processes take turns, one timed block each per round, so all of them meet the same
slow and fast phases of the host. The order is shuffled afresh every round (from a
fixed seed). In a fixed cycle each process always followed the same neighbour (the
baseline's, the heaviest peer), and in two runs the baseline measured 20-26 µs per
call slower than the noise-floor processes running the same code. Process k of every
configuration gets the same string-hash seed (``PYTHONHASHSEED=k+1``): the hash decides
where attribute lookups land in the interpreter's type cache and the order of sets, so
processes of the same code agree better when they share it. In each round a
configuration's figure is the median over its processes of their block medians; its
overhead is the median over the rounds of (that - the baseline's figure in the same
round), in wall time and in CPU time of the calling thread (background threads, such
as dexcost's store writer, excluded). Two processes running the same code can still
differ by several µs per call (where the interpreter's objects landed in memory), so
the range of the per-process overheads is printed too.
A last table splits dexcost's time, measured call by call in one process: its
instrumentation layer, the core's recording, the store writer.
Target for dexcost: at most 25 µs per call.

    python bench/bench_instrument.py              # 2000 timed calls (500 streamed)
    python bench/bench_instrument.py --n 400      # quicker, noisier
    python bench/bench_instrument.py --procs 5    # more processes per config
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _timing import grid

ROUNDS = 40
PROMPT, COMPLETION, CACHED = 412, 51, 256
MESSAGES = [
    {"role": "system", "content": "You are a support agent for an online shop."},
    {"role": "user", "content": "My order #4411 arrived damaged. What can I do?"},
]
WORDS = [f"word{i} " for i in range(49)]
CONFIGS = [
    "openai (baseline)",
    "openai (again: noise floor)",
    "dexcost (init, no patch)",
    "dexcost (patched, outer layer owns)",
    "dexcost",
    "OpenInference",
    "OpenLLMetry",
]


# -- the canned traffic ------------------------------------------------------------------


def _usage() -> dict[str, Any]:
    return {
        "prompt_tokens": PROMPT,
        "completion_tokens": COMPLETION,
        "total_tokens": PROMPT + COMPLETION,
        "prompt_tokens_details": {"cached_tokens": CACHED, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _completion() -> bytes:
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1741570283,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(WORDS), "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(),
        "service_tier": "default",
        "system_fingerprint": "fp_bench",
    }
    return json.dumps(body).encode()


def _sse() -> bytes:
    base = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1741570283,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_bench",
    }
    chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    chunks += [{**base, "choices": [{"index": 0, "delta": {"content": w}}]} for w in WORDS]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    chunks.append({**base, "choices": [], "usage": _usage()})
    text = "".join(f"data: {json.dumps({'usage': None, **c})}\n\n" for c in chunks)
    return (text + "data: [DONE]\n\n").encode()


def _client() -> Any:
    import httpx
    import openai

    plain, sse = _completion(), _sse()

    def answer(request: httpx.Request) -> httpx.Response:
        if b'"stream":true' in request.content.replace(b" ", b""):
            return httpx.Response(200, content=sse, headers={"content-type": "text/event-stream"})
        return httpx.Response(200, content=plain, headers={"content-type": "application/json"})

    http = httpx.Client(transport=httpx.MockTransport(answer))
    return openai.OpenAI(api_key="sk-bench", http_client=http, max_retries=0)


def _call(client: Any, stream: bool) -> Callable[[], Any]:
    completions = client.chat.completions  # the method is looked up per call: patches apply
    if not stream:
        return lambda: completions.create(model="gpt-4o-mini", messages=MESSAGES)

    def streamed() -> None:
        for _ in completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        ):
            pass

    return streamed


# -- the tools (each set up in its own child process) ------------------------------------


def _otel(instrumentor_cls: Any) -> Callable[[], int]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor_cls().instrument(tracer_provider=provider)
    return lambda: len(exporter.get_finished_spans())


def setup(name: str) -> Callable[[], int]:
    """Set the process up for ``name``; returns how to count what it recorded."""
    if name.startswith("openai"):
        return lambda: 0
    if name.startswith("dexcost"):
        import dexcost

        db = Path(tempfile.mkdtemp(prefix="dexcost-bench-")) / "instrument.db"
        patch = [] if name == "dexcost (init, no patch)" else ["openai"]
        dexcost.init(buffer_path=str(db), auto_instrument=patch, track_http=False)
        dexcost.task("bench").__enter__()  # every timed call runs inside one open task
        if name == "dexcost (patched, outer layer owns)":
            # The cost of the patch alone: another billing layer owns every call.
            from dexcost._scope import billing_scope

            billing_scope("outer").__enter__()

        def recorded() -> int:
            dexcost.flush()
            query = (
                "SELECT count(*) FROM events WHERE event_type = 'llm_call' AND cached_tokens = ?"
            )
            with sqlite3.connect(db) as con:
                (count,) = con.execute(query, (CACHED,)).fetchone()
            return int(count)

        return recorded
    if name == "OpenInference":
        from openinference.instrumentation.openai import OpenAIInstrumentor

        return _otel(OpenAIInstrumentor)
    if name == "OpenLLMetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as Traceloop

        return _otel(Traceloop)
    raise ValueError(name)


def _timed_block(call: Callable[[], Any], n: int) -> tuple[float, float]:
    wall, cpu = [], []
    for _ in range(n):
        start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
        call()
        cpu.append(time.thread_time_ns() - start_cpu)
        wall.append(time.perf_counter_ns() - start)
    return statistics.median(wall) / 1000, statistics.median(cpu) / 1000


def child(name: str, stream: bool, block: int, warmup: int) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError("bench_instrument: no network")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    try:
        recorded = setup(name)
    except ImportError as exc:
        print(json.dumps({"error": f"not installed ({exc.name})"}), flush=True)
        return
    call = _call(_client(), stream)
    for _ in range(warmup):
        call()
    before, calls = recorded(), 0
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.strip() != "block":
            break
        wall, cpu = _timed_block(call, block)
        calls += block
        print(json.dumps({"wall": wall, "cpu": cpu}), flush=True)
    print(json.dumps({"recorded": recorded() - before, "calls": calls}), flush=True)


def breakdown(stream: bool, n: int) -> list[tuple[str, str]]:
    """Where dexcost's time goes, in this process: CPU µs of the calling thread per call,
    paired call by call against the same call owned by an outer layer (patch inert)."""
    import dexcost
    from dexcost._scope import billing_scope
    from dexcost.instrument import _record

    db = Path(tempfile.mkdtemp(prefix="dexcost-bench-")) / "breakdown.db"
    dexcost.init(buffer_path=str(db), auto_instrument=["openai"], track_http=False)
    tracker = dexcost.get_tracker()
    assert tracker is not None
    dexcost.task("bench").__enter__()
    call = _call(_client(), stream)

    def owned() -> None:
        with billing_scope("outer"):
            call()

    def paired() -> float:
        for _ in range(max(20, n // 10)):
            owned()
            call()
        deltas = []
        for i in range(n):  # alternate which goes first, so order effects cancel
            first, second = (owned, call) if i % 2 else (call, owned)
            start = time.thread_time_ns()
            first()
            middle = time.thread_time_ns()
            second()
            a, b = middle - start, time.thread_time_ns() - middle
            deltas.append(b - a if first is owned else a - b)
        return statistics.median(deltas) / 1000

    send = _record._send  # where every provider module hands a call to the tracker
    put_event = tracker.store.put_event
    rows = []
    _record._send = lambda *a, **k: None
    rows.append(("instrumentation layer (recording stubbed out)", f"{paired():+.1f}"))
    _record._send = send
    # Dropped, not kept (neither queued for the writer nor left pending for settling): a
    # growing list would cost fresh memory (page faults) per call.
    defer_one = tracker._defer_one
    tracker._defer_one = lambda record: None
    tracker.store.put_event = lambda record: None  # type: ignore[method-assign]
    rows.append(("+ core recording (records dropped, no writer)", f"{paired():+.1f}"))
    tracker._defer_one = defer_one
    tracker.store.put_event = put_event  # type: ignore[method-assign]
    rows.append(("+ store writer (as shipped)", f"{paired():+.1f}"))
    return rows


# -- the parent ---------------------------------------------------------------------------


class Child:
    def __init__(self, name: str, stream: bool, block: int, warmup: int, seed: str) -> None:
        self.name = name
        env = {**os.environ, "PYTHONPATH": _pythonpath(), "PYTHONHASHSEED": seed}
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--child", name, "--block", str(block)]
            + ["--warmup", str(warmup)]
            + (["--stream"] if stream else []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.error: str | None = self._read().get("error")
        self.blocks: list[dict[str, float]] = []

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            return {"error": "child failed (see stderr)"}
        result: dict[str, Any] = json.loads(line)
        return result

    def block(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("block\n")
        self.proc.stdin.flush()
        self.blocks.append(self._read())

    def finish(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("finish\n")
        self.proc.stdin.flush()
        result = self._read()
        self.proc.wait(timeout=60)
        return result


def _pythonpath() -> str:
    src = Path(__file__).resolve().parents[1] / "packages" / "dexcost-core" / "src"
    return os.pathsep.join(p for p in (str(src), os.environ.get("PYTHONPATH", "")) if p)


def run_group(stream: bool, n: int, procs: int) -> list[tuple[str, ...]]:
    """Each config in ``procs`` processes; all of them take turns, block by block.

    Two processes running the same code differ by up to a few tens of µs per call (where
    the interpreter's objects landed in memory), so one process per config can put a
    config's figure that far off. A config's figure for a round is the median over its
    processes; its overhead is the median over the rounds of (that - the baseline's).
    The last column gives the range of the per-process overheads.
    """
    block = max(1, n // ROUNDS)
    warmup = max(20, n // 10)
    children = [
        Child(name, stream, block, warmup, seed=str(k + 1))
        for k in range(procs)
        for name in CONFIGS
    ]
    live = [c for c in children if c.error is None]
    order = random.Random(2026)
    for _ in range(ROUNDS):
        turn = list(live)
        order.shuffle(turn)  # no process always runs first, or right after another
        for c in turn:
            c.block()
    finished = {id(c): c.finish() for c in live}

    def per_round(group: list[Child], key: str) -> list[float]:
        return [statistics.median(c.blocks[r][key] for c in group) for r in range(ROUNDS)]

    base = [c for c in live if c.name == CONFIGS[0]]
    base_wall, base_cpu = per_round(base, "wall"), per_round(base, "cpu")
    rows: list[tuple[str, ...]] = []
    for name in CONFIGS:
        group = [c for c in live if c.name == name]
        if not group:
            error = next(c.error for c in children if c.name == name)
            rows.append((name, "-", "-", "-", "-", "-", str(error)))
            continue
        wall, cpu = per_round(group, "wall"), per_round(group, "cpu")
        if name == CONFIGS[0]:
            rows.append((name, f"{statistics.median(wall):.0f}", "-", "-", "-", "-", "-"))
            continue
        overhead = statistics.median(w - b for w, b in zip(wall, base_wall, strict=True))
        caller = statistics.median(w - b for w, b in zip(cpu, base_cpu, strict=True))
        ratio = statistics.median(w / b for w, b in zip(wall, base_wall, strict=True))
        each = sorted(
            statistics.median(blk["wall"] - b for blk, b in zip(c.blocks, base_wall, strict=True))
            for c in group
        )
        recorded = sum(finished[id(c)]["recorded"] for c in group)
        calls = sum(finished[id(c)]["calls"] for c in group)
        rows.append(
            (
                name,
                f"{statistics.median(wall):.0f}",
                f"{overhead:+.1f}",
                f"{caller:+.1f}",
                f"×{ratio:.3f}",
                f"{each[0]:+.0f} to {each[-1]:+.0f}",
                f"{recorded}/{calls} calls",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="timed calls per configuration")
    parser.add_argument("--stream-n", type=int, default=0, help="streamed calls (n/4)")
    parser.add_argument("--procs", type=int, default=3, help="processes per config")
    parser.add_argument("--child")
    parser.add_argument("--block", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--breakdown", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.breakdown:
        print(json.dumps(breakdown(args.stream, args.n)))
        return
    if args.child:
        child(args.child, args.stream, args.block, args.warmup)
        return
    head = (
        "config",
        "median µs",
        "overhead µs",
        "caller CPU µs",
        "ratio",
        "per process",
        "recorded",
    )
    print(
        f"Instrumentation overhead per openai chat.completions.create "
        f"(CPython {sys.version_info[0]}.{sys.version_info[1]}, {os.cpu_count()} CPUs; "
        f"{args.procs} processes per config, {ROUNDS} interleaved rounds; "
        "target for dexcost ≤ 25 µs)"
    )
    for title, stream, n in (
        ("non-streaming", False, args.n),
        (f"streaming, {len(WORDS) + 3} chunks", True, args.stream_n or args.n // 4),
    ):
        rows = run_group(stream, n, args.procs)
        print(f"\n{title} ({n} calls)")
        print(grid(head, rows))
        parts = subprocess.run(
            [sys.executable, __file__, "--breakdown", "--n", str(n)]
            + (["--stream"] if stream else []),
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": _pythonpath()},
        )
        print("dexcost, where the time goes (calling thread's CPU µs per call, in one process):")
        for label, value in json.loads(parts.stdout):
            print(f"  {label:<48} {value}")


if __name__ == "__main__":
    main()
