"""Machine instructions per ``chat.completions.create``, next to peers.

The timed benchmarks (``bench_instrument.py``) measure what users feel, but on a shared
host their µs drift by tens of percent from one hour to the next, and two processes of
the same code differ by several µs. This one counts instead of timing: each
configuration runs under valgrind's callgrind, twice, with W warm-up calls and then with
W + N, and the difference divided by N is the cost of one call on the calling thread. A
configuration's count repeats to within 0.1% between runs, so a change to the recording
path can be judged by it when the clock cannot tell it from the host.

Same calls and fake transport as ``bench_instrument.py``. String hashing is fixed
(``PYTHONHASHSEED=0``) and the cyclic garbage collector is paused for the counted calls,
so that the two runs differ only by the N calls (collections are in the timed figures).
The first count is the calling thread's. dexcost prices and rolls up a call later, off
that thread (see ``packages/dexcost-core/docs/instrumentation.md``), so each child ends by
letting the store's writer settle and write everything it recorded, then leaves without
running exit hooks; the "all threads" column adds the other threads' instructions (the
writer's pricing, roll-up and SQLite inserts), divided by the calls as well. Under
valgrind a call takes about 50 times as long and the writer's one-second clock sees
larger batches than it would, so that column is a guide, not a figure to hold to 0.1%.
Caches are not simulated (valgrind runs the threads on one simulated cache, and the
count is what repeats): a µs figure is instructions and cache misses together, and
dexcost's few instructions per call run cold (see the same document).

Read the rows against "dexcost (init, no patch)" as well as the baseline. Importing more
code shifts the version tags CPython gives to types, and with them which lookups collide
in the interpreter's 4,096-entry method cache. With no dexcost code on the path, that
moved the plain call by 4,000 to 28,000 instructions in four runs, and it moves the
difference between two rows by up to about 15,000 either way.

Needs valgrind (``apt install valgrind``); without it, prints why and exits 0. Takes
about 10 minutes on 2 cores.

    python bench/bench_instructions.py            # 200 counted calls per config
    python bench/bench_instructions.py --n 400    # steadier, twice as long
    python bench/bench_instructions.py --repeat 3 # median of three counts per config
                                                  # (a rare count is off by ~200k)
    python bench/bench_instructions.py --http     # HTTP capture instead (bench_http.py's
                                                  # in-process clients), 1000 requests
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import gc
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bench_instrument as timed
from _timing import grid

PEERS = ["OpenInference", "OpenLLMetry"]
CONFIGS = [
    "openai (baseline)",
    "dexcost (init, no patch)",
    "dexcost (patched, outer layer owns)",
    "dexcost",
    *PEERS,
]
WARMUP = 150


HTTP_CASES = [
    ("httpx", "host not in the catalog", "GET", "http://cdn.example.org/a"),
    ("httpx", "per-request entry", "GET", "http://serpapi.com/search.json"),
    ("httpx", "priced from the body", "POST", "http://api.exa.ai/search"),
    ("requests", "host not in the catalog", "GET", "http://cdn.example.org/a"),
    ("requests", "per-request entry", "GET", "http://serpapi.com/search"),
    ("requests", "priced from the body", "POST", "http://api.exa.ai/search"),
]


def http_child(case: int, capture: bool, calls: int) -> None:
    """One of ``HTTP_CASES`` through its real client on an in-process transport, as
    ``bench_http.py`` sends it, in an open task, captured or not."""
    import bench_http
    import httpx
    import requests

    import dexcost
    from dexcost.adapters.http import track_http

    library, _, method, url = HTTP_CASES[case]
    db = Path(tempfile.mkdtemp(prefix="dexcost-bench-")) / "http.db"
    dexcost.init(buffer_path=str(db), auto_instrument=[], track_http=False)
    dexcost.task("bench").__enter__()
    if capture:
        track_http(libraries=[library])
    if library == "httpx":
        client = httpx.Client(transport=httpx.MockTransport(bench_http._mock))
        send = client.request
    else:
        session = requests.Session()
        session.mount("http://", bench_http.CannedAdapter())
        send = session.request
    _run(functools.partial(send, method, url), calls)


def child(name: str, calls: int) -> None:
    """Set up ``name`` (as the timed bench does), warm up, then make ``calls`` calls."""
    try:
        timed.setup(name)
    except ImportError as exc:
        print(f"not installed ({exc.name})", file=sys.stderr)
        raise SystemExit(3) from None
    _run(timed._call(timed._client(), False), calls)


def _run(call: Callable[[], Any], calls: int) -> None:
    """Warm up, make ``calls`` counted calls with the cyclic GC paused, then have
    dexcost's writer settle and write what was recorded (the calling thread only waits)
    and exit at once: exit hooks would do that work on the calling thread."""
    for _ in range(WARMUP):
        call()
    gc.collect()
    gc.disable()
    for _ in range(calls):
        call()
    if "dexcost" in sys.modules:
        from dexcost import get_tracker

        tracker = get_tracker()
        if tracker is not None:
            tracker.store.flush()
    sys.stdout.flush()
    os._exit(0)


def _instructions(path: Path) -> int:
    """The instruction total of one thread's callgrind file."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError(f"no summary in {path}")


