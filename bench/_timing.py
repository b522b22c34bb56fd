"""Shared timing helper for the benchmarks: median per-call time over repeated rounds."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_us(func: Callable[[], object], *, calls: int = 2000, rounds: int = 25) -> float:
    """Median microseconds per ``func()`` call, over ``rounds`` rounds of ``calls`` calls."""
    for _ in range(calls // 10):  # warm caches and lazy initialisation
        func()
    per_call = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(calls):
            func()
        per_call.append((time.perf_counter_ns() - start) / calls / 1000)
    return statistics.median(per_call)


def table(rows: list[tuple[str, str, str]], title: str) -> str:
    """Format ``(name, value, note)`` rows as an aligned text table."""
    head = ("measure", "median", "note")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(3)]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=False))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) for r in rows]
    return "\n".join(lines)
