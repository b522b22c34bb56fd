"""Time of each insight report over a store of about a million events, and its size.

Builds a seeded month of activity (``dexcost.insights._workload``: 40 customers with a
Zipf-like skew, five task types, retries, failures, planted anomalies) through the
real store, then times each report (median of a few runs, a fresh connection each
time, so nothing is cached between runs but SQLite's page cache) and reports the file
size per million events. No assertions: the numbers are for reading.

    python bench/bench_insights.py [--events 1000000] [--repeat 3] [--db PATH] [--keep]

With ``--db`` an existing file is reused when it is there (building takes minutes).
"""

from __future__ import annotations

import argparse
import io
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packages" / "dexcost-core" / "src"))

from dexcost.insights import (
    Period,
    cost_health,
    customer_detail,
    customer_report,
    find_anomalies,
    import_invoice,
    monthly_statement,
    overview,
    reconcile,
    spend_report,
    statement_pdf,
    task_type_report,
    write_focus,
)
from dexcost.insights._reconcile import parse_invoice
from dexcost.insights._workload import generate, write
from dexcost.store import LocalStore, connect_readonly
from dexcost.store._connect import open_write_connection

UTC = timezone.utc
EVENTS_PER_TASK = 5.1  # events per top-level task in the workload, to size it


def build(path: Path, events: int) -> tuple[int, int, float]:
    """Write a month of about ``events`` events; return (events, tasks, events/s)."""
    per_day = max(1, round(events / EVENTS_PER_TASK / 30))
    work = generate(seed=7, days=30, tasks_per_day=per_day, customers=40,
                    anomalies=("customer", "task_type", "retries"))  # fmt: skip
    store = LocalStore(path)
    start = time.perf_counter()
    write(work, store)
    store.close()
    rate = len(work.events) / (time.perf_counter() - start)
    return len(work.events), len(work.tasks), rate


def invoice_for(path: Path, out: Path) -> None:
    """A generic-format invoice of last week's OpenAI spend from the roll-up, 3% higher."""
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(
            "SELECT day, model, (SUM(cost_hi) * 1000000 + SUM(cost_lo)) / 1e12 FROM event_days"
            " WHERE provider = 'openai' AND day >= date('now', '-7 days') GROUP BY 1, 2"
        ).fetchall()
    lines = ["date,provider,model,amount,currency"]
    lines += [f"{d},openai,{m},{amount * 1.03:.6f},USD" for d, m, amount in rows]
    out.write_text("\n".join(lines) + "\n")


def timed(path: Path, func: Callable[[sqlite3.Connection], object], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        with closing(connect_readonly(path)) as conn:
            start = time.perf_counter()
            func(conn)
            runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def sizes(path: Path) -> list[tuple[str, int]]:
    try:
        with closing(sqlite3.connect(path)) as conn:
            return conn.execute(
                "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 8"
            ).fetchall()
    except sqlite3.OperationalError:  # SQLite built without dbstat
        return []


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", type=Path, help="reuse (or create) this store")
    parser.add_argument("--keep", action="store_true", help="keep the temporary store")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="dexcost-bench-"))
    path = args.db or tmp / "insights.db"
    if not path.exists():
        print(f"building {args.events:,} events in {path} ...", flush=True)
        n, tasks, rate = build(path, args.events)
        print(f"wrote {n:,} events and {tasks:,} tasks at {rate:,.0f} events/s "
              "(put + flush, roll-up triggers included)")  # fmt: skip
    with closing(connect_readonly(path)) as conn:
        n = conn.execute("SELECT SUM(n) FROM event_days").fetchone()[0]
        tasks = conn.execute("SELECT SUM(n) FROM task_days").fetchone()[0]
        last = conn.execute("SELECT max(day) FROM event_days").fetchone()[0]
    month = last[:7]
    now = datetime.now(UTC)
    invoice = tmp / "invoice.csv"
    invoice_for(path, invoice)
    work_copy = tmp / "reconcile.db"
    work_copy.write_bytes(path.read_bytes())
    parsed = parse_invoice(invoice, "generic")
    with closing(open_write_connection(work_copy)) as w:
        import_invoice(w, parsed, file_name="invoice.csv", content=invoice.read_bytes())

    p30 = Period.last(30, now=now)
    reports: list[tuple[str, Callable[[sqlite3.Connection], object], Path]] = [
        ("report (spend, 30d)", lambda c: spend_report(c, p30), path),
        ("report overview (30d + previous)", lambda c: overview(c, p30, now=now), path),
        ("report health (30d)", lambda c: cost_health(c, p30), path),
        ("report customers (30d)", lambda c: customer_report(c, p30), path),
        ("report customer ID (30d)", lambda c: customer_detail(c, "cust-004", p30), path),
        ("report tasks (30d, p50/p95)", lambda c: task_type_report(c, p30), path),
        ("report anomalies (30d, UTC)", lambda c: find_anomalies(c, p30, now=now), path),
        ("report anomalies (30d, Europe/Paris)",
         lambda c: find_anomalies(c, Period.last(30, now=now, tz="Europe/Paris"), now=now), path),
        ("report overview (30d, Asia/Kolkata)",
         lambda c: overview(c, Period.last(30, now=now, tz="Asia/Kolkata"), now=now), path),
        ("statement (month, workspace, CSV data)",
         lambda c: monthly_statement(c, month), path),
        ("statement (month, customer, PDF)",
         lambda c: statement_pdf(monthly_statement(c, month, customer_id="cust-001")), path),
        ("reconcile (7 days of OpenAI lines)", lambda c: reconcile(c, "openai"), work_copy),
        ("export --format focus (30d)", lambda c: write_focus(io.StringIO(), c, p30), path),
    ]  # fmt: skip
    print(f"\ninsights over {n:,} events, {tasks:,} tasks (median of {args.repeat})")
    width = max(len(name) for name, _, _ in reports)
    for name, func, where in reports:
        seconds = timed(where, func, args.repeat)
        print(f"  {name:<{width}}  {seconds * 1000:8.1f} ms")
    size = os.path.getsize(path)
    print(f"\nstore size: {size / 1e6:,.0f} MB, {size / n * 1e6 / 1e6:,.0f} MB per million events")
    for name, bytes_ in sizes(path):
        print(f"  {name:<24} {bytes_ / 1e6:8.1f} MB")
    if not args.keep and args.db is None:
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    else:
        print(f"kept {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
