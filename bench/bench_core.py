"""Hot path: µs per recorded LLM call inside a task, against an empty function call.

Target: at most 15 µs per recorded call. Two clocks are reported for each figure:

- caller CPU: the recording thread's own CPU time (``time.thread_time_ns``), i.e. what
  recording adds to the code path of the user's call;
- wall: elapsed time in a tight loop, which also carries the store's writer thread
  (events are queued, then written in batches on another thread that shares the GIL).
  In an application the writer mostly runs while the user's thread waits on the network.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _timing import median_us, table

import dexcost


def empty(*args: object, **kwargs: object) -> None:
    return None


def both(func: Callable[[], object]) -> tuple[float, float]:
    return median_us(func, clock=time.thread_time_ns), median_us(func)


def main() -> None:
    db = Path(tempfile.mkdtemp(prefix="dexcost-bench-")) / "bench.db"
    dexcost.init(buffer_path=str(db), auto_instrument=[], track_http=False)
    dexcost.set_context(customer_id="acme", project_id="bench")
    base = both(lambda: empty("openai", "gpt-4o", 1200, 300, cached_tokens=1024))
    with dexcost.task("bench") as t:
        llm = both(lambda: t.record_llm_call("openai", "gpt-4o", 1200, 300, cached_tokens=1024))
        given = both(lambda: t.record_llm_call("openai", "gpt-4o", 1200, 300, cost_usd="0.01"))
        cost = both(lambda: t.record_cost("pinecone", "0.00016"))
        with dexcost.task("child") as child:
            nested = both(lambda: child.record_llm_call("openai", "gpt-4o-mini", 500, 50))
    session = both(lambda: dexcost.record_llm_call("openai", "gpt-4o", 1200, 300))
    dexcost.close()

    def row(name: str, value: tuple[float, float], note: str) -> tuple[str, str, str]:
        cpu, wall = value
        return (name, f"{cpu:.2f} µs / {wall:.2f} µs", note)

    rows = [
        row("empty function call (baseline)", base, "same arguments"),
        row(
            "record_llm_call, priced",
            llm,
            f"{llm[0] / base[0]:.0f}× baseline (caller CPU); target ≤ 15 µs",
        ),
        row("record_llm_call, cost given", given, "no pricing lookup"),
        row("record_llm_call, nested task", nested, "rolls up into 2 tasks"),
        row("record_llm_call, session task", session, "outside any task"),
        row("record_cost", cost, "external cost"),
    ]
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    print(table(rows, f"Recording hot path, caller CPU / wall (CPython {version})"))


if __name__ == "__main__":
    main()
