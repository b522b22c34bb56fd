"""Median cost of ServiceCatalog.lookup: a catalogued URL, and a host not in the catalog.

Run: python bench/bench_catalog.py   (prints microseconds; asserts nothing)
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from dexcost.catalog import ServiceCatalog, resolve_service


def _median_us(fn: Callable[[], object], loops: int = 20_000, repeats: int = 15) -> float:
    fn()  # warm the per-host cache, as a running program would have
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(loops):
            fn()
        samples.append((time.perf_counter_ns() - start) / loops / 1000)
    return statistics.median(samples)


def main() -> None:
    catalog = ServiceCatalog.load_bundled()
    cases = {
        "lookup hit (exact host)": lambda: catalog.lookup("https://api.exa.ai/search"),
        "lookup hit (host + path)": lambda: catalog.lookup(
            "https://maps.googleapis.com/maps/api/geocode/json?address=x"
        ),
        "lookup hit (wildcard host)": lambda: catalog.lookup(
            "https://idx-1.svc.aped-4627.pinecone.io/query"
        ),
        "lookup miss (host not in catalog)": lambda: catalog.lookup(
            "https://internal.example.com/api/v1/items?page=2"
        ),
        "resolve_service miss": lambda: resolve_service(
            "https://internal.example.com/api/v1/items"
        ),
    }
    print(f"catalog {catalog.version}: {len(catalog)} services")
    for name, fn in cases.items():
        print(f"{name:38s} {_median_us(fn):6.2f} µs")


if __name__ == "__main__":
    main()
