"""Hot path: µs per recorded LLM call inside a task, against an empty function call.

Target: at most 15 µs per recorded call. The store's writer thread runs as it would in
production (events are queued, then written in batches on another thread).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _timing import median_us, table

import dexcost


def empty(*args: object, **kwargs: object) -> None:
    return None


def main() -> None:
    db = Path(tempfile.mkdtemp(prefix="dexcost-bench-")) / "bench.db"
    dexcost.init(buffer_path=str(db), auto_instrument=[], track_http=False)
    dexcost.set_context(customer_id="acme", project_id="bench")
    baseline = median_us(lambda: empty("openai", "gpt-4o", 1200, 300, cached_tokens=1024))
    with dexcost.task("bench") as t:
        llm = median_us(
            lambda: t.record_llm_call("openai", "gpt-4o", 1200, 300, cached_tokens=1024)
        )
        manual = median_us(
            lambda: t.record_llm_call("openai", "gpt-4o", 1200, 300, cost_usd="0.01")
        )
        cost = median_us(lambda: t.record_cost("pinecone", "0.00016"))
        with dexcost.task("child") as child:
            nested = median_us(lambda: child.record_llm_call("openai", "gpt-4o-mini", 500, 50))
    session = median_us(lambda: dexcost.record_llm_call("openai", "gpt-4o", 1200, 300))
    dexcost.close()
    rows = [
        ("empty function call (baseline)", f"{baseline:.2f} µs", "same arguments"),
        (
            "record_llm_call, priced",
            f"{llm:.2f} µs",
            f"{llm / baseline:.0f}× baseline; target ≤ 15 µs",
        ),
        ("record_llm_call, cost given", f"{manual:.2f} µs", "no pricing lookup"),
        ("record_llm_call, nested task", f"{nested:.2f} µs", "rolls up into 2 tasks"),
        ("record_llm_call, session task", f"{session:.2f} µs", "outside any task"),
        ("record_cost", f"{cost:.2f} µs", "external cost"),
    ]
    print(table(rows, f"Recording hot path (CPython {sys.version_info[0]}.{sys.version_info[1]})"))


if __name__ == "__main__":
    main()
