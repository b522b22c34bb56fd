"""Shared helpers for the benchmarks: median per-call time over repeated rounds, tables."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence


def median_us(
    func: Callable[[], object],
    *,
    calls: int = 2000,
    rounds: int = 25,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> float:
    """Median microseconds per ``func()`` call, over ``rounds`` rounds of ``calls`` calls.

    ``clock=time.thread_time_ns`` counts only the calling thread's CPU time, leaving out
    what background threads (the store's writer) do meanwhile.
    """
    for _ in range(calls // 10):  # warm caches and lazy initialisation
        func()
    per_call = []
    for _ in range(rounds):
        start = clock()
        for _ in range(calls):
            func()
        per_call.append((clock() - start) / calls / 1000)
    return statistics.median(per_call)


def grid(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Format ``rows`` under the column names ``head`` as an aligned text table."""
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, rows)])


def table(rows: list[tuple[str, str, str]], title: str) -> str:
    """Format ``(name, value, note)`` rows as an aligned text table."""
    return f"{title}\n{grid(('measure', 'median', 'note'), rows)}"
