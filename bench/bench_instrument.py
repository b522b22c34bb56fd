"""Overhead of provider instrumentation per ``chat.completions.create``, next to peers.

Each configuration runs in fresh subprocesses, three by default (patches never leak
between them): the plain openai SDK (baseline), the same again in other processes (the
noise floor), an empty wrapt wrapper on the same method (what any wrapt patch costs),
dexcost initialised without patching (what merely running dexcost costs), dexcost's
patch on calls an outer layer owns (the wrapper alone), dexcost instrumenting openai,
and, when installed, OpenInference's and OpenLLMetry's OpenAI instrumentors exporting
to in-memory span exporters. Every call goes to the same fake transport
(``httpx.MockTransport`` with a canned gpt-4o-mini answer: JSON, or 52 SSE chunks
ending in a usage chunk), so no request leaves the process.

The processes take turns, one turn each per round, so all of them meet the same slow
and fast phases of the host; the order is shuffled afresh every round (from a fixed
seed). Process k of every configuration gets the same string-hash seed
(``PYTHONHASHSEED=k+1``): the hash decides where attribute lookups land in the
interpreter's type cache and the order of sets. In each turn a process times its calls
with its tool on and, as many, with it off (each tool's wrappers on openai swapped
for what they wrap, and back), in the order on, off, off, on or the reverse. Two
figures come out:

- vs baseline: a config's median with its tool on, against the baseline processes'.
  Two processes of the same code differ by up to a few tens of µs per call (where the
  interpreter's objects landed in memory), which this figure carries.
- on - off: the same process with its tool on, against itself with it off, which
  takes that difference out. The plain configs' switch does nothing, so their
  on - off is this figure's noise.

Both are medians over the rounds of the per-round median over a config's processes;
"per process" gives the range of each process's own median. A last table splits
dexcost's time, measured call by call in one process: its instrumentation layer, the
core's recording, the store writer. Target for dexcost: at most 25 µs per call.

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
import types
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
    "wrapt (an empty wrapper)",
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


def _nothing() -> None:
    pass


class Tool:
    """One process's tool: how to count what it recorded and how to switch its
    instrumentation off and on again (by default a switch that does nothing)."""

    def __init__(
        self,
        recorded: Callable[[], int],
        on: Callable[[], None] = _nothing,
        off: Callable[[], None] = _nothing,
    ) -> None:
        self.recorded, self.on, self.off = recorded, on, off


def _switch() -> tuple[Callable[[], None], Callable[[], None]]:
    """Switches the process's tool off and on again: every wrapper on openai's modules
    and on the classes in them (a wrapt proxy, or a function dexcost put in place of a
    plain one) is swapped for what it wraps, and back.

    The same for every tool. An OpenTelemetry instrumentor's ``uninstrument()`` then
    ``instrument()`` can leave wrappers behind (OpenLLMetry's then records each call
    many times); dexcost's would build its wrappers afresh each time."""
    import wrapt

    proxy = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)  # wrapt 2 / wrapt 1
    owners: dict[int, Any] = {}
    for module_name, module in list(sys.modules.items()):
        if module is not None and module_name.split(".")[0] == "openai":
            owners[id(module)] = module
            owners.update((id(v), v) for v in vars(module).values() if isinstance(v, type))
    found = [
        (owner, name, value, value.__wrapped__)
        for owner in owners.values()
        for name, value in list(vars(owner).items())
        if isinstance(value, proxy)
        or (isinstance(value, types.FunctionType) and "_self_dexcost_patch" in value.__dict__)
    ]

    def put(index: int) -> None:
        for owner, name, *values in found:
            setattr(owner, name, values[index])

    return (lambda: put(0)), (lambda: put(1))


def _otel(instrumentor_cls: Any) -> Tool:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor_cls().instrument(tracer_provider=provider)
    on, off = _switch()
    return Tool(lambda: len(exporter.get_finished_spans()), on, off)