def _count(child_args: list[str], calls: int, out: Path) -> tuple[int, int] | str:
    """Instructions of one child run under callgrind, main thread and all threads, or
    why it failed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--separate-threads=yes",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            *child_args,
            "--n",
            str(calls),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": timed._pythonpath()},
    )
    if done.returncode == 3:
        return done.stderr.strip().splitlines()[-1]
    if done.returncode != 0:
        return f"failed (exit {done.returncode}): {done.stderr.strip()[-300:]}"
    main = _instructions(out.with_name(out.name + "-01"))
    return main, sum(_instructions(p) for p in out.parent.glob(out.name + "-*"))


Counts = tuple[float, float]  # per call: calling thread, all threads


def measure(
    configs: dict[str, list[str]], n: int, jobs: int, repeat: int = 1
) -> dict[str, Counts | str]:
    """Per-call instructions of every config (its name: its child's arguments), on the
    calling thread and on all threads: (W + n calls - W calls) / n, the median over
    ``repeat`` pairs of runs."""
    work = Path(tempfile.mkdtemp(prefix="dexcost-bench-instr-"))
    runs = [(name, calls, r) for name in configs for calls in (0, n) for r in range(repeat)]
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        futures = {
            run: pool.submit(_count, configs[run[0]], run[1], work / f"{i}" / "callgrind.out")
            for i, run in enumerate(runs)
        }
        done = {run: f.result() for run, f in futures.items()}
    shutil.rmtree(work, ignore_errors=True)
    result: dict[str, Counts | str] = {}
    for name in configs:
        main: list[float] = []
        every: list[float] = []
        for r in range(repeat):
            short, full = done[(name, 0, r)], done[(name, n, r)]
            if isinstance(short, str) or isinstance(full, str):
                result[name] = short if isinstance(short, str) else str(full)
                break
            main.append((full[0] - short[0]) / n)
            every.append((full[1] - short[1]) / n)
        else:
            result[name] = (statistics.median(main), statistics.median(every))
    return result


def table(result: dict[str, Counts | str]) -> list[tuple[str, ...]]:
    base, init, ours = (result[c] for c in (CONFIGS[0], CONFIGS[1], "dexcost"))
    if isinstance(base, str):
        raise SystemExit(f"bench_instructions: the baseline did not run: {base}")
    rows: list[tuple[str, ...]] = []
    for name in CONFIGS:
        counts = result[name]
        if isinstance(counts, str):
            rows.append((name, "-", "-", "-", "-", "-", "-", counts))
            continue
        ir, every = counts
        if name == CONFIGS[0]:
            rows.append((name, f"{ir:,.0f}", "-", "-", "-", "-", "-", ""))
            continue
        extra = ir - base[0]
        times = (
            f"{extra / (ours[0] - base[0]):.1f}"
            if not isinstance(ours, str) and ours[0] > base[0] and name in PEERS
            else "-"
        )
        rows.append(
            (
                name,
                f"{ir:,.0f}",
                f"{extra:+,.0f}",
                "-" if isinstance(init, str) else f"{ir - init[0]:+,.0f}",
                f"×{ir / base[0]:.3f}",
                times,
                f"{every - base[1]:+,.0f}",
                "",
            )
        )
    return rows


def http_table(result: dict[str, Counts | str]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for library, label, _, _ in HTTP_CASES:
        off, on = result[f"{library}, {label}, off"], result[f"{library}, {label}, on"]
        if isinstance(off, str) or isinstance(on, str):
            rows.append(
                (
                    f"{library}, {label}",
                    "-",
                    "-",
                    "-",
                    "-",
                    str(off if isinstance(off, str) else on),
                )
            )
            continue
        rows.append(
            (
                f"{library}, {label}",
                f"{off[0]:,.0f}",
                f"{on[0]:,.0f}",
                f"{on[0] - off[0]:+,.0f}",
                f"{on[1] - off[1]:+,.0f}",
                "",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--n", type=int, help="counted calls per config (200; --http 1000)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--repeat", type=int, default=1, help="pairs of runs per config, median taken (1)"
    )
    parser.add_argument("--http", action="store_true", help="HTTP capture per request")
    parser.add_argument("--child")
    parser.add_argument("--http-child", type=int)
    parser.add_argument("--capture", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.n)
        return
    if args.http_child is not None:
        http_child(args.http_child, args.capture, args.n)
        return
    if shutil.which("valgrind") is None:
        print("bench_instructions: skipped, valgrind is not installed (apt install valgrind)")
        return
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if args.http:
        n = args.n or 1000
        configs = {
            f"{library}, {label}, {'on' if on else 'off'}": ["--http-child", str(i)]
            + (["--capture"] if on else [])
            for i, (library, label, _, _) in enumerate(HTTP_CASES)
            for on in (False, True)
        }
        print(
            "Instructions per request on the calling thread, HTTP capture off and on "
            f"(CPython {version}, callgrind, {n} counted requests after {WARMUP} warm-up)"
        )
        http_head = ("request", "capture off", "capture on", "added", "added, all threads", "")
        print(grid(http_head, http_table(measure(configs, n, args.jobs, args.repeat))))
        return
    n = args.n or 200
    configs = {name: ["--child", name] for name in CONFIGS}
    rows = table(measure(configs, n, args.jobs, args.repeat))
    head = (
        "config",
        "instr/call",
        "Δ baseline",
        "Δ init",
        "ratio",
        "Δ / dexcost's Δ",
        "Δ baseline, all threads",
        "",
    )
    print(
        "Instructions per openai chat.completions.create on the calling thread "
        f"(CPython {version}, callgrind, {n} counted calls after {WARMUP} warm-up calls)"
    )
    print(grid(head, rows))


if __name__ == "__main__":
    main()
