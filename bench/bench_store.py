"""Throughput of the local store: events/s from ``put_event`` to committed, and size.

Builds realistic events (LLM calls with varied tokens and costs, paid API calls,
retries; ten events per task, fifty customers), then times ``put_event`` for all of
them followed by ``flush()`` on a fresh file, and reports the figures. No assertions:
the numbers are for reading.

    python bench/bench_store.py [--events N] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packages" / "dexcost-core" / "src"))

from dexcost._ids import uuid7
from dexcost._models import Event, Task
from dexcost.store import LocalStore
from dexcost.store._store import HIGH_WATER

_MODELS = [
    ("openai", "gpt-4o", Decimal("0.0000025"), Decimal("0.00001")),
    ("openai", "gpt-4o-mini", Decimal("0.00000015"), Decimal("0.0000006")),
    ("anthropic", "claude-sonnet-4", Decimal("0.000003"), Decimal("0.000015")),
]
_SERVICES = [("google_maps_api", Decimal("0.005")), ("pinecone", Decimal("0.00033"))]
_TASK_TYPES = ["resolve_ticket", "generate_report", "classify_lead", "route_plan", "summarise"]


def make_events(n: int, seed: int = 7) -> list[Event]:
    """``n`` events in tasks of ten, as a busy agent would record them."""
    rng = random.Random(seed)
    start = datetime.now(timezone.utc) - timedelta(days=1)
    events: list[Event] = []
    task: Task | None = None
    for i in range(n):
        if i % 10 == 0:
            task = Task(
                task_id=uuid7(),
                task_type=rng.choice(_TASK_TYPES),
                started_at=start,
                customer_id=f"customer-{rng.randrange(50)}",
                project_id="default",
            )
        assert task is not None
        at = start + timedelta(microseconds=i * 997)
        kind = rng.random()
        common = {
            "event_id": uuid7(),
            "task_id": task.task_id,
            "occurred_at": at,
            "customer_id": task.customer_id,
            "project_id": task.project_id,
            "task_type": task.task_type,
        }
        if kind < 0.75:
            provider, model, p_in, p_out = rng.choice(_MODELS)
            tin, tout = rng.randrange(200, 8000), rng.randrange(20, 1500)
            cached = rng.choice((0, 0, 0, tin // 2))
            retry = kind < 0.05
            events.append(
                Event(
                    event_type="llm_call",
                    cost_usd=p_in * tin + p_out * tout,
                    cost_confidence="computed",
                    pricing_source="litellm",
                    pricing_version="3f9a1c",
                    provider=provider,
                    model=model,
                    input_tokens=tin,
                    output_tokens=tout,
                    cached_tokens=cached,
                    latency_ms=rng.randrange(200, 9000),
                    is_retry=retry,
                    retry_reason="rate_limit" if retry else None,
                    details={"finish_reason": "stop"} if kind < 0.15 else {},
                    **common,
                )
            )
        else:
            service, price = rng.choice(_SERVICES)
            events.append(
                Event(
                    event_type="external_cost",
                    cost_usd=price * rng.randrange(1, 5),
                    cost_confidence="exact",
                    pricing_source="service_catalog",
                    service_name=service,
                    **common,
                )
            )
    return events


def run_once(events: list[Event], directory: Path) -> tuple[float, float, float, int]:
    """Time put_event for all then flush.

    Returns (wall seconds, CPU seconds of the process, ns per put below the queue's mark,
    bytes on disk).
    CPU time is what the work costs; on a shared machine wall time also counts waiting
    for a core.
    """
    path = directory / f"bench-{uuid7()}.db"
    store = LocalStore(path)
    put = store.put_event
    # Below the queue's mark a put only appends; past it, a burst this size waits for
    # the writer's batches, so the put loop as a whole measures the writer too.
    below = min(len(events), HIGH_WATER - 1)
    c0 = time.process_time()
    t0 = time.perf_counter()
    for e in events[:below]:
        put(e)
    t1 = time.perf_counter()
    for e in events[below:]:
        put(e)
    ok = store.flush()
    t2 = time.perf_counter()
    c2 = time.process_time()
    store.close()
    if not ok:
        raise RuntimeError("flush failed")
    conn = sqlite3.connect(path)
    count = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    if count != len(events):
        raise RuntimeError(f"stored {count} of {len(events)} events")
    size = sum(os.path.getsize(p) for p in (path, Path(f"{path}-wal")) if os.path.exists(p))
    return t2 - t0, c2 - c0, (t1 - t0) / below * 1e9, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    events = make_events(args.events)
    rates, cpu_rates, puts, sizes = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            seconds, cpu, put_ns, size = run_once(events, Path(tmp))
            rates.append(len(events) / seconds)
            cpu_rates.append(len(events) / cpu)
            puts.append(put_ns)
            sizes.append(size)
    mb_per_million = statistics.median(sizes) / len(events) * 1e6 / 1e6
    print(f"store: {len(events):,} events, best of {args.repeat}")
    print(f"  end to end (put_event + flush) {max(rates):>12,.0f} events/s")
    print(f"  median                         {statistics.median(rates):>12,.0f} events/s")
    print(f"  per CPU second (best)          {max(cpu_rates):>12,.0f} events/s")
    print(f"  put_event (queue below mark)   {min(puts):>12,.0f} ns/event")
    print(f"  size on disk                   {mb_per_million:>12,.0f} MB per million events")


if __name__ == "__main__":
    main()