def setup(name: str) -> Tool:
    """Set the process up for ``name``, instrumentation on."""
    if name.startswith("openai"):
        return Tool(lambda: 0)
    if name == "wrapt (an empty wrapper)":
        # What any wrapt patch costs: a wrapper that only calls through, on the same method.
        import wrapt
        from openai.resources.chat.completions import Completions

        def through(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            return wrapped(*args, **kwargs)

        Completions.create = wrapt.FunctionWrapper(vars(Completions)["create"], through)  # type: ignore[method-assign]
        return Tool(lambda: 0, *_switch())
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

        if name == "dexcost (init, no patch)":
            return Tool(recorded)
        import openai  # noqa: F401  (dexcost's patches go on as openai is imported)

        return Tool(recorded, *_switch())
    if name == "OpenInference":
        from openinference.instrumentation.openai import OpenAIInstrumentor

        return _otel(OpenAIInstrumentor)
    if name == "OpenLLMetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as Traceloop

        return _otel(Traceloop)
    raise ValueError(name)


def _timed(call: Callable[[], Any], n: int, wall: list[int], cpu: list[int]) -> None:
    for _ in range(n):
        start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
        call()
        cpu.append(time.thread_time_ns() - start_cpu)
        wall.append(time.perf_counter_ns() - start)


def child(name: str, stream: bool, block: int, warmup: int, settle: int) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError("bench_instrument: no network")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    try:
        tool = setup(name)
    except ImportError as exc:
        print(json.dumps({"error": f"not installed ({exc.name})"}), flush=True)
        return
    call = _call(_client(), stream)
    for _ in range(warmup):
        call()
    before, calls, state = tool.recorded(), 0, "on"
    half = max(1, block // 2)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if words[:1] != ["turn"]:
            break
        # A turn times ``block`` calls with the tool on and as many with it off, in four
        # runs: on, off, off, on (or off, on, on, off, as the parent says), so that a
        # drift through the turn weighs on both alike. The calls after a pause run cold
        # and slow, so the turn starts with ``settle`` untimed calls; after each switch
        # a few more (a switch resets the SDK class's attribute cache).
        first, second = ("on", "off") if words[1] == "on" else ("off", "on")
        timed: dict[str, tuple[list[int], list[int]]] = {"on": ([], []), "off": ([], [])}
        untimed = settle
        for want in (first, second, second, first):
            if want != state:
                (tool.on if want == "on" else tool.off)()
                state, untimed = want, max(2, settle // 10)
            for _ in range(untimed):
                call()
            _timed(call, half, *timed[state])
            if state == "on":
                calls += untimed + half
            untimed = 0
        result = {
            key: {"wall": statistics.median(w) / 1000, "cpu": statistics.median(c) / 1000}
            for key, (w, c) in timed.items()
        }
        print(json.dumps(result), flush=True)
    print(json.dumps({"recorded": tool.recorded() - before, "calls": calls}), flush=True)


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
    def __init__(
        self, name: str, stream: bool, block: int, warmup: int, settle: int, index: int
    ) -> None:
        self.name, self.index = name, index
        # Process k of every config gets the same string-hash seed.
        env = {**os.environ, "PYTHONPATH": _pythonpath(), "PYTHONHASHSEED": str(index + 1)}
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--child", name, "--block", str(block)]
            + ["--warmup", str(warmup), "--settle", str(settle)]
            + (["--stream"] if stream else []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.error: str | None = self._read().get("error")
        self.turns: list[dict[str, dict[str, float]]] = []

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            return {"error": "child failed (see stderr)"}
        result: dict[str, Any] = json.loads(line)
        return result

    def turn(self, first: str) -> None:
        """One turn, starting with the tool ``first`` ("on" or "off")."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"turn {first}\n")
        self.proc.stdin.flush()
        self.turns.append(self._read())

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
    """Each config in ``procs`` processes; all of them take turns, one turn per round.

    Two processes running the same code differ by up to a few tens of µs per call (where
    the interpreter's objects landed in memory), so one process per config can put a
    config's figure that far off. A config's figure for a round is the median over its
    processes (with the tool on); its overhead is the median over the rounds of (that -
    the baseline's). In the same turns each process also times its calls with its tool
    switched off, which gives, per round, the median over a config's processes of (on -
    off) in the same process: no difference of memory layout between processes enters
    it. For the plain configs the switch does nothing, so their (on - off) is the noise
    of that figure. Which state a turn starts in alternates by round and by process. The
    "per process" columns give the range of each process's median.
    """
    block = max(1, n // ROUNDS)
    warmup = max(20, n // 10)
    settle = block
    children = [
        Child(name, stream, block, warmup, settle, index=k)
        for k in range(procs)
        for name in CONFIGS
    ]
    live = [c for c in children if c.error is None]
    order = random.Random(2026)
    for r in range(ROUNDS):
        turn = list(live)
        order.shuffle(turn)  # no process always runs first, or right after another
        for c in turn:
            c.turn("on" if (r + c.index) % 2 == 0 else "off")
    finished = {id(c): c.finish() for c in live}

    def per_round(group: list[Child], key: str) -> list[float]:
        return [statistics.median(c.turns[r]["on"][key] for c in group) for r in range(ROUNDS)]

    def own(c: Child, key: str) -> list[float]:
        """The child's (on - off) per round."""
        return [t["on"][key] - t["off"][key] for t in c.turns]

    def over_rounds(per_child: list[list[float]]) -> float:
        """The median over the rounds of the median over the children."""
        rounds = zip(*per_child, strict=True)
        return statistics.median(statistics.median(values) for values in rounds)

    def spread(values: list[float]) -> str:
        return f"{min(values):+.0f} to {max(values):+.0f}"

    base = [c for c in live if c.name == CONFIGS[0]]
    base_wall = per_round(base, "wall")
    rows: list[tuple[str, ...]] = []
    for name in CONFIGS:
        group = [c for c in live if c.name == name]
        if not group:
            error = next(c.error for c in children if c.name == name)
            rows.append((name, "-", "-", "-", "-", "-", "-", "-", str(error)))
            continue
        wall = per_round(group, "wall")
        own_wall = [own(c, "wall") for c in group]
        own_cpu = [own(c, "cpu") for c in group]
        same = (
            f"{over_rounds(own_wall):+.1f}",
            f"{over_rounds(own_cpu):+.1f}",
            spread([statistics.median(values) for values in own_wall]),
        )
        recorded = sum(finished[id(c)]["recorded"] for c in group)
        calls = sum(finished[id(c)]["calls"] for c in group)
        count = f"{recorded}/{calls} calls"
        if name == CONFIGS[0]:
            rows.append((name, f"{statistics.median(wall):.0f}", "-", "-", "-", *same, count))
            continue
        overhead = statistics.median(w - b for w, b in zip(wall, base_wall, strict=True))
        ratio = statistics.median(w / b for w, b in zip(wall, base_wall, strict=True))
        each = [
            statistics.median(t["on"]["wall"] - b for t, b in zip(c.turns, base_wall, strict=True))
            for c in group
        ]
        rows.append(
            (
                name,
                f"{statistics.median(wall):.0f}",
                f"{overhead:+.1f}",
                f"×{ratio:.3f}",
                spread(each),
                *same,
                count,
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
    parser.add_argument("--settle", type=int, default=25)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--breakdown", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.breakdown:
        print(json.dumps(breakdown(args.stream, args.n)))
        return
    if args.child:
        child(args.child, args.stream, args.block, args.warmup, args.settle)
        return
    head = (
        "config",
        "median µs",
        "vs baseline µs",
        "ratio",
        "per process",
        "on - off µs",
        "its caller CPU µs",
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
