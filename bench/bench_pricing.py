"""Pricing hot path: median microseconds of a resolved ``PricingEngine.get_cost`` call.

Also prints the one-time cost of loading the bundled price data. Run from the repository
root with the core package importable, e.g.::

    PYTHONPATH=packages/dexcost-core/src python bench/bench_pricing.py
"""

from __future__ import annotations

import statistics
import time
import timeit
from typing import Any

CALLS = 20_000
REPEATS = 15


def _median_us(func: Any) -> float:
    func()  # resolve the name once: what follows is the cached hot path
    runs = timeit.repeat(func, number=CALLS, repeat=REPEATS)
    return statistics.median(runs) / CALLS * 1e6


def main() -> None:
    start = time.perf_counter()
    from dexcost.pricing import PricingEngine

    imported = time.perf_counter()
    engine = PricingEngine()
    loaded = time.perf_counter()
    print(f"import dexcost.pricing          {(imported - start) * 1e3:8.1f} ms")
    print(f"load bundled price data (once)  {(loaded - imported) * 1e3:8.1f} ms")

    cases = {
        "gpt-4o, input + output": lambda: engine.get_cost("gpt-4o", 1200, 300),
        "claude-sonnet-4-5, cache read + write": lambda: engine.get_cost(
            "claude-sonnet-4-5", 12_000, 400, 8_000, 2_000
        ),
        "gpt-5.4, priority, long context, reasoning": lambda: engine.get_cost(
            "gpt-5.4", 300_000, 900, 20_000, service_tier="priority", reasoning_tokens=600
        ),
        "unknown model": lambda: engine.get_cost("no-such-model", 100, 10),
    }
    for name, func in cases.items():
        print(f"get_cost {name:<42} {_median_us(func):6.2f} us (median)")


if __name__ == "__main__":
    import logging

    logging.disable(logging.WARNING)  # the unknown model's one-time warning
    main()
